// Headless Chromium opens tests/gst/page/call.html (served by sfubox with -static) and calls a
// GStreamer peer through sfubox; passes when the page decoded video frames and audio.
// Usage: node tests/gst/browser-call.mjs https://HOST:PORT PEER_ID
// Debian's Chromium with fake devices, through the shared browser harness (tests/browser).

import {captureConsole, chromiumArgs, launch} from '../browser/harness.mjs';

const [base, peer] = process.argv.slice(2);
if (!base || !peer) {
    console.error('usage: browser-call.mjs https://HOST:PORT PEER_ID');
    process.exit(2);
}

const {context, close} = await launch({
    // Real host addresses in candidates: the GStreamer peer cannot resolve mDNS names.
    // sfubox's certificate is self-signed.
    args: chromiumArgs({
        disableFeatures: ['WebRtcHideLocalIpsWithMdns'],
        extra: ['--ignore-certificate-errors', '--autoplay-policy=no-user-gesture-required'],
    }),
    ignoreHTTPSErrors: true,
    permissions: ['camera', 'microphone'],
});
let passed = false;
try {
    const page = await context.newPage();
    captureConsole(page, line => console.log(line), 'browser');
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
    await close();
}
process.exit(passed ? 0 : 1);
