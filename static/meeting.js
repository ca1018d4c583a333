// sfubox meeting page: login, videos, chat, people, file transfer.
// Uses the client library in protocol.js; see API.md in this directory (served as /API.md).

import {ServerConnection} from './protocol.js';

const $ = id => document.getElementById(id);

/** Mean-square audio energy above which someone counts as speaking. */
const speakingEnergy = 0.0005;
/** How long the speaking highlight stays after the last loud sample. */
const speakingHoldMs = 700;
/** Statistics interval for active-speaker detection and send rates. */
const statsIntervalMs = 250;

const receivePresets = {
    all: {'': ['audio', 'video']},
    low: {'': ['audio', 'video-low'], screenshare: ['audio', 'video']},
    audio: {'': ['audio']},
    none: {'': []},
};

const settings = loadSettings();

const state = {
    groupName: '',
    status: null,
    endpoint: '',
    token: null,
    /** What we logged in with: {username, password} or {username, token}. */
    credentials: null,
    /** @type {ServerConnection|null} */
    sc: null,
    inMeeting: false,
    leaving: false,
    failed: false,
    kickedMessage: '',
    startWith: 'none',
    micMuted: false,
    /** Up streams by purpose. @type {{camera: any, screen: any}} */
    sending: {camera: null, screen: null},
    fileTarget: null,
    lastChat: null,
};

/** Exposed for diagnostics and the browser tests. */
window.sfubox = {
    connection: () => state.sc,
};

// ---------------------------------------------------------------- settings

function loadSettings() {
    const defaults = {camera: '', mic: '', quality: '700000', simulcast: 'auto', receive: 'all'};
    try {
        return {...defaults, ...JSON.parse(localStorage.getItem('sfubox.settings') || '{}')};
    } catch (e) {
        return defaults;
    }
}

function saveSettings() {
    try {
        localStorage.setItem('sfubox.settings', JSON.stringify(settings));
    } catch (e) {
        // storage may be disabled; settings then last for this page only
    }
}

// ---------------------------------------------------------------- small helpers

/**
 * Creates an element with attributes and children (strings become text).
 * @param {string} tag
 * @param {object} [attributes]
 * @param {...(Node|string|null)} children
 */
function el(tag, attributes = {}, ...children) {
    const e = document.createElement(tag);
    for (const [key, value] of Object.entries(attributes)) {
        if (value === null || value === undefined || value === false)
            continue;
        if (key === 'class')
            e.className = value;
        else if (key === 'text')
            e.textContent = value;
        else
            e.setAttribute(key, value === true ? '' : value);
    }
    for (const child of children) {
        if (child !== null && child !== undefined)
            e.append(child);
    }
    return e;
}

function icon(name, extra = '') {
    const svg = document.createElementNS('http://www.w3.org/2000/svg', 'svg');
    svg.setAttribute('class', 'icon ' + extra);
    svg.setAttribute('aria-hidden', 'true');
    const use = document.createElementNS('http://www.w3.org/2000/svg', 'use');
    use.setAttribute('href', '#i-' + name);
    svg.append(use);
    return svg;
}

function initials(name) {
    const words = (name || '?').trim().split(/\s+/).filter(Boolean);
    const letters = words.length > 1 ? words[0][0] + words[1][0] : (words[0] || '?').slice(0, 2);
    return letters.toUpperCase();
}

function formatBytes(n) {
    if (n < 1024)
        return n + ' B';
    if (n < 1024 * 1024)
        return (n / 1024).toFixed(1) + ' KiB';
    if (n < 1024 * 1024 * 1024)
        return (n / 1024 / 1024).toFixed(1) + ' MiB';
    return (n / 1024 / 1024 / 1024).toFixed(2) + ' GiB';
}

function formatTime(date) {
    return date.toLocaleTimeString([], {hour: '2-digit', minute: '2-digit'});
}

/**
 * Shows a short notice.
 * @param {'info'|'warning'|'error'} kind
 * @param {string} text
 */
function toast(kind, text) {
    const close = el('button', {class: 'toast-close', type: 'button', 'aria-label': 'Dismiss'}, '×');
    const t = el('div', {class: 'toast ' + kind, role: kind === 'error' ? 'alert' : null}, el('span', {text}), close);
    const remove = () => t.remove();
    close.addEventListener('click', remove);
    $('toasts').append(t);
    setTimeout(remove, kind === 'error' ? 10000 : 6000);
}

/**
 * Asks for a line of text in a modal dialog.
 * @returns {Promise<string|null>} null when cancelled
 */
function prompt(title, label, initial = '', okLabel = 'OK') {
    const dialog = $('prompt-dialog');
    $('prompt-title').textContent = title;
    $('prompt-label').textContent = label;
    $('prompt-ok').textContent = okLabel;
    const input = $('prompt-input');
    input.value = initial;
    dialog.returnValue = '';
    return new Promise(resolve => {
        dialog.addEventListener('close', () => {
            resolve(dialog.returnValue === 'ok' ? input.value.trim() : null);
        }, {once: true});
        dialog.showModal();
        input.focus();
    });
}

function setConnectionState(text, kind = '') {
    const s = $('connection-state');
    s.textContent = text;
    s.className = 'state ' + kind;
}

// ---------------------------------------------------------------- start up

async function init() {
    const params = new URLSearchParams(location.search);
    const fromQuery = params.get('group');
    let statusURL;
    if (fromQuery) {
        state.groupName = fromQuery;
        statusURL = new URL('/group/' + fromQuery.split('/').map(encodeURIComponent).join('/') + '/.status', location.href);
    } else {
        const m = location.pathname.match(/^\/group\/(.+?)\/?$/);
        state.groupName = m ? m[1].split('/').map(decodeURIComponent).join('/') : '';
        statusURL = new URL('.status', location.href);
    }
    state.token = params.get('token');
    const presetName = params.get('username');

    wireLogin();
    wireMeeting();

    const username = $('login-username');
    username.value = presetName || localStorage.getItem('sfubox.username') || '';
    if (state.token) {
        $('password-row').hidden = true;
        $('login-username-label').textContent = 'Your name (if the invitation has none)';
    } else {
        username.required = true;
    }

    if (!state.groupName) {
        loginError('This page needs a group: open it as /group/NAME/ or with ?group=NAME.');
        $('login-submit').disabled = true;
        return;
    }
    $('login-group').textContent = state.groupName;
    try {
        const r = await fetch(statusURL, {cache: 'no-cache'});
        if (!r.ok)
            throw new Error(r.status === 404 ? 'There is no group called “' + state.groupName + '”.' : `${r.status} ${r.statusText}`);
        state.status = await r.json();
    } catch (e) {
        loginError(e.message || String(e));
        $('login-submit').disabled = true;
        return;
    }
    const status = state.status;
    if (status.redirect) {
        location.href = status.redirect;
        return;
    }
    const title = status.displayName || status.name || state.groupName;
    document.title = title + ' · sfubox';
    $('group-title').textContent = title;
    $('login-group').textContent = title;
    if (status.description) {
        $('login-description').textContent = status.description;
        $('login-description').hidden = false;
    }
    $('group-locked').hidden = !status.locked;
    state.endpoint = status.endpoint || (location.protocol === 'https:' ? 'wss:' : 'ws:') + '//' + location.host + '/ws';
    // Join is possible only now: before the status arrives there is no endpoint to connect to
    // (an empty URL would open a WebSocket on the page's own path).
    $('login-submit').disabled = false;
    if (status.authPortal && !state.token) {
        $('portal-link').href = status.authPortal;
        $('portal-row').hidden = false;
    }
    (username.value ? $('login-password') : username).focus();
}

