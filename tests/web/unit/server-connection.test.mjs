// ServerConnection's message handling, driven through a fake WebSocket.
import {test, beforeEach, afterEach} from 'node:test';
import assert from 'node:assert/strict';
import {ServerConnection, parseTime, pingAfter, deadAfter} from '../../../static/protocol.js';
import {FakeWebSocket, FakePeerConnection, installFakes, settle} from './fakes.mjs';

let uninstall;
beforeEach(() => { uninstall = installFakes(); });
afterEach(() => uninstall());

/** A connected ServerConnection, its socket, and a log of every callback. */
async function connected() {
    const sc = new ServerConnection();
    const log = [];
    sc.onconnected = () => log.push(['connected']);
    sc.onclose = (code, reason) => log.push(['close', code, reason]);
    sc.onjoined = (kind, group, perms, status, data, error, message) =>
        log.push(['joined', kind, group, perms, status, data, error, message]);
    sc.onuser = (id, kind) => log.push(['user', id, kind]);
    sc.onchat = (id, dest, username, time, privileged, history, kind, message) =>
        log.push(['chat', id, dest, username, time, privileged, history, kind, message]);
    sc.onusermessage = (id, dest, username, time, privileged, kind, error, value) =>
        log.push(['usermessage', id, dest, username, privileged, kind, error, value]);
    sc.onclearchat = value => log.push(['clearchat', value]);
    const promise = sc.connect('ws://server/ws');
    const ws = FakeWebSocket.instances.at(-1);
    ws.open();
    await promise;
    ws.receive({type: 'handshake', version: ['2']});
    return {sc, ws, log};
}

async function joined(permissions = ['present', 'message']) {
    const c = await connected();
    c.sc.join('g', 'join', 'alice', 'pw');
    c.ws.receive({
        type: 'joined', kind: 'join', group: 'g', username: 'alice', permissions,
        status: {name: 'g', clientCount: 1}, rtcConfiguration: {iceServers: []},
    });
    return c;
}

test('connect sends a version 2 handshake with our id and calls onconnected', async () => {
    const {sc, ws, log} = await connected();
    assert.deepEqual(ws.sent[0], {type: 'handshake', version: ['2'], id: sc.id});
    assert.match(sc.id, /^[0-9a-f]{32}$/);
    assert.deepEqual(log, [['connected']]);
    assert.equal(sc.version, '2');
});

test('connect rejects when the socket cannot be opened', async () => {
    const sc = new ServerConnection();
    const promise = sc.connect('ws://nowhere/ws');
    const ws = FakeWebSocket.instances.at(-1);
    ws.onerror({});
    ws.drop(1006, '');
    await assert.rejects(promise, /Could not connect/);
});

test('a handshake without version 2 closes the connection with an error', async () => {
    const sc = new ServerConnection();
    const messages = [];
    sc.onusermessage = (id, dest, username, time, privileged, kind, error, value) => messages.push([kind, value]);
    const promise = sc.connect('ws://server/ws');
    const ws = FakeWebSocket.instances.at(-1);
    ws.open();
    await promise;
    ws.receive({type: 'handshake', version: ['3']});
    assert.equal(ws.readyState, 3);
    assert.equal(messages[0][0], 'error');
    assert.match(messages[0][1], /protocol version/);
});

test('join with a password, then joined updates group, username and permissions', async () => {
    const {sc, ws, log} = await joined(['op', 'present', 'message']);
    assert.deepEqual(ws.messages('join')[0],
        {type: 'join', kind: 'join', group: 'g', username: 'alice', password: 'pw'});
    assert.equal(sc.group, 'g');
    assert.equal(sc.username, 'alice');
    assert.deepEqual(sc.permissions, ['op', 'present', 'message']);
    assert.deepEqual(sc.rtcConfiguration, {iceServers: []});
    const j = log.find(e => e[0] === 'joined');
    assert.deepEqual(j.slice(1, 5), ['join', 'g', ['op', 'present', 'message'], {name: 'g', clientCount: 1}]);
});

