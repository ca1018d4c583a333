// TransferredFile's state machine: two ServerConnections whose usermessages
// are relayed by a fake server, with in-memory peer connections.
import {test, beforeEach, afterEach} from 'node:test';
import assert from 'node:assert/strict';
import {ServerConnection, TransferredFile, fileChunkSize} from '../../../static/protocol.js';
import {FakeWebSocket, installFakes, settle} from './fakes.mjs';

let uninstall;
beforeEach(() => { uninstall = installFakes(); });
afterEach(() => uninstall());

/** Two joined connections, alice and bob; usermessages between them are relayed. */
async function pair() {
    const clients = [];
    for (const name of ['alice', 'bob']) {
        const sc = new ServerConnection();
        const p = sc.connect('ws://server/ws');
        const ws = FakeWebSocket.instances.at(-1);
        ws.open();
        await p;
        ws.receive({type: 'handshake', version: ['2']});
        ws.receive({type: 'joined', kind: 'join', group: 'g', username: name, permissions: ['message']});
        clients.push({sc, ws, name});
    }
    for (const a of clients)
        for (const b of clients)
            a.ws.receive({type: 'user', kind: 'add', id: b.sc.id, username: b.name, permissions: ['message']});
    for (const from of clients) {
        const send = from.ws.send.bind(from.ws);
        from.ws.send = text => {
            send(text);
            const m = JSON.parse(text);
            if (m.type !== 'usermessage')
                return;
            const to = clients.find(c => c.sc.id === m.dest);
            // the server forwards asynchronously
            setTimeout(() => to?.ws.readyState === 1 && to.ws.receive({...m, time: new Date().toISOString()}), 0);
        };
    }
    return {alice: clients[0], bob: clients[1]};
}

/** Records a transfer's events as [state, datalen] pairs, and its data. */
function record(f) {
    const events = [];
    f.onevent = (state, data) => {
        if (events.at(-1)?.[0] !== state)
            events.push([state]);
        if (data !== undefined)
            events.at(-1).push(data);
    };
    return events;
}

function bytes(n) {
    const b = new Uint8Array(n);
    for (let i = 0; i < n; i++)
        b[i] = (i * 7 + 3) & 0xff;
    return b;
}

async function until(predicate, what) {
    for (let i = 0; i < 200; i++) {
        if (predicate())
            return;
        await settle(1);
    }
    assert.fail('timed out waiting for ' + what);
}

test('a file goes through every state on both sides and arrives intact', async () => {
    const {alice, bob} = await pair();
    const size = 2 * fileChunkSize + 100;
    const content = bytes(size);
    let incoming = null;
    let bobEvents = null;
    bob.sc.onfiletransfer = f => {
        incoming = f;
        bobEvents = record(f);
        assert.equal(f.state, '');
    };
    let aliceEvents = null;
    alice.sc.onfiletransfer = f => { aliceEvents = record(f); };
    const out = alice.sc.sendFile(bob.sc.id, new File([content], 'notes.bin', {type: 'application/x-test'}));
    assert.equal(out.up, true);
    assert.equal(out.state, 'inviting');
    const invite = alice.ws.messages('usermessage')[0];
    assert.equal(invite.kind, 'filetransfer');
    assert.equal(invite.dest, bob.sc.id);
    assert.deepEqual(invite.value, {version: ['1'], id: out.id, type: 'invite', name: 'notes.bin', size, mimetype: 'application/x-test'});

    await until(() => incoming?.state === 'inviting', 'the invitation');
    assert.deepEqual([incoming.up, incoming.name, incoming.size, incoming.username, incoming.userid],
        [false, 'notes.bin', size, 'alice', alice.sc.id]);
    incoming.receive();
    await until(() => aliceEvents.at(-1)[0] === 'closed' && bobEvents.at(-1)[0] === 'closed', 'the end of the transfer');

    assert.deepEqual(aliceEvents.map(e => e[0]), ['inviting', 'connecting', 'connected', 'done', 'closed']);
    assert.deepEqual(bobEvents.map(e => e[0]), ['inviting', 'connecting', 'connected', 'done', 'closed']);
    const blob = bobEvents.find(e => e[0] === 'done')[1];
    assert.equal(blob.type, 'application/x-test');
    assert.deepEqual(new Uint8Array(await blob.arrayBuffer()), content);
    assert.equal(out.datalen, size);
    assert.deepEqual(alice.sc.transferredFiles, {});
    assert.deepEqual(bob.sc.transferredFiles, {});
    // the signalling used both candidate directions
    const types = ws => ws.messages('usermessage').map(m => m.value.type);
    assert.ok(types(alice.ws).includes('upice'));
    assert.ok(types(bob.ws).includes('downice'));
    assert.ok(types(bob.ws).includes('offer'));
    assert.ok(types(alice.ws).includes('answer'));
});

test('declining an invitation cancels both sides and tells the sender why', async () => {
    const {alice, bob} = await pair();
    let incoming = null;
    bob.sc.onfiletransfer = f => { incoming = f; record(f); };
    let aliceEvents = null;
    alice.sc.onfiletransfer = f => { aliceEvents = record(f); };
    alice.sc.sendFile(bob.sc.id, new File([bytes(10)], 'a.txt'));
    await until(() => incoming?.state === 'inviting', 'the invitation');
    incoming.cancel('no thanks');
    assert.equal(incoming.state, 'closed');
    const reject = bob.ws.messages('usermessage').at(-1).value;
    assert.equal(reject.type, 'reject');
    assert.equal(reject.message, 'no thanks');
    await until(() => aliceEvents.at(-1)[0] === 'closed', 'the sender to close');
    assert.deepEqual(aliceEvents, [['inviting'], ['cancelled', 'no thanks'], ['closed']]);
});