// ---------------------------------------------------------------- login

function wireLogin() {
    $('login-form').addEventListener('submit', async e => {
        e.preventDefault();
        if (!state.endpoint)
            return; // the group's status has not arrived (or failed): nothing to join yet
        loginError('');
        const username = $('login-username').value.trim();
        const password = $('login-password').value;
        state.startWith = new FormData($('login-form')).get('start') || 'none';
        if (username)
            localStorage.setItem('sfubox.username', username);
        $('login-submit').disabled = true;
        try {
            if (state.token) {
                state.credentials = {username, token: state.token};
            } else if (state.status?.authServer) {
                const token = await fetchToken(username, password);
                state.credentials = token === null ? {username, password} : {username, token};
            } else {
                state.credentials = {username, password};
            }
            await connect();
        } catch (err) {
            loginError(err.message || String(err));
        } finally {
            $('login-submit').disabled = false;
        }
    });
}

/** Asks the group's authentication server for a token; null means "use the password". */
async function fetchToken(username, password) {
    const r = await fetch(state.status.authServer, {
        method: 'POST',
        headers: {'Content-Type': 'application/json'},
        body: JSON.stringify({location: state.status.location || location.href, username, password}),
    });
    if (r.status === 204)
        return null;
    if (!r.ok)
        throw new Error(r.status === 403 || r.status === 401 ? 'Wrong name or password.' : `Authentication server: ${r.status} ${r.statusText}`);
    return (await r.text()).trim();
}

function loginError(text) {
    const e = $('login-error');
    e.textContent = text;
    e.hidden = !text;
}

function showLogin() {
    state.inMeeting = false;
    $('login').hidden = false;
    $('meeting').hidden = true;
    $('toolbar').hidden = true;
    $('leave-button').hidden = true;
    $('change-password').hidden = true;
    document.body.classList.remove('in-meeting', 'panel-open');
}

function showMeeting() {
    state.inMeeting = true;
    $('login').hidden = true;
    $('disconnected').hidden = true;
    $('meeting').hidden = false;
    $('toolbar').hidden = false;
    $('leave-button').hidden = false;
    document.body.classList.add('in-meeting');
}

// ---------------------------------------------------------------- connection

async function connect() {
    state.leaving = false;
    state.failed = false;
    state.kickedMessage = '';
    setConnectionState('Connecting…', 'busy');
    const sc = new ServerConnection();
    state.sc = sc;
    sc.onconnected = onConnected;
    sc.onclose = onClose;
    sc.onjoined = onJoined;
    sc.onuser = onUser;
    sc.onchat = onChat;
    sc.onclearchat = onClearChat;
    sc.onusermessage = onUserMessage;
    sc.ondownstream = onDownStream;
    sc.onfiletransfer = onFileTransfer;
    try {
        await sc.connect(state.endpoint);
    } catch (e) {
        setConnectionState('Offline', 'bad');
        throw new Error('Could not reach the server. Check your connection and try again.');
    }
}

function onConnected() {
    const c = state.credentials;
    if (c.token)
        this.join(state.groupName, 'join', c.username || undefined, {type: 'token', token: c.token});
    else
        this.join(state.groupName, 'join', c.username, c.password);
}

function onJoined(kind, group, perms, status, data, error, message) {
    if (this !== state.sc)
        return;
    switch (kind) {
    case 'fail':
        state.failed = true;
        this.close();
        showLogin();
        if (error === 'need-username') {
            $('login-username').required = true;
            loginError('Please choose a name to join.');
            $('login-username').focus();
        } else {
            loginError(friendlyJoinError(message));
        }
        return;
    case 'redirect':
        state.failed = true;
        this.close();
        location.href = message;
        return;
    case 'join':
        setConnectionState('Connected', 'good');
        clearChatLog();
        showMeeting();
        this.request(receivePresets[settings.receive] || receivePresets.all);
        updatePermissions();
        updateGroupStatus(status);
        if (state.startWith !== 'none' && perms.includes('present')) {
            startCamera(state.startWith === 'camera');
            state.startWith = 'none';
        }
        $('chat-input').focus();
        return;
    case 'change':
        updatePermissions();
        updateGroupStatus(status);
        return;
    case 'leave':
        return;
    }
}

function friendlyJoinError(message) {
    if (message === 'not authorised' && state.token)
        return 'This invitation is not valid: it may have expired or been revoked.';
    if (message === 'not authorised')
        return 'Wrong name or password.';
    if (message === 'group does not exist')
        return 'This group does not exist.';
    return message ? message.charAt(0).toUpperCase() + message.slice(1) + '.' : 'Could not join the group.';
}

function updateGroupStatus(status) {
    $('group-locked').hidden = !status?.locked;
    if (status?.displayName) {
        document.title = status.displayName + ' · sfubox';
        $('group-title').textContent = status.displayName;
    }
    updateChangePassword(status);
}

/** The "Change password" link: for a user who logged in with a password, on a server that
 * lets users change theirs (joined status canChangePassword; docs/admin.md). */
function updateChangePassword(status) {
    const link = $('change-password');
    const c = state.credentials;
    const show = !!(status?.canChangePassword && c && !c.token && c.username && state.inMeeting);
    if (show) {
        const params = new URLSearchParams({group: state.groupName, username: c.username});
        link.href = '/change-password.html?' + params.toString();
    }
    link.hidden = !show;
}

function onClose(code, reason) {
    if (this !== state.sc)
        return;
    setConnectionState('Disconnected', 'bad');
    state.sending = {camera: null, screen: null};
    updateToolbar();
    if (state.leaving) {
        state.leaving = false;
        showLogin();
        setConnectionState('');
        return;
    }
    if (state.failed)
        return;
    if (!state.inMeeting) {
        loginError('The server closed the connection' + (reason ? ': ' + reason : '.'));
        return;
    }
    const text = state.kickedMessage ||
        'The connection to the server was lost' + (reason ? ' (' + reason + ').' : '.');
    $('disconnected-title').textContent = state.kickedMessage ? 'You were removed' : 'Disconnected';
    $('disconnected-reason').textContent = text;
    $('disconnected').hidden = false;
    $('reconnect-button').focus();
}

