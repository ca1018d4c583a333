// Recording with real browsers and real decoders (tests/recording/run.sh).
//
// 1. Two Chromium pages publish (fake camera and microphone) in a group that allows
//    recording; an operator records for 12 s with the meeting page's button; every page shows
//    the "Recording" badge meanwhile. Then: one file per stream, named
//    <local time>-<user>.webm, mode 0600 in a 0700 directory; ffprobe reads it without an
//    error; Opus and VP8; duration within 10 % of the recorded wall time; ffmpeg decodes every
//    frame; audio and video start less than 100 ms apart. Then 6 s of VP9 (.webm) and of
//    H.264 (.mkv, with its avcC) from groups that allow only that video codec.
// 2. The recordings browser: 400/308/401 (realm, 200 ms after a wrong password, a user without
//    `record`), the listing, a download equal to the file, a byte range, 416, 405, deletion by
//    POST (303) and its 400s, and traversal refused (dot segments, backslashes, symbolic links
//    out of the directory).
// 3. SIGTERM during a recording: the server exits and the files it was writing play.
// 4. A full disk (a 1.5 MB tmpfs): the meeting goes on, the operator gets the warning, the
//    partial files decode.
//
// Usage: node browser.mjs   (SFUBOX_BIN names the server binary)

import {spawnSync} from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import {captureConsole, launch, repo, sleep, startServer, waitFor} from '../browser/harness.mjs';

const binary = process.env.SFUBOX_BIN;
if (!binary)
    throw new Error('SFUBOX_BIN must name the server binary');

const RECORD_SECONDS = 12;
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'sfubox-recording-'));
const mounts = [];
const logs = [];
let passed = 0;
let failed = 0;

function check(name, ok, detail = '') {
    if (ok) {
        passed++;
        console.log(`ok   ${name}`);
    } else {
        failed++;
        console.log(`FAIL ${name}${detail ? ': ' + detail : ''}`);
    }
    return ok;
}

function run(command, args) {
    const r = spawnSync(command, args, {encoding: 'utf8', maxBuffer: 64 << 20});
    return {status: r.status, stdout: r.stdout || '', stderr: r.stderr || ''};
}

function mountTmpfs(dir, size) {
    fs.mkdirSync(dir, {recursive: true});
    const r = run('mount', ['-t', 'tmpfs', '-o', `size=${size},mode=0755`, 'tmpfs', dir]);
    if (r.status !== 0)
        throw new Error(`mount ${dir}: ${r.stderr}`);
    mounts.push(dir);
}

const group = {
    'allow-recording': true,
    users: {boss: {password: 'op-pw', permissions: 'op'}},
    'wildcard-user': {password: 'pw', permissions: 'present'},
};

async function start(recordings) {
    return startServer({
        binary,
        readyPath: '/public-groups.json',
        env: {RUST_LOG: process.env.SERVER_LOG || 'info,sfubox::core=debug,sfubox::streams=debug'},
        setup: dir => {
            fs.mkdirSync(path.join(dir, 'groups'));
            fs.mkdirSync(path.join(dir, 'data'));
            fs.writeFileSync(path.join(dir, 'groups', 'rec.json'), JSON.stringify(group));
            // The same with one video codec each: VP9 (WebM) and H.264 (Matroska).
            for (const codec of ['vp9', 'h264'])
                fs.writeFileSync(path.join(dir, 'groups', `${codec}.json`),
                    JSON.stringify({...group, codecs: [codec, 'opus']}));
        },
        args: (port, dir) => [
            '-insecure', '-http', `127.0.0.1:${port}`, '-static', path.join(repo, 'static'),
            '-groups', path.join(dir, 'groups'), '-data', path.join(dir, 'data'),
            '-recordings', recordings,
        ],
    });
}

