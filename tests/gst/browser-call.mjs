// Headless Chromium opens tests/gst/page/call.html (served by sfubox with -static) and calls a
// GStreamer peer through sfubox; passes when the page decoded video frames and audio.
// Usage: node tests/gst/browser-call.mjs https://HOST:PORT PEER_ID
// Chromium and its flags are the browser tests' (tests/web/browser/harness.mjs).

import {chromium} from '../web/node_modules/playwright-core/index.mjs';
import {chromiumArgs, chromiumPath} from '../web/browser/harness.mjs';

const [base, peer] = process.argv.slice(2);
if (!base || !peer) {
    console.error('usage: browser-call.mjs https://HOST:PORT PEER_ID');
    process.exit(2);
}

const browser = await chromium.launch({
    executablePath: chromiumPath,
    headless: true,
    // Real host addresses in candidates (the GStreamer peer cannot resolve mDNS names), and
    // sfubox's self-signed certificate.
    args: [...chromiumArgs, '--disable-features=WebRtcHideLocalIpsWithMdns',
        '--ignore-certificate-errors', '--autoplay-policy=no-user-gesture-required'],
});
let passed = false;
try {
    const context = await browser.newContext({
        ignoreHTTPSErrors: true,
        permissions: ['camera', 'microphone'],
    });
    const page = await context.newPage();
    page.on('console', m => console.log(`[browser] ${m.type()}: ${m.text()}`));
    page.on('pageerror', e => console.log(`[browser] pageerror: ${e.message}`));
    await page.goto(`${base}/call.html?peer=${encodeURIComponent(peer)}&me=browser`);
    const state = await page.waitForFunction(
        () => ['passed', 'failed'].includes(window.callStatus?.state) && window.callStatus,
        null, {timeout: 90000, polling: 250},
    ).then(handle => handle.jsonValue()).catch(async error => {
        const status = await page.evaluate(() => window.callStatus).catch(() => null);
        return {state: 'failed', error: String(error), ...status};
    });
    console.log('[browser] ' + JSON.stringify(state));
    console.log('[browser] page log:\n' + await page.textContent('#log').catch(() => ''));
    passed = state.state === 'passed';
} finally {
    await browser.close();
}
process.exit(passed ? 0 : 1);
