// The web client's browser tests on top of the shared harness (tests/browser/harness.mjs):
// the real server with a test group, Chromium pages logged in to it.

import fs from 'node:fs';
import path from 'node:path';
import {artifactsDir, buildServer, captureConsole, chromiumArgs, launch, repo, startServer}
    from '../../browser/harness.mjs';

export {buildServer, repo};

/** The group every test joins: "boss" is an operator, anyone else may present. */
export const testGroup = {
    public: true,
    displayName: 'Test room',
    description: 'Where the browser tests meet',
    users: {boss: {password: 'op', permissions: 'op'}},
    'wildcard-user': {password: {type: 'wildcard'}, permissions: 'present'},
};

/** A running sfubox with its own groups and data directories, serving the web client. */
export class Server {
    static async start(binary) {
        const s = new Server();
        s.inner = await startServer({
            binary,
            readyPath: '/public-groups.json',
            // Tests kill it (restart(): every socket drops at once).
            signal: 'SIGKILL',
            setup: dir => {
                fs.mkdirSync(path.join(dir, 'groups'));
                fs.mkdirSync(path.join(dir, 'data'));
                fs.writeFileSync(path.join(dir, 'groups', 'test.json'), JSON.stringify(testGroup));
            },
            args: (port, dir) => [
                '-insecure', '-http', `127.0.0.1:${port}`, '-static', path.join(repo, 'static'),
                '-groups', path.join(dir, 'groups'), '-data', path.join(dir, 'data'),
            ],
        });
        s.url = s.inner.url;
        s.port = s.inner.port;
        return s;
    }

    stop() {
        return this.inner.stop();
    }

    /** Kills the server (every socket drops) and starts it again on the same port. */
    async restart() {
        await this.inner.stop();
        await this.inner.run();
    }

    logText() {
        return this.inner.log();
    }

    cleanup() {
        this.inner.cleanup();
    }
}

/** Launches Chromium with a fresh profile; every page of the context is a separate client. */
export function launchBrowser() {
    return launch({
        args: chromiumArgs(),
        viewport: {width: 1280, height: 800},
        permissions: ['camera', 'microphone'],
    });
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
    captureConsole(page, line => page.consoleMessages.push(line));
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
    return artifactsDir('web');
}
