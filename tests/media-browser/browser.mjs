// Two headless Chromium pages (fake camera and microphone) meet in sfubox: each publishes
// and receives the other. Passes when both pages decode video frames and receive audio
// packets from the other (RTCPeerConnection.getStats()).
//
// Usage: node browser.mjs http://127.0.0.1:PORT
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {chromium} from 'playwright-core';

const base = process.argv[2];
const args = [
    '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync',
    '--use-fake-ui-for-media-stream', '--use-fake-device-for-media-stream',
    '--allow-loopback-in-peer-connection', '--disable-features=LocalNetworkAccessChecks',
];
const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'sfubox-media-chromium-'));
const context = await chromium.launchPersistentContext(profile, {
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args,
});
let failed = false;
try {
    const pages = [];
    for (const user of ['alice', 'bob']) {
        const page = await context.newPage();
        page.on('console', m => console.log(`[${user}] ${m.text()}`));
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
        await new Promise(r => setTimeout(r, 500));
    }
    for (const {user, stats} of last)
        console.log(`${user}: ${JSON.stringify(stats)}`);
    console.log(failed ? 'media browser test: FAILED' : 'media browser test: both pages see and hear each other');
} finally {
    await context.close();
    fs.rmSync(profile, {recursive: true, force: true});
}
process.exit(failed ? 1 : 0);