async function join(context, server, username, password, startWith, groupName = 'rec') {
    const page = await context.newPage();
    captureConsole(page, line => logs.push(`[${username}] ${line}`));
    await page.goto(server.url + `/group/${groupName}/`);
    await page.fill('#login-username', username);
    await page.fill('#login-password', password);
    await page.check(`input[name=start][value=${startWith}]`);
    // The name must still be ours when we join (each page of the context shares one origin's
    // storage, and the page fills in the last name used).
    const typed = await page.inputValue('#login-username');
    if (typed !== username)
        throw new Error(`${username}'s login form says ${JSON.stringify(typed)}`);
    await page.click('#login-submit');
    try {
        await page.waitForSelector('#meeting:not([hidden])', {timeout: 15000});
    } catch (e) {
        const error = await page.textContent('#login-error').catch(() => '?');
        const state = await page.textContent('#connection-state').catch(() => '?');
        throw new Error(`${username} could not join ${groupName}: login error ${JSON.stringify(error)}, ` +
            `connection ${JSON.stringify(state)} (${e.message.split('\n')[0]})`);
    }
    return page;
}

/** Remote videos a page is playing, and the frames they decoded so far. */
function playing(page) {
    return page.evaluate(() => [...document.querySelectorAll('#videos video')]
        .filter(v => v.videoWidth > 0 && !v.muted)
        .map(v => v.getVideoPlaybackQuality().totalVideoFrames));
}

async function badgeShown(page) {
    return page.evaluate(() => !document.getElementById('group-recording').hidden);
}

/** The recordings in `dir` (names matching the naming rule). */
function recordings(dir) {
    try {
        return fs.readdirSync(dir).filter(n => !n.startsWith('.')).sort();
    } catch (e) {
        return [];
    }
}

/** Waits until the server log says every file in `dir` was finished. */
async function waitClosed(server, dir) {
    await waitFor(`the files in ${dir} finished`, () => {
        const files = recordings(dir);
        const log = server.log();
        return files.length > 0 && files.every(f => log.includes(`${f} finished`));
    }, 20000);
}

/** ffprobe and ffmpeg on one file: the facts the checks need. */
function inspect(file) {
    const probe = run('ffprobe', ['-v', 'error', '-show_entries',
        'format=duration:stream=codec_type,codec_name,start_time,width,height', '-of', 'json', file]);
    const counts = run('ffprobe', ['-v', 'error', '-count_frames', '-count_packets', '-select_streams', 'v:0',
        '-show_entries', 'stream=nb_read_frames,nb_read_packets', '-of', 'json', file]);
    // Every frame, at its own time: no frame dropped or repeated for a constant output rate,
    // and the input's millisecond time base (WebRTC video has a variable frame rate).
    const decode = run('ffmpeg', ['-nostdin', '-v', 'error', '-i', file, '-fps_mode', 'passthrough',
        '-enc_time_base', '-1', '-f', 'null', '-']);
    let info = {};
    try {
        info = JSON.parse(probe.stdout);
    } catch (e) {
        info = {};
    }
    const streams = info.streams || [];
    const video = streams.find(s => s.codec_type === 'video');
    const audio = streams.find(s => s.codec_type === 'audio');
    let frames = {};
    try {
        frames = JSON.parse(counts.stdout).streams?.[0] || {};
    } catch (e) {
        frames = {};
    }
    return {
        probeErrors: probe.stderr.trim() + counts.stderr.trim(),
        decodeErrors: decode.stderr.trim(),
        decodeStatus: decode.status,
        duration: Number(info.format?.duration),
        video, audio,
        framesRead: Number(frames.nb_read_frames),
        packetsRead: Number(frames.nb_read_packets),
    };
}

/** One raw HTTP request (no URL normalisation): status, headers, body. */
function rawRequest(port, method, target, headers = {}, body = '') {
    return new Promise((resolve, reject) => {
        const socket = net.connect(port, '127.0.0.1');
        const chunks = [];
        socket.on('data', c => chunks.push(c));
        socket.on('error', reject);
        socket.on('end', () => {
            const all = Buffer.concat(chunks);
            const split = all.indexOf('\r\n\r\n');
            const head = all.subarray(0, split).toString('latin1').split('\r\n');
            const status = Number(head[0].split(' ')[1]);
            const h = {};
            for (const line of head.slice(1)) {
                const i = line.indexOf(':');
                h[line.slice(0, i).toLowerCase()] = line.slice(i + 1).trim();
            }
            resolve({status, headers: h, body: all.subarray(split + 4)});
        });
        const lines = [`${method} ${target} HTTP/1.1`, 'Host: 127.0.0.1', 'Connection: close'];
        for (const [k, v] of Object.entries(headers))
            lines.push(`${k}: ${v}`);
        if (body)
            lines.push(`Content-Length: ${Buffer.byteLength(body)}`);
        socket.write(lines.join('\r\n') + '\r\n\r\n' + body);
    });
}

