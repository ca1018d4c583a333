// Two headless Chromium pages (fake camera and microphone) meet in sfubox: each publishes
// and receives the other. Passes when both pages decode video frames and receive audio
// packets from the other (RTCPeerConnection.getStats()).
//
// Usage: node browser.mjs http://127.0.0.1:PORT
import {captureConsole, launch, sleep} from '../browser/harness.mjs';

const base = process.argv[2];
const {context, close} = await launch();
let failed = false;
try {
    const pages = [];
    for (const user of ['alice', 'bob']) {
        const page = await context.newPage();
        captureConsole(page, line => console.log(line), user);
        await page.goto(`${base}/media-test.html?user=${user}`);
        pages.push({user, page});
    }
    const deadline = Date.now() + 40000;
    let last = [];
    for (;;) {
        last = [];
        for (const {user, page} of pages)
            last.push({user, stats: await page.evaluate(() => window.mediaStats())});
        const good = last.every(({user, stats}) => stats.streams.some(s =>
            s.username !== user && s.framesDecoded >= 30 && s.audioPackets >= 100));
        if (good)
            break;
        if (Date.now() > deadline) {
            failed = true;
            break;
        }
        await sleep(500);
    }
    for (const {user, stats} of last)
        console.log(`${user}: ${JSON.stringify(stats)}`);
    console.log(failed ? 'media browser test: FAILED' : 'media browser test: both pages see and hear each other');
} finally {
    await close();
}
process.exit(failed ? 1 : 0);
