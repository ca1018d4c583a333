// Driver of the shaped-network test (run.sh sets up the namespaces and the server first).
// Starts one headless Chromium per browser namespace (pub, sub1, sub2) through a wrapper that
// execs `ip netns exec NS chromium`, opens static/net-test.html in each, samples every page's
// window.netStats() once a second into a time series, shapes links with shape.sh and asserts on
// rates computed from the deltas of the cumulative getStats() counters.
//
// Usage: node shaped.mjs [unshaped|cap300|uncap|loss5|upcap400 ...]   (default: all)
// Environment (from run.sh): NETTEST_URL, NETTEST_WORK, NETTEST_SHAPE, NETTEST_NS_PREFIX;
// NETTEST_TIMELINE=1 prints every scenario's per-second timeline; CHROMIUM overrides the browser.
import {execFileSync} from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import {captureConsole, chromiumArgs, chromiumPath, launch as launchChromium} from '../browser/harness.mjs';

const cfg = {
    url: process.env.NETTEST_URL,
    work: process.env.NETTEST_WORK,
    shape: process.env.NETTEST_SHAPE,
    prefix: process.env.NETTEST_NS_PREFIX || 'sfubox-nt-',
    chromium: chromiumPath,
    timeline: process.env.NETTEST_TIMELINE === '1',
};
for (const k of ['url', 'work', 'shape'])
    if (!cfg[k]) {
        console.error(`shaped.mjs: NETTEST_${k.toUpperCase()} is not set (run tests/network/run.sh)`);
        process.exit(2);
    }

// Shaping parameters (run.sh's header says why).
const BURST = '16kb';
const LATENCY = '300ms';
const HIGH = 640; // frameWidth of the high layer; the low layer is half of it
// A gap since the last presented frame longer than this is a freeze still going on (Chromium's
// own threshold is max(3 x mean frame interval, mean + 150 ms): 200 ms at 20 fps).
const STALL_MS = 300;

const ORDER = ['unshaped', 'cap300', 'uncap', 'loss5', 'upcap400'];
let wanted = process.argv.slice(2);
for (const s of wanted)
    if (!ORDER.includes(s)) {
        console.error(`shaped.mjs: unknown scenario ${s} (known: ${ORDER.join(' ')})`);
        process.exit(2);
    }
if (wanted.length === 0)
    wanted = ORDER.slice();
if (wanted.includes('uncap') && !wanted.includes('cap300')) {
    console.log('== uncap continues from cap300: running cap300 first');
    wanted.push('cap300');
}
wanted.push('unshaped'); // the warm-up every other scenario starts from
const scenarios = ORDER.filter(s => wanted.includes(s));

// run.sh cleans up on TERM/INT by killing this process: exit then (Playwright's own handlers
// only close the browsers), the namespaces' cleanup ends whatever is left in them.
for (const sig of ['SIGTERM', 'SIGINT'])
    process.on(sig, () => {
        console.log(`== network: ${sig}, stopping`);
        process.exit(sig === 'SIGINT' ? 130 : 143);
    });

const sleep = ms => new Promise(r => setTimeout(r, ms));
const t0 = Date.now();
const since = t => ((t - t0) / 1000).toFixed(1);
const results = []; // {scenario, name, pass, detail}

function shape(...args) {
    try {
        return execFileSync(cfg.shape, args.map(String), {encoding: 'utf8'}).trim();
    } catch (e) {
        throw new Error(`shape.sh ${args.join(' ')} failed: ${e.stderr || e.message}`);
    }
}

// ---------------------------------------------------------------- browsers

const ARGS = chromiumArgs({
    // WebRtcHideLocalIpsWithMdns: plain host candidates, no mDNS multicast on the veths.
    disableFeatures: ['WebRtcHideLocalIpsWithMdns'],
    extra: [
        // getUserMedia needs a secure context; the page is plain http on a namespace address.
        `--unsafely-treat-insecure-origin-as-secure=${cfg.url}`,
        '--autoplay-policy=no-user-gesture-required',
    ],
});

