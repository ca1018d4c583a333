// Headless Chromium opens tests/gst/page/call.html (served by sfubox with -static) and calls a
// GStreamer peer through sfubox; passes when the page decoded video frames and audio.
// Usage: node tests/gst/browser-call.mjs https://HOST:PORT PEER_ID
// Debian's Chromium with fake devices; playwright-core comes from tests/web's node modules.

import {chromium} from '../web/node_modules/playwright-core/index.mjs';

const chromiumPath = process.env.CHROMIUM || '/usr/bin/chromium';
const chromiumArgs = [
    '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync',
    '--use-fake-ui-for-media-stream', '--use-fake-device-for-media-stream',
    '--allow-loopback-in-peer-connection',
    // Chromium honours only the last --disable-features, so both features go in one flag:
    // real host addresses in candidates (the GStreamer peer cannot resolve mDNS names).
    '--disable-features=LocalNetworkAccessChecks,WebRtcHideLocalIpsWithMdns',
];

const [base, peer] = process.argv.slice(2);
if (!base || !peer) {
    console.error('usage: browser-call.mjs https://HOST:PORT PEER_ID');
    process.exit(2);
}

const browser = await chromium.launch({
    executablePath: chromiumPath,
    headless: true,
    // sfubox's self-signed certificate.
    args: [...chromiumArgs, '--ignore-certificate-errors', '--autoplay-policy=no-user-gesture-required'],
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