async function reconnect() {
    const button = $('reconnect-button');
    button.disabled = true;
    $('disconnected-reason').textContent = 'Reconnecting…';
    try {
        await connect();
    } catch (e) {
        $('disconnected-reason').textContent = e.message;
    } finally {
        button.disabled = false;
    }
}

function leave() {
    if (!state.sc)
        return;
    state.leaving = true;
    stopSending();
    state.sc.close();
}

// ---------------------------------------------------------------- messages

function onUserMessage(id, dest, username, time, privileged, kind, error, value) {
    switch (kind) {
    case 'kicked':
        if (privileged)
            state.kickedMessage = 'You were removed from the meeting by ' + (username || 'an operator') +
                (value ? ': ' + value : '.');
        return;
    case 'error':
    case 'warning':
    case 'info':
        if (privileged)
            toast(kind, String(value ?? ''));
        return;
    case 'mute':
        if (privileged) {
            setMicMuted(true);
            toast('warning', (username || 'An operator') + ' muted your microphone.');
        }
        return;
    case 'token':
        if (privileged && error)
            toast('error', 'Invitation: ' + (value ?? error));
        else if (privileged && value?.token)
            addSystemLine('Invitation link (valid until ' + new Date(value.expires).toLocaleString() + '):\n' + invitationURL(value.token));
        return;
    case 'userinfo':
        if (privileged && value)
            addSystemLine(`${value.username ?? value.id}: ${value.address ?? 'address unknown'}`);
        return;
    default:
        // other kinds are for other clients
    }
}

function onChat(id, dest, username, time, privileged, history, kind, message) {
    addChatMessage({id, dest, username, time, privileged, kind, text: String(message ?? '')});
    if (!history)
        markUnread();
}

function clearChatLog() {
    $('chat-log').replaceChildren();
    state.lastChat = null;
}

function onClearChat(value) {
    if (!value) {
        clearChatLog();
        addSystemLine('The chat was cleared.');
        return;
    }
    for (const li of [...$('chat-log').children]) {
        if (li.dataset.source === value.userId && (!value.id || li.dataset.messageId === value.id))
            li.remove();
    }
    state.lastChat = null;
}

