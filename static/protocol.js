// sfubox client library: the Galène protocol (version "2") over a WebSocket,
// WebRTC streams through the server, and peer-to-peer file transfer.
//
// Written for sfubox from the description of Galène's client API; see
// API.md in this directory (served as /API.md) for the reference.
// It has no dependencies and uses the browser's
// WebSocket, RTCPeerConnection, Blob and crypto objects, looked up at call
// time so that tests can substitute their own.

/** Size of one file-transfer chunk on the data channel. */
export const fileChunkSize = 16384;

/** The file-transfer protocol version this library speaks. */
export const fileTransferVersion = '1';

/** Seconds of server silence before we send a ping, and before we give up. */
export const pingAfter = 15;
export const deadAfter = 65;

/**
 * Returns a random identifier: 32 hexadecimal digits (128 bits).
 * @returns {string}
 */
export function newRandomId() {
    const bytes = new Uint8Array(16);
    globalThis.crypto.getRandomValues(bytes);
    return Array.from(bytes, b => b.toString(16).padStart(2, '0')).join('');
}

let localIdCounter = 0;

/**
 * Returns an identifier for a stream that is unique within this page.
 * @returns {string}
 */
export function newLocalId() {
    localIdCounter++;
    return 'local-' + localIdCounter;
}

/**
 * Converts a message time (RFC 3339 string, or milliseconds since the epoch
 * as sent by very old servers) to a Date; a missing time is now.
 * @param {string|number|undefined} time
 * @returns {Date}
 */
export function parseTime(time) {
    if (time === undefined || time === null || time === '')
        return new Date();
    const date = new Date(time);
    return isNaN(date.getTime()) ? new Date() : date;
}

/**
 * Calls a user callback, reporting (not propagating) what it throws.
 * @param {object} self - `this` for the callback
 * @param {Function|null|undefined} callback
 * @param {...any} args
 */
function call(self, callback, ...args) {
    if (!callback)
        return undefined;
    try {
        return callback.apply(self, args);
    } catch (e) {
        console.error(e);
        return undefined;
    }
}

/**
 * A connection to the server, and everything that lives on it: the group
 * we are in, the other users, our streams and file transfers.
 */
export class ServerConnection {
    constructor() {
        /** Our client id, sent in the handshake. @type {string} */
        this.id = newRandomId();
        /** @type {WebSocket|null} */
        this.socket = null;
        /** Protocol version agreed with the server, once the handshake is back. @type {string|null} */
        this.version = null;
        /** The group we are in, or null. @type {string|null} */
        this.group = null;
        /** Our username in the group, or null. @type {string|null} */
        this.username = null;
        /** Our permissions in the group. @type {string[]} */
        this.permissions = [];
        /** Our own user data (e.g. raisehand) as the server last told us. @type {object} */
        this.userdata = {};
        /** The group's status from the last `joined` message. @type {object} */
        this.groupStatus = {};
        /** The group's data from the last `joined` message. @type {object} */
        this.groupData = {};
        /** RTCConfiguration to use for every peer connection. @type {RTCConfiguration|null} */
        this.rtcConfiguration = null;
        /**
         * Users of the group, by id (we are one of them once joined).
         * @type {Object<string, {username: string, permissions: string[], data: object}>}
         */
        this.users = {};
        /** Streams we send, by id. @type {Object<string, Stream>} */
        this.up = {};
        /** Streams we receive, by id. @type {Object<string, Stream>} */
        this.down = {};
        /** File transfers in progress, by key. @type {Object<string, TransferredFile>} */
        this.transferredFiles = {};
        /** Statistics interval in milliseconds applied to every stream (0 = off). */
        this.statsInterval = 0;
        /** Time (ms since epoch) at which the server last said anything. */
        this.lastReceived = 0;
        this.pingSent = false;
        this.keepaliveTimer = null;

        /** @type {(this: ServerConnection) => void} */
        this.onconnected = null;
        /** @type {(this: ServerConnection, code: number, reason: string) => void} */
        this.onclose = null;
        /** @type {(this: ServerConnection, id: string, dest: string, username: string, time: Date, privileged: boolean, kind: string, error: string, value: any) => void} */
        this.onusermessage = null;
        /** @type {(this: ServerConnection, kind: string, group: string, perms: string[], status: object, data: object, error: string, message: string) => void} */
        this.onjoined = null;
        /** @type {(this: ServerConnection, id: string, kind: string) => void} */
        this.onuser = null;
        /** @type {(this: ServerConnection, id: string, dest: string, username: string, time: Date, privileged: boolean, history: boolean, kind: string, message: any) => void} */
        this.onchat = null;
        /** @type {(this: ServerConnection, value: any) => void} */
        this.onclearchat = null;
        /** @type {(this: ServerConnection, stream: Stream) => void} */
        this.ondownstream = null;
        /** @type {(this: ServerConnection, transfer: TransferredFile) => void} */
        this.onfiletransfer = null;
    }