async function launch(peer) {
    const ns = cfg.prefix + peer;
    const wrapper = path.join(cfg.work, `chromium-${peer}.sh`);
    const pidFile = path.join(cfg.work, `chromium-${peer}.pid`);
    fs.writeFileSync(wrapper, [
        '#!/bin/sh',
        `# Chromium inside network namespace ${ns} (ip netns exec execs it: the pid stays).`,
        `echo $$ > '${pidFile}'`,
        `exec ip netns exec '${ns}' '${cfg.chromium}' "$@"`,
        ''].join('\n'), {mode: 0o755});
    const {context} = await launchChromium({
        executablePath: wrapper, args: ARGS, profile: path.join(cfg.work, `profile-${peer}`),
    });
    const page = context.pages()[0] || await context.newPage();
    const logFile = fs.createWriteStream(path.join(cfg.work, `page-${peer}.log`));
    captureConsole(page, line => logFile.write(`${since(Date.now())} ${line}\n`));
    const role = peer === 'pub' ? 'pub' : 'sub';
    await page.goto(`${cfg.url}/net-test.html?role=${role}&user=${peer}`);
    const pid = fs.readFileSync(pidFile, 'utf8').trim();
    return {peer, ns, context, page, pid};
}

// Each Chromium must run in its own namespace: its pid's network namespace is that namespace,
// and a tab of it can load the server's page but not a listener on the root namespace's
// loopback (navigations, which the server's Content-Security-Policy does not restrict).
async function checkNamespaces(browsers) {
    const probe = http.createServer((req, res) => res.end('root namespace'));
    await new Promise(r => probe.listen(0, '127.0.0.1', r));
    const rootUrl = `http://127.0.0.1:${probe.address().port}/`;
    const load = async (tab, url) => {
        try {
            const r = await tab.goto(url, {timeout: 5000});
            return r && r.ok() ? 'loaded' : `status ${r && r.status()}`;
        } catch (e) {
            return e.message.split('\n')[0].replace(/^page\.goto: /, '');
        }
    };
    try {
        for (const b of browsers) {
            let where = '';
            try {
                where = execFileSync('ip', ['netns', 'identify', b.pid], {encoding: 'utf8'}).trim();
            } catch (e) {
                where = `? (${e.message})`;
            }
            check('setup', `${b.peer}: Chromium (pid ${b.pid}) runs in namespace ${b.ns}`,
                  where === b.ns, `ip netns identify: ${where || 'root namespace'}`);
            const tab = await b.context.newPage();
            const server = await load(tab, `${cfg.url}/net-test.html`);
            const root = await load(tab, rootUrl);
            await tab.close();
            check('setup', `${b.peer}: loads the server's page, not the root namespace's loopback`,
                  server === 'loaded' && root !== 'loaded', `server: ${server}; ${rootUrl}: ${root}`);
        }
    } finally {
        probe.close();
    }
}

// ---------------------------------------------------------------- sampling

const samples = []; // {t, pub, sub1, sub2}: raw netStats() per page
let browsers = [];
let sampling = false;

async function sampler() {
    while (sampling) {
        const start = Date.now();
        try {
            const stats = await Promise.all(browsers.map(b => b.page.evaluate(() => window.netStats())));
            const s = {t: Date.now()};
            browsers.forEach((b, i) => { s[b.peer] = stats[i]; });
            samples.push(s);
        } catch (e) {
            if (sampling)
                console.log(`sampling failed: ${e.message}`);
        }
        await sleep(Math.max(50, 1000 - (Date.now() - start)));
    }
}

