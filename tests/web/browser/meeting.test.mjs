// Browser tests of the meeting page against the real server: several pages
// of one headless Chromium join the test group and talk to each other.
import {describe, test, before, after} from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import {Server, buildServer, launchBrowser, joinAs, say, userRow, ensureArtifacts} from './harness.mjs';

let server;
let browser;

before(async () => {
    server = await Server.start(buildServer());
    browser = await launchBrowser();
});

after(async () => {
    await browser?.close();
    await server?.stop();
    server?.cleanup();
});

/** Closes pages even when a test fails. */
async function withPages(fn) {
    const pages = [];
    const open = async (...args) => {
        const p = await joinAs(browser.context, server, ...args);
        pages.push(p);
        return p;
    };
    try {
        await fn(open);
    } catch (e) {
        for (const p of pages)
            console.log(`--- console of ${p.url()}\n` + p.consoleMessages.join('\n'));
        console.log('--- server log\n' + server.logText().slice(-4000));
        throw e;
    } finally {
        for (const p of pages)
            await p.close();
    }
}

function chatLine(page, text) {
    return page.locator('#chat-log li', {hasText: text});
}

describe('landing page', () => {
    test('lists the public group with its description and count, and refuses unknown names', async () => {
        const page = await browser.context.newPage();
        try {
            await page.goto(server.url + '/');
            const item = page.locator('#public-groups li[data-group="test"]');
            await item.waitFor();
            assert.match(await item.innerText(), /Test room/);
            assert.match(await item.innerText(), /Where the browser tests meet/);
            assert.match(await item.innerText(), /0 people/);
            assert.equal(await item.locator('a').getAttribute('href'), server.url + '/group/test/');
            await page.fill('#group-input', 'no-such-group');
            await page.click('#join-form button');
            await page.locator('#join-error:not([hidden])').waitFor();
            assert.match(await page.innerText('#join-error'), /no group called/);
        } finally {
            await page.close();
        }
    });
});