test('join with a token sends the token and no password; username may be omitted', async () => {
    const {sc, ws} = await connected();
    sc.join('g', 'join', undefined, {type: 'token', token: 'T0K'});
    assert.deepEqual(ws.messages('join')[0], {type: 'join', kind: 'join', group: 'g', token: 'T0K'});
    sc.join('g', 'join', 'bob', {type: 'password', password: 'x'}, {raisehand: true});
    assert.deepEqual(ws.messages('join')[1],
        {type: 'join', kind: 'join', group: 'g', username: 'bob', password: 'x', data: {raisehand: true}});
    sc.leave('g');
    assert.deepEqual(ws.messages('join')[2], {type: 'join', kind: 'leave', group: 'g'});
});

test('a failed join reports the error code and the message, and leaves us outside', async () => {
    const {sc, ws, log} = await connected();
    sc.join('g', 'join', undefined, {type: 'token', token: 'T'});
    ws.receive({type: 'joined', kind: 'fail', group: 'g', username: '', error: 'need-username', value: 'username required'});
    const j = log.find(e => e[0] === 'joined');
    assert.deepEqual(j, ['joined', 'fail', 'g', [], {}, {}, 'need-username', 'username required']);
    assert.equal(sc.group, null);
});

test('user add, change and delete maintain the users table', async () => {
    const {sc, ws, log} = await joined();
    ws.receive({type: 'user', kind: 'add', id: sc.id, username: 'alice', permissions: ['present']});
    ws.receive({type: 'user', kind: 'add', id: 'b', username: 'bob', permissions: ['op'], data: {raisehand: true}});
    assert.deepEqual(sc.users.b, {username: 'bob', permissions: ['op'], data: {raisehand: true}});
    ws.receive({type: 'user', kind: 'change', id: sc.id, username: 'alice', permissions: ['present'], data: {raisehand: true}});
    assert.deepEqual(sc.userdata, {raisehand: true});
    // an add for a user we already know is a change
    ws.receive({type: 'user', kind: 'add', id: 'b', username: 'bob', permissions: []});
    ws.receive({type: 'user', kind: 'delete', id: 'b', username: 'bob'});
    assert.equal(sc.users.b, undefined);
    const users = log.filter(e => e[0] === 'user').map(e => e.slice(1));
    assert.deepEqual(users, [[sc.id, 'add'], ['b', 'add'], [sc.id, 'change'], ['b', 'change'], ['b', 'delete']]);
});

test('chat and chat history reach onchat with their history flag and parsed time', async () => {
    const {ws, log} = await joined();
    ws.receive({type: 'chathistory', id: 'm1', source: 'b', username: 'bob', time: '2026-07-28T15:52:24+02:00', value: 'old'});
    ws.receive({type: 'chat', id: 'm2', source: 'b', dest: 'me', username: 'bob', privileged: true, kind: 'me', time: '2026-07-28T15:53:00Z', value: 'waves'});
    const chats = log.filter(e => e[0] === 'chat');
    assert.equal(chats.length, 2);
    assert.deepEqual([chats[0][1], chats[0][6], chats[0][8]], ['b', true, 'old']);
    assert.equal(chats[0][4].toISOString(), '2026-07-28T13:52:24.000Z');
    assert.deepEqual([chats[1][2], chats[1][5], chats[1][6], chats[1][7], chats[1][8]], ['me', true, false, 'me', 'waves']);
});

test('clearchat is honoured only from the server (privileged)', async () => {
    const {ws, log} = await joined();
    ws.receive({type: 'usermessage', kind: 'clearchat', source: 'b', value: null});
    ws.receive({type: 'usermessage', kind: 'clearchat', privileged: true, value: {userId: 'b'}});
    assert.deepEqual(log.filter(e => e[0] === 'clearchat'), [['clearchat', {userId: 'b'}]]);
});

test('other usermessages reach onusermessage', async () => {
    const {sc, ws, log} = await joined();
    ws.receive({type: 'usermessage', kind: 'kicked', dest: sc.id, id: 'k', username: 'op', privileged: true, value: 'bye'});
    assert.deepEqual(log.at(-1), ['usermessage', '', sc.id, 'op', true, 'kicked', '', 'bye']);
});