// One subscriber's counters in a sample (its stream with video), or null.
function subAt(sample, peer) {
    const st = sample[peer];
    if (!st)
        return null;
    const s = st.streams.find(x => x.video) || st.streams[0];
    if (!s)
        return null;
    const v = s.video || {}, a = s.audio || {};
    return {
        t: st.t, id: s.id, ssrc: v.ssrc,
        w: v.frameWidth || 0, h: v.frameHeight || 0, fd: v.framesDecoded || 0,
        fz: v.totalFreezesDuration || 0, fzc: v.freezeCount || 0,
        vr: v.packetsReceived || 0, vl: v.packetsLost || 0, vb: v.bytesReceived || 0,
        rtx: v.retransmittedPacketsReceived || 0, nack: v.nackCount || 0, pli: v.pliCount || 0,
        kf: v.keyFramesDecoded || 0, jbd: v.jitterBufferDelay || 0, jbc: v.jitterBufferEmittedCount || 0,
        ar: a.packetsReceived || 0, al: a.packetsLost || 0, ab: a.bytesReceived || 0,
        conc: a.concealedSamples || 0, tot: a.totalSamplesReceived || 0,
        presented: s.framesPresented || 0,
        // The freeze going on at this sample, in s: not yet in totalFreezesDuration.
        stall: s.sinceLastFrameMs > STALL_MS ? s.sinceLastFrameMs / 1000 : 0,
    };
}

// The publisher's counters in a sample, or null.
function pubAt(sample) {
    const st = sample.pub;
    if (!st || !st.publisher)
        return null;
    const p = st.publisher;
    const layers = {};
    for (const [rid, l] of Object.entries(p.layers))
        layers[rid] = {bytes: l.bytesSent || 0, hdr: l.headerBytesSent || 0, w: l.frameWidth || 0,
                       h: l.frameHeight || 0, fps: l.framesPerSecond || 0, qlr: l.qualityLimitationReason,
                       target: l.targetBitrate || 0, active: l.active};
    return {t: st.t, layers, ab: (p.audio && p.audio.bytesSent) || 0,
            aob: p.pair && p.pair.availableOutgoingBitrate};
}

const inWindow = (from, to) => samples.filter(s => s.t >= from && s.t <= to);
const pct = (lost, recv) => (lost + recv > 0 ? 100 * Math.max(0, lost) / (lost + recv) : 0);

// Rates of one subscriber over [from, to], from the first and last sample inside it.
function subWindow(peer, from, to) {
    const xs = inWindow(from, to).map(s => subAt(s, peer)).filter(Boolean);
    if (xs.length < 2)
        return null;
    const a = xs[0], b = xs[xs.length - 1];
    const dt = (b.t - a.t) / 1000;
    const ws = xs.map(x => x.w);
    return {
        dt, reset: a.id !== b.id || b.fd < a.fd,
        fps: (b.fd - a.fd) / dt, presentedFps: (b.presented - a.presented) / dt,
        // Freeze time inside the window: ended freezes plus the one going on at the end, less
        // the part of a freeze going on at the start that fell before the window.
        freeze: Math.max(0, (b.fz + b.stall) - (a.fz + a.stall)), freezes: b.fzc - a.fzc,
        frozenAtEnd: b.stall,
        aloss: pct(b.al - a.al, b.ar - a.ar), vloss: pct(b.vl - a.vl, b.vr - a.vr),
        concealed: b.tot > a.tot ? 100 * (b.conc - a.conc) / (b.tot - a.tot) : 0,
        kbps: ((b.vb + b.ab) - (a.vb + a.ab)) * 8 / dt / 1000,
        jbMs: b.jbc > a.jbc ? 1000 * (b.jbd - a.jbd) / (b.jbc - a.jbc) : 0,
        nack: b.nack - a.nack, pli: b.pli - a.pli, rtx: b.rtx - a.rtx, kf: b.kf - a.kf,
        wMin: Math.min(...ws), wMax: Math.max(...ws), wLast: b.w, hLast: b.h,
    };
}

// Rates of the publisher over [from, to].
function pubWindow(from, to) {
    const xs = inWindow(from, to).map(pubAt).filter(Boolean);
    if (xs.length < 2)
        return null;
    const a = xs[0], b = xs[xs.length - 1];
    const dt = (b.t - a.t) / 1000;
    const layers = {};
    let video = 0;
    for (const [rid, l] of Object.entries(b.layers)) {
        const l0 = a.layers[rid] || {bytes: 0, hdr: 0};
        const kbps = (l.bytes - l0.bytes) * 8 / dt / 1000;
        video += kbps;
        layers[rid] = {...l, kbps, wireKbps: (l.bytes + l.hdr - l0.bytes - l0.hdr) * 8 / dt / 1000};
    }
    const aobs = xs.map(x => x.aob).filter(x => x > 0);
    return {dt, layers, video, audio: (b.ab - a.ab) * 8 / dt / 1000,
            aob: aobs.length ? aobs.reduce((x, y) => x + y, 0) / aobs.length / 1000 : 0};
}

