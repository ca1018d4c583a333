// The WHEP page's script (whep.html).
import {WHEPClient} from './whep.js';

const state = {status: 'starting', error: null};
const video = document.getElementById('video');
const pc = new RTCPeerConnection({bundlePolicy: 'max-bundle'});
pc.addTransceiver('audio', {direction: 'recvonly'});
pc.addTransceiver('video', {direction: 'recvonly'});
const stream = new MediaStream();
pc.ontrack = e => {
    stream.addTrack(e.track);
    video.srcObject = stream;
};
const whep = new WHEPClient();
window.whepState = async () => ({...state, ...(await probeConnection(pc, video))});
try {
    await whep.view(pc, new URL('/group/g/.whep' + location.search, location.href).href);
    state.status = 'viewing';
} catch (e) {
    state.status = 'failed';
    state.error = String(e);
}
