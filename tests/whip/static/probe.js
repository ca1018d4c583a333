// What a received video element and peer connection show: frames decoded, whether the
// picture is not black and changes (sampled on a small canvas), audio packets and the
// samples decoded from them.
'use strict';

// Per video element: the last sampled pixels and what was seen so far.
const probes = new WeakMap();

// Samples `video` once: mean brightness and whether the pixels moved since the last sample.
function samplePicture(video) {
    const state = probes.get(video) || {last: null, brightest: 0, changes: 0};
    probes.set(video, state);
    if (!video.videoWidth)
        return state;
    const canvas = document.createElement('canvas');
    canvas.width = 64;
    canvas.height = 48;
    const ctx = canvas.getContext('2d', {willReadFrequently: true});
    ctx.drawImage(video, 0, 0, canvas.width, canvas.height);
    const pixels = ctx.getImageData(0, 0, canvas.width, canvas.height).data;
    let sum = 0;
    let diff = 0;
    for (let i = 0; i < pixels.length; i += 4) {
        sum += pixels[i] + pixels[i + 1] + pixels[i + 2];
        if (state.last)
            diff += Math.abs(pixels[i] - state.last[i]) + Math.abs(pixels[i + 1] - state.last[i + 1]);
    }
    const mean = sum / (3 * pixels.length / 4);
    state.brightest = Math.max(state.brightest, mean);
    if (state.last && diff > 0)
        state.changes += 1;
    state.last = pixels;
    return state;
}

// Everything `pc` received, with `video`'s picture sampled now.
async function probeConnection(pc, video) {
    const entry = {framesDecoded: 0, width: 0, videoCodec: '', audioPackets: 0,
                   audioSamples: 0, audioEnergy: 0, audioCodec: '',
                   iceState: pc.iceConnectionState};
    const stats = await pc.getStats();
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
            // Samples decoded from packets (not made up to hide a loss).
            entry.audioSamples += (r.totalSamplesReceived || 0) - (r.concealedSamples || 0);
            entry.audioEnergy += r.totalAudioEnergy || 0;
            entry.audioCodec = codecs[r.codecId] || entry.audioCodec;
        }
    });
    const picture = video ? samplePicture(video) : {brightest: 0, changes: 0};
    entry.brightest = Math.round(picture.brightest);
    entry.pictureChanges = picture.changes;
    return entry;
}