const basic = (user, password) => 'Basic ' + Buffer.from(`${user}:${password}`).toString('base64');
const BOSS = {Authorization: basic('boss', 'op-pw')};

/** Recording file names: <local time>-<user>.webm. */
const NAME = /^(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)\.(\d{3})-(alice|bob|carol)\.(webm|mkv)$/;

/** The files of each user, in time order. */
function usersFiles(files) {
    const byUser = {alice: [], bob: [], carol: []};
    for (const name of files) {
        const m = name.match(NAME);
        if (m)
            byUser[m[8]].push(name);
    }
    return byUser;
}

/** Checks one finished recording; returns what ffprobe found. */
function checkFile(dir, name, user, videoCodec = 'vp8') {
    const file = path.join(dir, name);
    const facts = inspect(file);
    const tag = `${user}: ${name}`;
    check(`${tag}: mode 0600`, (fs.statSync(file).mode & 0o777) === 0o600,
        (fs.statSync(file).mode & 0o777).toString(8));
    check(`${tag}: ffprobe reads it without an error`, facts.probeErrors === '', facts.probeErrors);
    check(`${tag}: Opus and ${videoCodec}`, facts.audio?.codec_name === 'opus' && facts.video?.codec_name === videoCodec,
        JSON.stringify([facts.audio?.codec_name, facts.video?.codec_name]));
    check(`${tag}: ${facts.video?.width}×${facts.video?.height}`, facts.video?.width > 0 && facts.video?.height > 0);
    check(`${tag}: ffmpeg decodes it without an error`, facts.decodeStatus === 0 && facts.decodeErrors === '',
        facts.decodeErrors.slice(0, 500));
    check(`${tag}: every video frame decodes (${facts.framesRead} of ${facts.packetsRead})`,
        facts.packetsRead > 0 && facts.framesRead === facts.packetsRead);
    const gap = Math.abs(Number(facts.audio?.start_time) - Number(facts.video?.start_time));
    check(`${tag}: audio and video start ${(gap * 1000).toFixed(0)} ms apart (< 100)`, gap < 0.1);
    return facts;
}