    /**
     * Opens the WebSocket and sends the handshake.  Resolves once the socket
     * is open (onconnected has run); rejects if it cannot be opened.
     * @param {string} url - the `endpoint` from the group's .status
     * @returns {Promise<ServerConnection>}
     */
    connect(url) {
        if (this.socket) {
            const old = this.socket;
            old.close(1000, 'Reconnecting');
            this.socketClosed(old, 1000, 'Reconnecting');
        }
        const socket = new globalThis.WebSocket(url);
        this.socket = socket;
        this.version = null;
        return new Promise((resolve, reject) => {
            let opened = false;
            socket.onerror = () => {
                if (!opened)
                    reject(new Error('Could not connect to ' + url));
            };
            socket.onopen = () => {
                opened = true;
                this.lastReceived = Date.now();
                this.pingSent = false;
                this.send({type: 'handshake', version: ['2'], id: this.id});
                this.startKeepalive();
                call(this, this.onconnected);
                resolve(this);
            };
            socket.onclose = e => {
                this.socketClosed(socket, e.code, e.reason);
                if (!opened)
                    reject(new Error('Connection closed'));
            };
            socket.onmessage = e => {
                if (socket !== this.socket)
                    return;
                let m;
                try {
                    m = JSON.parse(e.data);
                } catch (err) {
                    console.warn('Bad message from server', err);
                    return;
                }
                this.lastReceived = Date.now();
                this.pingSent = false;
                this.dispatch(m);
            };
        });
    }

    /** Closes the connection; onclose will be called. */
    close() {
        if (this.socket)
            this.socket.close(1000, 'Close requested by client');
    }

    /**
     * Sends one message to the server.
     * @param {object} m
     */
    send(m) {
        if (!this.socket || this.socket.readyState !== 1)
            throw new Error('Not connected');
        this.socket.send(JSON.stringify(m));
    }

    startKeepalive() {
        this.stopKeepalive();
        this.keepaliveTimer = setInterval(() => this.checkAlive(Date.now()), 5000);
        this.keepaliveTimer?.unref?.();
    }

    stopKeepalive() {
        if (this.keepaliveTimer)
            clearInterval(this.keepaliveTimer);
        this.keepaliveTimer = null;
    }

    /**
     * Pings a quiet server and drops a dead one.
     * @param {number} now - milliseconds since the epoch
     */
    checkAlive(now) {
        const quiet = (now - this.lastReceived) / 1000;
        if (quiet >= deadAfter) {
            this.socket?.close(1000, 'The server stopped answering');
        } else if (quiet >= pingAfter && !this.pingSent) {
            this.pingSent = true;
            try {
                this.send({type: 'ping'});
            } catch (e) {
                // the socket is closing; onclose will follow
            }
        }
    }

    /**
     * Tears down everything that lived on a socket that just closed.
     * @param {WebSocket} socket
     * @param {number} code
     * @param {string} reason
     */
    socketClosed(socket, code, reason) {
        if (socket !== this.socket)
            return;
        this.socket = null;
        this.stopKeepalive();
        for (const id in this.up)
            this.up[id].closeLocally(false);
        for (const id in this.down)
            this.down[id].closeLocally(false);
        for (const key in this.transferredFiles)
            this.transferredFiles[key].cancel('the connection to the server was lost', false);
        const group = this.group;
        this.forgetGroup();
        if (group)
            call(this, this.onjoined, 'leave', group, [], {}, {}, '', '');
        call(this, this.onclose, code, reason);
    }

    /** Drops the group state and tells the page that every user left. */
    forgetGroup() {
        for (const id in this.users) {
            delete this.users[id];
            call(this, this.onuser, id, 'delete');
        }
        this.group = null;
        this.username = null;
        this.permissions = [];
        this.userdata = {};
        this.rtcConfiguration = null;
    }

    /**
     * Handles one message from the server.
     * @param {object} m
     */
    dispatch(m) {
        switch (m.type) {
        case 'handshake':
            if (!Array.isArray(m.version) || !m.version.includes('2')) {
                call(this, this.onusermessage, '', this.id, null, new Date(), true,
                    'error', '', 'The server speaks an unknown protocol version');
                this.socket?.close(1000, 'Unknown protocol version');
                return;
            }
            this.version = '2';
            break;
        case 'ping':
            this.send({type: 'pong'});
            break;
        case 'pong':
            break;
        case 'joined':
            this.gotJoined(m);
            break;
        case 'user':
            this.gotUser(m);
            break;
        case 'chat':
        case 'chathistory':
            call(this, this.onchat, m.source || '', m.dest || '', m.username ?? '',
                parseTime(m.time), !!m.privileged, m.type === 'chathistory', m.kind || '', m.value);
            break;
        case 'usermessage':
            this.gotUserMessage(m);
            break;
        case 'offer':
            this.gotOffer(m);
            break;
        case 'answer':
            this.gotAnswer(m.id, m.sdp);
            break;
        case 'ice':
            this.gotRemoteIce(m.id, m.candidate);
            break;
        case 'renegotiate': {
            const c = this.up[m.id];
            if (c)
                c.restartIce();
            break;
        }
        case 'close': {
            const c = this.down[m.id];
            if (c)
                c.closeLocally(false);
            break;
        }
        case 'abort': {
            const c = this.up[m.id];
            if (c) {
                const error = new Error('The server refused the stream');
                error.name = 'StreamAborted';
                call(c, c.onerror, error);
                c.close();
            }
            break;
        }
        default:
            console.warn('Unexpected message type from server', m.type);
        }
    }