test('ping is answered with pong', async () => {
    const {ws} = await joined();
    ws.receive({type: 'ping'});
    assert.deepEqual(ws.sent.at(-1), {type: 'pong'});
});

test('a quiet server is pinged after 15 s and dropped after 65 s', async () => {
    const {sc, ws} = await joined();
    const t0 = sc.lastReceived;
    sc.checkAlive(t0 + (pingAfter - 1) * 1000);
    assert.equal(ws.messages('ping').length, 0);
    sc.checkAlive(t0 + pingAfter * 1000);
    sc.checkAlive(t0 + (pingAfter + 5) * 1000);
    assert.equal(ws.messages('ping').length, 1);
    sc.checkAlive(t0 + deadAfter * 1000);
    assert.equal(ws.readyState, 3);
    sc.stopKeepalive();
});

test('actions and messages carry our id and username', async () => {
    const {sc, ws} = await joined();
    sc.useraction('kick', 'b', 'go away');
    sc.groupaction('lock', 'closed for now');
    sc.chat('alice', 'me', '', 'waves');
    sc.chat('', 'b', 'psst');
    sc.usermessage('mute', 'b', null, true);
    sc.request({'': ['audio', 'video-low']});
    const [kick, lock, me, priv, mute, request] = ws.sent.slice(-6);
    assert.deepEqual(kick, {type: 'useraction', source: sc.id, username: 'alice', kind: 'kick', dest: 'b', value: 'go away'});
    assert.deepEqual(lock, {type: 'groupaction', source: sc.id, username: 'alice', kind: 'lock', value: 'closed for now'});
    assert.deepEqual(me, {type: 'chat', source: sc.id, username: 'alice', dest: '', kind: 'me', value: 'waves'});
    assert.deepEqual(priv, {type: 'chat', source: sc.id, username: 'alice', dest: 'b', kind: '', value: 'psst'});
    assert.deepEqual(mute, {type: 'usermessage', source: sc.id, username: 'alice', dest: 'b', kind: 'mute', value: null, noecho: true});
    assert.deepEqual(request, {type: 'request', request: {'': ['audio', 'video-low']}});
});

test('a dropped socket closes streams, empties the group and calls onclose last', async () => {
    const {sc, ws, log} = await joined();
    ws.receive({type: 'user', kind: 'add', id: 'b', username: 'bob'});
    const up = sc.newUpStream();
    let upClosed = null;
    up.onclose = replace => { upClosed = replace; };
    ws.drop(1011, 'boom');
    assert.equal(upClosed, false);
    assert.equal(sc.socket, null);
    assert.deepEqual(sc.users, {});
    assert.equal(sc.group, null);
    const tail = log.slice(-3);
    assert.deepEqual(tail[0], ['user', 'b', 'delete']);
    assert.deepEqual(tail[1].slice(0, 3), ['joined', 'leave', 'g']);
    assert.deepEqual(tail[2], ['close', 1011, 'boom']);
});

test('an up stream offers with its label; abort from the server closes it', async () => {
    const {sc, ws} = await joined();
    const c = sc.newUpStream();
    c.label = 'camera';
    const errors = [];
    let closed = null;
    c.onerror = e => errors.push(e);
    c.onclose = replace => { closed = replace; };
    FakePeerConnection.instances.at(-1).onnegotiationneeded();
    await settle();
    const offer = ws.messages('offer')[0];
    assert.equal(offer.id, c.id);
    assert.equal(offer.label, 'camera');
    assert.equal(offer.source, sc.id);
    assert.equal(offer.username, 'alice');
    assert.match(offer.sdp, /^fake-offer/);
    assert.equal(offer.replace, undefined);
    // the local candidate is trickled
    assert.equal(ws.messages('ice')[0].id, c.id);
    ws.receive({type: 'abort', id: c.id});
    assert.equal(errors.length, 1);
    assert.equal(closed, false);
    assert.deepEqual(ws.sent.at(-1), {type: 'close', id: c.id});
    assert.equal(sc.up[c.id], undefined);
});

