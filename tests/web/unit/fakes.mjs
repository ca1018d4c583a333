// Stand-ins for the browser objects protocol.js uses: a WebSocket driven by
// the test, and RTCPeerConnection / RTCDataChannel pairs that "connect" in
// memory once offer and answer have been exchanged.

export class FakeWebSocket {
    static instances = [];

    constructor(url) {
        this.url = url;
        this.readyState = 0;
        this.sent = [];
        this.closedWith = null;
        this.onopen = this.onclose = this.onmessage = this.onerror = null;
        FakeWebSocket.instances.push(this);
    }

    /** The test opens the socket. */
    open() {
        this.readyState = 1;
        this.onopen?.({});
    }

    send(text) {
        if (this.readyState !== 1)
            throw new Error('send on a socket that is not open');
        this.sent.push(JSON.parse(text));
    }

    /** Messages the client sent, optionally only those of one type. */
    messages(type) {
        return type ? this.sent.filter(m => m.type === type) : this.sent;
    }

    /** The server says something. */
    receive(message) {
        this.onmessage?.({data: JSON.stringify(message)});
    }

    /** The client closes. */
    close(code, reason) {
        if (this.readyState === 3)
            return;
        this.closedWith = {code, reason};
        this.readyState = 3;
        queueMicrotask(() => this.onclose?.({code, reason}));
    }

    /** The server (or the network) closes. */
    drop(code = 1006, reason = '') {
        this.readyState = 3;
        this.onclose?.({code, reason});
    }
}

let sdpCounter = 0;

export class FakeDataChannel {
    constructor(label) {
        this.label = label;
        this.readyState = 'connecting';
        this.bufferedAmount = 0;
        this.bufferedAmountLowThreshold = 0;
        this.binaryType = 'blob';
        this.peer = null;
        this.onopen = this.onmessage = this.onclose = this.onerror = null;
        this.onbufferedamountlow = null;
        this.sentCount = 0;
    }

    send(data) {
        if (this.readyState !== 'open')
            throw new Error('data channel not open');
        this.sentCount++;
        const copy = typeof data === 'string' ? data : data.slice(0);
        queueMicrotask(() => {
            if (this.peer && this.peer.readyState === 'open')
                this.peer.onmessage?.({data: copy});
        });
    }

    close() {
        if (this.readyState === 'closed')
            return;
        this.readyState = 'closed';
        const peer = this.peer;
        queueMicrotask(() => {
            this.onclose?.({});
            if (peer && peer.readyState !== 'closed') {
                peer.readyState = 'closed';
                peer.onclose?.({});
            }
        });
    }
}

export class FakePeerConnection {
    static instances = [];

    constructor(configuration) {
        this.configuration = configuration;
        this.localDescription = null;
        this.remoteDescription = null;
        this.channels = [];
        this.addedCandidates = [];
        this.closed = false;
        this.connectionState = 'new';
        this.iceConnectionState = 'new';
        this.onicecandidate = this.ondatachannel = this.onconnectionstatechange = null;
        this.oniceconnectionstatechange = this.onnegotiationneeded = this.ontrack = null;
        FakePeerConnection.instances.push(this);
    }

    createDataChannel(label) {
        const dc = new FakeDataChannel(label);
        this.channels.push(dc);
        return dc;
    }

    async createOffer() {
        return {type: 'offer', sdp: 'fake-offer-' + (++sdpCounter)};
    }

    async createAnswer() {
        if (!this.remoteDescription)
            throw new Error('createAnswer without remote offer');
        return {type: 'answer', sdp: 'fake-answer-for-' + this.remoteDescription.sdp};
    }

    async setLocalDescription(description) {
        this.localDescription = description;
        // one local candidate, as a browser would trickle
        queueMicrotask(() => this.onicecandidate?.({candidate: {candidate: 'candidate:1 1 udp 1 127.0.0.1 9 typ host', sdpMid: '0'}}));
    }

    async setRemoteDescription(description) {
        if (description.type === 'answer' && !description.sdp.startsWith('fake-answer-for-'))
            throw new Error('bad answer');
        this.remoteDescription = description;
        if (description.type === 'answer')
            queueMicrotask(() => connectPair(this));
    }

    async addIceCandidate(candidate) {
        this.addedCandidates.push(candidate);
    }

    close() {
        this.closed = true;
        this.connectionState = 'closed';
        for (const dc of this.channels)
            dc.close();
    }
}

/** Finds the answerer whose remote description is our offer and opens the channels. */
function connectPair(offerer) {
    const answerer = FakePeerConnection.instances.find(
        pc => pc !== offerer && pc.remoteDescription?.sdp === offerer.localDescription.sdp);
    if (!answerer || offerer.closed || answerer.closed)
        return;
    for (const dc of offerer.channels) {
        const remote = new FakeDataChannel(dc.label);
        answerer.channels.push(remote);
        dc.peer = remote;
        remote.peer = dc;
        answerer.ondatachannel?.({channel: remote});
        dc.readyState = 'open';
        remote.readyState = 'open';
        dc.onopen?.({});
        remote.onopen?.({});
    }
}

/** Installs the fakes as globals; returns a function that removes them. */
export function installFakes() {
    const saved = {WebSocket: globalThis.WebSocket, RTCPeerConnection: globalThis.RTCPeerConnection};
    globalThis.WebSocket = FakeWebSocket;
    globalThis.RTCPeerConnection = FakePeerConnection;
    FakeWebSocket.instances.length = 0;
    FakePeerConnection.instances.length = 0;
    return () => Object.assign(globalThis, saved);
}

/** Waits until the queued microtasks and timers of the fakes have run. */
export function settle(ms = 0) {
    return new Promise(resolve => setTimeout(resolve, ms));
}