    gotJoined(m) {
        const perms = Array.isArray(m.permissions) ? m.permissions : [];
        const status = m.status || {};
        const data = m.data || {};
        switch (m.kind) {
        case 'fail':
            call(this, this.onjoined, 'fail', m.group, [], {}, {}, m.error || '', m.value ?? '');
            return;
        case 'redirect':
            call(this, this.onjoined, 'redirect', m.group, [], {}, {}, '', m.value ?? '');
            return;
        case 'leave':
            for (const id in this.up)
                this.up[id].closeLocally(false);
            for (const id in this.down)
                this.down[id].closeLocally(false);
            this.forgetGroup();
            call(this, this.onjoined, 'leave', m.group, [], status, data, '', m.value ?? '');
            return;
        case 'join':
        case 'change':
            this.group = m.group;
            this.username = m.username ?? this.username;
            this.permissions = perms;
            this.groupStatus = status;
            if (m.data)
                this.groupData = data;
            this.rtcConfiguration = m.rtcConfiguration || null;
            call(this, this.onjoined, m.kind, m.group, perms, status, this.groupData, '', m.value ?? '');
            return;
        default:
            console.warn('Unknown joined kind', m.kind);
        }
    }

    gotUser(m) {
        switch (m.kind) {
        case 'add':
        case 'change': {
            const known = m.id in this.users;
            this.users[m.id] = {
                username: m.username ?? '',
                permissions: Array.isArray(m.permissions) ? m.permissions : [],
                data: m.data || {},
            };
            if (m.id === this.id)
                this.userdata = this.users[m.id].data;
            call(this, this.onuser, m.id, known && m.kind === 'add' ? 'change' : m.kind);
            break;
        }
        case 'delete':
            if (!(m.id in this.users))
                return;
            delete this.users[m.id];
            for (const key in this.transferredFiles) {
                const f = this.transferredFiles[key];
                if (f.userid === m.id)
                    f.cancel('the user left', false);
            }
            call(this, this.onuser, m.id, 'delete');
            break;
        default:
            console.warn('Unknown user kind', m.kind);
        }
    }

    gotUserMessage(m) {
        if (m.kind === 'filetransfer') {
            if (m.source && m.dest === this.id)
                this.gotFileTransfer(m.source, m.username ?? '', m.value);
            return;
        }
        if (m.kind === 'clearchat') {
            if (m.privileged)
                call(this, this.onclearchat, m.value ?? null);
            return;
        }
        if (m.kind === 'sfubox-layer') {
            // sfubox's own: a down stream's video is reduced by our network, or back.
            if (m.privileged && !m.source)
                this.gotLayerReduced(m.value);
            return;
        }
        call(this, this.onusermessage, m.source || '', m.dest || '', m.username ?? '',
            parseTime(m.time), !!m.privileged, m.kind || '', m.error || '', m.value);
    }

    /**
     * Handles the value of the server's `sfubox-layer` usermessage:
     * `{id, reduced}` for one of our down streams.
     * @param {any} value
     */
    gotLayerReduced(value) {
        if (!value || typeof value !== 'object' || typeof value.id !== 'string')
            return;
        const c = Object.hasOwn(this.down, value.id) ? this.down[value.id] : null;
        const reduced = value.reduced === true;
        if (!c || c.closed || c.reducedByNetwork === reduced)
            return;
        c.reducedByNetwork = reduced;
        call(c, c.onreduced, reduced);
    }

    /**
     * Joins a group, or leaves it when kind is 'leave'.
     * @param {string} group
     * @param {string} kind - 'join' or 'leave'
     * @param {string} [username] - omit to take it from a token
     * @param {string|{type: 'password', password: string}|{type: 'token', token: string}} [credentials]
     * @param {object} [data] - initial user data
     */
    join(group, kind, username, credentials, data) {
        if (kind === 'leave') {
            this.leave(group);
            return;
        }
        const m = {type: 'join', kind: 'join', group};
        if (username !== undefined && username !== null)
            m.username = username;
        if (typeof credentials === 'string') {
            m.password = credentials;
        } else if (credentials && credentials.type === 'token') {
            m.token = credentials.token;
        } else if (credentials && credentials.type === 'password') {
            m.password = credentials.password;
        } else if (credentials) {
            throw new Error('Unknown credentials type');
        }
        if (data)
            m.data = data;
        this.send(m);
    }

    /**
     * Leaves a group; the socket stays open.
     * @param {string} group
     */
    leave(group) {
        this.send({type: 'join', kind: 'leave', group});
    }

    /**
     * Says which streams to receive: a map from stream label ('' for any
     * other label) to a list of 'audio', 'video' and 'video-low'.
     * @param {Object<string, string[]>} what
     */
    request(what) {
        this.send({type: 'request', request: what});
    }

    /**
     * Sends a chat message.  Called with four arguments as
     * chat(username, kind, dest, value); with three as chat(kind, dest, value),
     * using our own username.
     */
    chat(...args) {
        const [username, kind, dest, value] =
            args.length >= 4 ? args : [this.username, ...args];
        this.send({
            type: 'chat', source: this.id, username: username ?? this.username ?? '',
            dest: dest || '', kind: kind || '', value,
        });
    }

    /**
     * Sends an application-specific message to one user (dest) or to all ('').
     * @param {string} kind
     * @param {string} dest
     * @param {any} value
     * @param {boolean} [noecho] - do not send a broadcast back to us
     */
    usermessage(kind, dest, value, noecho) {
        const m = {
            type: 'usermessage', source: this.id, username: this.username ?? '',
            dest: dest || '', kind, value,
        };
        if (noecho)
            m.noecho = true;
        this.send(m);
    }