test('an onfiletransfer that throws rejects the invitation', async () => {
    const {alice, bob} = await pair();
    bob.sc.onfiletransfer = () => { throw new Error('not now'); };
    let aliceEvents = null;
    alice.sc.onfiletransfer = f => { aliceEvents = record(f); };
    alice.sc.sendFile(bob.sc.id, new File([bytes(10)], 'a.txt'));
    await until(() => aliceEvents.at(-1)[0] === 'closed', 'the rejection');
    assert.deepEqual(aliceEvents.map(e => e[0]), ['inviting', 'cancelled', 'closed']);
    assert.equal(aliceEvents[1][1], 'not now');
});

test('a receiver without onfiletransfer rejects', async () => {
    const {alice, bob} = await pair();
    let aliceEvents = null;
    alice.sc.onfiletransfer = f => { aliceEvents = record(f); };
    alice.sc.sendFile(bob.sc.id, new File([bytes(10)], 'a.txt'));
    await until(() => aliceEvents.at(-1)[0] === 'closed', 'the rejection');
    assert.match(aliceEvents[1][1], /does not receive files/);
});

test('the sender cancelling mid-way cancels the receiver', async () => {
    const {alice, bob} = await pair();
    let incoming = null;
    let bobEvents = null;
    bob.sc.onfiletransfer = f => { incoming = f; bobEvents = record(f); };
    alice.sc.onfiletransfer = () => {};
    const out = alice.sc.sendFile(bob.sc.id, new File([bytes(10)], 'a.txt'));
    await until(() => incoming?.state === 'inviting', 'the invitation');
    out.cancel();
    assert.equal(out.state, 'closed');
    assert.equal(alice.ws.messages('usermessage').at(-1).value.type, 'cancel');
    await until(() => bobEvents.at(-1)[0] === 'closed', 'the receiver to close');
    assert.deepEqual(bobEvents.map(e => e[0]), ['inviting', 'cancelled', 'closed']);
    assert.equal(bobEvents[1][1], 'the sender cancelled');
});

test('an invitation with an unknown protocol version is rejected', async () => {
    const {alice, bob} = await pair();
    bob.sc.onfiletransfer = () => assert.fail('no transfer expected');
    alice.ws.receive({
        type: 'usermessage', kind: 'filetransfer', source: bob.sc.id, dest: alice.sc.id, username: 'bob',
        value: {type: 'invite', version: ['7'], id: 'x', name: 'f', size: 1},
    });
    alice.sc.onfiletransfer = () => assert.fail('no transfer expected');
    bob.ws.receive({
        type: 'usermessage', kind: 'filetransfer', source: alice.sc.id, dest: bob.sc.id, username: 'alice',
        value: {type: 'invite', version: ['7'], id: 'x', name: 'f', size: 1},
    });
    const reply = bob.ws.messages('usermessage').at(-1);
    assert.equal(reply.dest, alice.sc.id);
    assert.deepEqual([reply.value.type, reply.value.id], ['reject', 'x']);
});

test('a peer that leaves cancels its transfers without messages', async () => {
    const {alice, bob} = await pair();
    let incoming = null;
    let bobEvents = null;
    bob.sc.onfiletransfer = f => { incoming = f; bobEvents = record(f); };
    alice.sc.onfiletransfer = () => {};
    alice.sc.sendFile(bob.sc.id, new File([bytes(10)], 'a.txt'));
    await until(() => incoming?.state === 'inviting', 'the invitation');
    const sent = bob.ws.sent.length;
    bob.ws.receive({type: 'user', kind: 'delete', id: alice.sc.id, username: 'alice'});
    assert.deepEqual(bobEvents.map(e => e[0]), ['inviting', 'cancelled', 'closed']);
    assert.equal(bob.ws.sent.length, sent);
});

test('a sender that sends more than announced is cut off', async () => {
    const {bob} = await pair();
    const f = new TransferredFile(bob.sc, 'peer', 'id1', false, 'peer', 'f', 'text/plain', 4);
    const events = record(f);
    bob.sc.transferredFiles[f.key()] = f;
    f.state = 'connected';
    f.dc = {send() {}, close() {}};
    f.gotData(new Uint8Array(3).buffer);
    f.gotData(new Uint8Array(3).buffer);
    assert.deepEqual(events.map(e => e[0]), ['connected', 'cancelled', 'closed']);
    assert.match(events[1][1], /more data/);
});

test('receive() and invite() refuse to run in the wrong state', async () => {
    const {bob} = await pair();
    const down = new TransferredFile(bob.sc, 'peer', 'id1', false, 'peer', 'f', 'text/plain', 4);
    await assert.rejects(down.receive(), /receive in state/);
    const up = new TransferredFile(bob.sc, 'peer', 'id2', true, 'peer', 'f', 'text/plain', 4);
    up.state = 'connecting';
    assert.throws(() => up.invite(), /invite in state/);
});