const {context, close} = await launch();
const servers = [];
try {
    // ------------------------------------------------------------------ 1. recording
    const dirA = path.join(work, 'rec-a');
    mountTmpfs(dirA, '64m');
    const a = await start(dirA);
    servers.push(a);
    const alice = await join(context, a, 'alice', 'pw', 'camera');
    const bob = await join(context, a, 'bob', 'pw', 'camera');
    const boss = await join(context, a, 'boss', 'op-pw', 'none');
    await waitFor('the operator plays both cameras', async () => (await playing(boss)).length >= 2, 30000);
    check('the record button is there for the operator only',
        await boss.isVisible('#btn-record') && !(await alice.isVisible('#btn-record')));
    check('no Recording badge yet', !(await badgeShown(alice)));

    await boss.click('#btn-record');
    const started = Date.now();
    for (const [who, page] of [['alice', alice], ['bob', bob], ['boss', boss]])
        check(`${who} sees the Recording badge`, await waitFor('the badge', () => badgeShown(page), 10000).catch(() => false));
    await sleep(RECORD_SECONDS * 1000);
    check('the button now stops recording', (await boss.textContent('#btn-record')).includes('Stop recording'));
    await boss.click('#btn-record');
    const seconds = (Date.now() - started) / 1000;
    await waitFor('the badge goes', async () => !(await badgeShown(alice)) && !(await badgeShown(boss)), 10000);
    await waitClosed(a, path.join(dirA, 'rec'));

    const groupDir = path.join(dirA, 'rec');
    check('the group directory is mode 0700', (fs.statSync(groupDir).mode & 0o777) === 0o700);
    const files = recordings(groupDir);
    const byUser = usersFiles(files);
    // A file per stream, and a new one whenever the picture size changes (Chrome lowers it
    // when the machine is busy): at least one each.
    check(`files named <local time>-<user>.webm: ${files.join(', ')}`,
        byUser.alice.length >= 1 && byUser.bob.length >= 1 &&
        byUser.alice.length + byUser.bob.length === files.length);
    for (const user of ['alice', 'bob']) {
        const [first] = byUser[user];
        if (!first)
            continue;
        const m = first.match(NAME);
        const at = new Date(+m[1], +m[2] - 1, +m[3], +m[4], +m[5], +m[6], +m[7]);
        check(`${user}'s first file is named by the local time (${(at - started) / 1000} s after the click)`,
            Math.abs(at - started) < 10000);
        let total = 0;
        for (const name of byUser[user])
            total += checkFile(groupDir, name, user).duration;
        check(`${user}: ${total.toFixed(3)} s recorded, within 10 % of ${seconds.toFixed(2)} s`,
            Math.abs(total - seconds) <= seconds * 0.1);
    }

    // ------------------------------------------------------------------ 2. HTTP
    const port = a.port;
    let r = await rawRequest(port, 'GET', '/recordings/');
    check('/recordings/ is 400 Bad group name', r.status === 400 && r.body.toString().includes('Bad group name'));
    r = await rawRequest(port, 'GET', '/recordings');
    check('/recordings redirects to /recordings/', r.status === 308 && r.headers.location === '/recordings/');
    r = await rawRequest(port, 'GET', '/recordings/rec/');
    check('no credentials: 401 with the realm', r.status === 401 &&
        r.headers['www-authenticate'] === 'basic realm="recordings/rec"', JSON.stringify(r.headers));
    let t = Date.now();
    r = await rawRequest(port, 'GET', '/recordings/rec/', {Authorization: basic('boss', 'nope')});
    check('a wrong password: 401 after 200 ms', r.status === 401 && Date.now() - t >= 200);
    r = await rawRequest(port, 'GET', '/recordings/rec/', {Authorization: basic('alice', 'pw')});
    check('a user without record: 401', r.status === 401);
    r = await rawRequest(port, 'GET', '/recordings/rec', BOSS);
    check('/recordings/rec redirects to /recordings/rec/', r.status === 308 && r.headers.location === '/recordings/rec/');
    r = await rawRequest(port, 'GET', '/recordings/rec/', BOSS);
    const listing = r.body.toString();
    check('the operator gets the listing', r.status === 200 && r.headers['content-type'].startsWith('text/html') &&
        files.every(f => listing.includes(f)));
    const first = files[0];
    const firstPath = path.join(groupDir, first);
    const onDisk = fs.readFileSync(firstPath);
    r = await rawRequest(port, 'GET', `/recordings/rec/${first}`, BOSS);
    check('a download is the file, as video/webm', r.status === 200 && r.headers['content-type'] === 'video/webm' &&
        Buffer.compare(r.body, onDisk) === 0);
    r = await rawRequest(port, 'GET', `/recordings/rec/${first}`, {...BOSS, Range: 'bytes=100-199'});
    check('a range: 206 with its 100 bytes', r.status === 206 &&
        r.headers['content-range'] === `bytes 100-199/${onDisk.length}` &&
        Buffer.compare(r.body, onDisk.subarray(100, 200)) === 0);
    r = await rawRequest(port, 'GET', `/recordings/rec/${first}`, {...BOSS, Range: `bytes=${onDisk.length}-`});
    check('a range past the end: 416', r.status === 416);
    r = await rawRequest(port, 'HEAD', `/recordings/rec/${first}`, BOSS);
    check('HEAD: the length, no body', r.status === 200 && Number(r.headers['content-length']) === onDisk.length &&
        r.body.length === 0);
    r = await rawRequest(port, 'PUT', `/recordings/rec/${first}`, BOSS);
    check('PUT on a file: 405', r.status === 405);

    for (const target of ['/recordings/rec/../../../etc/passwd', '/recordings/rec/%2e%2e/%2e%2e/etc/passwd']) {
        r = await rawRequest(port, 'GET', target, BOSS);
        check(`${target}: redirected out of /recordings/, nothing served`, r.status === 301 &&
            !r.headers.location?.startsWith('/recordings/') && !r.body.toString().includes('root:'));
    }
    r = await rawRequest(port, 'GET', '/recordings/rec\\..\\..\\etc/passwd', BOSS);
    check('a backslash: 400', r.status === 400);
    fs.symlinkSync('/etc/passwd', path.join(groupDir, 'escape.webm'));
    fs.symlinkSync('/etc', path.join(dirA, 'etc'));
    r = await rawRequest(port, 'GET', '/recordings/rec/escape.webm', BOSS);
    check('a symbolic link out of the directory: 404', r.status === 404 && !r.body.toString().includes('root:'));
    r = await rawRequest(port, 'GET', '/recordings/etc/passwd', BOSS);
    check('a linked directory out of the directory: 404', r.status === 404);
    r = await rawRequest(port, 'GET', '/recordings/rec/', BOSS);
    check('links are not listed', !r.body.toString().includes('escape.webm'));

    const form = {...BOSS, 'Content-Type': 'application/x-www-form-urlencoded'};
    r = await rawRequest(port, 'POST', '/recordings/rec/', form, 'q=delete');
    check('POST without a filename: 400', r.status === 400 && r.body.toString().includes('No filename provided'));
    r = await rawRequest(port, 'POST', '/recordings/rec/', form, `q=frob&filename=${first}`);
    check('POST with another query: 400', r.status === 400 && r.body.toString().includes('Unknown query'));
    r = await rawRequest(port, 'POST', '/recordings/rec/', form, 'q=delete&filename=..%2F..%2Fetc%2Fpasswd');
    check('POST with a path as filename: 400', r.status === 400);
    r = await rawRequest(port, 'POST', '/recordings/rec/', {'Content-Type': 'application/x-www-form-urlencoded'},
        `q=delete&filename=${encodeURIComponent(first)}`);
    check('POST without credentials: 401, nothing deleted', r.status === 401 && fs.existsSync(firstPath));
    r = await rawRequest(port, 'POST', '/recordings/rec/', form, `q=delete&filename=${encodeURIComponent(first)}`);
    check('deletion: 303 back to the listing, the file is gone',
        r.status === 303 && r.headers.location === '/recordings/rec/' && !fs.existsSync(firstPath));
    fs.unlinkSync(path.join(groupDir, 'escape.webm'));

    // ------------------------------------------------------------------ 2b. VP9, H.264
    for (const [codec, extension] of [['vp9', 'webm'], ['h264', 'mkv']]) {
        const carol = await join(context, a, 'carol', 'pw', 'camera', codec);
        const op = await join(context, a, 'boss', 'op-pw', 'none', codec);
        await waitFor(`the operator plays carol's ${codec}`, async () => (await playing(op)).length >= 1, 30000);
        await op.click('#btn-record');
        await waitFor('the badge', () => badgeShown(carol), 10000);
        await sleep(6000);
        await op.click('#btn-record');
        const dir = path.join(dirA, codec);
        await waitClosed(a, dir);
        const names = recordings(dir);
        check(`${codec}: ${names.join(', ')} (.${extension})`, names.length >= 1 &&
            names.every(n => NAME.test(n) && n.endsWith(`-carol.${extension}`)));
        let total = 0;
        for (const name of names)
            total += checkFile(dir, name, `carol (${codec})`, codec).duration;
        check(`${codec}: ${total.toFixed(3)} s recorded (6 s)`, total > 4.5 && total < 7.5);
        await carol.close();
        await op.close();
    }

    // ------------------------------------------------------------------ 3. SIGTERM
    const before = new Set(recordings(groupDir));
    await boss.click('#btn-record');
    await waitFor('the badge', () => badgeShown(alice), 10000);
    await sleep(6000);
    t = Date.now();
    await a.stop('SIGTERM');
    check(`SIGTERM during a recording: the server exits (${Date.now() - t} ms)`, Date.now() - t < 5000);
    const cut = usersFiles(recordings(groupDir).filter(n => !before.has(n)));
    for (const user of ['alice', 'bob']) {
        check(`SIGTERM: ${user}'s stream has its files (${cut[user].join(', ')})`, cut[user].length >= 1);
        let total = 0;
        for (const name of cut[user])
            total += checkFile(groupDir, name, `after SIGTERM, ${user}`).duration;
        check(`after SIGTERM: ${user}'s ${total.toFixed(3)} s play (6 s recorded)`, total > 4);
    }
    for (const page of [alice, bob, boss])
        await page.close();

    // ------------------------------------------------------------------ 4. a full disk
    const dirB = path.join(work, 'rec-b');
    mountTmpfs(dirB, '1536k');
    const b = await start(dirB);
    servers.push(b);
    const alice2 = await join(context, b, 'alice', 'pw', 'camera');
    const bob2 = await join(context, b, 'bob', 'pw', 'camera');
    const boss2 = await join(context, b, 'boss', 'op-pw', 'none');
    await waitFor('the operator plays both cameras', async () => (await playing(boss2)).length >= 2, 30000);
    await boss2.click('#btn-record');
    const warned = await waitFor('the operator is warned of the full disk', () =>
        boss2.evaluate(() => document.getElementById('toasts').textContent), 60000).catch(() => '');
    check(`the operator is warned: "${warned}"`, /Write to disk: .*No space left on device/.test(warned));
    check('a non-operator is not warned',
        !(await alice2.evaluate(() => document.getElementById('toasts').textContent)).includes('Write to disk'));
    const framesBefore = await playing(boss2);
    await sleep(3000);
    const framesAfter = await playing(boss2);
    check(`the meeting goes on (frames ${framesBefore} → ${framesAfter})`, framesAfter.length >= 2 &&
        framesAfter.every((n, i) => n > (framesBefore[i] ?? 0)));
    await boss2.click('#btn-record');
    await sleep(2000);
    await b.stop('SIGTERM');
    const partial = recordings(path.join(dirB, 'rec'));
    check(`partial files: ${partial.join(', ')}`, partial.length >= 1);
    for (const name of partial) {
        const facts = inspect(path.join(dirB, 'rec', name));
        check(`partial ${name}: ffmpeg decodes it without an error (${facts.duration} s)`,
            facts.decodeStatus === 0 && facts.decodeErrors === '' && facts.probeErrors === '' && facts.duration > 0,
            (facts.probeErrors + facts.decodeErrors).slice(0, 500));
        check(`partial ${name}: every video frame decodes`, facts.packetsRead > 0 && facts.framesRead === facts.packetsRead);
    }
} catch (e) {
    failed++;
    console.log(`FAIL ${e.stack || e}`);
} finally {
    await close();
    for (const server of servers) {
        await server.stop();
        if (failed) {
            const lines = server.log().split('\n');
            // Who joined and published what (debug lines), then the tail.
            const who = lines.filter(l => / joins | publishes /.test(l));
            console.log(`== server log, joins and streams:\n${who.join('\n')}`);
            console.log(`== server log (last 40 lines):\n${lines.slice(-40).join('\n')}`);
        }
        server.cleanup();
    }
    if (failed)
        console.log(`== page logs (last 30):\n${logs.slice(-30).join('\n')}`);
    if (process.env.SFUBOX_RECORDING_KEEP)
        run('cp', ['-a', ...mounts, process.env.SFUBOX_RECORDING_KEEP]);
    for (const dir of mounts.reverse())
        run('umount', [dir]);
    fs.rmSync(work, {recursive: true, force: true});
}
console.log(`recording: ${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
