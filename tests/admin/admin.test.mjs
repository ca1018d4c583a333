// The administration page against the real server, as a new box's owner uses it: first-run
// setup, a group, a user, an invitation shown as a link and a QR code (read back with
// zbarimg), a second page joining the meeting with it and sending its camera (the live
// statistics table shows it), the group edited while that page is in the meeting, the invitation revoked and then refused; and a user changing its password.
import {test, before, after} from 'node:test';
import assert from 'node:assert/strict';
import {spawnSync} from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import {artifactsDir, buildServer, captureConsole, chromiumArgs, launch, startServer, waitFor}
    from '../browser/harness.mjs';

let server;
let browser;
const consoles = [];

before(async () => {
    server = await startServer({
        binary: buildServer(),
        readyPath: '/admin/',
        setup: dir => {
            fs.mkdirSync(path.join(dir, 'groups'));
            fs.mkdirSync(path.join(dir, 'data'));
        },
        args: (port, dir) => ['-insecure', '-http', `127.0.0.1:${port}`,
            '-groups', path.join(dir, 'groups'), '-data', path.join(dir, 'data')],
    });
    browser = await launch({
        args: chromiumArgs(),
        viewport: {width: 1280, height: 900},
        permissions: ['camera', 'microphone', 'clipboard-read', 'clipboard-write'],
    });
});

after(async () => {
    await browser?.close();
    await server?.stop();
    server?.cleanup();
});

async function newPage(label) {
    const page = await browser.context.newPage();
    captureConsole(page, line => consoles.push(line), label);
    return page;
}

/** The text of a meeting page's user list. */
async function people(page) {
    return page.locator('#user-list').innerText();
}

