// The WHIP page's script (whip.html).
import {WHIPClient} from './whip.js';

const params = new URLSearchParams(location.search);
const state = {status: 'starting', error: null, resource: null};
const whip = new WHIPClient();
window.whipState = () => ({...state, ice: whip.pc ? whip.pc.iceConnectionState : 'closed'});
window.stopWhip = async () => {
    await whip.stop();
    state.status = 'stopped';
};
try {
    const stream = await navigator.mediaDevices.getUserMedia({audio: true, video: true});
    const pc = new RTCPeerConnection({bundlePolicy: 'max-bundle'});
    for (const track of stream.getTracks())
        pc.addTransceiver(track, {direction: 'sendonly'});
    await whip.publish(pc, new URL('/group/g/.whip', location.href).href, params.get('token') || undefined);
    state.resource = String(whip.resourceURL);
    state.status = 'published';
} catch (e) {
    state.status = 'failed';
    state.error = String(e);
}