test('an answer completes an up stream; remote candidates wait for it', async () => {
    const {sc, ws} = await joined();
    const c = sc.newUpStream();
    let completed = 0;
    c.onnegotiationcompleted = () => completed++;
    const pc = FakePeerConnection.instances.at(-1);
    pc.onnegotiationneeded();
    await settle();
    ws.receive({type: 'ice', id: c.id, candidate: {candidate: 'candidate:x', sdpMid: '0'}});
    await settle();
    assert.equal(pc.addedCandidates.length, 0);
    ws.receive({type: 'answer', id: c.id, sdp: 'fake-answer-for-' + pc.localDescription.sdp});
    await settle();
    assert.equal(completed, 1);
    assert.deepEqual(pc.addedCandidates, [{candidate: 'candidate:x', sdpMid: '0'}]);
});

test('newUpStream(localId) replaces a stream: old onclose(true), new offer carries replace', async () => {
    const {sc, ws} = await joined();
    const old = sc.newUpStream();
    old.label = 'camera';
    let oldClosed = null;
    old.onclose = replace => { oldClosed = replace; };
    const c = sc.newUpStream(old.localId);
    assert.equal(oldClosed, true);
    assert.equal(c.localId, old.localId);
    assert.equal(c.label, 'camera');
    assert.equal(ws.messages('close').length, 0, 'a replaced stream is not closed on the server');
    FakePeerConnection.instances.at(-1).onnegotiationneeded();
    await settle();
    assert.equal(ws.messages('offer').at(-1).replace, old.id);
    assert.throws(() => sc.newUpStream('no-such-id'));
});

test('renegotiate from the server restarts ICE of an up stream', async () => {
    const {sc, ws} = await joined();
    const c = sc.newUpStream();
    ws.receive({type: 'renegotiate', id: c.id});
    await settle();
    assert.equal(ws.messages('offer')[0].kind, 'renegotiate');
});

test('a server offer creates a down stream and is answered', async () => {
    const {sc, ws} = await joined();
    const streams = [];
    sc.ondownstream = c => streams.push(c);
    ws.receive({type: 'ice', id: 's1', candidate: {candidate: 'early'}});
    ws.receive({type: 'offer', id: 's1', label: 'camera', source: 'b', username: 'bob', sdp: 'fake-offer-server'});
    await settle();
    assert.equal(streams.length, 1);
    const c = streams[0];
    assert.deepEqual([c.id, c.label, c.source, c.username, c.up], ['s1', 'camera', 'b', 'bob', false]);
    assert.deepEqual(ws.messages('answer')[0], {type: 'answer', id: 's1', sdp: 'fake-answer-for-fake-offer-server'});
    // a later candidate goes straight in
    ws.receive({type: 'ice', id: 's1', candidate: {candidate: 'late'}});
    await settle();
    assert.deepEqual(c.pc.addedCandidates.map(x => x.candidate), ['late']);
    let closed = null;
    c.onclose = replace => { closed = replace; };
    ws.receive({type: 'close', id: 's1'});
    assert.equal(closed, false);
    assert.equal(sc.down.s1, undefined);
    assert.equal(ws.messages('abort').length, 0, 'a stream closed by the server is not aborted');
});

test('a replacing server offer keeps the localId and closes the old stream with replace', async () => {
    const {sc, ws} = await joined();
    const streams = [];
    sc.ondownstream = c => streams.push(c);
    ws.receive({type: 'offer', id: 's1', label: 'camera', source: 'b', username: 'bob', sdp: 'o1'});
    await settle();
    let oldClosed = null;
    streams[0].onclose = replace => { oldClosed = replace; };
    ws.receive({type: 'offer', id: 's2', replace: 's1', label: 'camera', source: 'b', username: 'bob', sdp: 'o2'});
    await settle();
    assert.equal(oldClosed, true);
    assert.equal(streams[1].localId, streams[0].localId);
    assert.deepEqual(Object.keys(sc.down), ['s2']);
});

test('closing a down stream ourselves sends abort', async () => {
    const {sc, ws} = await joined();
    sc.ondownstream = () => {};
    ws.receive({type: 'offer', id: 's1', label: 'camera', source: 'b', username: 'bob', sdp: 'o1'});
    await settle();
    sc.down.s1.close();
    assert.deepEqual(ws.sent.at(-1), {type: 'abort', id: 's1'});
});

