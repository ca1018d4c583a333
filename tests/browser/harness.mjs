// The browser suites' one harness (tests/web, tests/admin, tests/camus, tests/gst, tests/whip,
// tests/recording, tests/media-browser, tests/network): Debian's Chromium through playwright-core with fake camera and microphone
// and a fresh profile, console capture, polling with timeouts, free ports, starting sfubox
// and an artifacts directory per suite. Each suite keeps its own pages and assertions.
// The node modules are tests/browser's (installed by lib.sh's browser_setup).

import {spawn, spawnSync} from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import {fileURLToPath} from 'node:url';
import {chromium} from 'playwright-core';

export {chromium};

/** The repository's root. */
export const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

/** Debian's Chromium, or $CHROMIUM. */
export const chromiumPath = process.env.CHROMIUM || '/usr/bin/chromium';

/** Flags every suite runs Chromium with: headless, quiet, fake devices, loopback ICE. */
const BASE_ARGS = [
    '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync',
    '--use-fake-ui-for-media-stream', '--use-fake-device-for-media-stream',
    '--allow-loopback-in-peer-connection',
];

/**
 * Chromium's command-line flags: the common ones, one --disable-features with
 * LocalNetworkAccessChecks and `disableFeatures` (Chromium honours only the last
 * --disable-features, so they must share one flag), then `extra`.
 * @param {{disableFeatures?: string[], extra?: string[]}} [options]
 */
export function chromiumArgs({disableFeatures = [], extra = []} = {}) {
    const features = ['LocalNetworkAccessChecks', ...disableFeatures];
    return [...BASE_ARGS, `--disable-features=${features.join(',')}`, ...extra];
}

/**
 * Launches Chromium with a fresh profile (--user-data-dir); every page of the context is a
 * separate client. `profile`: the profile directory to use (emptied first; kept afterwards),
 * otherwise a temporary one, removed by close().
 * @param {{args?: string[], executablePath?: string, profile?: string,
 *          viewport?: {width: number, height: number} | null, permissions?: string[],
 *          ignoreHTTPSErrors?: boolean}} [options]
 * @returns {Promise<{context: import('playwright-core').BrowserContext, close: () => Promise<void>}>}
 */
export async function launch(options = {}) {
    let profile = options.profile;
    const temporary = !profile;
    if (temporary) {
        profile = fs.mkdtempSync(path.join(os.tmpdir(), 'sfubox-chromium-'));
    } else {
        fs.rmSync(profile, {recursive: true, force: true});
        fs.mkdirSync(profile, {recursive: true});
    }
    const context = await chromium.launchPersistentContext(profile, {
        executablePath: options.executablePath || chromiumPath,
        headless: true,
        args: options.args || chromiumArgs(),
        ...(options.viewport !== undefined ? {viewport: options.viewport} : {}),
        ...(options.permissions ? {permissions: options.permissions} : {}),
        ignoreHTTPSErrors: options.ignoreHTTPSErrors || false,
    });
    const close = async () => {
        await context.close().catch(() => {});
        if (temporary)
            fs.rmSync(profile, {recursive: true, force: true});
    };
    return {context, close};
}

/**
 * Sends a page's console messages and uncaught errors to `sink`, one line each
 * ("type: text", "pageerror: message"), prefixed with `label` if given.
 * @param {import('playwright-core').Page} page
 * @param {(line: string) => void} sink
 */
export function captureConsole(page, sink, label = '') {
    const prefix = label ? `[${label}] ` : '';
    page.on('console', m => sink(`${prefix}${m.type()}: ${m.text()}`));
    page.on('pageerror', e => sink(`${prefix}pageerror: ${e.message}`));
}

export const sleep = ms => new Promise(r => setTimeout(r, ms));

/**
 * Polls `check` every `interval` ms until it returns something truthy (returned), or throws
 * after `timeout` ms naming `what` and the last value seen.
 */
export async function waitFor(what, check, timeout = 30000, interval = 250) {
    const deadline = Date.now() + timeout;
    let last;
    while (Date.now() < deadline) {
        last = await check();
        if (last)
            return last;
        await sleep(interval);
    }
    throw new Error(`timed out waiting for ${what} (last: ${JSON.stringify(last)})`);
}

/** A TCP port free on 127.0.0.1 right now. */
export function freePort() {
    return new Promise((resolve, reject) => {
        const s = net.createServer();
        s.once('error', reject);
        s.listen(0, '127.0.0.1', () => {
            const {port} = s.address();
            s.close(() => resolve(port));
        });
    });
}

/** Waits until `url` answers 2xx, failing early if `child` exits. */
export async function waitForHttp(url, child, deadline) {
    while (Date.now() < deadline) {
        if (child && child.exitCode !== null)
            throw new Error('the server exited with code ' + child.exitCode);
        try {
            const r = await fetch(url);
            if (r.ok)
                return;
        } catch (e) {
            // not listening yet
        }
        await sleep(100);
    }
    throw new Error(`${url} did not answer in time`);
}

/** Builds sfubox (debug) unless $SFUBOX_BIN names a binary; returns the binary's path. */
export function buildServer() {
    if (process.env.SFUBOX_BIN)
        return process.env.SFUBOX_BIN;
    const r = spawnSync('cargo', ['build', '--quiet', '--bin', 'sfubox'], {cwd: repo, stdio: 'inherit'});
    if (r.status !== 0)
        throw new Error('cargo build failed');
    const targetDir = process.env.CARGO_TARGET_DIR || path.join(repo, 'target');
    return path.join(targetDir, 'debug', 'sfubox');
}

/**
 * Starts `binary` with `args(port, dir)` on a free port of 127.0.0.1, its log in
 * dir/server.log, and waits until `readyPath` answers. `dir` is a fresh temporary directory
 * (`setup(dir)` fills it first). stop() ends the server, cleanup() removes `dir`.
 */
export async function startServer({binary, args, readyPath = '/', setup, env, signal = 'SIGTERM', port}) {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sfubox-server-'));
    if (setup)
        setup(dir);
    port ??= await freePort();
    const url = `http://127.0.0.1:${port}`;
    const logPath = path.join(dir, 'server.log');
    const server = {dir, port, url, process: null};
    server.run = async () => {
        const log = fs.openSync(logPath, 'a');
        server.logFd = log;
        server.process = spawn(binary, args(port, dir), {
            stdio: ['ignore', log, log], env: {...process.env, ...env},
        });
        await waitForHttp(url + readyPath, server.process, Date.now() + 20000);
    };
    server.stop = async (how = signal) => {
        const child = server.process;
        if (child && child.exitCode === null && child.signalCode === null) {
            const exited = new Promise(r => child.once('exit', r));
            child.kill(how);
            await exited;
        }
        if (server.logFd !== undefined) {
            fs.closeSync(server.logFd);
            server.logFd = undefined;
        }
    };
    server.log = () => {
        try {
            return fs.readFileSync(logPath, 'utf8');
        } catch (e) {
            return '';
        }
    };
    server.cleanup = () => fs.rmSync(dir, {recursive: true, force: true});
    await server.run();
    return server;
}

/** The suite's artifacts directory (tests/<suite>/artifacts, or $SFUBOX_ARTIFACTS/<suite>), created. */
export function artifactsDir(suite) {
    const dir = process.env.SFUBOX_ARTIFACTS
        ? path.join(process.env.SFUBOX_ARTIFACTS, suite)
        : path.join(repo, 'tests', suite, 'artifacts');
    fs.mkdirSync(dir, {recursive: true});
    return dir;
}