function linkify(text) {
    const fragment = document.createDocumentFragment();
    const parts = text.split(/(https?:\/\/[^\s<>"]+)/g);
    parts.forEach((part, i) => {
        if (i % 2 === 1)
            fragment.append(el('a', {href: part, target: '_blank', rel: 'noopener noreferrer'}, part));
        else if (part)
            fragment.append(part);
    });
    return fragment;
}

function addChatMessage(m) {
    const sc = state.sc;
    const log = $('chat-log');
    const fromServer = !m.id;
    const mine = m.id && m.id === sc?.id;
    const isPrivate = !!m.dest;
    const li = el('li', {class: 'msg', 'data-source': m.id || '', 'data-message-id': m.messageId || ''});
    if (fromServer)
        li.classList.add('system');
    if (mine)
        li.classList.add('mine');
    if (m.kind === 'me') {
        li.classList.add('me');
        li.append(el('div', {class: 'msg-body'}, '* ' + (m.username || 'Someone') + ' ', linkify(m.text)));
        state.lastChat = null;
    } else {
        let from = m.username || (fromServer ? 'Server' : 'Anonymous');
        if (isPrivate) {
            li.classList.add('private');
            const to = m.dest === sc?.id ? 'you' : (sc?.users[m.dest]?.username || 'someone');
            from = (mine ? 'You' : from) + ' → ' + to + ' (private)';
        }
        const last = state.lastChat;
        const continued = last && !isPrivate && !fromServer && last.source === m.id &&
            m.time - last.time < 120000;
        if (continued)
            li.classList.add('cont');
        li.append(
            el('div', {class: 'msg-head'},
                el('span', {class: 'msg-from', text: from}),
                el('time', {datetime: m.time.toISOString(), text: formatTime(m.time)})),
            el('div', {class: 'msg-body'}, linkify(m.text)));
        state.lastChat = isPrivate || fromServer ? null : {source: m.id, time: m.time};
    }
    const atBottom = log.scrollHeight - log.scrollTop - log.clientHeight < 40;
    log.append(li);
    if (atBottom || mine)
        log.scrollTop = log.scrollHeight;
}

function addSystemLine(text) {
    const li = el('li', {class: 'msg notice'}, el('div', {class: 'msg-body'}, linkify(text)));
    $('chat-log').append(li);
    state.lastChat = null;
    $('chat-log').scrollTop = $('chat-log').scrollHeight;
}

function markUnread() {
    const chatVisible = !$('panel-chat').hidden &&
        (!window.matchMedia('(max-width: 760px)').matches || document.body.classList.contains('panel-open'));
    if (!chatVisible) {
        $('tab-chat').classList.add('unread');
        $('btn-panel').classList.add('unread');
    }
}

// ---------------------------------------------------------------- chat commands

/** Finds the user whose name starts the text; returns the user and the rest. */
function userAndRest(text) {
    const sc = state.sc;
    const users = Object.entries(sc.users).sort((a, b) => b[1].username.length - a[1].username.length);
    for (const [id, user] of users) {
        const name = user.username;
        if (name && (text === name || text.startsWith(name + ' ')))
            return {id, user, rest: text.slice(name.length).trim()};
    }
    const word = text.split(/\s+/)[0];
    throw new Error(word ? `Nobody here is called “${word}”.` : 'Say which user.');
}

function requireOp() {
    if (!state.sc.permissions.includes('op'))
        throw new Error('Only operators can do that.');
}

const userActions = {
    op: 'make an operator', unop: 'remove operator rights', present: 'allow to present',
    unpresent: 'stop from presenting', shutup: 'stop from chatting', unshutup: 'allow to chat again',
    kick: 'remove from the meeting (optional message)', identify: 'show their network address',
};

const commands = {
    help: {args: '', help: 'list the commands', run() {
        const lines = Object.entries(commands).map(([name, c]) => `/${name} ${c.args} — ${c.help}`);
        addSystemLine(lines.join('\n'));
    }},
    me: {args: 'text', help: 'say what you are doing', run(rest) {
        state.sc.chat(state.sc.username, 'me', '', rest);
    }},
    msg: {args: 'user text', help: 'send a private message', run(rest) {
        const {id, rest: text} = userAndRest(rest);
        if (!text)
            throw new Error('Write a message after the name.');
        sendPrivate(id, text);
    }},
    raise: {args: '', help: 'raise or lower your hand', run() {
        toggleHand();
    }},
    invite: {args: '[name]', help: 'make an invitation link valid for a day', run(rest) {
        if (!state.sc.permissions.includes('token'))
            throw new Error('You are not allowed to invite people.');
        const value = {group: state.sc.group, permissions: ['present', 'message'], expires: 24 * 3600 * 1000};
        if (rest)
            value.username = rest;
        state.sc.groupaction('maketoken', value);
    }},
    lock: {args: '[message]', help: 'lock the group (operators)', run(rest) {
        requireOp();
        state.sc.groupaction('lock', rest || undefined);
    }},
    unlock: {args: '', help: 'unlock the group (operators)', run() {
        requireOp();
        state.sc.groupaction('unlock');
    }},
    clear: {args: '', help: 'clear the chat for everyone (operators)', run() {
        requireOp();
        state.sc.groupaction('clearchat');
    }},
    subgroups: {args: '', help: 'list the populated subgroups (operators)', run() {
        requireOp();
        state.sc.groupaction('subgroups');
    }},
};
for (const [kind, help] of Object.entries(userActions)) {
    commands[kind] = {args: kind === 'kick' ? 'user [message]' : 'user', help: help + ' (operators)', run(rest) {
        requireOp();
        const {id, rest: message} = userAndRest(rest);
        state.sc.useraction(kind, id, kind === 'kick' ? (message || undefined) : undefined);
    }};
}

/** The address of this page with an invitation token instead of any login details. */
function invitationURL(token) {
    const url = new URL(location.href);
    url.hash = '';
    for (const key of [...url.searchParams.keys()]) {
        if (key !== 'group')
            url.searchParams.delete(key);
    }
    url.searchParams.set('token', token);
    return url.href;
}

function sendPrivate(dest, text) {
    const sc = state.sc;
    sc.chat(sc.username, '', dest, text);
    // the server does not echo private messages
    addChatMessage({id: sc.id, dest, username: sc.username, time: new Date(), kind: '', text});
}

function submitChat() {
    const input = $('chat-input');
    const text = input.value.trim();
    if (!text || !state.sc)
        return;
    try {
        if (text.startsWith('/') && !text.startsWith('//')) {
            const space = text.search(/\s/);
            const name = (space < 0 ? text.slice(1) : text.slice(1, space)).toLowerCase();
            const rest = space < 0 ? '' : text.slice(space + 1).trim();
            const command = Object.hasOwn(commands, name) ? commands[name] : null;
            if (!command)
                throw new Error(`Unknown command /${name}. Type /help for the list.`);
            command.run(rest);
        } else {
            state.sc.chat(state.sc.username, '', '', text.startsWith('//') ? text.slice(1) : text);
        }
        input.value = '';
        resizeChatInput();
    } catch (e) {
        addSystemLine(e.message || String(e));
    }
}

function resizeChatInput() {
    const input = $('chat-input');
    input.style.height = 'auto';
    input.style.height = Math.min(input.scrollHeight, 160) + 'px';
}

// ---------------------------------------------------------------- people

function hasPerm(user, perm) {
    return !!user?.permissions?.includes(perm);
}

function onUser(id, kind) {
    const list = $('user-list');
    let li = list.querySelector(`li[data-id="${CSS.escape(id)}"]`);
    if (kind === 'delete') {
        li?.remove();
        if (state.fileTarget === id)
            state.fileTarget = null;
    } else {
        const user = state.sc.users[id];
        if (!li) {
            const menuButton = el('button', {class: 'icon-button', type: 'button', 'aria-haspopup': 'menu', 'aria-label': 'Actions'}, icon('more'));
            menuButton.addEventListener('click', () => openUserMenu(id, menuButton));
            li = el('li', {class: 'user', 'data-id': id},
                el('span', {class: 'avatar', 'aria-hidden': 'true'}),
                el('span', {class: 'user-main'}, el('span', {class: 'user-name'}), el('span', {class: 'user-badges'})),
                menuButton);
        }
        fillUserRow(li, id, user);
        placeUserRow(list, li, id, user);
        if (id === state.sc.id)
            updateHandButton();
    }
    $('people-count').textContent = String(Object.keys(state.sc.users).length);
    updateTileNames(id);
    updateRecording();
}

/** Whether a recorder (a user with the `system` permission) is in the group. */
function isRecording() {
    return Object.values(state.sc?.users || {}).some(u => hasPerm(u, 'system'));
}

/**
 * The "Recording" badge, shown to everyone while a recorder is in the group, and the
 * record button, shown to those who may record (the `record` permission).
 */
function updateRecording() {
    const recording = isRecording();
    $('group-recording').hidden = !recording;
    const b = $('btn-record');
    b.hidden = !state.sc?.permissions.includes('record');
    b.setAttribute('aria-pressed', String(recording));
    b.querySelector('span').textContent = recording ? 'Stop recording' : 'Record';
    b.title = recording ? 'Stop recording this meeting' : 'Record every stream of this meeting on the server';
}

function fillUserRow(li, id, user) {
    const self = id === state.sc.id;
    li.dataset.username = user.username;
    li.classList.toggle('self', self);
    li.querySelector('.avatar').textContent = initials(user.username);
    li.querySelector('.user-name').textContent = (user.username || 'Anonymous') + (self ? ' (you)' : '');
    const badges = li.querySelector('.user-badges');
    badges.replaceChildren();
    if (user.data?.raisehand)
        badges.append(el('span', {class: 'badge hand', title: 'Hand raised'}, icon('hand', 'small'), 'Hand raised'));
    if (hasPerm(user, 'system'))
        badges.append(el('span', {class: 'badge', text: 'Recorder'}));
    if (hasPerm(user, 'op'))
        badges.append(el('span', {class: 'badge op', text: 'Operator'}));
    if (hasPerm(user, 'present'))
        badges.append(el('span', {class: 'badge', text: 'Presenter'}));
    if (!hasPerm(user, 'message') && !hasPerm(user, 'system'))
        badges.append(el('span', {class: 'badge muted', text: 'Cannot chat'}));
    if (hasPerm(user, 'record'))
        badges.append(el('span', {class: 'badge', text: 'Can record'}));
    li.querySelector('.icon-button').setAttribute('aria-label', 'Actions for ' + (user.username || 'anonymous user'));
    li.setAttribute('aria-label', [user.username || 'Anonymous', self ? 'you' : '',
        ...[...badges.children].map(b => b.textContent)].filter(Boolean).join(', '));
}

/** Keeps the list sorted: ourselves first, then raised hands, then by name. */
function placeUserRow(list, li, id, user) {
    const key = u => [u.id === state.sc.id ? 0 : 1, u.user.data?.raisehand ? 0 : 1, (u.user.username || '').toLowerCase()];
    const mine = key({id, user});
    let before = null;
    for (const other of list.children) {
        if (other === li)
            continue;
        const otherUser = state.sc.users[other.dataset.id];
        if (!otherUser)
            continue;
        const theirs = key({id: other.dataset.id, user: otherUser});
        if (theirs[0] > mine[0] || (theirs[0] === mine[0] && (theirs[1] > mine[1] ||
            (theirs[1] === mine[1] && theirs[2] > mine[2])))) {
            before = other;
            break;
        }
    }
    if (li.parentNode !== list || li.nextSibling !== before)
        list.insertBefore(li, before);
}

function closeUserMenu() {
    const menu = $('user-menu');
    if (menu.hidden)
        return;
    menu.hidden = true;
    menu.anchor?.focus();
    menu.anchor?.setAttribute('aria-expanded', 'false');
}

function openUserMenu(id, anchor) {
    const sc = state.sc;
    const user = sc.users[id];
    if (!user)
        return;
    const menu = $('user-menu');
    const self = id === sc.id;
    const op = sc.permissions.includes('op');
    const items = [];
    const add = (label, action, disabled = false) => items.push({label, action, disabled});
    if (self) {
        add(sc.userdata.raisehand ? 'Lower my hand' : 'Raise my hand', toggleHand);
    } else {
        add('Send a private message', () => {
            const input = $('chat-input');
            input.value = '/msg ' + user.username + ' ';
            selectTab('chat');
            document.body.classList.add('panel-open');
            input.focus();
        }, !sc.permissions.includes('message'));
        add('Send a file…', () => {
            state.fileTarget = id;
            $('file-input').value = '';
            $('file-input').click();
        }, !sc.permissions.includes('message'));
    }
    if (op) {
        const act = kind => () => sc.useraction(kind, id);
        add(hasPerm(user, 'op') ? 'Remove operator rights' : 'Make operator', act(hasPerm(user, 'op') ? 'unop' : 'op'));
        add(hasPerm(user, 'present') ? 'Stop from presenting' : 'Allow to present', act(hasPerm(user, 'present') ? 'unpresent' : 'present'));
        add(hasPerm(user, 'message') ? 'Stop from chatting' : 'Allow to chat', act(hasPerm(user, 'message') ? 'shutup' : 'unshutup'));
        if (!self) {
            add('Mute their microphone', () => sc.usermessage('mute', id, null));
            add('Show network address', act('identify'));
            add('Remove from meeting…', async () => {
                const message = await prompt('Remove ' + user.username, 'Message shown to them (optional)', '', 'Remove');
                if (message !== null)
                    sc.useraction('kick', id, message || undefined);
            });
        }
    }
    menu.replaceChildren(...items.map(item => {
        const b = el('button', {class: 'menu-item', type: 'button', role: 'menuitem', tabindex: '-1', disabled: item.disabled, text: item.label});
        b.addEventListener('click', () => {
            closeUserMenu();
            try {
                item.action();
            } catch (e) {
                toast('error', e.message);
            }
        });
        return b;
    }));
    menu.setAttribute('aria-label', 'Actions for ' + (user.username || 'anonymous user'));
    menu.anchor = anchor;
    anchor.setAttribute('aria-expanded', 'true');
    menu.hidden = false;
    const r = anchor.getBoundingClientRect();
    const width = menu.offsetWidth;
    const height = menu.offsetHeight;
    menu.style.left = Math.max(8, Math.min(r.right - width, innerWidth - width - 8)) + 'px';
    menu.style.top = (r.bottom + height + 8 > innerHeight ? Math.max(8, r.top - height - 4) : r.bottom + 4) + 'px';
    menu.querySelector('.menu-item:not([disabled])')?.focus();
}

function wireUserMenu() {
    const menu = $('user-menu');
    menu.addEventListener('keydown', e => {
        const items = [...menu.querySelectorAll('.menu-item:not([disabled])')];
        const i = items.indexOf(document.activeElement);
        if (e.key === 'ArrowDown' || e.key === 'ArrowUp') {
            e.preventDefault();
            const next = e.key === 'ArrowDown' ? (i + 1) % items.length : (i - 1 + items.length) % items.length;
            items[next]?.focus();
        } else if (e.key === 'Home' || e.key === 'End') {
            e.preventDefault();
            items[e.key === 'Home' ? 0 : items.length - 1]?.focus();
        } else if (e.key === 'Escape' || e.key === 'Tab') {
            e.preventDefault();
            closeUserMenu();
        }
    });
    document.addEventListener('pointerdown', e => {
        if (!menu.hidden && !menu.contains(e.target) && e.target !== menu.anchor && !menu.anchor?.contains(e.target))
            closeUserMenu();
    });
}

// ---------------------------------------------------------------- raise hand

function toggleHand() {
    const sc = state.sc;
    sc.useraction('setdata', sc.id, {raisehand: sc.userdata.raisehand ? null : true});
}

function updateHandButton() {
    const raised = !!state.sc?.userdata?.raisehand;
    const b = $('btn-hand');
    b.setAttribute('aria-pressed', String(raised));
    b.querySelector('span').textContent = raised ? 'Lower hand' : 'Raise hand';
}

// ---------------------------------------------------------------- videos

function tileFor(localId) {
    return $('videos').querySelector(`.tile[data-local-id="${CSS.escape(localId)}"]`);
}

/** Tooltip of the badge on a tile whose video the server reduced for our link. */
const reducedText = 'Reduced quality: your connection is slow';

/**
 * Shows or hides a tile's "reduced by the network" badge.  The server says so
 * only when our link is the cause, never when we asked for low quality.
 * @param {Element} tile
 * @param {boolean} reduced
 */
function showReduced(tile, reduced) {
    tile.querySelector('.tile-reduced').hidden = !reduced;
}

function makeTile(localId, local) {
    const video = el('video', {autoplay: true, playsinline: true});
    video.muted = local;
    const full = el('button', {class: 'tile-button', type: 'button', 'aria-label': 'Full screen'}, icon('expand'));
    const tile = el('figure', {class: 'tile' + (local ? ' local' : ''), 'data-local-id': localId, tabindex: '-1'},
        video,
        el('div', {class: 'tile-avatar', 'aria-hidden': 'true'}),
        el('figcaption', {},
            el('span', {class: 'tile-hand', title: 'Hand raised', hidden: true}, icon('hand', 'small')),
            el('span', {class: 'tile-name'}),
            el('span', {class: 'tile-label'}),
            el('span', {class: 'tile-reduced', role: 'img', title: reducedText, 'aria-label': reducedText, hidden: true},
                icon('signal-low', 'small'))),
        full);
    full.addEventListener('click', () => toggleFullscreen(tile));
    video.addEventListener('dblclick', () => toggleFullscreen(tile));
    $('videos').append(tile);
    layoutStage();
    return tile;
}

function toggleFullscreen(tile) {
    if (document.fullscreenElement)
        document.exitFullscreen();
    else
        tile.requestFullscreen?.().catch(e => toast('error', 'Full screen is not available: ' + e.message));
}

function removeTile(localId) {
    const tile = tileFor(localId);
    if (tile) {
        const video = tile.querySelector('video');
        video.srcObject = null;
        tile.remove();
    }
    layoutStage();
}

function layoutStage() {
    const tiles = $('videos').children.length;
    $('empty-stage').hidden = tiles > 0;
    $('videos').dataset.count = String(Math.min(tiles, 9));
}

/** Sets a tile's name, label and media. */
function bindTile(tile, {userId, username, label, stream}) {
    tile.dataset.userId = userId;
    tile.dataset.username = username;
    tile.dataset.label = label;
    tile.querySelector('.tile-name').textContent = username || 'Anonymous';
    tile.querySelector('.tile-label').textContent = label === 'screenshare' ? 'Screen' : '';
    tile.querySelector('.tile-avatar').textContent = initials(username);
    tile.querySelector('.tile-button').setAttribute('aria-label', 'Full screen: ' + (username || 'anonymous') + (label === 'screenshare' ? ' (screen)' : ''));
    tile.setAttribute('aria-label', (username || 'Anonymous') + (label === 'screenshare' ? ', screen' : ''));
    if (stream)
        attachMedia(tile, stream);
    updateTileNames(userId);
}

function attachMedia(tile, stream) {
    const video = tile.querySelector('video');
    if (video.srcObject !== stream)
        video.srcObject = stream;
    const hasVideo = stream.getVideoTracks().some(t => t.readyState === 'live');
    tile.classList.toggle('audio-only', !hasVideo);
    video.play().catch(e => {
        if (e.name === 'NotAllowedError' && !tile.querySelector('.tile-play')) {
            const play = el('button', {class: 'btn primary tile-play', type: 'button', text: 'Click to play'});
            play.addEventListener('click', () => {
                video.play();
                play.remove();
            });
            tile.append(play);
        }
    });
}

/** Updates hand and name on every tile of a user. */
function updateTileNames(userId) {
    const user = state.sc?.users[userId];
    for (const tile of $('videos').querySelectorAll(`.tile[data-user-id="${CSS.escape(userId)}"]`)) {
        tile.querySelector('.tile-hand').hidden = !user?.data?.raisehand;
        if (user)
            tile.querySelector('.tile-name').textContent = (user.username || 'Anonymous') + (userId === state.sc.id ? ' (you)' : '');
    }
}

/**
 * Lights up a tile while its audio energy is high.
 * @param {Element} tile
 * @param {number} energy
 */
function noteAudioEnergy(tile, energy) {
    const now = Date.now();
    if (energy > speakingEnergy)
        tile.lastLoud = now;
    tile.classList.toggle('speaking', now - (tile.lastLoud || 0) < speakingHoldMs);
}

function onDownStream(c) {
    const tile = tileFor(c.localId) || makeTile(c.localId, false);
    bindTile(tile, {userId: c.source, username: c.username, label: c.label, stream: null});
    showReduced(tile, c.reducedByNetwork);
    c.onreduced = reduced => showReduced(tile, reduced);
    c.onclose = replace => {
        if (!replace)
            removeTile(c.localId);
    };
    c.ondowntrack = () => {
        attachMedia(tile, c.stream);
        c.stream.onremovetrack = () => attachMedia(tile, c.stream);
    };
    c.onstatus = status => {
        tile.dataset.status = status;
        tile.classList.toggle('trouble', status === 'failed' || status === 'disconnected');
    };
    c.onerror = e => toast('error', 'Stream from ' + (c.username || 'a user') + ': ' + (e.message || e));
    c.onstats = stats => {
        let energy = 0;
        for (const s of Object.values(stats)) {
            if (s.kind === 'audio' && s.audioEnergy > energy)
                energy = s.audioEnergy;
        }
        noteAudioEnergy(tile, energy);
    };
    c.setStatsInterval(statsIntervalMs);
}

// ---------------------------------------------------------------- sending

function canPresent() {
    return !!state.sc?.permissions.includes('present');
}

function wantSimulcast() {
    const rate = Number(settings.quality);
    if (settings.simulcast === 'on')
        return true;
    if (settings.simulcast === 'off')
        return false;
    const people = Object.values(state.sc?.users || {}).filter(u => !hasPerm(u, 'system')).length;
    return people > 2 && (rate === 0 || rate >= 200000);
}

function videoEncodings(purpose) {
    const rate = Number(settings.quality);
    const top = rate > 0 ? {maxBitrate: rate} : {};
    if (purpose === 'camera' && wantSimulcast())
        return [{rid: 'h', ...top}, {rid: 'l', scaleResolutionDownBy: 2, maxBitrate: 100000}];
    return [top];
}

function mediaConstraints(withVideo) {
    const audio = settings.mic ? {deviceId: {exact: settings.mic}} : true;
    let video = false;
    if (withVideo)
        video = settings.camera ? {deviceId: {exact: settings.camera}} : {width: {ideal: 1280}, height: {ideal: 720}};
    return {audio, video};
}

async function startCamera(withVideo = true, replace = false) {
    if (!canPresent()) {
        toast('error', 'You are not allowed to present in this group.');
        return;
    }
    let media;
    try {
        media = await navigator.mediaDevices.getUserMedia(mediaConstraints(withVideo));
    } catch (e) {
        toast('error', 'Could not open your ' + (withVideo ? 'camera or microphone' : 'microphone') + ': ' + e.message);
        return;
    }
    if (!state.sc || !state.inMeeting) {
        media.getTracks().forEach(t => t.stop());
        return;
    }
    refreshDevices();
    const old = state.sending.camera;
    publish('camera', media, replace && old ? old.localId : null);
}

async function startScreenShare() {
    if (!canPresent()) {
        toast('error', 'You are not allowed to present in this group.');
        return;
    }
    let media;
    try {
        media = await navigator.mediaDevices.getDisplayMedia({video: true, audio: true});
    } catch (e) {
        if (e.name !== 'NotAllowedError')
            toast('error', 'Could not share your screen: ' + e.message);
        return;
    }
    if (!state.sc || !state.inMeeting) {
        media.getTracks().forEach(t => t.stop());
        return;
    }
    for (const track of media.getVideoTracks())
        track.addEventListener('ended', () => state.sending.screen?.close());
    publish('screen', media, null);
}

/**
 * Sends a MediaStream as a new up stream, or in place of one (replaceLocalId).
 * @param {'camera'|'screen'} purpose
 * @param {MediaStream} media
 * @param {string|null} replaceLocalId
 */
function publish(purpose, media, replaceLocalId) {
    const sc = state.sc;
    const old = replaceLocalId ? state.sending[purpose] : null;
    const c = sc.newUpStream(replaceLocalId || undefined);
    c.label = purpose === 'screen' ? 'screenshare' : 'camera';
    c.stream = media;
    state.sending[purpose] = c;
    if (old) {
        const kept = media.getTracks();
        old.stream.getTracks().filter(t => !kept.includes(t)).forEach(t => t.stop());
    }
    if (purpose === 'camera')
        media.getAudioTracks().forEach(t => { t.enabled = !state.micMuted; });

    const tile = tileFor(c.localId) || makeTile(c.localId, true);
    tile.classList.toggle('mirror', purpose === 'camera');
    bindTile(tile, {userId: sc.id, username: sc.username, label: c.label, stream: media});

    c.onclose = replace => {
        if (replace)
            return;
        media.getTracks().forEach(t => t.stop());
        if (state.sending[purpose] === c)
            state.sending[purpose] = null;
        removeTile(c.localId);
        updateToolbar();
    };
    c.onerror = e => {
        // an aborted stream comes with the server's own error message
        if (e.name !== 'StreamAborted')
            toast('error', (purpose === 'screen' ? 'Screen sharing' : 'Camera') + ': ' + (e.message || e));
    };
    c.onstats = stats => {
        let energy = 0;
        let rate = 0;
        for (const [id, s] of Object.entries(stats)) {
            if (id.endsWith('#source') && s.audioEnergy > energy)
                energy = s.audioEnergy;
            else if (s.rate)
                rate += s.rate;
        }
        noteAudioEnergy(tile, state.micMuted && purpose === 'camera' ? 0 : energy);
        tile.querySelector('.tile-label').textContent =
            (purpose === 'screen' ? 'Screen · ' : '') + Math.round(rate / 1000) + ' kb/s';
    };
    c.setStatsInterval(statsIntervalMs);

    for (const track of media.getTracks()) {
        if (track.kind === 'video') {
            c.pc.addTransceiver(track, {direction: 'sendonly', streams: [media], sendEncodings: videoEncodings(purpose)});
        } else {
            c.pc.addTransceiver(track, {direction: 'sendonly', streams: [media]});
        }
    }
    updateToolbar();
}

function stopSending() {
    for (const c of Object.values(state.sending))
        c?.close();
}

function setMicMuted(muted) {
    state.micMuted = muted;
    state.sending.camera?.stream?.getAudioTracks().forEach(t => { t.enabled = !muted; });
    updateToolbar();
}

function updateToolbar() {
    const present = canPresent();
    const camera = state.sending.camera;
    const hasVideo = !!camera?.stream?.getVideoTracks().length;
    const hasAudio = !!camera?.stream?.getAudioTracks().length;
    const setTool = (id, {pressed, label, disabled, title}) => {
        const b = $(id);
        if (pressed !== undefined)
            b.setAttribute('aria-pressed', String(pressed));
        if (label)
            b.querySelector('span').textContent = label;
        b.disabled = !!disabled;
        if (title)
            b.title = title;
        else
            b.removeAttribute('title');
    };
    const notAllowed = present ? null : 'You are not allowed to present in this group';
    setTool('btn-camera', {pressed: hasVideo, label: hasVideo ? 'Camera off' : 'Camera', disabled: !present, title: notAllowed});
    setTool('btn-mute', {pressed: state.micMuted, label: state.micMuted ? 'Unmute' : 'Mute', disabled: !hasAudio});
    $('btn-mute').querySelector('use').setAttribute('href', state.micMuted ? '#i-mic-off' : '#i-mic');
    setTool('btn-screen', {pressed: !!state.sending.screen, label: state.sending.screen ? 'Stop sharing' : 'Share screen',
        disabled: !present || !navigator.mediaDevices?.getDisplayMedia, title: notAllowed});
    setTool('btn-stop', {disabled: !camera && !state.sending.screen});
}

function updatePermissions() {
    updateToolbar();
    updateRecording();
    const sc = state.sc;
    const canChat = sc.permissions.includes('message');
    $('chat-input').disabled = !canChat;
    $('chat-input').placeholder = canChat ? 'Message everyone' : 'You cannot chat in this group';
}

// ---------------------------------------------------------------- devices and settings

async function refreshDevices() {
    if (!navigator.mediaDevices?.enumerateDevices)
        return;
    let devices;
    try {
        devices = await navigator.mediaDevices.enumerateDevices();
    } catch (e) {
        return;
    }
    const fill = (select, kind, fallback, current) => {
        const options = [el('option', {value: ''}, fallback)];
        let n = 0;
        for (const d of devices) {
            if (d.kind !== kind || !d.deviceId || d.deviceId === 'default')
                continue;
            n++;
            options.push(el('option', {value: d.deviceId}, d.label || `${fallback.replace('Default ', '')} ${n}`));
        }
        select.replaceChildren(...options);
        select.value = options.some(o => o.value === current) ? current : '';
    };
    fill($('camera-select'), 'videoinput', 'Default camera', settings.camera);
    fill($('mic-select'), 'audioinput', 'Default microphone', settings.mic);
}

function wireSettings() {
    const dialog = $('settings-dialog');
    $('btn-settings').addEventListener('click', () => {
        refreshDevices();
        $('quality-select').value = settings.quality;
        $('simulcast-select').value = settings.simulcast;
        $('receive-select').value = settings.receive;
        dialog.showModal();
    });
    const republishCamera = newMedia => {
        const camera = state.sending.camera;
        if (!camera)
            return;
        if (newMedia)
            startCamera(camera.stream.getVideoTracks().length > 0, true);
        else
            publish('camera', camera.stream, camera.localId);
    };
    $('camera-select').addEventListener('change', e => {
        settings.camera = e.target.value;
        saveSettings();
        republishCamera(true);
    });
    $('mic-select').addEventListener('change', e => {
        settings.mic = e.target.value;
        saveSettings();
        republishCamera(true);
    });
    $('quality-select').addEventListener('change', e => {
        settings.quality = e.target.value;
        saveSettings();
        republishCamera(false);
    });
    $('simulcast-select').addEventListener('change', e => {
        settings.simulcast = e.target.value;
        saveSettings();
        republishCamera(false);
    });
    $('receive-select').addEventListener('change', e => {
        settings.receive = e.target.value;
        saveSettings();
        state.sc?.request(receivePresets[settings.receive] || receivePresets.all);
    });
    navigator.mediaDevices?.addEventListener?.('devicechange', refreshDevices);
}

// ---------------------------------------------------------------- file transfer

function onFileTransfer(f) {
    const title = el('p', {class: 'transfer-title'});
    const name = el('strong', {text: f.name});
    if (f.up)
        title.append('Sending ', name, ' to ' + (f.username || 'someone'));
    else
        title.append((f.username || 'Someone') + ' wants to send you ', name);
    const progress = el('progress', {max: String(Math.max(f.size, 1)), value: '0', 'aria-label': 'Progress of ' + f.name});
    const status = el('p', {class: 'transfer-status muted'});
    const buttons = el('div', {class: 'transfer-buttons'});
    const card = el('article', {class: 'transfer card', 'data-transfer': f.id, 'data-direction': f.up ? 'up' : 'down'},
        el('div', {class: 'transfer-head'}, icon('file'), title),
        el('p', {class: 'muted transfer-size', text: formatBytes(f.size)}),
        progress, status, buttons);
    $('transfers').append(card);

    const button = (label, kind, action) => {
        const b = el('button', {class: 'btn ' + kind, type: 'button', text: label});
        b.addEventListener('click', action);
        return b;
    };
    const dismiss = () => {
        if (card.objectURL)
            URL.revokeObjectURL(card.objectURL);
        card.remove();
    };
    const percent = () => f.size ? Math.floor(f.datalen * 100 / f.size) : 100;

    f.onevent = (st, data) => {
        progress.value = f.datalen;
        card.dataset.state = st;
        switch (st) {
        case 'inviting':
            if (f.up) {
                status.textContent = 'Waiting for ' + (f.username || 'them') + ' to accept…';
                buttons.replaceChildren(button('Cancel', 'subtle', () => f.cancel('the sender cancelled')));
            } else {
                status.textContent = 'Accept only files you expect.';
                buttons.replaceChildren(
                    button('Decline', 'subtle', () => f.cancel('the receiver declined')),
                    button('Accept', 'primary', () => f.receive()));
                buttons.querySelector('.primary').focus();
            }
            break;
        case 'connecting':
            status.textContent = 'Connecting…';
            buttons.replaceChildren(button('Cancel', 'subtle', () => f.cancel()));
            break;
        case 'connected':
            status.textContent = (f.up ? 'Sending… ' : 'Receiving… ') + percent() + '%';
            break;
        case 'done':
            status.textContent = f.up ? 'Sent.' : 'Received.';
            if (!f.up && data) {
                card.objectURL = URL.createObjectURL(data);
                const save = el('a', {class: 'btn primary', href: card.objectURL, download: f.name, text: 'Save'});
                buttons.replaceChildren(button('Dismiss', 'subtle', dismiss), save);
            } else {
                buttons.replaceChildren(button('Dismiss', 'subtle', dismiss));
            }
            break;
        case 'cancelled':
            status.textContent = 'Cancelled' + (data ? ': ' + data : '.');
            card.classList.add('failed');
            buttons.replaceChildren(button('Dismiss', 'subtle', dismiss));
            break;
        case 'closed':
            if (!card.objectURL && card.dataset.done !== 'yes' && !card.classList.contains('failed'))
                buttons.replaceChildren(button('Dismiss', 'subtle', dismiss));
            break;
        }
        if (st === 'done')
            card.dataset.done = 'yes';
    };
}

function wireFileInput() {
    $('file-input').addEventListener('change', e => {
        const file = e.target.files?.[0];
        const target = state.fileTarget;
        state.fileTarget = null;
        if (!file || !target || !state.sc)
            return;
        try {
            state.sc.sendFile(target, file);
        } catch (err) {
            toast('error', 'Could not send the file: ' + err.message);
        }
    });
}

// ---------------------------------------------------------------- page wiring

function selectTab(which) {
    for (const name of ['chat', 'people']) {
        const selected = name === which;
        const tab = $('tab-' + name);
        tab.setAttribute('aria-selected', String(selected));
        tab.tabIndex = selected ? 0 : -1;
        $('panel-' + name).hidden = !selected;
    }
    if (which === 'chat') {
        $('tab-chat').classList.remove('unread');
        $('btn-panel').classList.remove('unread');
    }
}

function wireMeeting() {
    $('tab-chat').addEventListener('click', () => selectTab('chat'));
    $('tab-people').addEventListener('click', () => selectTab('people'));
    for (const tab of document.querySelectorAll('[role=tab]')) {
        tab.addEventListener('keydown', e => {
            if (e.key === 'ArrowLeft' || e.key === 'ArrowRight') {
                const other = tab.id === 'tab-chat' ? 'people' : 'chat';
                selectTab(other);
                $('tab-' + other).focus();
            }
        });
    }
    $('chat-form').addEventListener('submit', e => {
        e.preventDefault();
        submitChat();
    });
    const input = $('chat-input');
    input.addEventListener('keydown', e => {
        if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
            e.preventDefault();
            submitChat();
        }
    });
    input.addEventListener('input', resizeChatInput);

    $('btn-camera').addEventListener('click', () => {
        const camera = state.sending.camera;
        if (!camera?.stream.getVideoTracks().length) {
            startCamera(true, !!camera);
        } else if (camera.stream.getAudioTracks().length) {
            // camera off, microphone stays on
            publish('camera', new MediaStream(camera.stream.getAudioTracks()), camera.localId);
        } else {
            camera.close();
        }
    });
    $('btn-mute').addEventListener('click', () => setMicMuted(!state.micMuted));
    $('btn-screen').addEventListener('click', () => {
        if (state.sending.screen)
            state.sending.screen.close();
        else
            startScreenShare();
    });
    $('btn-stop').addEventListener('click', stopSending);
    $('btn-hand').addEventListener('click', toggleHand);
    $('btn-record').addEventListener('click', () => state.sc?.groupaction(isRecording() ? 'unrecord' : 'record'));
    $('btn-panel').addEventListener('click', () => {
        const open = document.body.classList.toggle('panel-open');
        $('btn-panel').setAttribute('aria-expanded', String(open));
        if (open) {
            $('tab-chat').classList.remove('unread');
            $('btn-panel').classList.remove('unread');
        }
    });
    $('leave-button').addEventListener('click', leave);
    $('reconnect-button').addEventListener('click', reconnect);
    document.addEventListener('keydown', e => {
        if (e.key === 'Escape' && document.body.classList.contains('panel-open') && $('user-menu').hidden) {
            document.body.classList.remove('panel-open');
            $('btn-panel').setAttribute('aria-expanded', 'false');
        }
    });
    wireUserMenu();
    wireSettings();
    wireFileInput();
    updateToolbar();
    layoutStage();
}

init();
