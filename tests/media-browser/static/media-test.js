// A minimal Galène client for the media browser test: no framework, protocol version "2".
'use strict';

const params = new URLSearchParams(location.search);
const username = params.get('user') || 'anonymous';
const myId = Math.random().toString(16).slice(2) + Math.random().toString(16).slice(2);
const upId = 'up-' + myId;
const ws = new WebSocket((location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + '/ws');
const up = {pc: null, pending: []};
const down = {}; // stream id -> {pc, pending, video}
const log = [];

function send(m) { ws.send(JSON.stringify(m)); }
function note(text) { log.push(text); }

ws.onopen = () => send({type: 'handshake', version: ['2'], id: myId});

ws.onmessage = async e => {
    const m = JSON.parse(e.data);
    try {
        await handle(m);
    } catch (err) {
        note('error handling ' + m.type + ': ' + err);
    }
};

async function handle(m) {
    switch (m.type) {
    case 'handshake':
        send({type: 'join', kind: 'join', group: 'g', username: username, password: 'pw'});
        break;
    case 'joined':
        if (m.kind !== 'join')
            break;
        send({type: 'request', request: {'': ['audio', 'video']}});
        await publish();
        break;
    case 'answer':
        if (m.id !== upId)
            break;
        await up.pc.setRemoteDescription({type: 'answer', sdp: m.sdp});
        for (const c of up.pending.splice(0))
            await up.pc.addIceCandidate(c);
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
            delete down[m.id];
        }
        break;
    case 'renegotiate':
        await publish(true);
        break;
    case 'abort':
        note('abort ' + m.id);
        break;
    case 'usermessage':
        if (m.kind === 'error')
            note('server error: ' + m.value);
        break;
    case 'ping':
        send({type: 'pong'});
        break;
    }
}

async function publish(restart) {
    if (!up.pc) {
        const stream = await navigator.mediaDevices.getUserMedia({audio: true, video: true});
        up.pc = new RTCPeerConnection();
        for (const t of stream.getTracks())
            up.pc.addTransceiver(t, {direction: 'sendonly', streams: [stream]});
        up.pc.onicecandidate = e => {
            if (e.candidate)
                send({type: 'ice', id: upId, candidate: e.candidate.toJSON()});
        };
    }
    const offer = await up.pc.createOffer(restart ? {iceRestart: true} : {});
    await up.pc.setLocalDescription(offer);
    send({type: 'offer', id: upId, label: 'camera', source: myId, username: username,
          sdp: up.pc.localDescription.sdp});
}

async function gotOffer(m) {
    let s = down[m.id];
    if (!s) {
        if (m.replace && down[m.replace]) {
            down[m.replace].pc.close();
            delete down[m.replace];
        }
        const pc = new RTCPeerConnection();
        const video = document.createElement('video');
        video.autoplay = true;
        video.muted = true;
        video.playsInline = true;
        document.getElementById('videos').appendChild(video);
        s = down[m.id] = {pc, pending: [], video, source: m.source, username: m.username};
        pc.ontrack = e => {
            const stream = e.streams[0] || new MediaStream([e.track]);
            if (video.srcObject !== stream)
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

// What the received streams decoded so far, per sending user.
window.mediaStats = async () => {
    const result = {streams: [], log};
    for (const [id, s] of Object.entries(down)) {
        const entry = {id, username: s.username, framesDecoded: 0, audioPackets: 0,
                       videoCodec: '', audioCodec: '', width: 0,
                       iceState: s.pc.iceConnectionState};
        const stats = await s.pc.getStats();
        const codecs = {};
        stats.forEach(r => { if (r.type === 'codec') codecs[r.id] = r.mimeType; });
        stats.forEach(r => {
            if (r.type !== 'inbound-rtp')
                return;
            if (r.kind === 'video') {
                entry.framesDecoded += r.framesDecoded || 0;
                entry.width = r.frameWidth || entry.width;
                entry.videoCodec = codecs[r.codecId] || entry.videoCodec;
            } else if (r.kind === 'audio') {
                entry.audioPackets += r.packetsReceived || 0;
                entry.audioCodec = codecs[r.codecId] || entry.audioCodec;
            }
        });
        result.streams.push(entry);
    }
    return result;
};
