// WHIP and WHEP through sfubox with the whip-whep package's clients in headless Chromium
// (see run.sh for the whole story). Exits non-zero on the first failed check.
//
// Usage: node browser.mjs http://127.0.0.1:PORT
import assert from 'node:assert/strict';
import http from 'node:http';
import {captureConsole, chromiumArgs, launch, waitFor} from '../browser/harness.mjs';

const base = process.argv[2];
const errors = [];
const started = Date.now();
const step = what => console.log(`== whip: ${what} (${((Date.now() - started) / 1000).toFixed(1)} s)`);

/** One HTTP request with node's fetch; returns {status, headers, text}. */
async function request(method, path, {headers = {}, body} = {}) {
    const r = await fetch(base + path, {method, headers, body, redirect: 'manual'});
    return {status: r.status, headers: r.headers, text: await r.text()};
}

/** The statuses of §2.8, for requests no real client would send. */
async function refusals() {
    const sdp = {'Content-Type': 'application/sdp'};
    const options = await request('OPTIONS', '/group/g/.whip');
    assert.equal(options.status, 200);
    assert.equal(options.headers.get('access-control-allow-methods'), 'OPTIONS, POST');
    assert.equal(options.headers.get('link'), '<stun:127.0.0.1:9>; rel="ice-server"');
    const get = await request('GET', '/group/g/.whip');
    assert.deepEqual([get.status, get.headers.get('allow')], [405, 'OPTIONS, POST']);
    const typed = await request('POST', '/group/g/.whip', {headers: {'Content-Type': 'text/plain'}, body: 'v=0'});
    assert.deepEqual([typed.status, typed.headers.get('accept')], [415, 'application/sdp']);
    assert.equal((await request('POST', '/group/g/.whip', {headers: sdp, body: ''})).status, 400, 'no SDP');
    assert.equal((await request('POST', '/group/g/.whip', {headers: sdp, body: 'v=0\r\nx\r\n'})).status, 400, 'not SDP');
    const big = 'a='.padEnd(70 * 1024, 'x');
    assert.equal((await request('POST', '/group/g/.whip', {headers: sdp, body: big})).status, 413, 'oversized');
    assert.equal((await request('POST', '/group/nowhere/.whip', {headers: sdp, body: 'v=0'})).status, 404);
    const wrongToken = await request('POST', '/group/g/.whip', {
        headers: {...sdp, Authorization: 'Bearer wrong-token'}, body: 'v=0\r\n'});
    assert.equal(wrongToken.status, 401, 'wrong token');
    assert.equal((await request('DELETE', '/group/g/.whip/AAAAAAAAAAAAAAAAAAAAAA')).status, 404);
    assert.equal((await request('PATCH', '/group/g/.whep/AAAAAAAAAAAAAAAAAAAAAA', {
        headers: {'Content-Type': 'application/trickle-ice-sdpfrag'}, body: 'a=end-of-candidates\r\n'})).status, 404);
    assert.equal((await request('DELETE', '/group/g/.whip/not-an-id')).status, 500);
    assert.equal(await chunkedPost('/group/g/.whip', 'v=0\r\n'), 411, 'chunked');
}

/** POSTs `body` as chunked transfer encoding (no Content-Length); returns the status. */
function chunkedPost(path, body) {
    return new Promise((resolve, reject) => {
        const req = http.request(base + path, {method: 'POST', headers: {'Content-Type': 'application/sdp'}},
            res => { res.resume(); resolve(res.statusCode); });
        req.on('error', reject);
        req.write(body);
        req.end();
    });
}

/** A page of the test site, its console and errors captured. */
async function open(context, path, label) {
    const page = await context.newPage();
    captureConsole(page, line => {
        console.log(line);
        if (line.includes('pageerror'))
            errors.push(line);
    }, label);
    await page.goto(base + path);
    return page;
}

/** The member's stream from `username` once it decodes moving, non-black video and audio. */
async function decodedFrom(member, username) {
    let last;
    try {
        return await waitFor(`${username}'s video and audio at the member`, async () => {
            last = await member.evaluate(() => window.memberState());
            const s = last.streams.find(s => s.username === username && !s.closed);
            return s && decodes(s) ? s : null;
        }, 60000, 500);
    } catch (e) {
        console.log('member state:', JSON.stringify(last));
        throw e;
    }
}

