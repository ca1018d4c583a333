// A Galène client for the WHIP test: joins "g", optionally publishes, receives everything,
// and remembers who came and went.
'use strict';

const params = new URLSearchParams(location.search);
const username = params.get('user') || 'member';
const publishing = params.get('publish') === '1';
const myId = Math.random().toString(16).slice(2) + Math.random().toString(16).slice(2);
const upId = 'up-' + myId;
const ws = new WebSocket((location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + '/ws');
const up = {pc: null, pending: []};
const down = {}; // stream id -> {pc, pending, video, username, closed}
const users = []; // [kind, username] in arrival order
const log = [];

function send(m) { ws.send(JSON.stringify(m)); }

ws.onopen = () => send({type: 'handshake', version: ['2'], id: myId});
ws.onmessage = async e => {
    const m = JSON.parse(e.data);
    try {
        await handle(m);
    } catch (err) {
        log.push('error handling ' + m.type + ': ' + err);
    }
};

async function handle(m) {
    switch (m.type) {
    case 'handshake':
        send({type: 'join', kind: 'join', group: 'g', username, password: 'pw'});
        break;
    case 'joined':
        if (m.kind !== 'join')
            break;
        send({type: 'request', request: {'': ['audio', 'video']}});
        if (publishing)
            await publish();
        break;
    case 'user':
        users.push([m.kind, m.username || '']);
        break;
    case 'answer':
        if (m.id === upId) {
            await up.pc.setRemoteDescription({type: 'answer', sdp: m.sdp});
            for (const c of up.pending.splice(0))
                await up.pc.addIceCandidate(c);
        }
        break;
    case 'offer':
        await gotOffer(m);
        break;
    case 'ice': {
        const s = m.id === upId ? up : down[m.id];
        if (!s || !s.pc)
            break;
        if (s.pc.remoteDescription)
            await s.pc.addIceCandidate(m.candidate);
        else
            s.pending.push(m.candidate);
        break;
    }
    case 'close':
        if (down[m.id]) {
            down[m.id].pc.close();
            down[m.id].closed = true;
        }
        break;
    case 'usermessage':
        if (m.kind === 'error')
            log.push('server error: ' + m.value);
        break;
    case 'ping':
        send({type: 'pong'});
        break;
    }
}

async function publish() {
    const stream = await navigator.mediaDevices.getUserMedia({audio: true, video: true});
    up.pc = new RTCPeerConnection();
    for (const t of stream.getTracks())
        up.pc.addTransceiver(t, {direction: 'sendonly', streams: [stream]});
    up.pc.onicecandidate = e => {
        if (e.candidate)
            send({type: 'ice', id: upId, candidate: e.candidate.toJSON()});
    };
    const offer = await up.pc.createOffer();
    await up.pc.setLocalDescription(offer);
    send({type: 'offer', id: upId, label: 'camera', source: myId, username,
          sdp: up.pc.localDescription.sdp});
}

async function gotOffer(m) {
    let s = down[m.id];
    if (!s || s.closed) {
        const pc = new RTCPeerConnection();
        const video = document.createElement('video');
        video.autoplay = true;
        video.muted = false;
        video.playsInline = true;
        document.getElementById('videos').appendChild(video);
        // One stream of all the tracks: a WHIP client's tracks may come without a stream id.
        const stream = new MediaStream();
        s = down[m.id] = {pc, pending: [], video, username: m.username, closed: false};
        pc.ontrack = e => {
            stream.addTrack(e.track);
            video.srcObject = stream;
        };
        pc.onicecandidate = e => {
            if (e.candidate)
                send({type: 'ice', id: m.id, candidate: e.candidate.toJSON()});
        };
    }
    await s.pc.setRemoteDescription({type: 'offer', sdp: m.sdp});
    for (const c of s.pending.splice(0))
        await s.pc.addIceCandidate(c);
    const answer = await s.pc.createAnswer();
    await s.pc.setLocalDescription(answer);
    send({type: 'answer', id: m.id, sdp: s.pc.localDescription.sdp});
}

// Who came and went, and what each received stream decoded so far.
window.memberState = async () => {
    const streams = [];
    for (const [id, s] of Object.entries(down)) {
        const entry = await probeConnection(s.pc, s.video);
        streams.push({id, username: s.username, closed: s.closed, ...entry});
    }
    return {users, streams, log};
};