test('a box set up, run and used from the browser', async () => {
    const admin = await newPage('admin');
    const pages = [admin];
    try {
        // First run: the page offers the setup (we are on the loopback address).
        await admin.goto(server.url + '/admin/');
        await admin.locator('#setup:not([hidden])').waitFor();
        await admin.fill('#setup-username', 'owner');
        await admin.fill('#setup-password', 'a long password');
        await admin.fill('#setup-password2', 'a long password');
        await admin.click('#setup-submit');
        await admin.locator('#dashboard:not([hidden])').waitFor();
        assert.match(await admin.innerText('#whoami'), /owner/);
        const config = JSON.parse(fs.readFileSync(path.join(server.dir, 'data', 'config.json'), 'utf8'));
        assert.equal(config.writableGroups, true);
        assert.equal(config.users.owner.permissions, 'admin');
        assert.match(server.log(), /First-run setup from 127\.0\.0\.1:\d+: administrator "owner" created/);
        // The setup is gone: a fresh visit asks to sign in.
        const again = await newPage('again');
        pages.push(again);
        await again.goto(server.url + '/admin/');
        await again.locator('#signin:not([hidden])').waitFor();
        assert.equal(await again.isVisible('#setup'), false);

        // A group, with the common settings as form fields.
        await admin.click('#new-group');
        await admin.fill('#g-name', 'office');
        await admin.fill('#g-displayName', 'Office');
        await admin.fill('#g-description', 'Weekly meetings');
        await admin.check('#g-public');
        await admin.fill('#g-max-clients', '10');
        await admin.click('#g-save');
        await admin.locator('#groups-table tr[data-group="office"]').waitFor();
        await admin.locator('#g-saved:not([hidden])').waitFor();
        const file = JSON.parse(fs.readFileSync(path.join(server.dir, 'groups', 'office.json'), 'utf8'));
        assert.deepEqual(file, {displayName: 'Office', description: 'Weekly meetings', public: true, 'max-clients': 10});

        // A user with a role and a password.
        await admin.fill('#u-name', 'alice');
        await admin.selectOption('#u-role', 'op');
        await admin.fill('#u-password', 'alice-old');
        await admin.click('#u-add');
        await admin.locator('#users-table tr[data-username="alice"]').waitFor();
        assert.match(await admin.innerText('#users-table tr[data-username="alice"]'), /Operator/);

        // An invitation: a link and a QR code that reads back as the same link.
        await admin.selectOption('#i-role', 'present');
        await admin.fill('#i-username', 'guest');
        await admin.click('#i-create');
        await admin.locator('#invite-result:not([hidden])').waitFor();
        const link = await admin.getAttribute('#invite-link', 'href');
        assert.match(link, /\/group\/office\/\?token=[A-Za-z0-9_-]{11}$/);
        assert.match(await admin.innerText('#invite-expiry'), /Valid until/);
        const qrPath = path.join(artifactsDir('admin'), 'invitation-qr.png');
        await admin.locator('#invite-qr svg').screenshot({path: qrPath});
        const zbar = spawnSync('zbarimg', ['--quiet', '--raw', qrPath], {encoding: 'utf8'});
        assert.equal(zbar.status, 0, zbar.stderr);
        assert.equal(zbar.stdout.trim(), link);
        const token = new URL(link).searchParams.get('token');
        await admin.locator(`#invites-table tr[data-token="${token}"]`).waitFor();

        // A second page opens the invitation and joins the meeting with it.
        const guest = await newPage('guest');
        pages.push(guest);
        await guest.goto(link);
        await guest.locator('#login-form').waitFor();
        assert.equal(await guest.isVisible('#password-row'), false);
        await guest.check('input[name=start][value=camera]');
        await guest.click('#login-submit');
        await guest.locator('#meeting:not([hidden])').waitFor({timeout: 15000});
        assert.equal(await guest.innerText('#group-title'), 'Office');
        await guest.click('#tab-people');
        await waitFor('the guest in the user list', async () => /guest/.test(await people(guest)));
        // The admin page shows who is in the meeting now.
        await waitFor('guest shown as in the meeting', async () =>
            /guest/.test(await admin.innerText('#groups-table tr[data-group="office"]')));
        // ... and what the guest's camera sends, as a table (once bytes have been counted).
        await waitFor('the guest\'s stream in the statistics table', async () =>
            /guest\s+\S+\s+sending\s+(?:[1-9]\d* kb\/s|\d+\.\d+ Mb\/s)/.test(await admin.innerText('#stats-table')));
        await admin.screenshot({path: path.join(artifactsDir('admin'), 'admin.png'), fullPage: true});

        // The group is edited while the guest is in it: the meeting page follows at once.
        await admin.fill('#g-displayName', 'Office (renamed)');
        await admin.check('#g-allow-recording');
        await admin.click('#g-save');
        await admin.locator('#g-saved:not([hidden])').waitFor();
        await waitFor('the new title on the guest page', async () =>
            (await guest.innerText('#group-title')) === 'Office (renamed)');
        assert.equal(await guest.isVisible('#meeting'), true);

        // Revoked, the invitation no longer admits anybody.
        await admin.click(`#invites-table tr[data-token="${token}"] button:has-text("Revoke")`);
        await waitFor('the invitation shown as expired', async () =>
            /expired/.test(await admin.innerText(`#invites-table tr[data-token="${token}"]`)));
        const late = await newPage('late');
        pages.push(late);
        await late.goto(link);
        await late.click('#login-submit');
        await late.locator('#login-error:not([hidden])').waitFor();
        assert.match(await late.innerText('#login-error'), /invitation is not valid/);
        assert.equal(await late.isVisible('#meeting'), false);

        // Alice logs in, follows "Change password" and changes hers; the new one works.
        const alice = await newPage('alice');
        pages.push(alice);
        await alice.goto(server.url + '/group/office/');
        await alice.fill('#login-username', 'alice');
        await alice.fill('#login-password', 'alice-old');
        await alice.click('#login-submit');
        await alice.locator('#meeting:not([hidden])').waitFor({timeout: 15000});
        await alice.locator('#change-password:not([hidden])').waitFor();
        const changeURL = await alice.getAttribute('#change-password', 'href');
        assert.equal(await guest.isVisible('#change-password'), false);
        const changer = await newPage('change-password');
        pages.push(changer);
        await changer.goto(new URL(changeURL, server.url).href);
        await changer.fill('#old-password', 'wrong');
        await changer.fill('#new-password', 'alice-new');
        await changer.fill('#new-password2', 'alice-new');
        await changer.click('#password-submit');
        await changer.locator('#password-error:not([hidden])').waitFor();
        assert.match(await changer.innerText('#password-error'), /current password is wrong/);
        await changer.fill('#old-password', 'alice-old');
        await changer.click('#password-submit');
        await changer.locator('#password-done:not([hidden])').waitFor();
        const relogin = await newPage('relogin');
        pages.push(relogin);
        await relogin.goto(server.url + '/group/office/');
        await relogin.fill('#login-username', 'alice');
        await relogin.fill('#login-password', 'alice-new');
        await relogin.click('#login-submit');
        await relogin.locator('#meeting:not([hidden])').waitFor({timeout: 15000});

        // Signing out deletes the session token; the page asks to sign in again.
        await admin.click('#signout');
        await admin.locator('#signin:not([hidden])').waitFor();
        assert.equal(fs.existsSync(path.join(server.dir, 'data', 'var', 'tokens.jsonl')), true);
        const tokens = fs.readFileSync(path.join(server.dir, 'data', 'var', 'tokens.jsonl'), 'utf8');
        assert.doesNotMatch(tokens, /"group":""/);
        // Wrong credentials are refused.
        await admin.fill('#signin-username', 'owner');
        await admin.fill('#signin-password', 'nope');
        await admin.click('#signin-submit');
        await admin.locator('#signin-error:not([hidden])').waitFor();
        assert.match(await admin.innerText('#signin-error'), /Wrong name or password/);
    } catch (e) {
        console.log('--- consoles\n' + consoles.join('\n'));
        console.log('--- server log\n' + server.log().slice(-4000));
        throw e;
    } finally {
        for (const p of pages)
            await p.close().catch(() => {});
    }
});