// Waits until pred(sample, previous sample) holds for a sample taken after `after`; the
// sample's time, or null.
async function waitFor(pred, after, timeoutMs) {
    const deadline = Date.now() + timeoutMs;
    let seen = Math.max(1, samples.length);
    for (;;) {
        for (; seen < samples.length; seen++) {
            const s = samples[seen];
            if (s.t > after && pred(s, samples[seen - 1]))
                return s.t;
        }
        if (Date.now() > deadline)
            return null;
        await sleep(200);
    }
}
async function sleepUntil(t) { await sleep(Math.max(0, t - Date.now()) + 300); }

// Whether peer decoded frames between prev and s, the last of them `width` wide per test().
function decodingAt(s, prev, peer, test) {
    const y = subAt(s, peer), x = prev && subAt(prev, peer);
    return !!(x && y && y.fd > x.fd && test(y.w));
}

// ---------------------------------------------------------------- reporting

function check(scenario, name, pass, detail) {
    results.push({scenario, name, pass, detail});
    console.log(`  ${pass ? 'PASS' : 'FAIL'}  ${name}${detail ? `  [${detail}]` : ''}`);
    return pass;
}

const f1 = x => (x === undefined || x === null || Number.isNaN(x) ? '-' : x.toFixed(1));
const f2 = x => (x === undefined || x === null || Number.isNaN(x) ? '-' : x.toFixed(2));
const pad = (s, n) => String(s).padEnd(n);

function table(title, from, to, note) {
    console.log(`  -- ${title}: ${((to - from) / 1000).toFixed(0)} s window${note ? `, ${note}` : ''}`);
    const widths = [6, 19, 7, 10, 9, 8, 13, 13, 8, 10, 6, 5, 8];
    console.log('  ' + ['peer', 'width min/max/last', 'fps', 'shown fps', 'freeze s', 'freezes', 'audio loss %',
        'video loss %', 'rx kb/s', 'jitbuf ms', 'nack', 'pli', 'rtx pkts'].map((h, i) =>
        pad(h, widths[i])).join(''));
    for (const peer of ['sub1', 'sub2']) {
        const w = subWindow(peer, from, to);
        if (!w) {
            console.log(`  ${pad(peer, 6)}no samples`);
            continue;
        }
        console.log('  ' + [peer, `${w.wMin}/${w.wMax}/${w.wLast}${w.reset ? ' (reset)' : ''}`,
            f1(w.fps), f1(w.presentedFps), f2(w.freeze), w.freezes, f2(w.aloss), f2(w.vloss), f1(w.kbps),
            f1(w.jbMs), w.nack, w.pli, w.rtx].map((c, i) => pad(c, widths[i])).join(''));
    }
    const p = pubWindow(from, to);
    if (p) {
        const layers = Object.entries(p.layers).sort().map(([rid, l]) =>
            `${rid} ${l.w}x${l.h} ${f1(l.fps)}fps ${f1(l.kbps)}kb/s (target ${f1(l.target / 1000)}, ` +
            `${l.active === false ? 'inactive' : 'active'}, limit ${l.qlr})`).join('; ');
        console.log(`  pub   video ${f1(p.video)} kb/s = ${layers}; audio ${f1(p.audio)} kb/s; ` +
                    `availableOutgoingBitrate ${f1(p.aob)} kb/s`);
    }
}

