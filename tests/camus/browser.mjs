// Browser test of the Camus endpoints: the real Camus web client (one bundle per run),
// served by sfubox, two headless Chromium pages in one room.
//
// Usage: node tests/camus/browser.mjs <sfubox binary> <camus static dir> <version>
//
// Asserts, from the pages themselves:
// - both pages decode the other's video (inbound-rtp video with framesDecoded > 0 in the
//   getStats() of a connected RTCPeerConnection);
// - a chat line typed in A arrives at B (and at A, through the server's room echo);
// - closing A (beforeunload: `bye` to each peer and to ground control) closes B's peer
//   connection and B's room-info no longer lists A.
// Version 0.2.3 runs on /chat/<room> with an open room; 0.3.1 on /room/<room> with a password
// room, so the page's password form and the pass cookie are exercised in a real browser.

import fs from 'node:fs';
import path from 'node:path';
import {captureConsole, chromiumArgs, launch, sleep, startServer, waitFor as poll}
    from '../browser/harness.mjs';

/** Chromium with a fresh profile; every page of the context is a separate client. */
function launchBrowser() {
    return launch({
        args: chromiumArgs(),
        viewport: {width: 1280, height: 800},
        permissions: ['camera', 'microphone'],
    });
}

const [binary, clientDir, version] = process.argv.slice(2);
if (!binary || !clientDir || !version) {
    console.error('usage: browser.mjs <sfubox> <camus static dir> <version>');
    process.exit(2);
}

const PASSWORD = 'open sesame';
const withPassword = version !== '0.2.3';
const prefix = version === '0.2.3' ? '/chat' : '/room';
const room = withPassword ? 'locked-room' : 'open-room';
const TIMEOUT = 30000;
const NEGOTIATION_TIMEOUT = 15000;
const ATTEMPTS = 4;

function startCamusServer() {
    return startServer({
        binary,
        readyPath: '/public',
        env: {RUST_LOG: 'info,sfubox::camus=debug'},
        // No groups directory: the built-in setup, where unlisted rooms are created on first
        // use.
        setup: dir => {
            fs.mkdirSync(path.join(dir, 'data'));
            fs.writeFileSync(path.join(dir, 'data', 'camus-rooms.json'), JSON.stringify({
                rooms: [{name: 'Locked Room', password: PASSWORD, 'guest-limit': 2}],
            }));
        },
        args: (port, dir) => [
            '-insecure', '-http', `127.0.0.1:${port}`, '-groups', path.join(dir, 'groups'),
            '-data', path.join(dir, 'data'), '-camus-client', clientDir,
        ],
    });
}

// Records every RTCPeerConnection the page creates, so the test can read their stats.
function recordPeerConnections() {
    const Original = window.RTCPeerConnection;
    window.__pcs = [];
    window.RTCPeerConnection = function (...args) {
        const pc = new Original(...args);
        window.__pcs.push(pc);
        return pc;
    };
    window.RTCPeerConnection.prototype = Original.prototype;
    Object.setPrototypeOf(window.RTCPeerConnection, Original);
}

async function openClient(context, server, nickname) {
    const page = await context.newPage();
    page.log = [];
    page.frames = [];
    captureConsole(page, line => page.log.push(line));
    page.on('websocket', ws => {
        ws.on('framereceived', f => {
            try {
                page.frames.push(JSON.parse(f.payload));
            } catch (e) {
                // not JSON
            }
        });
    });
    await page.addInitScript(recordPeerConnections);
    const response = await page.goto(`${server.url}${prefix}/${room}`);
    if (withPassword) {
        if (response.status() !== 200 || !(await page.locator('input[name=password]').count()))
            throw new Error(`${nickname}: no password form (${response.status()})`);
        await page.fill('input[name=password]', 'wrong');
        const [wrong] = await Promise.all([page.waitForNavigation(), page.click('#submit')]);
        if (wrong.status() !== 401)
            throw new Error(`${nickname}: wrong password gave ${wrong.status()}`);
        await page.fill('input[name=password]', PASSWORD);
        await Promise.all([page.waitForNavigation(), page.click('#submit')]);
    }
    await page.waitForSelector('input[name=nickname]', {timeout: TIMEOUT});
    // Give the client the moment a person would take before entering: it negotiates with
    // the members already there as soon as the page is loaded, and the bundles' perfect
    // negotiation does not survive an answer and a new offer crossing on the wire.
    await waitFor(`${nickname}: page negotiation settled`, () => page.evaluate(() =>
        window.__pcs.every(pc => pc.signalingState === 'stable')), NEGOTIATION_TIMEOUT);
    await page.waitForTimeout(1000);
    await page.fill('input[name=nickname]', nickname);
    // The fake camera and microphone, once the dialog has listed them ("None" is first).
    for (const device of ['Camera', 'Microphone']) {
        await page.waitForSelector(`select[name=${device}] option:nth-child(2)`,
            {state: 'attached', timeout: TIMEOUT});
        await page.selectOption(`select[name=${device}]`, {index: 1});
    }
    await page.click('input[type=submit][value="Enter room"]');
    return page;
}