    /**
     * Asks the server to act on a user: op, unop, present, unpresent, shutup,
     * unshutup, kick, identify, setdata.
     * @param {string} kind
     * @param {string} dest - the user's id
     * @param {any} [value]
     */
    useraction(kind, dest, value) {
        this.send({
            type: 'useraction', source: this.id, username: this.username ?? '',
            kind, dest, value,
        });
    }

    /**
     * Asks the server to act on the group: clearchat, lock, unlock, record,
     * unrecord, subgroups, setdata, maketoken, edittoken, listtokens.
     * @param {string} kind
     * @param {any} [value]
     */
    groupaction(kind, value) {
        this.send({
            type: 'groupaction', source: this.id, username: this.username ?? '',
            kind, value,
        });
    }

    /**
     * Applies a statistics interval to every stream, present and future.
     * @param {number} ms - 0 turns statistics off
     */
    setStatsInterval(ms) {
        this.statsInterval = ms;
        for (const id in this.up)
            this.up[id].setStatsInterval(ms);
        for (const id in this.down)
            this.down[id].setStatsInterval(ms);
    }

    /**
     * Creates a stream to send.  Add tracks to its `pc` (for example with
     * `pc.addTrack(track, stream.stream)`); negotiation starts by itself.
     * @param {string} [localId] - the localId of an up stream to replace
     * @returns {Stream}
     */
    newUpStream(localId) {
        if (!this.socket)
            throw new Error('Not connected');
        let old = null;
        if (localId) {
            old = Object.values(this.up).find(c => c.localId === localId) || null;
            if (!old)
                throw new Error('No up stream with localId ' + localId);
        }
        const pc = new globalThis.RTCPeerConnection(this.rtcConfiguration || undefined);
        const c = new Stream(this, newRandomId(), localId || newLocalId(), pc, true);
        if (old) {
            c.label = old.label;
            c.replace = old.id;
            old.closeLocally(true);
        }
        this.up[c.id] = c;
        pc.onnegotiationneeded = () => c.negotiate();
        this.wirePeerConnection(c);
        if (this.statsInterval)
            c.setStatsInterval(this.statsInterval);
        return c;
    }

    /**
     * Sets the ICE and status handlers shared by up and down streams.
     * @param {Stream} c
     */
    wirePeerConnection(c) {
        c.pc.onicecandidate = e => {
            if (!e.candidate || c.closed)
                return;
            try {
                this.send({type: 'ice', id: c.id, candidate: e.candidate.toJSON ? e.candidate.toJSON() : e.candidate});
            } catch (err) {
                // the socket is gone; the stream will be closed with it
            }
        };
        c.pc.oniceconnectionstatechange = () => {
            const state = c.pc.iceConnectionState;
            call(c, c.onstatus, state);
            if (state === 'failed')
                c.restartIce();
        };
    }

    /**
     * The server pushes a stream (or renegotiates one it pushed).
     * @param {object} m
     */
    async gotOffer(m) {
        if (this.up[m.id]) {
            this.send({type: 'abort', id: m.id});
            return;
        }
        let c = this.down[m.id];
        if (c && m.replace) {
            console.warn('Replacement of an existing stream', m.id);
        }
        if (!c) {
            const old = m.replace ? this.down[m.replace] : null;
            const pc = new globalThis.RTCPeerConnection(this.rtcConfiguration || undefined);
            c = new Stream(this, m.id, old ? old.localId : newLocalId(), pc, false);
            this.down[m.id] = c;
            pc.ontrack = e => {
                if (c.closed)
                    return;
                if (!c.stream)
                    c.stream = e.streams?.[0] || new globalThis.MediaStream();
                if (!c.stream.getTracks().includes(e.track))
                    c.stream.addTrack(e.track);
                call(c, c.ondowntrack, e.track, e.transceiver, e.streams?.[0] || c.stream);
            };
            this.wirePeerConnection(c);
            if (old)
                old.closeLocally(true);
            c.label = m.label || '';
            c.source = m.source || '';
            c.username = m.username ?? '';
            if (!this.ondownstream) {
                c.close();
                return;
            }
            call(this, this.ondownstream, c);
            if (this.statsInterval)
                c.setStatsInterval(this.statsInterval);
        } else {
            c.label = m.label || c.label;
            c.username = m.username ?? c.username;
        }
        try {
            await c.pc.setRemoteDescription({type: 'offer', sdp: m.sdp});
            await c.flushRemoteCandidates();
            const answer = await c.pc.createAnswer();
            await c.pc.setLocalDescription(answer);
            if (c.closed)
                return;
            this.send({type: 'answer', id: c.id, sdp: c.pc.localDescription.sdp});
            call(c, c.onnegotiationcompleted);
        } catch (e) {
            call(c, c.onerror, e);
            c.close();
        }
    }

    async gotAnswer(id, sdp) {
        const c = this.up[id];
        if (!c)
            return;
        try {
            await c.pc.setRemoteDescription({type: 'answer', sdp});
            await c.flushRemoteCandidates();
            call(c, c.onnegotiationcompleted);
        } catch (e) {
            call(c, c.onerror, e);
            c.close();
        }
    }