test('an offer that reuses the id of one of our up streams is aborted', async () => {
    const {sc, ws} = await joined();
    const c = sc.newUpStream();
    sc.ondownstream = () => assert.fail('no down stream expected');
    ws.receive({type: 'offer', id: c.id, label: 'camera', sdp: 'x'});
    await settle();
    assert.deepEqual(ws.sent.at(-1), {type: 'abort', id: c.id});
});

test('sfubox-layer marks a down stream reduced by the network, once per change', async () => {
    const {sc, ws, log} = await joined();
    const streams = [];
    sc.ondownstream = c => streams.push(c);
    ws.receive({type: 'offer', id: 's1', label: 'camera', source: 'b', username: 'bob', sdp: 'o1'});
    ws.receive({type: 'offer', id: 's2', label: 'camera', source: 'c', username: 'carol', sdp: 'o2'});
    await settle();
    const [s1, s2] = streams;
    assert.equal(s1.reducedByNetwork, false);
    const calls = [];
    for (const c of streams)
        c.onreduced = function(reduced) { calls.push([this.id, reduced]); };
    const layer = (id, reduced, extra = {}) => ws.receive({
        type: 'usermessage', kind: 'sfubox-layer', dest: sc.id, privileged: true, value: {id, reduced}, ...extra,
    });
    layer('s1', true);
    assert.equal(s1.reducedByNetwork, true);
    assert.equal(s2.reducedByNetwork, false);
    layer('s1', true); // no change, no callback
    layer('s1', false);
    assert.equal(s1.reducedByNetwork, false);
    assert.deepEqual(calls, [['s1', true], ['s1', false]]);
    // it is the library's business, not the application's
    assert.equal(log.filter(e => e[0] === 'usermessage').length, 0);
});

test('sfubox-layer is honoured only from the server and only for a down stream we have', async () => {
    const {sc, ws, log} = await joined();
    const streams = [];
    sc.ondownstream = c => streams.push(c);
    ws.receive({type: 'offer', id: 's1', label: 'camera', source: 'b', username: 'bob', sdp: 'o1'});
    await settle();
    const up = sc.newUpStream();
    const calls = [];
    streams[0].onreduced = reduced => calls.push(reduced);
    up.onreduced = reduced => calls.push(['up', reduced]);
    const layer = (value, extra = {}) => ws.receive({
        type: 'usermessage', kind: 'sfubox-layer', dest: sc.id, privileged: true, value, ...extra,
    });
    layer({id: 's1', reduced: true}, {privileged: false}); // not from the server
    layer({id: 's1', reduced: true}, {source: 'b'});       // from a client, even an operator
    layer({id: up.id, reduced: true});                     // not a down stream
    layer({id: 'gone', reduced: true});                    // a stream we do not have
    layer({id: 'toString', reduced: true});
    layer(null);
    layer('s1');
    assert.equal(streams[0].reducedByNetwork, false);
    assert.equal(up.reducedByNetwork, false);
    assert.deepEqual(calls, []);
    assert.equal(log.filter(e => e[0] === 'usermessage').length, 0);
    // a replacing stream starts unreduced, as the server's new stream does
    layer({id: 's1', reduced: true});
    ws.receive({type: 'offer', id: 's3', replace: 's1', label: 'camera', source: 'b', username: 'bob', sdp: 'o3'});
    await settle();
    assert.equal(streams[1].reducedByNetwork, false);
    // and a closed stream hears nothing more
    ws.receive({type: 'close', id: 's3'});
    streams[1].onreduced = () => assert.fail('closed stream');
    layer({id: 's3', reduced: true});
});

test('parseTime accepts RFC 3339 strings and milliseconds', () => {
    assert.equal(parseTime('2026-01-02T03:04:05Z').getTime(), Date.UTC(2026, 0, 2, 3, 4, 5));
    assert.equal(parseTime(1000).getTime(), 1000);
    assert.ok(Math.abs(parseTime(undefined).getTime() - Date.now()) < 1000);
});
