// A browser peer for sfubox's GStreamer-examples signalling protocol, written for sfubox's
// tests. It registers, calls the peer named in ?peer= (HELLO, SESSION, then {"sdp": ...} and
// {"ice": ...} JSON, as the examples' webrtc.js does), sends the fake camera and microphone,
// and counts decoded video frames and audio samples from getStats(). When it has enough and
// the peer said {"done": true}, it hangs up. Progress is in window.callStatus.
'use strict';

const MIN_VIDEO_FRAMES = 30;
const MIN_AUDIO_SAMPLES = 48000;

const params = new URLSearchParams(location.search);
const peerId = params.get('peer');
const ourId = params.get('me') || String(10 + Math.floor(Math.random() * 8990));

const status = {
    state: 'connecting', // connecting, calling, passed, failed
    error: null,
    videoFramesDecoded: 0,
    audioSamplesDecoded: 0,
    toldDone: false,
    partnerDone: false,
};
window.callStatus = status;

function log(text) {
    document.getElementById('log').textContent += text + '\n';
}

function fail(why) {
    if (status.state === 'passed' || status.state === 'failed')
        return;
    status.error = String(why);
    status.state = 'failed';
    log('FAIL: ' + why);
}

const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
const socket = new WebSocket(`${scheme}://${location.host}`);
let pc = null;
// Messages are handled one after the other: a candidate must not overtake the answer.
let handled = Promise.resolve();

socket.onopen = () => socket.send(`HELLO ${ourId}`);
socket.onclose = event => {
    log(`socket closed: ${event.code}`);
    if (status.state !== 'passed')
        fail(`socket closed with ${event.code}`);
};
socket.onmessage = event => {
    handled = handled.then(() => handle(event.data)).catch(fail);
};

async function handle(text) {
    if (typeof text !== 'string')
        throw new Error('unexpected binary frame');
    if (text === 'HELLO') {
        socket.send(`SESSION ${peerId}`);
    } else if (text === 'SESSION_OK') {
        await call();
    } else if (text.startsWith('ERROR')) {
        throw new Error(text);
    } else {
        const message = JSON.parse(text);
        if (message.sdp)
            await pc.setRemoteDescription(message.sdp);
        else if (message.ice)
            await pc.addIceCandidate(message.ice);
        else if (message.done)
            status.partnerDone = true;
        else
            throw new Error('unknown message ' + text.slice(0, 80));
    }
}

async function call() {
    pc = new RTCPeerConnection({iceServers: []});
    pc.onicecandidate = event => {
        if (event.candidate) {
            socket.send(JSON.stringify({ice: {
                candidate: event.candidate.candidate,
                sdpMLineIndex: event.candidate.sdpMLineIndex,
            }}));
        }
    };
    pc.onconnectionstatechange = () => log('connection: ' + pc.connectionState);
    // Chromium decodes received audio only for playout: play it (the page is headless).
    pc.ontrack = event => {
        if (event.track.kind !== 'audio')
            return;
        const player = document.getElementById('player');
        player.srcObject = event.streams[0] || new MediaStream([event.track]);
        player.play().catch(error => log('play: ' + error));
    };
    const stream = await navigator.mediaDevices.getUserMedia({
        audio: true, video: {width: 320, height: 240},
    });
    for (const track of stream.getTracks())
        pc.addTrack(track, stream);
    const offer = await pc.createOffer();
    await pc.setLocalDescription(offer);
    socket.send(JSON.stringify({sdp: {type: offer.type, sdp: offer.sdp}}));
    status.state = 'calling';
    watchStats();
}

async function watchStats() {
    while (status.state === 'calling') {
        const stats = await pc.getStats();
        stats.forEach(report => {
            if (report.type !== 'inbound-rtp')
                return;
            if (report.kind === 'video')
                status.videoFramesDecoded = report.framesDecoded || 0;
            else if (report.kind === 'audio')
                status.audioSamplesDecoded =
                    (report.totalSamplesReceived || 0) - (report.concealedSamples || 0);
        });
        if (!status.toldDone && status.videoFramesDecoded >= MIN_VIDEO_FRAMES &&
            status.audioSamplesDecoded >= MIN_AUDIO_SAMPLES) {
            status.toldDone = true;
            log('media OK');
            socket.send(JSON.stringify({done: true}));
        }
        if (status.toldDone && status.partnerDone) {
            status.state = 'passed';
            socket.close(1000);
            return;
        }
        await new Promise(resolve => setTimeout(resolve, 250));
    }
}
