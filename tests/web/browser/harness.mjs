// Shared set-up of the browser tests: build and start the real server with a
// test group, launch Debian's Chromium through playwright-core, log in pages.

import {spawn, spawnSync} from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import {fileURLToPath} from 'node:url';
import {chromium} from 'playwright-core';

export const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
export const artifacts = path.join(repo, 'tests/web/artifacts');

/** The group every test joins: "boss" is an operator, anyone else may present. */
export const testGroup = {
    public: true,
    displayName: 'Test room',
    description: 'Where the browser tests meet',
    users: {boss: {password: 'op', permissions: 'op'}},
    'wildcard-user': {password: {type: 'wildcard'}, permissions: 'present'},
};

export const chromiumPath = process.env.CHROMIUM || '/usr/bin/chromium';

export const chromiumArgs = [
    '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync',
    '--use-fake-ui-for-media-stream', '--use-fake-device-for-media-stream',
    '--allow-loopback-in-peer-connection', '--disable-features=LocalNetworkAccessChecks',
];

/** Builds the server once (cargo is quick when nothing changed) and returns the binary. */
export function buildServer() {
    if (process.env.SFUBOX_BIN)
        return process.env.SFUBOX_BIN;
    const r = spawnSync('cargo', ['build', '--quiet', '--bin', 'sfubox'], {cwd: repo, stdio: 'inherit'});
    if (r.status !== 0)
        throw new Error('cargo build failed');
    const targetDir = process.env.CARGO_TARGET_DIR || path.join(repo, 'target');
    return path.join(targetDir, 'debug', 'sfubox');
}

function freePort() {
    return new Promise((resolve, reject) => {
        const s = net.createServer();
        s.once('error', reject);
        s.listen(0, '127.0.0.1', () => {
            const {port} = s.address();
            s.close(() => resolve(port));
        });
    });
}

async function waitForHttp(url, process, deadline) {
    while (Date.now() < deadline) {
        if (process.exitCode !== null)
            throw new Error('the server exited with code ' + process.exitCode);
        try {
            const r = await fetch(url);
            if (r.ok)
                return;
        } catch (e) {
            // not listening yet
        }
        await new Promise(r => setTimeout(r, 100));
    }
    throw new Error('the server did not start in time');
}

/** A running sfubox with its own groups and data directories. */
export class Server {
    static async start(binary) {
        const s = new Server();
        s.binary = binary;
        s.dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sfubox-web-'));
        fs.mkdirSync(path.join(s.dir, 'groups'));
        fs.mkdirSync(path.join(s.dir, 'data'));
        fs.writeFileSync(path.join(s.dir, 'groups', 'test.json'), JSON.stringify(testGroup));
        s.port = await freePort();
        s.url = `http://127.0.0.1:${s.port}`;
        await s.run();
        return s;
    }

    async run() {
        this.log = fs.openSync(path.join(this.dir, 'server.log'), 'a');
        this.process = spawn(this.binary, [
            '-insecure', '-http', `127.0.0.1:${this.port}`, '-static', path.join(repo, 'static'),
            '-groups', path.join(this.dir, 'groups'), '-data', path.join(this.dir, 'data'),
        ], {stdio: ['ignore', this.log, this.log]});
        await waitForHttp(this.url + '/public-groups.json', this.process, Date.now() + 20000);
    }

    async stop() {
        if (!this.process || this.process.exitCode !== null)
            return;
        const exited = new Promise(resolve => this.process.once('exit', resolve));
        this.process.kill('SIGKILL');
        await exited;
        fs.closeSync(this.log);
    }

    /** Kills the server (every socket drops) and starts it again on the same port. */
    async restart() {
        await this.stop();
        await this.run();
    }

    logText() {
        try {
            return fs.readFileSync(path.join(this.dir, 'server.log'), 'utf8');
        } catch (e) {
            return '';
        }
    }

    cleanup() {
        fs.rmSync(this.dir, {recursive: true, force: true});
    }
}

/** Launches Chromium with a fresh profile; every page of the context is a separate client. */
export async function launchBrowser() {
    const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'sfubox-chromium-'));
    const context = await chromium.launchPersistentContext(profile, {
        executablePath: chromiumPath,
        headless: true,
        args: chromiumArgs,
        viewport: {width: 1280, height: 800},
        permissions: ['camera', 'microphone'],
    });
    const close = async () => {
        await context.close();
        fs.rmSync(profile, {recursive: true, force: true});
    };
    return {context, close};
}

/**
 * Opens the meeting page of the test group and logs in.
 * @param {import('playwright-core').BrowserContext} context
 * @param {Server} server
 * @param {string} username
 * @param {{password?: string, start?: string, path?: string}} [options]
 */
export async function joinAs(context, server, username, options = {}) {
    const page = await context.newPage();
    page.consoleMessages = [];
    page.on('console', m => page.consoleMessages.push(m.type() + ': ' + m.text()));
    page.on('pageerror', e => page.consoleMessages.push('pageerror: ' + e.message));
    await page.goto(server.url + (options.path || '/group/test/'));
    await page.fill('#login-username', username);
    await page.fill('#login-password', options.password ?? '');
    await page.check(`input[name=start][value=${options.start || 'none'}]`);
    await page.click('#login-submit');
    await page.waitForSelector('#meeting:not([hidden])', {timeout: 10000});
    return page;
}

/** Sends a chat line from a page through the chat box. */
export async function say(page, text) {
    if (await page.getAttribute('#tab-chat', 'aria-selected') !== 'true')
        await page.click('#tab-chat');
    await page.fill('#chat-input', text);
    await page.press('#chat-input', 'Enter');
}

/** Waits until the page's user list shows a user, and returns the row's locator. */
export async function userRow(page, username) {
    const row = page.locator(`#user-list li[data-username="${username}"]`);
    await row.waitFor({state: 'attached', timeout: 10000});
    return row;
}

export function ensureArtifacts() {
    fs.mkdirSync(artifacts, {recursive: true});
    return artifacts;
}