describe('meeting page', () => {
    test('a wrong password is reported on the login form', async () => {
        const page = await browser.context.newPage();
        try {
            await page.goto(server.url + '/group/test/');
            // The title comes with the group's status, fetched once the page has loaded; Join is
            // enabled after it is shown.
            await page.locator('#login-submit:not([disabled])').waitFor();
            assert.equal(await page.innerText('#group-title'), 'Test room');
            await page.fill('#login-username', 'boss');
            await page.fill('#login-password', 'wrong');
            await page.click('#login-submit');
            await page.locator('#login-error:not([hidden])').waitFor();
            assert.match(await page.innerText('#login-error'), /Wrong name or password/);
            assert.equal(await page.isVisible('#meeting'), false);
        } finally {
            await page.close();
        }
    });

    test('three pages join, chat arrives everywhere and a late joiner sees the history', async () => {
        await withPages(async open => {
            const boss = await open('boss', {password: 'op'});
            const bob = await open('bob');
            await userRow(boss, 'bob');
            await userRow(bob, 'boss');
            await say(boss, 'hello from boss');
            await say(bob, '/me waves');
            for (const p of [boss, bob]) {
                await chatLine(p, 'hello from boss').waitFor();
                await chatLine(p, '* bob waves').waitFor();
            }
            const carol = await open('carol');
            await chatLine(carol, 'hello from boss').waitFor();
            await chatLine(carol, '* bob waves').waitFor();
            for (const p of [boss, bob, carol])
                await p.waitForFunction(() => document.querySelectorAll('#user-list li').length === 3);
            // a private message reaches only its addressee
            await say(carol, '/msg bob just for you');
            await chatLine(bob, 'just for you').waitFor();
            await chatLine(carol, 'just for you').waitFor();
            assert.match(await chatLine(bob, 'just for you').innerText(), /carol → you \(private\)/);
            await boss.waitForTimeout(300);
            assert.equal(await chatLine(boss, 'just for you').count(), 0);
            // permissions show in the list
            const bossRow = await userRow(carol, 'boss');
            assert.match(await bossRow.innerText(), /Operator/);
            assert.match(await (await userRow(carol, 'bob')).innerText(), /Presenter/);
        });
    });

    test('an operator makes an invitation link with /invite, and it logs a newcomer in', async () => {
        await withPages(async open => {
            const boss = await open('boss', {password: 'op'});
            await say(boss, '/invite');
            const line = chatLine(boss, 'Invitation link');
            await line.waitFor();
            const link = (await line.locator('a').getAttribute('href'));
            assert.match(link, /token=/);
            const guest = await browser.context.newPage();
            try {
                await guest.goto(link);
                assert.equal(await guest.isVisible('#login-password'), false);
                await guest.fill('#login-username', '');
                await guest.click('#login-submit');
                await guest.locator('#login-error:not([hidden])').waitFor();
                assert.match(await guest.innerText('#login-error'), /choose a name/);
                await guest.fill('#login-username', 'nina');
                await guest.click('#login-submit');
                await guest.waitForSelector('#meeting:not([hidden])');
                assert.match(await (await userRow(boss, 'nina')).innerText(), /Presenter/);
            } finally {
                await guest.close();
            }
        });
    });

    test('a raised hand shows on the other pages, and goes down again', async () => {
        await withPages(async open => {
            const alice = await open('alice');
            const dave = await open('dave');
            await userRow(alice, 'dave');
            await alice.click('#tab-people');
            await dave.click('#btn-hand');
            const row = await userRow(alice, 'dave');
            await row.locator('.badge.hand').waitFor();
            // Each page hears the change from the server in its own time: wait for dave's
            // own button rather than reading it the moment alice's list changed.
            await dave.locator('#btn-hand[aria-pressed="true"]').waitFor({timeout: 5000});
            await say(dave, '/raise');
            await row.locator('.badge.hand').waitFor({state: 'detached'});
            await dave.locator('#btn-hand[aria-pressed="false"]').waitFor({timeout: 5000});
        });
    });

    test('operator commands: /shutup from the chat, kick from the user menu', async () => {
        await withPages(async open => {
            const boss = await open('boss', {password: 'op'});
            const eve = await open('eve');
            await userRow(boss, 'eve');
            await say(boss, '/shutup eve');
            await boss.click('#tab-people');
            await eve.waitForFunction(() => document.getElementById('chat-input').disabled);
            await (await userRow(boss, 'eve')).locator('.badge.muted').waitFor();
            await say(boss, '/unshutup eve');
            await eve.waitForFunction(() => !document.getElementById('chat-input').disabled);
            // a non-operator's command is refused locally
            await say(eve, '/kick boss');
            await chatLine(eve, 'Only operators can do that').waitFor();

            const row = await userRow(boss, 'eve');
            await boss.click('#tab-people');
            await row.locator('button[aria-haspopup=menu]').click();
            await boss.click('#user-menu >> text=Remove from meeting…');
            await boss.fill('#prompt-input', 'time to go');
            await boss.click('#prompt-ok');
            await eve.locator('#disconnected:not([hidden])').waitFor();
            const reason = await eve.innerText('#disconnected-reason');
            assert.match(reason, /removed from the meeting by boss/);
            assert.match(reason, /time to go/);
            await row.waitFor({state: 'detached'});
        });
    });

    test('a 1 MiB file goes from page to page intact', async () => {
        await withPages(async open => {
            const sender = await open('frank');
            const receiver = await open('grace');
            const content = crypto.randomBytes(1024 * 1024);
            const digest = crypto.createHash('sha256').update(content).digest('hex');
            const row = await userRow(sender, 'grace');
            await sender.click('#tab-people');
            await row.locator('button[aria-haspopup=menu]').click();
            const chooser = sender.waitForEvent('filechooser');
            await sender.click('#user-menu >> text=Send a file…');
            await (await chooser).setFiles({name: 'random.bin', mimeType: 'application/octet-stream', buffer: content});

            const incoming = receiver.locator('.transfer[data-direction=down]');
            await incoming.waitFor();
            assert.match(await incoming.innerText(), /frank wants to send you random\.bin/);
            await incoming.locator('button:has-text("Accept")').click();
            const save = incoming.locator('a:has-text("Save")');
            await save.waitFor({timeout: 30000});
            const download = receiver.waitForEvent('download');
            await save.click();
            const saved = await download;
            assert.equal(saved.suggestedFilename(), 'random.bin');
            const received = fs.readFileSync(await saved.path());
            assert.equal(received.length, content.length);
            assert.equal(crypto.createHash('sha256').update(received).digest('hex'), digest);
            await sender.locator('.transfer[data-direction=up][data-state=closed]').waitFor();
            assert.match(await sender.innerText('.transfer[data-direction=up]'), /Sent\./);
        });
    });

    test('declining a file tells the sender', async () => {
        await withPages(async open => {
            const sender = await open('heidi');
            const receiver = await open('ivan');
            const row = await userRow(sender, 'ivan');
            await sender.click('#tab-people');
            await row.locator('button[aria-haspopup=menu]').click();
            const chooser = sender.waitForEvent('filechooser');
            await sender.click('#user-menu >> text=Send a file…');
            await (await chooser).setFiles({name: 'no.txt', mimeType: 'text/plain', buffer: Buffer.from('no')});
            await receiver.locator('.transfer button:has-text("Decline")').click();
            await sender.locator('.transfer.failed').waitFor();
            assert.match(await sender.innerText('.transfer'), /Cancelled: the receiver declined/);
        });
    });

    test('the group URL /group/NAME/ serves this page', async t => {
        const html = await (await fetch(server.url + '/group/test/')).text();
        assert.ok(html.includes('/meeting.js'), 'the group URL serves the meeting page');
        await withPages(async open => {
            const page = await open('leo', {path: '/group/test/?username=leo'});
            assert.equal(await page.innerText('#group-title'), 'Test room');
            await userRow(page, 'leo');
        });
    });

    test('screenshots of the meeting page, wide and phone-sized', async () => {
        await withPages(async open => {
            const boss = await open('boss', {password: 'op', start: 'camera'});
            const judy = await open('judy', {start: 'camera'});
            // with a media plane, wait for judy's video on boss's page
            await boss.locator('#videos .tile:not(.local)').waitFor({timeout: 10000}).catch(() => {});
            await say(boss, 'Welcome, everyone. The agenda is in the shared folder.');
            await say(judy, 'Thanks! I will raise my hand when I have a question.');
            await judy.click('#btn-hand');
            await chatLine(boss, 'raise my hand').waitFor();
            await (await userRow(boss, 'judy')).locator('.badge.hand').waitFor({state: 'attached'});
            const dir = ensureArtifacts();
            // The picture in the docs (docs/screenshot.png is a copy of this one, committed by
            // hand): both participants' fake cameras playing on boss's page, scaled down.
            await boss.setViewportSize({width: 960, height: 600});
            await boss.waitForFunction(() => [...document.querySelectorAll('#videos .tile video')]
                .filter(v => v.readyState >= 2 && v.videoWidth > 0).length >= 2, null, {timeout: 15000})
                .catch(() => console.log('screenshot.png: fewer than two videos playing'));
            await boss.screenshot({path: path.join(dir, 'screenshot.png')});
            await boss.setViewportSize({width: 1280, height: 800});
            await boss.screenshot({path: path.join(dir, 'meeting.png')});
            await boss.click('#tab-people');
            await boss.screenshot({path: path.join(dir, 'meeting-people.png')});
            await judy.setViewportSize({width: 390, height: 780});
            await judy.click('#btn-panel');
            await judy.waitForTimeout(300);
            await judy.screenshot({path: path.join(dir, 'meeting-phone.png')});
        });
    });

    test('a dropped socket shows a message, and Reconnect joins again', async () => {
        await withPages(async open => {
            const kim = await open('kim');
            await server.restart();
            await kim.locator('#disconnected:not([hidden])').waitFor({timeout: 10000});
            assert.match(await kim.innerText('#disconnected-reason'), /connection to the server was lost/);
            await kim.click('#reconnect-button');
            await kim.locator('#disconnected').waitFor({state: 'hidden'});
            await kim.waitForSelector('#meeting:not([hidden])');
            await userRow(kim, 'kim');
            await say(kim, 'back again');
            await chatLine(kim, 'back again').waitFor();
        });
    });
});