// One line per sample: what each page did in the second before it.
function timeline(from, to, origin) {
    const xs = inWindow(from, to);
    for (let i = 1; i < xs.length; i++) {
        const a = xs[i - 1], b = xs[i];
        const parts = [];
        for (const peer of ['sub1', 'sub2']) {
            const x = subAt(a, peer), y = subAt(b, peer);
            if (!x || !y) {
                parts.push(`${peer} -`);
                continue;
            }
            const dt = (y.t - x.t) / 1000;
            parts.push(`${peer} ${y.w}x${y.h} ${f1((y.fd - x.fd) / dt)}fps ` +
                       `${f1(((y.vb + y.ab) - (x.vb + x.ab)) * 8 / dt / 1000)}kb/s ` +
                       `frz ${f2(y.fz - x.fz)}${y.stall ? ` (frozen ${f1(y.stall)})` : ''} ` +
                       `aloss ${y.al - x.al}/${y.ar - x.ar + y.al - x.al}`);
        }
        const x = pubAt(a), y = pubAt(b);
        if (x && y) {
            const dt = (y.t - x.t) / 1000;
            parts.push('pub ' + Object.entries(y.layers).sort().map(([rid, l]) =>
                `${rid} ${l.w}w ${f1((l.bytes - ((x.layers[rid] || {}).bytes || 0)) * 8 / dt / 1000)}`)
                .join(' ') + ` avail ${f1((y.aob || 0) / 1000)}`);
        }
        console.log(`    ${pad('+' + ((b.t - origin) / 1000).toFixed(0) + 's', 6)}${parts.join(' | ')}`);
    }
}

function finishScenario(name, from, to, origin) {
    const failed = results.some(r => r.scenario === name && !r.pass);
    if (cfg.timeline || failed) {
        console.log(`  -- ${name} timeline (per second; kb/s; pub: layer width and kb/s):`);
        timeline(from, to, origin);
    }
}

// Waits (up to 30 s) until both subscribers decode the high layer at >= 10 fps again.
async function settle(label) {
    const start = Date.now();
    const ok = await waitFor((s, prev) => ['sub1', 'sub2'].every(peer => {
        const y = subAt(s, peer), x = subAt(prev, peer);
        return y && x && y.w >= HIGH && (y.fd - x.fd) / ((y.t - x.t) / 1000) >= 10;
    }), start, 30000);
    console.log(ok ? `  (settled after ${label} in ${((ok - start) / 1000).toFixed(1)} s)`
                   : `  (not settled 30 s after ${label}; continuing)`);
}

// ---------------------------------------------------------------- scenarios