    async gotRemoteIce(id, candidate) {
        const c = this.up[id] || this.down[id];
        if (!c || !candidate)
            return;
        if (c.pc.remoteDescription) {
            try {
                await c.pc.addIceCandidate(candidate);
            } catch (e) {
                console.warn('addIceCandidate', e);
            }
        } else {
            c.remoteCandidates.push(candidate);
        }
    }

    /**
     * Starts sending a file to a user.  onfiletransfer is called with the
     * new TransferredFile before the invitation is sent.
     * @param {string} id - the receiving user's id
     * @param {File} file
     * @returns {TransferredFile}
     */
    sendFile(id, file) {
        const user = this.users[id];
        if (!user)
            throw new Error('Unknown user ' + id);
        const f = new TransferredFile(this, id, newRandomId(), true, user.username,
            file.name, file.type || 'application/octet-stream', file.size);
        f.file = file;
        this.transferredFiles[f.key()] = f;
        try {
            this.onfiletransfer?.call(this, f);
        } catch (e) {
            f.cancel(e);
            return f;
        }
        if (f.state === '')
            f.invite();
        return f;
    }

    /**
     * Finds a transfer by its peer, id and direction.
     * @returns {TransferredFile|undefined}
     */
    findTransfer(userid, id, up) {
        return this.transferredFiles[TransferredFile.key(userid, id, up)];
    }

    /**
     * Handles the value of a usermessage of kind 'filetransfer'.
     * @param {string} source - the peer's id
     * @param {string} username
     * @param {any} value
     */
    gotFileTransfer(source, username, value) {
        if (!value || typeof value !== 'object' || typeof value.id !== 'string')
            return;
        const reply = (type, extra) => {
            try {
                this.usermessage('filetransfer', source, {type, version: [fileTransferVersion], id: value.id, ...extra});
            } catch (e) {
                // not connected any more
            }
        };
        switch (value.type) {
        case 'invite': {
            if (Array.isArray(value.version) && !value.version.includes(fileTransferVersion)) {
                reply('reject', {message: 'unknown file transfer protocol version'});
                return;
            }
            if (!this.onfiletransfer) {
                reply('reject', {message: 'this client does not receive files'});
                return;
            }
            if (this.findTransfer(source, value.id, false))
                return;
            const size = Number(value.size);
            if (!Number.isSafeInteger(size) || size < 0) {
                reply('reject', {message: 'bad file size'});
                return;
            }
            const f = new TransferredFile(this, source, value.id, false, username,
                String(value.name ?? 'file'), String(value.mimetype || 'application/octet-stream'), size);
            this.transferredFiles[f.key()] = f;
            try {
                this.onfiletransfer.call(this, f);
            } catch (e) {
                f.cancel(e);
                return;
            }
            if (f.state === '')
                f.event('inviting');
            return;
        }
        case 'offer':
            this.findTransfer(source, value.id, true)?.gotOffer(value.sdp);
            return;
        case 'answer':
            this.findTransfer(source, value.id, false)?.gotAnswer(value.sdp);
            return;
        case 'downice':
            this.findTransfer(source, value.id, true)?.gotRemoteIce(value.candidate);
            return;
        case 'upice':
            this.findTransfer(source, value.id, false)?.gotRemoteIce(value.candidate);
            return;
        case 'ice':
            (this.findTransfer(source, value.id, true) || this.findTransfer(source, value.id, false))
                ?.gotRemoteIce(value.candidate);
            return;
        case 'reject':
            this.findTransfer(source, value.id, true)?.cancelledByPeer(value.message ?? value.value);
            return;
        case 'cancel':
            (this.findTransfer(source, value.id, false) || this.findTransfer(source, value.id, true))
                ?.cancelledByPeer(value.message ?? value.value);
            return;
        default:
            console.warn('Unknown file transfer message', value.type);
        }
    }
}

/**
 * A set of related tracks carried by one RTCPeerConnection, going up (we
 * send) or down (the server sends).
 */
export class Stream {
    /**
     * @param {ServerConnection} sc
     * @param {string} id
     * @param {string} localId
     * @param {RTCPeerConnection} pc
     * @param {boolean} up
     */
    constructor(sc, id, localId, pc, up) {
        this.sc = sc;
        /** The stream's id on the wire. */
        this.id = id;
        /** An id that survives replacement of the stream. */
        this.localId = localId;
        this.pc = pc;
        /** True if we send this stream. */
        this.up = up;
        /** camera, screenshare or video. */
        this.label = '';
        /** For down streams: the sender's id and username. */
        this.source = '';
        this.username = '';
        /** For up streams: the id of the stream this one replaces, until negotiated. */
        this.replace = null;
        /** The MediaStream carrying the tracks. @type {MediaStream|null} */
        this.stream = null;
        this.closed = false;
        this.remoteCandidates = [];
        /** Free for the application. */
        this.userdata = {};
        /**
         * For down streams: true while the server sends a lower video layer than
         * the best we asked for because our network cannot carry it (sfubox only;
         * never because we asked for low quality ourselves).
         */
        this.reducedByNetwork = false;
        /** Latest statistics, by track id (see updateStats). */
        this.stats = {};
        this.statsTimer = null;
        this.previousStats = {};

        /** @type {(this: Stream, replace: boolean) => void} */
        this.onclose = null;
        /** @type {(this: Stream, error: any) => void} */
        this.onerror = null;
        /** @type {(this: Stream, track: MediaStreamTrack, transceiver: RTCRtpTransceiver, stream: MediaStream) => void} */
        this.ondowntrack = null;
        /** @type {(this: Stream, state: string) => void} */
        this.onstatus = null;
        /** @type {(this: Stream, stats: object) => void} */
        this.onstats = null;
        /** @type {(this: Stream) => void} */
        this.onnegotiationcompleted = null;
        /** @type {(this: Stream, reduced: boolean) => void} */
        this.onreduced = null;
    }