describe('media', () => {
    // Expected to fail until the media plane is wired: the server then answers
    // every offer with abort, and the test skips itself saying so.
    test('three pages decode each other\'s video and receive audio', {timeout: 90000}, async t => {
        await withPages(async open => {
            const pages = [];
            for (const name of ['vid-a', 'vid-b', 'vid-c'])
                pages.push(await open(name));
            for (const page of pages)
                await page.click('#btn-camera');
            // the server either answers our offer or aborts it (with an error toast)
            const outcome = await pages[0].waitForFunction(() => {
                const sc = window.sfubox.connection();
                const up = Object.values(sc.up);
                if (up.some(c => c.pc.remoteDescription))
                    return 'answered';
                if (document.querySelector('.toast.error'))
                    return 'refused: ' + document.querySelector('.toast.error').textContent;
                return false;
            }, null, {timeout: 20000});
            const result = await outcome.jsonValue();
            if (result !== 'answered') {
                t.skip('the server refuses offers (media plane not wired yet): ' + result);
                return;
            }
            for (const page of pages) {
                const decodes = async () => {
                    const sc = window.sfubox.connection();
                    let decoded = 0;
                    let audio = 0;
                    for (const c of Object.values(sc.down)) {
                        const report = await c.pc.getStats();
                        report.forEach(r => {
                            if (r.type === 'inbound-rtp' && r.kind === 'video' && r.framesDecoded > 10)
                                decoded++;
                            if (r.type === 'inbound-rtp' && r.kind === 'audio' && r.packetsReceived > 10)
                                audio++;
                        });
                    }
                    return {decoded, audio};
                };
                let seen = {};
                for (let deadline = Date.now() + 60000; Date.now() < deadline;) {
                    seen = await page.evaluate(decodes);
                    if (seen.decoded >= 2 && seen.audio >= 2)
                        break;
                    await page.waitForTimeout(500);
                }
                assert.deepEqual(seen, {decoded: 2, audio: 2}, 'two decoded videos and two audio tracks on ' + page.url());
                assert.equal(await page.locator('#videos .tile:not(.local)').count(), 2);
            }
            // the fake microphone beeps: some remote tile lights up as the active speaker
            await pages[0].locator('#videos .tile.speaking:not(.local)').first().waitFor({state: 'attached', timeout: 15000});
            // receive settings go to the server: nothing, then audio only, then everything
            const [a] = pages;
            const receive = async value => {
                await a.click('#btn-settings');
                await a.selectOption('#receive-select', value);
                await a.click('#settings-dialog button[value=close]');
            };
            // the server's sfubox-layer usermessage (handed straight to the dispatcher: the
            // loopback link cannot be made slow here) shows the badge on that stream's tile only
            const badge = await a.evaluate(() => {
                const sc = window.sfubox.connection();
                const [c, other] = Object.values(sc.down);
                const badgeOf = s => document.querySelector(`.tile[data-local-id="${CSS.escape(s.localId)}"] .tile-reduced`);
                const layer = reduced => sc.dispatch({type: 'usermessage', kind: 'sfubox-layer', dest: sc.id,
                    privileged: true, value: {id: c.id, reduced}});
                const otherBefore = badgeOf(other).hidden;
                layer(true);
                const shown = {mine: !badgeOf(c).hidden, otherUnchanged: badgeOf(other).hidden === otherBefore,
                    label: badgeOf(c).getAttribute('aria-label')};
                layer(false);
                return {...shown, after: !badgeOf(c).hidden};
            });
            assert.deepEqual(badge, {mine: true, otherUnchanged: true, label: 'Reduced quality: your connection is slow', after: false});
            await receive('none');
            await a.waitForFunction(() => document.querySelectorAll('#videos .tile:not(.local)').length === 0);
            await receive('audio');
            await a.waitForFunction(() => document.querySelectorAll('#videos .tile.audio-only:not(.local)').length === 2);
            await receive('all');
            await a.waitForFunction(() => document.querySelectorAll('#videos .tile:not(.local):not(.audio-only)').length === 2);

        });
    });
});