/** Frames decoded on the page's connected peer connections, per peer connection. */
async function decodedVideo(page) {
    return page.evaluate(async () => {
        const result = [];
        for (const pc of window.__pcs) {
            if (pc.connectionState !== 'connected')
                continue;
            const stats = await pc.getStats();
            let frames = 0;
            stats.forEach(s => {
                if (s.type === 'inbound-rtp' && s.kind === 'video')
                    frames += s.framesDecoded || 0;
            });
            result.push(frames);
        }
        return result;
    });
}

/** For failure reports: every recorded peer connection's states and inbound streams. */
async function describePeerConnections(page) {
    return page.evaluate(async () => Promise.all(window.__pcs.map(async pc => {
        const inbound = [];
        (await pc.getStats()).forEach(s => {
            if (s.type === 'inbound-rtp')
                inbound.push({kind: s.kind, bytes: s.bytesReceived, decoded: s.framesDecoded});
        });
        return {
            connection: pc.connectionState,
            signaling: pc.signalingState,
            transceivers: pc.getTransceivers().map(t => `${t.mid}:${t.direction}/${t.currentDirection}:${t.sender.track ? t.sender.track.kind : '-'}`),
            inbound,
        };
    })));
}

function waitFor(what, check, timeout = TIMEOUT) {
    return poll(what, check, timeout);
}

async function main() {
    const server = await startCamusServer();
    const {context, close} = await launchBrowser();
    let a;
    let b;
    try {
        a = await openClient(context, server, 'Alice');
        // Both sides decode video from the other. The bundles' perfect negotiation can
        // wedge when an answer and a new offer cross on the wire (both sides offer at
        // once, and its message handlers run concurrently): a person would reload, so
        // does the test, a few times, reporting every retry.
        for (let attempt = 1; ; attempt++) {
            try {
                // A's pass cookie would take B past the password form: B is a stranger.
                await context.clearCookies();
                b = await openClient(context, server, 'Bob');
                for (const [name, page] of [['A', a], ['B', b]]) {
                    await waitFor(`video decoded on ${name}`, async () => {
                        const frames = await decodedVideo(page);
                        return frames.some(n => n > 10) ? frames : null;
                    }, NEGOTIATION_TIMEOUT);
                }
                break;
            } catch (error) {
                if (attempt === ATTEMPTS)
                    throw error;
                console.log(`${version}: attempt ${attempt} failed (${error.message}), B reloads`);
                console.log('  A: ' + JSON.stringify(await describePeerConnections(a)));
                if (b && !b.isClosed())
                    await b.close({runBeforeUnload: true});
                b = undefined;
                await sleep(1000);
            }
        }
        console.log(`${version}: video decoded on both pages`);

        // A chat line from A reaches B (and A, through the room echo).
        const line = `hello from Alice over ${version}`;
        // The chat lives in the sidebar, behind its "message" button.
        await a.click('.sidebar-toggle-buttons li:first-child button');
        await a.fill('.chat-message-bar input[type=text]', line);
        await a.click('.chat-message-bar form button');
        for (const [name, page] of [['B', b], ['A', a]]) {
            await waitFor(`the chat line on ${name}`, async () =>
                page.frames.some(f => f.type === 'text' && f.data && f.data.text === line));
        }
        await b.click('.sidebar-toggle-buttons li:first-child button');
        await waitFor('the chat line shown on B', async () =>
            (await b.getByText(line).count()) > 0);
        console.log(`${version}: chat text arrived`);

        // A leaves: B gets A's bye, closes its peer connection, and A leaves the room.
        const idA = a.frames.find(f => f.type === 'pong' && f.sender === 'ground control').receiver;
        await a.close({runBeforeUnload: true});
        await waitFor('bye from A on B', async () =>
            b.frames.some(f => f.type === 'bye' && f.sender === idA));
        await waitFor('B\'s peer connection to A closed', async () => b.evaluate(() =>
            window.__pcs.some(pc => pc.signalingState === 'closed'
                && pc.getReceivers().some(r => r.track && r.track.kind === 'video'))));
        await waitFor('room-info without A on B', async () => {
            const infos = b.frames.filter(f => f.type === 'room-info');
            const last = infos[infos.length - 1];
            return last && !last.data.clients.some(c => c.id === idA);
        });
        console.log(`${version}: bye closed the peer`);
    } catch (error) {
        for (const [name, page] of [['A', a], ['B', b]]) {
            if (page && !page.isClosed())
                console.error(`--- peer connections of ${name}: ` + JSON.stringify(await describePeerConnections(page)));
            if (page) {
                console.error(`--- console of ${name}:\n` + page.log.slice(-40).join('\n'));
                console.error(`--- frames of ${name}:\n` + page.frames.slice(-20).map(f => JSON.stringify(f).slice(0, 200)).join('\n'));
            }
        }
        console.error('--- server log:\n' + server.log().split('\n').slice(-60).join('\n'));
        throw error;
    } finally {
        await close();
        await server.stop();
        server.cleanup();
    }
}

main().then(() => {
    console.log(`camus ${version}: ok`);
}, error => {
    console.error(`camus ${version}: FAILED: ${error.stack || error}`);
    process.exit(1);
});