    /**
     * Closes the stream and tells the server (close for an up stream, abort
     * for a down one).  With replace, the server is not told: the stream
     * that replaces it carries the news.
     * @param {boolean} [replace]
     */
    close(replace) {
        if (this.closed)
            return;
        if (!replace && this.sc.socket) {
            try {
                this.sc.send({type: this.up ? 'close' : 'abort', id: this.id});
            } catch (e) {
                // the socket is closing
            }
        }
        this.closeLocally(!!replace);
    }

    /**
     * Closes the stream without telling the server.
     * @param {boolean} replace
     */
    closeLocally(replace) {
        if (this.closed)
            return;
        this.closed = true;
        this.setStatsInterval(0);
        try {
            this.pc.close();
        } catch (e) {
            console.warn(e);
        }
        const table = this.up ? this.sc.up : this.sc.down;
        if (table[this.id] === this)
            delete table[this.id];
        call(this, this.onclose, replace);
    }

    /**
     * Sends an offer for an up stream.
     * @param {boolean} [iceRestart]
     */
    async negotiate(iceRestart) {
        if (!this.up || this.closed)
            return;
        try {
            const offer = await this.pc.createOffer(iceRestart ? {iceRestart: true} : undefined);
            await this.pc.setLocalDescription(offer);
            if (this.closed)
                return;
            const m = {
                type: 'offer', kind: iceRestart ? 'renegotiate' : '', id: this.id,
                label: this.label, source: this.sc.id, username: this.sc.username ?? '',
                sdp: this.pc.localDescription.sdp,
            };
            if (this.replace)
                m.replace = this.replace;
            this.sc.send(m);
            this.replace = null;
        } catch (e) {
            call(this, this.onerror, e);
            this.close();
        }
    }

    /** Restarts ICE: a new offer for up streams, a request for down ones. */
    restartIce() {
        if (this.closed)
            return;
        if (this.up) {
            this.negotiate(true);
        } else {
            try {
                this.sc.send({type: 'renegotiate', id: this.id});
            } catch (e) {
                // not connected
            }
        }
    }

    /**
     * For a down stream: overrides which tracks we want from it (null
     * returns to the connection-wide request).
     * @param {string[]|null} what
     */
    request(what) {
        this.sc.send({type: 'requestStream', id: this.id, request: what});
    }

    async flushRemoteCandidates() {
        const candidates = this.remoteCandidates;
        this.remoteCandidates = [];
        for (const candidate of candidates) {
            try {
                await this.pc.addIceCandidate(candidate);
            } catch (e) {
                console.warn('addIceCandidate', e);
            }
        }
    }

    /**
     * Collects statistics every ms milliseconds (0 stops).
     * @param {number} ms
     */
    setStatsInterval(ms) {
        if (this.statsTimer)
            clearInterval(this.statsTimer);
        this.statsTimer = null;
        if (ms > 0 && !this.closed) {
            this.statsTimer = setInterval(() => this.updateStats(), ms);
            this.statsTimer?.unref?.();
        }
    }

    /**
     * Reads the peer connection's statistics and calls onstats with a map
     * from track id to {kind, rate (bit/s), bytes, packets, framesDecoded,
     * audioEnergy (mean square of the samples, 0..1, for received audio and
     * for our own microphone)}.
     */
    async updateStats() {
        if (this.closed)
            return;
        let report;
        try {
            report = await this.pc.getStats();
        } catch (e) {
            return;
        }
        const byId = new Map();
        report.forEach(r => byId.set(r.id, r));
        const stats = {};
        const previous = this.previousStats;
        const next = {};
        for (const r of byId.values()) {
            let trackId;
            if (r.type === 'outbound-rtp' && this.up) {
                const source = byId.get(r.mediaSourceId);
                trackId = (source?.trackIdentifier || r.kind) + (r.rid ? '#' + r.rid : '');
            } else if (r.type === 'inbound-rtp' && !this.up) {
                trackId = r.trackIdentifier || r.kind;
            } else if (r.type === 'media-source' && this.up && r.kind === 'audio') {
                trackId = r.trackIdentifier + '#source';
            } else {
                continue;
            }
            const bytes = r.bytesSent ?? r.bytesReceived ?? 0;
            const entry = {
                kind: r.kind,
                bytes,
                packets: r.packetsSent ?? r.packetsReceived ?? 0,
                framesDecoded: r.framesDecoded,
                timestamp: r.timestamp,
                totalAudioEnergy: r.totalAudioEnergy,
                totalSamplesDuration: r.totalSamplesDuration,
            };
            const old = previous[trackId];
            if (old && r.timestamp > old.timestamp)
                entry.rate = (bytes - old.bytes) * 8000 / (r.timestamp - old.timestamp);
            if (r.totalAudioEnergy !== undefined && old?.totalSamplesDuration !== undefined) {
                const dt = r.totalSamplesDuration - old.totalSamplesDuration;
                entry.audioEnergy = dt > 0 ? (r.totalAudioEnergy - old.totalAudioEnergy) / dt : 0;
            }
            next[trackId] = entry;
            stats[trackId] = entry;
        }
        this.previousStats = next;
        this.stats = stats;
        call(this, this.onstats, stats);
    }
}