const runners = {
    async unshaped() {
        console.log('\n== unshaped: warm-up and baseline, no shaping');
        const start = Date.now();
        const up = await waitFor((s, prev) => ['sub1', 'sub2'].every(p =>
            decodingAt(s, prev, p, w => w >= HIGH)), start, 45000);
        check('unshaped', `both subscribers decode frames >= ${HIGH} wide within 45 s of the pages loading`,
              up !== null, up ? `after ${((up - start) / 1000).toFixed(1)} s` : 'never');
        const from = (up || Date.now()) + 8000, to = from + 10000;
        await sleepUntil(to);
        table('unshaped baseline', from, to, '8 s after the first high frame');
        for (const peer of ['sub1', 'sub2']) {
            const w = subWindow(peer, from, to);
            check('unshaped', `${peer}: frameWidth >= ${HIGH} throughout`, w && w.wMin >= HIGH, w && `min ${w.wMin}`);
            check('unshaped', `${peer}: decodes >= 10 fps`, w && w.fps >= 10, w && `${f1(w.fps)} fps`);
            check('unshaped', `${peer}: freezes grow <= 1 s`, w && w.freeze <= 1, w && `${f2(w.freeze)} s`);
            check('unshaped', `${peer}: audio loss < 1 %`, w && w.aloss < 1, w && `${f2(w.aloss)} %`);
            check('unshaped', `${peer}: video loss < 1 %`, w && w.vloss < 1, w && `${f2(w.vloss)} %`);
        }
        const p = pubWindow(from, to);
        const h = p && p.layers.h, l = p && p.layers.l;
        check('unshaped', `pub: sends simulcast layer h at >= ${HIGH} wide and layer l`,
              h && l && h.w >= HIGH && h.kbps > 50 && l.kbps > 20,
              p && `h ${h ? `${h.w}x${h.h} ${f1(h.kbps)} kb/s` : 'absent'}, l ${l ? `${l.w}x${l.h} ${f1(l.kbps)} kb/s` : 'absent'}`);
        finishScenario('unshaped', start, to, start);
    },

    async cap300() {
        console.log(`\n== cap300: sub1's downlink capped to 300kbit (tbf burst ${BURST} latency ${LATENCY})`);
        const tCap = Date.now();
        shape('cap-down', 'sub1', '300kbit', BURST, LATENCY);
        const tDrop = await waitFor((s, prev) => decodingAt(s, prev, 'sub1', w => w > 0 && w < HIGH),
                                    tCap, 10000);
        check('cap300', `sub1: decodes frames < ${HIGH} wide within 10 s of the cap`, tDrop !== null,
              tDrop ? `after ${((tDrop - tCap) / 1000).toFixed(1)} s` :
                  `still ${(subAt(samples[samples.length - 1], 'sub1') || {}).w}`);
        const from = tDrop || tCap + 10000, to = from + 20000;
        await sleepUntil(to);
        const stats = shape('stats', 'sub1');
        table('cap300', from, to, `from ${((from - tCap) / 1000).toFixed(1)} s after the cap; ${stats}`);
        const w = subWindow('sub1', from, to);
        check('cap300', 'sub1: decodes >= 10 fps', w && w.fps >= 10, w && `${f1(w.fps)} fps`);
        check('cap300', 'sub1: freezes grow <= 1 s', w && w.freeze <= 1, w && `${f2(w.freeze)} s`);
        check('cap300', 'sub1: audio loss < 1 %', w && w.aloss < 1, w && `${f2(w.aloss)} %`);
        const c = subWindow('sub2', tCap, to);
        check('cap300', `sub2 (unshaped): frameWidth >= ${HIGH} all along`, c && c.wMin >= HIGH, c && `min ${c.wMin}`);
        check('cap300', 'sub2 (unshaped): decodes >= 10 fps', c && c.fps >= 10, c && `${f1(c.fps)} fps`);
        finishScenario('cap300', tCap - 3000, to, tCap);
        if (!scenarios.includes('uncap')) {
            shape('uncap-down', 'sub1');
            await settle('cap300');
        }
    },

    async uncap() {
        console.log('\n== uncap: sub1\'s downlink cap lifted');
        const tUncap = Date.now();
        shape('uncap-down', 'sub1');
        const tUp = await waitFor((s, prev) => decodingAt(s, prev, 'sub1', w => w >= HIGH), tUncap, 20000);
        check('uncap', `sub1: decodes frames >= ${HIGH} wide within 20 s of lifting the cap`, tUp !== null,
              tUp ? `after ${((tUp - tUncap) / 1000).toFixed(1)} s` :
                  `still ${(subAt(samples[samples.length - 1], 'sub1') || {}).w}`);
        const to = tUp ? Math.max(tUp, tUncap + 5000) : Date.now();
        await sleepUntil(to);
        table('uncap', tUncap, to, 'from lifting the cap to the high layer');
        finishScenario('uncap', tUncap - 2000, to, tUncap);
        await settle('uncap');
    },

    async loss5() {
        console.log('\n== loss5: 5 % random loss on sub1\'s link, both directions (UDP only)');
        const tLoss = Date.now();
        shape('loss', 'sub1', 5, 'both');
        const to = tLoss + 20000;
        await sleepUntil(to);
        const stats = shape('stats', 'sub1');
        shape('unloss', 'sub1');
        table('loss5', tLoss, to, stats);
        const w = subWindow('sub1', tLoss, to);
        check('loss5', 'sub1: decodes >= 10 fps', w && w.fps >= 10, w && `${f1(w.fps)} fps`);
        check('loss5', 'sub1: freezes grow <= 1 s', w && w.freeze <= 1, w && `${f2(w.freeze)} s`);
        const c = subWindow('sub2', tLoss, to);
        check('loss5', 'sub2 (unshaped): decodes >= 10 fps', c && c.fps >= 10, c && `${f1(c.fps)} fps`);
        finishScenario('loss5', tLoss - 2000, to, tLoss);
        if (scenarios.indexOf('loss5') < scenarios.length - 1)
            await settle('loss5');
    },

    async upcap400() {
        console.log(`\n== upcap400: pub's uplink capped to 400kbit (tbf burst ${BURST} latency ${LATENCY})`);
        const tCap = Date.now();
        shape('cap-up', 'pub', '400kbit', BURST, LATENCY);
        const to = tCap + 30000;
        await sleepUntil(to);
        const stats = shape('stats', 'pub');
        shape('uncap-up', 'pub');
        table('upcap400, whole window', tCap, to, stats);
        table('upcap400, last 10 s', to - 10000, to);
        const p = pubWindow(to - 10000, to);
        check('upcap400', 'pub: video bitrate (sum over rids) < 400 kb/s over the last 10 s',
              p && p.video < 400, p && `${f1(p.video)} kb/s`);
        for (const peer of ['sub1', 'sub2']) {
            const w = subWindow(peer, to - 20000, to);
            check('upcap400', `${peer}: freezes grow <= 2 s over the last 20 s`, w && w.freeze <= 2,
                  w && `${f2(w.freeze)} s`);
            // 10 fps: half the camera's 20. The l layer keeps its full frame rate under the cap,
            // while the h layer left to a starved encoder runs at a few fps without counting
            // as frozen (Chromium's freeze threshold grows with the mean frame interval).
            check('upcap400', `${peer}: still decoding (>= 10 fps over the last 20 s)`, w && w.fps >= 10,
                  w && `${f1(w.fps)} fps`);
        }
        finishScenario('upcap400', tCap - 2000, to, tCap);
    },
};