function decodes(s) {
    return s.framesDecoded >= 30 && s.brightest > 20 && s.pictureChanges >= 3 &&
        s.audioPackets >= 50 && s.audioSamples >= 48000 && s.audioEnergy > 0;
}

// Received audio is played (unmuted): its samples are decoded.
const {context, close} = await launch({args: chromiumArgs({extra: ['--autoplay-policy=no-user-gesture-required']})});
let failed = false;
try {
    step('refusals');
    await refusals();

    step('WHIP publishes into the group');
    const member = await open(context, '/member.html?user=watcher', 'watcher');
    await waitFor('the member joined', () => member.evaluate(() => window.memberState().then(s => s.users.length > 0)));
    const whip = await open(context, '/whip.html', 'whip');
    const published = await waitFor('the WHIP page published', async () => {
        const s = await whip.evaluate(() => window.whipState());
        if (s.status === 'failed')
            throw new Error('WHIP publish failed: ' + s.error);
        return s.status === 'published' && s.ice === 'connected' ? s : null;
    });
    assert.match(published.resource, /\/group\/g\/\.whip\/[A-Za-z0-9_-]{22}$/);
    const fromWhip = await decodedFrom(member, 'whip');
    console.log('member receives whip:', JSON.stringify(fromWhip));
    const users = (await member.evaluate(() => window.memberState())).users;
    assert.ok(users.some(([kind, name]) => kind === 'add' && name === 'whip'), JSON.stringify(users));

    step('WHEP views a browser camera');
    const camera = await open(context, '/member.html?user=camera&publish=1', 'camera');
    await decodedFrom(member, 'camera');
    const whep = await open(context, '/whep.html?user=camera', 'whep');
    const viewed = await waitFor('the WHEP page decodes the camera', async () => {
        const s = await whep.evaluate(() => window.whepState());
        if (s.status === 'failed')
            throw new Error('WHEP view failed: ' + s.error);
        return decodes(s) ? s : null;
    }, 60000, 500);
    console.log('WHEP receives camera:', JSON.stringify(viewed));

    step('DELETE takes the WHIP user out');
    await whip.evaluate(() => window.stopWhip());
    await waitFor('the member sees whip leave and its stream close', async () => {
        const state = await member.evaluate(() => window.memberState());
        const left = state.users.some(([kind, name]) => kind === 'delete' && name === 'whip');
        const closed = state.streams.filter(s => s.username === 'whip').every(s => s.closed);
        return left && closed;
    });
    const deleted = await request('DELETE', new URL(published.resource).pathname);
    assert.equal(deleted.status, 404, 'the resource is gone');

    step('a WHIP session with a bearer token');
    const tokened = await open(context, '/whip.html?token=secret-token', 'whip-token');
    const withToken = await waitFor('the token WHIP page published', async () => {
        const s = await tokened.evaluate(() => window.whipState());
        if (s.status === 'failed')
            throw new Error('WHIP publish with a token failed: ' + s.error);
        return s.status === 'published' ? s : null;
    });
    await waitFor('the member sees the token\'s username', () => member.evaluate(() =>
        window.memberState().then(s => s.users.some(([k, n]) => k === 'add' && n === 'obs-studio'))));
    const path = new URL(withToken.resource).pathname;
    assert.equal((await request('DELETE', path)).status, 403, 'no token');
    assert.equal((await request('DELETE', path, {headers: {Authorization: 'Bearer nope'}})).status, 403);
    await tokened.evaluate(() => window.stopWhip());
    await waitFor('obs-studio leaves', () => member.evaluate(() =>
        window.memberState().then(s => s.users.some(([k, n]) => k === 'delete' && n === 'obs-studio'))));

    assert.deepEqual(errors, [], 'no page errors');
    step('passed');
} catch (e) {
    failed = true;
    console.log('whip test: FAILED:', e && e.stack || e);
} finally {
    await close();
}
process.exit(failed ? 1 : 0);