/**
 * A peer-to-peer file transfer.  state moves
 * '' → inviting → connecting → connected → done → closed, or from any state
 * to cancelled → closed.  onevent(state, data) is called on every change and
 * on every chunk (state 'connected'); a download's 'done' carries the Blob.
 */
export class TransferredFile {
    /**
     * @param {ServerConnection} sc
     * @param {string} userid - the peer
     * @param {string} id - the transfer's id, chosen by the sender
     * @param {boolean} up - true when we send
     * @param {string} username - the peer's name
     * @param {string} name - the file's name
     * @param {string} mimetype
     * @param {number} size - in bytes
     */
    constructor(sc, userid, id, up, username, name, mimetype, size) {
        this.sc = sc;
        this.userid = userid;
        this.id = id;
        this.up = up;
        this.username = username;
        this.name = name;
        this.mimetype = mimetype;
        this.size = size;
        /** @type {File|null} */
        this.file = null;
        /** '', inviting, connecting, connected, done, cancelled or closed. */
        this.state = '';
        /** Bytes sent (up) or received (down) so far. */
        this.datalen = 0;
        this.chunks = [];
        this.pc = null;
        this.dc = null;
        this.remoteCandidates = [];
        this.doneTimer = null;
        /** Free for the application. */
        this.userdata = {};
        /** @type {(this: TransferredFile, state: string, data?: any) => void} */
        this.onevent = null;
    }

    static key(userid, id, up) {
        return (up ? 'up:' : 'down:') + userid + ':' + id;
    }

    key() {
        return TransferredFile.key(this.userid, this.id, this.up);
    }

    /**
     * Moves to a state and tells the application.
     * @param {string} state
     * @param {any} [data]
     */
    event(state, data) {
        this.state = state;
        call(this, this.onevent, state, data);
    }

    /** Progress notification: same state, new datalen. */
    progress() {
        call(this, this.onevent, this.state);
    }

    send(value) {
        this.sc.usermessage('filetransfer', this.userid,
            {version: [fileTransferVersion], id: this.id, ...value});
    }

    invite() {
        if (!this.up || this.state !== '')
            throw new Error('invite in state ' + this.state);
        this.send({type: 'invite', name: this.name, size: this.size, mimetype: this.mimetype});
        this.event('inviting');
    }

    /** Accepts an incoming file: we create the connection and its data channel. */
    async receive() {
        if (this.up || this.state !== 'inviting')
            throw new Error('receive in state ' + this.state);
        this.event('connecting');
        try {
            const pc = new globalThis.RTCPeerConnection(this.sc.rtcConfiguration || undefined);
            this.pc = pc;
            pc.onicecandidate = e => this.sendCandidate(e.candidate, 'downice');
            pc.onconnectionstatechange = () => this.connectionStateChanged();
            const dc = pc.createDataChannel('file');
            this.wireChannel(dc);
            const offer = await pc.createOffer();
            await pc.setLocalDescription(offer);
            if (this.state !== 'connecting')
                return;
            this.send({type: 'offer', sdp: pc.localDescription.sdp});
        } catch (e) {
            this.cancel(e);
        }
    }

    sendCandidate(candidate, type) {
        if (!candidate || this.isOver())
            return;
        try {
            this.send({type, candidate: candidate.toJSON ? candidate.toJSON() : candidate});
        } catch (e) {
            // not connected; the transfer is cancelled with the socket
        }
    }

    connectionStateChanged() {
        const state = this.pc?.connectionState;
        if (state === 'failed' && !this.isOver())
            this.cancel('the peer-to-peer connection failed');
    }

    /** The sender gets the receiver's offer. */
    async gotOffer(sdp) {
        if (!this.up || this.state !== 'inviting') {
            return;
        }
        this.event('connecting');
        try {
            const pc = new globalThis.RTCPeerConnection(this.sc.rtcConfiguration || undefined);
            this.pc = pc;
            pc.onicecandidate = e => this.sendCandidate(e.candidate, 'upice');
            pc.onconnectionstatechange = () => this.connectionStateChanged();
            pc.ondatachannel = e => {
                if (e.channel.label !== 'file' || this.dc) {
                    e.channel.close();
                    return;
                }
                this.wireChannel(e.channel);
            };
            await pc.setRemoteDescription({type: 'offer', sdp});
            await this.flushRemoteCandidates();
            const answer = await pc.createAnswer();
            await pc.setLocalDescription(answer);
            if (this.state !== 'connecting')
                return;
            this.send({type: 'answer', sdp: pc.localDescription.sdp});
        } catch (e) {
            this.cancel(e);
        }
    }

    /** The receiver gets the sender's answer. */
    async gotAnswer(sdp) {
        if (this.up || this.state !== 'connecting' || !this.pc)
            return;
        try {
            await this.pc.setRemoteDescription({type: 'answer', sdp});
            await this.flushRemoteCandidates();
        } catch (e) {
            this.cancel(e);
        }
    }

