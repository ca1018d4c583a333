// A minimal Galène client (protocol version "2") for the shaped-network test: no framework.
//   ?role=pub  publishes the fake camera (640x480@30, simulcast rids 'h' and 'l' like Galène's
//              client) and the fake microphone; receives nothing.
//   ?role=sub  requests {'': ['audio', 'video']} and receives every stream.
// window.netStats() returns cumulative getStats() counters; the driver (../shaped.mjs) samples
// them once a second and computes rates from the deltas.
'use strict';

const params = new URLSearchParams(location.search);
const role = params.get('role') === 'pub' ? 'pub' : 'sub';
const username = params.get('user') || role;
const myId = Math.random().toString(16).slice(2) + Math.random().toString(16).slice(2);
const upId = 'up-' + myId;
const ws = new WebSocket((location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + '/ws');
const up = {pc: null, pending: [], settings: null};
const down = {}; // stream id -> {pc, pending, video, source, username}
const log = [];

function send(m) { ws.send(JSON.stringify(m)); }
function note(text) {
    log.push(new Date().toISOString().slice(11, 23) + ' ' + text);
    if (log.length > 200)
        log.splice(0, log.length - 200);
}

ws.onopen = () => send({type: 'handshake', version: ['2'], id: myId});
ws.onclose = e => note('websocket closed ' + e.code);

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
        note('joined');
        if (role === 'pub') {
            send({type: 'request', request: {}});
            await publish();
        } else {
            send({type: 'request', request: {'': ['audio', 'video']}});
        }
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
            note('close ' + m.id);
            down[m.id].pc.close();
            down[m.id].video.remove();
            delete down[m.id];
        }
        break;
    case 'renegotiate':
        note('renegotiate ' + m.id);
        if (m.id === upId)
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
        const stream = await navigator.mediaDevices.getUserMedia({
            audio: true,
            video: {width: 640, height: 480, frameRate: 30},
        });
        up.pc = new RTCPeerConnection();
        for (const t of stream.getTracks()) {
            const init = {direction: 'sendonly', streams: [stream]};
            if (t.kind === 'video') {
                up.settings = t.getSettings();
                note('camera ' + up.settings.width + 'x' + up.settings.height + '@' + up.settings.frameRate);
                // Galène's client: rid 'h' first (full size), rid 'l' at half size.
                init.sendEncodings = [
                    {rid: 'h', maxBitrate: 800000},
                    {rid: 'l', scaleResolutionDownBy: 2, maxBitrate: 150000},
                ];
            }
            up.pc.addTransceiver(t, init);
        }
        up.pc.onicecandidate = e => {
            if (e.candidate)
                send({type: 'ice', id: upId, candidate: e.candidate.toJSON()});
        };
        up.pc.oniceconnectionstatechange = () => note('up ice ' + up.pc.iceConnectionState);
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
            down[m.replace].video.remove();
            delete down[m.replace];
        }
        const pc = new RTCPeerConnection();
        const video = document.createElement('video');
        video.autoplay = true;
        video.muted = true;
        video.playsInline = true;
        video.width = 320;
        video.height = 240;
        document.getElementById('videos').appendChild(video);
        s = down[m.id] = {pc, pending: [], video, source: m.source, username: m.username,
                          lastFrame: null, frames: 0};
        // Time of the last frame the element presented: a freeze still going on is in no
        // getStats() counter (totalFreezesDuration grows when the freeze ends).
        if ('requestVideoFrameCallback' in video) {
            const onFrame = () => {
                s.lastFrame = performance.now();
                s.frames++;
                video.requestVideoFrameCallback(onFrame);
            };
            video.requestVideoFrameCallback(onFrame);
        }
        pc.ontrack = e => {
            const stream = e.streams[0] || new MediaStream([e.track]);
            if (video.srcObject !== stream)
                video.srcObject = stream;
        };
        pc.onicecandidate = e => {
            if (e.candidate)
                send({type: 'ice', id: m.id, candidate: e.candidate.toJSON()});
        };
        pc.oniceconnectionstatechange = () => note('down ' + m.id + ' ice ' + pc.iceConnectionState);
        note('offer ' + m.id + ' from ' + m.username);
    }
    await s.pc.setRemoteDescription({type: 'offer', sdp: m.sdp});
    for (const c of s.pending.splice(0))
        await s.pc.addIceCandidate(c);
    const answer = await s.pc.createAnswer();
    await s.pc.setLocalDescription(answer);
    send({type: 'answer', id: m.id, sdp: s.pc.localDescription.sdp});
}

// Which congestion-control feedback an SDP negotiates, per m-line kind.
function feedback(sdp) {
    const out = {};
    if (!sdp)
        return out;
    for (const section of sdp.split(/\r?\nm=/).slice(1)) {
        const kind = section.split(' ')[0];
        const f = out[kind] || (out[kind] = {remb: false, twcc: false, twccExt: false,
                                             absSendTime: false, rsize: false, rtx: false, red: false});
        f.remb ||= /a=rtcp-fb:\S+ goog-remb/.test(section);
        f.twcc ||= /a=rtcp-fb:\S+ transport-cc/.test(section);
        f.twccExt ||= /a=extmap:\d+\S* \S*transport-wide-cc/.test(section);
        f.absSendTime ||= /a=extmap:\d+\S* \S*abs-send-time/.test(section);
        f.rsize ||= /a=rtcp-rsize/.test(section);
        f.rtx ||= /a=rtpmap:\d+ rtx\//.test(section);
        f.red ||= /a=rtpmap:\d+ red\//.test(section);
    }
    return out;
}