// ---------------------------------------------------------------- main

let exitCode = 0;
try {
    console.log(`== network: scenarios ${scenarios.join(', ')}`);
    const launchStart = Date.now();
    browsers = await Promise.all(['pub', 'sub1', 'sub2'].map(launch));
    console.log(`== network: 3 Chromiums up in ${((Date.now() - launchStart) / 1000).toFixed(1)} s`);
    await checkNamespaces(browsers);
    sampling = true;
    const loop = sampler();
    for (const s of scenarios) {
        try {
            await runners[s]();
        } catch (e) {
            check(s, `${s} ran to completion`, false, e.stack || String(e));
        }
    }
    // What was negotiated: congestion-control feedback per direction.
    const last = samples[samples.length - 1];
    if (last) {
        const fb = x => Object.entries(x || {}).map(([k, v]) =>
            `${k}: ${Object.entries(v).filter(([, on]) => on).map(([n]) => n).join(',') || 'none'}`).join('; ');
        const sub = last.sub1 && last.sub1.streams[0];
        if (sub)
            console.log(`\n== negotiated feedback, down stream: server offer {${fb(sub.feedback.offer)}}, ` +
                        `sub1 answer {${fb(sub.feedback.answer)}}`);
        if (last.pub && last.pub.publisher)
            console.log(`== negotiated feedback, up stream: pub offer {${fb(last.pub.publisher.feedback.offer)}}, ` +
                        `server answer {${fb(last.pub.publisher.feedback.answer)}}`);
    }
    sampling = false;
    await loop;
} catch (e) {
    check('driver', 'driver ran to completion', false, e.stack || String(e));
} finally {
    sampling = false;
    try {
        shape('clear');
    } catch (e) {
        console.log(String(e));
    }
    fs.writeFileSync(path.join(cfg.work, 'samples.json'), JSON.stringify(samples));
    const failed = results.filter(r => !r.pass);
    if (failed.length) {
        exitCode = 1;
        console.log('\n== network: failed assertions');
        for (const r of failed)
            console.log(`  FAIL  ${r.scenario}: ${r.name}${r.detail ? `  [${r.detail}]` : ''}`);
        for (const b of browsers) {
            const last = samples.length && samples[samples.length - 1][b.peer];
            if (last && last.log.length)
                console.log(`  ${b.peer} page log tail:\n    ${last.log.slice(-8).join('\n    ')}`);
        }
    }
    await Promise.all(browsers.map(b => b.context.close().catch(() => {})));
    console.log(`\n== network: ${((Date.now() - t0) / 1000).toFixed(0)} s`);
    console.log(`network: ${results.length - failed.length} passed, ${failed.length} failed`);
}
process.exit(exitCode);