    async gotRemoteIce(candidate) {
        if (!candidate || this.isOver())
            return;
        if (this.pc && this.pc.remoteDescription) {
            try {
                await this.pc.addIceCandidate(candidate);
            } catch (e) {
                console.warn('addIceCandidate', e);
            }
        } else {
            this.remoteCandidates.push(candidate);
        }
    }

    async flushRemoteCandidates() {
        const candidates = this.remoteCandidates;
        this.remoteCandidates = [];
        for (const c of candidates) {
            try {
                await this.pc.addIceCandidate(c);
            } catch (e) {
                console.warn('addIceCandidate', e);
            }
        }
    }

    /**
     * @param {RTCDataChannel} dc
     */
    wireChannel(dc) {
        this.dc = dc;
        dc.binaryType = 'arraybuffer';
        dc.onopen = () => {
            if (this.state !== 'connecting')
                return;
            this.event('connected');
            if (this.up)
                this.sendData();
        };
        dc.onmessage = e => this.gotData(e.data);
        dc.onerror = e => {
            if (!this.isOver())
                this.cancel(e.error?.message || 'data channel error');
        };
        dc.onclose = () => {
            if (this.state === 'done')
                this.close();
            else if (!this.isOver())
                this.cancel('the data channel closed early');
        };
    }

    /** The sender pushes the file in chunks, pausing while the channel's buffer is full. */
    async sendData() {
        const dc = this.dc;
        dc.bufferedAmountLowThreshold = 4 * fileChunkSize;
        const highWater = 64 * fileChunkSize;
        try {
            while (this.datalen < this.size) {
                if (this.state !== 'connected')
                    return;
                if (dc.bufferedAmount > highWater) {
                    await new Promise(resolve => {
                        dc.onbufferedamountlow = () => {
                            dc.onbufferedamountlow = null;
                            resolve();
                        };
                    });
                    continue;
                }
                const end = Math.min(this.datalen + fileChunkSize, this.size);
                const chunk = await this.file.slice(this.datalen, end).arrayBuffer();
                if (this.state !== 'connected')
                    return;
                dc.send(chunk);
                this.datalen = end;
                this.progress();
            }
        } catch (e) {
            this.cancel(e);
        }
    }

    /**
     * A data-channel message: a chunk for the receiver, "done" for the sender.
     * @param {ArrayBuffer|string} data
     */
    gotData(data) {
        if (this.up) {
            if (data === 'done' && this.state === 'connected' && this.datalen === this.size) {
                this.event('done');
                this.close();
            } else {
                this.cancel('unexpected data from the receiver');
            }
            return;
        }
        if (this.state !== 'connected')
            return;
        if (typeof data === 'string') {
            this.cancel('unexpected text from the sender');
            return;
        }
        const length = data.byteLength ?? data.size ?? 0;
        this.chunks.push(data);
        this.datalen += length;
        if (this.datalen > this.size) {
            this.cancel('the sender sent more data than announced');
            return;
        }
        this.progress();
        if (this.datalen === this.size) {
            const blob = new globalThis.Blob(this.chunks, {type: this.mimetype});
            this.chunks = [];
            try {
                this.dc.send('done');
            } catch (e) {
                // we have the data; the sender will notice
            }
            this.event('done', blob);
            // The sender closes the channel when it reads "done"; close
            // anyway if it does not.
            this.doneTimer = setTimeout(() => this.close(), 5000);
            this.doneTimer?.unref?.();
        }
    }

    /** @returns {boolean} true once cancelled or closed */
    isOver() {
        return this.state === 'cancelled' || this.state === 'closed';
    }

    /**
     * Cancels the transfer (any state), telling the peer unless notify is false.
     * @param {any} [message] - a reason, string or Error
     * @param {boolean} [notify]
     */
    cancel(message, notify = true) {
        if (this.isOver())
            return;
        if (this.state === 'done') {
            // the data is complete; there is nothing left to cancel
            this.close();
            return;
        }
        const text = message instanceof Error ? message.message : (message ? String(message) : '');
        if (notify) {
            try {
                this.send({type: this.up ? 'cancel' : 'reject', message: text || undefined});
            } catch (e) {
                // not connected
            }
        }
        this.event('cancelled', text);
        this.close();
    }

    /** The peer cancelled. */
    cancelledByPeer(message) {
        if (this.isOver() || this.state === 'done')
            return;
        this.event('cancelled', message ? String(message) : (this.up ? 'the receiver declined' : 'the sender cancelled'));
        this.close();
    }

    /** Releases the connection and forgets the transfer. */
    close() {
        if (this.state === 'closed')
            return;
        if (this.doneTimer)
            clearTimeout(this.doneTimer);
        this.doneTimer = null;
        if (this.dc) {
            this.dc.onclose = null;
            this.dc.onmessage = null;
            try {
                this.dc.close();
            } catch (e) {
                // already closed
            }
        }
        if (this.pc) {
            try {
                this.pc.close();
            } catch (e) {
                // already closed
            }
        }
        this.chunks = [];
        if (this.sc.transferredFiles[this.key()] === this)
            delete this.sc.transferredFiles[this.key()];
        this.event('closed');
    }
}