function selectedPair(stats) {
    let pair = null;
    stats.forEach(r => {
        if (r.type === 'transport' && r.selectedCandidatePairId)
            pair = stats.get(r.selectedCandidatePairId) || pair;
    });
    if (!pair)
        stats.forEach(r => {
            if (r.type === 'candidate-pair' && r.nominated && r.state === 'succeeded')
                pair = r;
        });
    if (!pair)
        return null;
    const remote = stats.get(pair.remoteCandidateId);
    const local = stats.get(pair.localCandidateId);
    return {
        availableOutgoingBitrate: pair.availableOutgoingBitrate,
        availableIncomingBitrate: pair.availableIncomingBitrate,
        currentRoundTripTime: pair.currentRoundTripTime,
        bytesSent: pair.bytesSent,
        bytesReceived: pair.bytesReceived,
        local: local ? `${local.address}:${local.port}` : '',
        remote: remote ? `${remote.address}:${remote.port}` : '',
    };
}

const pick = (r, keys) => Object.fromEntries(keys.map(k => [k, r[k]]));

const VIDEO_IN = ['ssrc', 'frameWidth', 'frameHeight', 'framesDecoded', 'framesReceived',
    'framesDropped', 'keyFramesDecoded', 'framesPerSecond', 'freezeCount', 'totalFreezesDuration',
    'pauseCount', 'totalPausesDuration', 'packetsLost', 'packetsReceived', 'bytesReceived',
    'headerBytesReceived', 'retransmittedPacketsReceived', 'retransmittedBytesReceived',
    'nackCount', 'pliCount', 'firCount', 'jitter', 'jitterBufferDelay', 'jitterBufferEmittedCount',
    'totalDecodeTime', 'decoderImplementation'];
const AUDIO_IN = ['ssrc', 'packetsReceived', 'packetsLost', 'bytesReceived', 'headerBytesReceived',
    'concealedSamples', 'totalSamplesReceived', 'concealmentEvents', 'jitter',
    'jitterBufferDelay', 'jitterBufferEmittedCount'];
const VIDEO_OUT = ['rid', 'ssrc', 'bytesSent', 'headerBytesSent', 'packetsSent',
    'retransmittedBytesSent', 'frameWidth', 'frameHeight', 'framesPerSecond', 'framesEncoded',
    'framesSent', 'qualityLimitationReason', 'targetBitrate', 'active', 'nackCount', 'pliCount',
    'firCount', 'encoderImplementation', 'scalabilityMode'];

// Cumulative counters of every received stream and, for the publisher, of its outbound layers.
window.netStats = async () => {
    const result = {t: Date.now(), role, streams: [], log: log.slice(-20), publisher: null};
    for (const [id, s] of Object.entries(down)) {
        const stats = await s.pc.getStats();
        const entry = {id, username: s.username, iceState: s.pc.iceConnectionState,
                       video: null, audio: null, pair: selectedPair(stats), framesPresented: s.frames,
                       sinceLastFrameMs: s.lastFrame === null ? null : performance.now() - s.lastFrame,
                       feedback: {offer: feedback(s.pc.remoteDescription && s.pc.remoteDescription.sdp),
                                  answer: feedback(s.pc.localDescription && s.pc.localDescription.sdp)}};
        stats.forEach(r => {
            if (r.type !== 'inbound-rtp')
                return;
            if (r.kind === 'video' && (!entry.video || (r.framesDecoded || 0) >= entry.video.framesDecoded))
                entry.video = pick(r, VIDEO_IN);
            else if (r.kind === 'audio' && (!entry.audio || (r.packetsReceived || 0) >= entry.audio.packetsReceived))
                entry.audio = pick(r, AUDIO_IN);
        });
        result.streams.push(entry);
    }
    if (up.pc) {
        const stats = await up.pc.getStats();
        const p = {iceState: up.pc.iceConnectionState, camera: up.settings, layers: {}, audio: null,
                   remoteInbound: {}, pair: selectedPair(stats),
                   feedback: {offer: feedback(up.pc.localDescription && up.pc.localDescription.sdp),
                              answer: feedback(up.pc.remoteDescription && up.pc.remoteDescription.sdp)}};
        stats.forEach(r => {
            if (r.type === 'outbound-rtp' && r.kind === 'video')
                p.layers[r.rid || String(r.ssrc)] = pick(r, VIDEO_OUT);
            else if (r.type === 'outbound-rtp' && r.kind === 'audio')
                p.audio = pick(r, ['ssrc', 'bytesSent', 'headerBytesSent', 'packetsSent']);
            else if (r.type === 'remote-inbound-rtp')
                p.remoteInbound[r.ssrc] = pick(r, ['kind', 'packetsLost', 'fractionLost', 'roundTripTime']);
        });
        result.publisher = p;
    }
    return result;
};
