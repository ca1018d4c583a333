// sfubox administration page. It uses nothing but Galène's administrative API
// (/galene-api/v0/, docs/admin.md) and the first-run setup endpoint next to it: the server has
// no second code path for this page.
//
// Signing in checks the administrator's name and password once, by creating a global
// administrator token (12 hours); every later request carries that token, and signing out
// deletes it. The token lives in this tab's sessionStorage only.

import {qrSvg} from './qr.js';

const API = '/galene-api/v0';
const SESSION_KEY = 'sfubox.admin';
const SESSION_SECONDS = 12 * 3600;
const STATS_EVERY_MS = 3000;
const KNOWN_CODECS = ['vp8', 'vp9', 'av1', 'h264', 'opus', 'g722', 'pcmu', 'pcma'];
const DEFAULT_CODECS = ['vp8', 'opus'];
/** Fields that have a form control; the rest of a description is edited as JSON. */
const FORM_FIELDS = ['displayName', 'description', 'public', 'allow-recording', 'auto-subgroups',
    'max-clients', 'codecs', 'autolock', 'autokick'];
/** Roles (Galène's permission presets) and what an invitation with that role grants. */
const ROLES = [
    {preset: 'present', label: 'Presenter (camera, microphone, chat)', permissions: ['present', 'message']},
    {preset: 'op', label: 'Operator (runs the meeting)', permissions: ['op', 'present', 'message', 'caption', 'token']},
    {preset: 'message', label: 'Participant (chat only)', permissions: ['message']},
    {preset: 'observe', label: 'Viewer (watch and listen)', permissions: []},
    {preset: 'admin', label: 'Group administrator', permissions: ['admin']},
];

const $ = id => document.getElementById(id);

const state = {
    /** {token, user} while signed in. */
    session: null,
    /** The group being edited (null: a new one), its description and ETag as loaded, and
     * whether it had a wildcard user. */
    group: null,
    loaded: null,
    etag: null,
    hadWildcard: false,
    /** The last statistics, by group name. */
    stats: new Map(),
    statsTimer: null,
};

// ---------------------------------------------------------------- the API

class ApiError extends Error {
    constructor(status, text) {
        super(text || `HTTP error ${status}`);
        this.status = status;
    }
}

/** The API path of a group (each segment encoded). */
function groupPath(name) {
    return `${API}/.groups/${name.split('/').map(encodeURIComponent).join('/')}`;
}

/**
 * One request. `body` is JSON unless `type` says otherwise; `auth` overrides the session's
 * credentials. Throws an ApiError for a status of 300 or more.
 */
async function api(method, path, {body, type = 'application/json', auth, headers = {}} = {}) {
    const h = {...headers};
    const authorization = auth || (state.session && `Bearer ${state.session.token}`);
    if (authorization)
        h.Authorization = authorization;
    const options = {method, headers: h, credentials: 'omit', cache: 'no-store'};
    if (body !== undefined) {
        h['Content-Type'] = type;
        options.body = type === 'application/json' ? JSON.stringify(body) : body;
    }
    const r = await fetch(path, options);
    if (r.status === 401 && !auth && state.session) {
        endSession('Your session has ended; please sign in again.');
    }
    if (r.status >= 300 && r.status !== 304)
        throw new ApiError(r.status, (await r.text()).trim());
    return r;
}

async function getJSON(path) {
    const r = await api('GET', path);
    return {value: await r.json(), etag: r.headers.get('ETag')};
}

function basic(user, password) {
    const bytes = new TextEncoder().encode(`${user}:${password}`);
    let binary = '';
    for (const b of bytes)
        binary += String.fromCharCode(b);
    return 'Basic ' + btoa(binary);
}

function explain(e) {
    if (e instanceof ApiError) {
        if (e.status === 412)
            return 'Someone else changed this meanwhile. It was reloaded; make your change again.';
        if (e.status === 401 && e.message === 'not authorised')
            return 'Groups are read-only on this server (writableGroups is off in config.json).';
        return `${e.message} (${e.status})`;
    }
    return e.message || String(e);
}

function show(id, text) {
    const e = $(id);
    e.textContent = text || '';
    e.hidden = !text;
}

// ---------------------------------------------------------------- setup, sign-in, session

async function start() {
    for (const select of [$('u-role'), $('i-role'), $('g-anonymous-role')]) {
        for (const role of ROLES) {
            if (select === $('g-anonymous-role') && role.preset === 'admin')
                continue;
            select.append(new Option(role.label, role.preset));
        }
    }
    $('g-anonymous-role').value = 'present';
    for (const codec of KNOWN_CODECS) {
        const label = document.createElement('label');
        const box = document.createElement('input');
        box.type = 'checkbox';
        box.name = 'codec';
        box.value = codec;
        label.append(box, ' ' + codec.toUpperCase());
        $('g-codecs').append(label);
    }
    wire();
    try {
        const setup = await (await fetch(`${API}/.setup`, {cache: 'no-store'})).json();
        if (setup.pending) {
            $(setup.allowed ? 'setup' : 'setup-blocked').hidden = false;
            if (setup.allowed)
                $('setup-password').focus();
            return;
        }
    } catch (e) {
        show('page-error', 'Cannot reach the server: ' + explain(e));
        return;
    }
    const saved = sessionStorage.getItem(SESSION_KEY);
    if (saved) {
        state.session = JSON.parse(saved);
        try {
            await enterDashboard();
            return;
        } catch (e) {
            state.session = null;
            sessionStorage.removeItem(SESSION_KEY);
        }
    }
    showSignIn();
}

function showSignIn(message) {
    $('dashboard').hidden = true;
    $('signin').hidden = false;
    $('whoami').hidden = $('signout').hidden = true;
    show('signin-error', message);
    $('signin-username').focus();
}

/** Signs in: one password check, which makes this tab's session token. */
async function signIn(user, password) {
    const expires = new Date(Date.now() + SESSION_SECONDS * 1000).toISOString();
    const r = await api('POST', `${API}/.groups/.tokens/`, {
        auth: basic(user, password),
        body: {permissions: ['admin'], includeSubgroups: true, expires},
    });
    const token = r.headers.get('Location');
    if (!token)
        throw new Error('the server made no token');
    state.session = {token, user};
    sessionStorage.setItem(SESSION_KEY, JSON.stringify(state.session));
}

function endSession(message) {
    state.session = null;
    sessionStorage.removeItem(SESSION_KEY);
    clearInterval(state.statsTimer);
    showSignIn(message);
}

async function signOut() {
    const session = state.session;
    if (session) {
        try {
            await api('DELETE', `${API}/.groups/.tokens/${encodeURIComponent(session.token)}`);
        } catch (e) {
            // it expires anyway
        }
    }
    endSession('');
}

async function enterDashboard() {
    await refreshGroups();
    $('signin').hidden = $('setup').hidden = true;
    $('dashboard').hidden = false;
    $('whoami').textContent = state.session.user ? `Signed in as ${state.session.user}` : '';
    $('whoami').hidden = !state.session.user;
    $('signout').hidden = false;
    clearInterval(state.statsTimer);
    state.statsTimer = setInterval(() => refreshStats().catch(() => {}), STATS_EVERY_MS);
}

// ---------------------------------------------------------------- groups

/** Lists the groups with who is in each now. */
async function refreshGroups() {
    const {value: names} = await getJSON(`${API}/.groups/`);
    names.sort();
    const rows = [];
    for (const name of names) {
        let description = {};
        try {
            description = (await getJSON(groupPath(name))).value;
        } catch (e) {
            description = {displayName: '(' + explain(e) + ')'};
        }
        rows.push(groupRow(name, description));
    }
    $('groups-table').tBodies[0].replaceChildren(...rows);
    $('groups-empty').hidden = names.length > 0;
    await refreshStats();
}

function groupRow(name, description) {
    const tr = document.createElement('tr');
    tr.dataset.group = name;
    if (state.group === name)
        tr.classList.add('selected');
    const title = document.createElement('td');
    const t = document.createElement('div');
    t.className = 'group-title';
    t.textContent = description.displayName || name;
    const n = document.createElement('div');
    n.className = 'group-name';
    n.textContent = name + (description.public ? ' · public' : '');
    title.append(t, n);
    const people = document.createElement('td');
    people.className = 'people';
    const actions = document.createElement('td');
    actions.className = 'actions';
    const edit = document.createElement('button');
    edit.className = 'btn';
    edit.type = 'button';
    edit.textContent = 'Manage';
    edit.addEventListener('click', () => openGroup(name));
    actions.append(edit);
    tr.append(title, people, actions);
    return tr;
}

/** Fetches .stats; fills "in the meeting now" and the open group's statistics table. */
async function refreshStats() {
    if (!state.session)
        return;
    const {value: groups} = await getJSON(`${API}/.stats`);
    state.stats = new Map(groups.map(g => [g.name, g]));
    for (const tr of $('groups-table').tBodies[0].rows) {
        const cell = tr.cells[1];
        const clients = state.stats.get(tr.dataset.group)?.clients || [];
        const badges = clients.map(c => {
            const b = document.createElement('span');
            b.className = 'badge';
            b.textContent = c.username || '(no name)';
            return b;
        });
        if (badges.length === 0) {
            const none = document.createElement('span');
            none.className = 'muted';
            none.textContent = 'nobody';
            badges.push(none);
        }
        cell.replaceChildren(...badges);
    }
    if (state.group)
        renderStats(state.stats.get(state.group));
}

function formatRate(bps) {
    if (typeof bps !== 'number')
        return '';
    return bps >= 1e6 ? (bps / 1e6).toFixed(2) + ' Mb/s' : Math.round(bps / 1000) + ' kb/s';
}

function renderStats(group) {
    const rows = [];
    for (const client of group?.clients || []) {
        for (const [direction, streams] of [['sending', client.up || []], ['receiving', client.down || []]]) {
            for (const stream of streams) {
                for (const [i, track] of (stream.tracks || []).entries()) {
                    const tr = document.createElement('tr');
                    const cells = [
                        client.username || client.id,
                        i === 0 ? stream.id : '',
                        direction,
                        formatRate(track.bitrate),
                        typeof track.loss === 'number' ? (track.loss * 100).toFixed(1) + ' %' : '',
                        typeof track.jitter === 'number' ? track.jitter.toFixed(1) + ' ms' : '',
                        typeof track.rtt === 'number' ? track.rtt.toFixed(0) + ' ms' : '',
                        typeof track.sid === 'number' ? `${track.sid}/${track.maxSid} · ${track.tid}/${track.maxTid}` : '',
                    ];
                    for (const [k, text] of cells.entries()) {
                        const td = document.createElement('td');
                        if (k >= 3)
                            td.className = 'num';
                        td.textContent = text;
                        tr.append(td);
                    }
                    rows.push(tr);
                }
            }
        }
    }
    $('stats-table').tBodies[0].replaceChildren(...rows);
    $('stats-empty').hidden = rows.length > 0;
}

/** Opens the editor for group `name`, or for a new group (`null`). */
async function openGroup(name) {
    show('g-error', '');
    $('g-saved').hidden = true;
    $('invite-result').hidden = true;
    let description = {};
    state.etag = null;
    state.hadWildcard = false;
    if (name !== null) {
        const got = await getJSON(groupPath(name));
        description = got.value;
        state.etag = got.etag;
        state.loaded = JSON.stringify(description);
        try {
            const wildcard = (await getJSON(`${groupPath(name)}/.wildcard-user`)).value;
            state.hadWildcard = true;
            if (typeof wildcard.permissions === 'string')
                $('g-anonymous-role').value = wildcard.permissions;
        } catch (e) {
            if (!(e instanceof ApiError && e.status === 404))
                throw e;
        }
    }
    state.group = name;
    $('group').hidden = false;
    $('group-heading').textContent = name === null ? 'New group' : (description.displayName || name);
    $('g-name-row').hidden = name !== null;
    $('g-name').value = '';
    $('g-delete').hidden = name === null;
    $('group-more').hidden = name === null;
    $('group-open').hidden = name === null;
    if (name !== null)
        $('group-open').href = '/group/' + name.split('/').map(encodeURIComponent).join('/') + '/';
    fillForm(description);
    for (const tr of $('groups-table').tBodies[0].rows)
        tr.classList.toggle('selected', tr.dataset.group === name);
    if (name !== null) {
        await Promise.all([refreshUsers(), refreshInvitations()]);
        renderStats(state.stats.get(name));
    }
    (name === null ? $('g-name') : $('g-displayName')).focus();
}

function fillForm(d) {
    $('g-displayName').value = d.displayName || '';
    $('g-description').value = d.description || '';
    $('g-max-clients').value = d['max-clients'] || 0;
    for (const field of ['public', 'allow-recording', 'auto-subgroups', 'autolock', 'autokick'])
        $('g-' + field).checked = !!d[field];
    $('g-anonymous').checked = state.hadWildcard;
    const codecs = Array.isArray(d.codecs) && d.codecs.length ? d.codecs.map(c => c.toLowerCase()) : DEFAULT_CODECS;
    for (const box of document.querySelectorAll('input[name=codec]'))
        box.checked = codecs.includes(box.value);
    const extra = {};
    for (const [k, v] of Object.entries(d))
        if (!FORM_FIELDS.includes(k))
            extra[k] = v;
    $('g-extra').value = Object.keys(extra).length ? JSON.stringify(extra, null, 2) : '';
    $('g-extra-box').open = Object.keys(extra).length > 0;
}

/** The description the form describes. */
function formDescription() {
    let d = {};
    const extra = $('g-extra').value.trim();
    if (extra) {
        try {
            d = JSON.parse(extra);
        } catch (e) {
            throw new Error('The other settings are not valid JSON: ' + e.message);
        }
        if (typeof d !== 'object' || d === null || Array.isArray(d))
            throw new Error('The other settings must be a JSON object.');
    }
    const text = (id, key) => {
        const v = $(id).value.trim();
        if (v)
            d[key] = v;
    };
    text('g-displayName', 'displayName');
    text('g-description', 'description');
    for (const field of ['public', 'allow-recording', 'auto-subgroups', 'autolock', 'autokick'])
        if ($('g-' + field).checked)
            d[field] = true;
    const max = parseInt($('g-max-clients').value, 10);
    if (max > 0)
        d['max-clients'] = max;
    const codecs = [...document.querySelectorAll('input[name=codec]:checked')].map(b => b.value);
    const isDefault = codecs.length === DEFAULT_CODECS.length && DEFAULT_CODECS.every(c => codecs.includes(c));
    if (codecs.length && !isDefault)
        d.codecs = codecs;
    return d;
}

async function saveGroup() {
    show('g-error', '');
    $('g-saved').hidden = true;
    const creating = state.group === null;
    const name = creating ? $('g-name').value.trim().replace(/^\/+|\/+$/g, '') : state.group;
    if (!name || name.split('/').some(part => !part || part.startsWith('.'))) {
        show('g-error', 'Choose a name: letters, digits and dashes; “/” makes a sub-group.');
        return;
    }
    const description = formDescription();
    const headers = creating ? {'If-None-Match': '*'} : (state.etag ? {'If-Match': state.etag} : {});
    try {
        await api('PUT', groupPath(name), {body: description, headers});
    } catch (e) {
        if (e instanceof ApiError && e.status === 412 && creating) {
            show('g-error', `There is already a group called “${name}”.`);
            return;
        }
        if (e instanceof ApiError && e.status === 412 && !creating)
            await openGroup(name);
        show('g-error', explain(e));
        return;
    }
    const wildcard = `${groupPath(name)}/.wildcard-user`;
    if ($('g-anonymous').checked) {
        await api('PUT', wildcard, {body: {permissions: $('g-anonymous-role').value}});
        if (!state.hadWildcard)
            await api('PUT', `${wildcard}/.password`, {body: {type: 'wildcard'}});
    } else if (state.hadWildcard) {
        await api('DELETE', wildcard);
    }
    await refreshGroups();
    await openGroup(name);
    $('g-saved').hidden = false;
}

async function deleteGroup() {
    const name = state.group;
    if (name === null || !confirm(`Delete the group “${name}”? People in the meeting stay until they leave.`))
        return;
    try {
        await api('DELETE', groupPath(name), {headers: state.etag ? {'If-Match': state.etag} : {}});
    } catch (e) {
        show('g-error', explain(e));
        return;
    }
    closeGroup();
    await refreshGroups();
}

function closeGroup() {
    state.group = null;
    $('group').hidden = true;
    for (const tr of $('groups-table').tBodies[0].rows)
        tr.classList.remove('selected');
}

/**
 * Users live in the group's file, so changing one changes the description's ETag. After our
 * own user changes the form keeps the new ETag, unless the description itself changed
 * meanwhile (someone else's edit): then the old one stays and saving reports the conflict.
 */
async function followOwnChange() {
    if (state.group === null)
        return;
    const {value, etag} = await getJSON(groupPath(state.group));
    if (JSON.stringify(value) === state.loaded)
        state.etag = etag;
}

// ---------------------------------------------------------------- users

function roleLabel(permissions) {
    if (typeof permissions === 'string')
        return ROLES.find(r => r.preset === permissions)?.label.replace(/ \(.*/, '') || permissions;
    if (Array.isArray(permissions)) {
        const role = ROLES.find(r => r.permissions.length === permissions.length &&
            r.permissions.every(p => permissions.includes(p)));
        return role ? role.label.replace(/ \(.*/, '') : permissions.join(', ') || 'no permissions';
    }
    return 'no permissions';
}

/** The API path of a user of the open group (the empty name has an endpoint of its own). */
function userPath(name) {
    const base = groupPath(state.group);
    return name === '' ? `${base}/.empty-user` : `${base}/.users/${encodeURIComponent(name)}`;
}

async function refreshUsers() {
    const base = groupPath(state.group);
    const {value: names} = await getJSON(`${base}/.users/`);
    const rows = [];
    for (const name of names.sort()) {
        const {value: user} = await getJSON(userPath(name));
        const tr = document.createElement('tr');
        tr.dataset.username = name;
        const who = document.createElement('td');
        who.textContent = name || '(empty name)';
        const role = document.createElement('td');
        role.textContent = roleLabel(user.permissions);
        const actions = document.createElement('td');
        actions.className = 'actions';
        const password = document.createElement('button');
        password.className = 'btn';
        password.type = 'button';
        password.textContent = 'New password';
        password.addEventListener('click', () => setUserPassword(name));
        const remove = document.createElement('button');
        remove.className = 'btn danger';
        remove.type = 'button';
        remove.textContent = 'Remove';
        remove.addEventListener('click', () => removeUser(name));
        actions.append(password, ' ', remove);
        tr.append(who, role, actions);
        rows.push(tr);
    }
    $('users-table').tBodies[0].replaceChildren(...rows);
}

async function addUser() {
    show('user-error', '');
    const name = $('u-name').value.trim();
    const password = $('u-password').value;
    if (!name || !password) {
        show('user-error', 'A user needs a name and a password.');
        return;
    }
    const path = userPath(name);
    try {
        await api('PUT', path, {body: {permissions: $('u-role').value}, headers: {'If-None-Match': '*'}});
        await api('POST', `${path}/.password`, {body: password, type: 'text/plain'});
    } catch (e) {
        show('user-error', e instanceof ApiError && e.status === 412 ? `There is already a user called “${name}”.` : explain(e));
        return;
    }
    $('u-name').value = $('u-password').value = '';
    await followOwnChange();
    await refreshUsers();
}

async function setUserPassword(name) {
    const password = prompt(`New password for ${name}:`);
    if (!password)
        return;
    try {
        await api('POST', `${userPath(name)}/.password`, {body: password, type: 'text/plain'});
        await followOwnChange();
    } catch (e) {
        show('user-error', explain(e));
    }
}

async function removeUser(name) {
    if (!confirm(`Remove the user “${name}”?`))
        return;
    try {
        await api('DELETE', userPath(name));
        await followOwnChange();
    } catch (e) {
        show('user-error', explain(e));
    }
    await refreshUsers();
}

// ---------------------------------------------------------------- invitations

function invitationURL(group, token) {
    const url = new URL('/group/' + group.split('/').map(encodeURIComponent).join('/') + '/', location.href);
    url.searchParams.set('token', token);
    return url.href;
}

async function refreshInvitations() {
    const base = `${groupPath(state.group)}/.tokens/`;
    const {value: names} = await getJSON(base);
    const rows = [];
    for (const name of names) {
        const {value: token} = await getJSON(base + encodeURIComponent(name));
        const expires = token.expires ? new Date(token.expires) : null;
        const expired = !expires || expires.getTime() <= Date.now();
        const tr = document.createElement('tr');
        tr.dataset.token = name;
        const link = document.createElement('td');
        const a = document.createElement('a');
        a.href = invitationURL(state.group, name);
        a.target = '_blank';
        a.textContent = token.username ? `${name} (for ${token.username})` : name;
        if (expired)
            a.className = 'expired';
        link.append(a);
        const role = document.createElement('td');
        role.textContent = roleLabel(token.permissions || []);
        const until = document.createElement('td');
        until.textContent = expires ? (expired ? 'expired ' : '') + expires.toLocaleString() : 'never valid';
        const actions = document.createElement('td');
        actions.className = 'actions';
        if (!expired) {
            const revoke = document.createElement('button');
            revoke.className = 'btn';
            revoke.type = 'button';
            revoke.textContent = 'Revoke';
            revoke.addEventListener('click', () => revokeInvitation(name));
            actions.append(revoke, ' ');
        }
        const remove = document.createElement('button');
        remove.className = 'btn danger';
        remove.type = 'button';
        remove.textContent = 'Delete';
        remove.addEventListener('click', () => deleteInvitation(name));
        actions.append(remove);
        tr.append(link, role, until, actions);
        rows.push(tr);
    }
    $('invites-table').tBodies[0].replaceChildren(...rows);
}

async function createInvitation() {
    show('invite-error', '');
    const role = ROLES.find(r => r.preset === $('i-role').value) || ROLES[0];
    const seconds = parseInt($('i-expiry').value, 10);
    const expires = new Date(Date.now() + seconds * 1000);
    const template = {permissions: role.permissions, expires: expires.toISOString()};
    const username = $('i-username').value.trim();
    if (username)
        template.username = username;
    let name;
    try {
        const r = await api('POST', `${groupPath(state.group)}/.tokens/`, {body: template});
        name = r.headers.get('Location');
    } catch (e) {
        show('invite-error', explain(e));
        return;
    }
    const url = invitationURL(state.group, name);
    $('invite-link').href = url;
    $('invite-link').textContent = url;
    $('invite-expiry').textContent = `Valid until ${expires.toLocaleString()}.`;
    try {
        $('invite-qr').replaceChildren(qrSvg(url, 220));
        $('invite-qr').firstChild.setAttribute('aria-label', 'QR code of the invitation link');
    } catch (e) {
        $('invite-qr').replaceChildren();
    }
    $('invite-result').hidden = false;
    $('i-username').value = '';
    await refreshInvitations();
}

/** Revokes an invitation as galenectl does: it expired a minute ago. */
async function revokeInvitation(name) {
    const path = `${groupPath(state.group)}/.tokens/${encodeURIComponent(name)}`;
    try {
        const {value: token, etag} = await getJSON(path);
        token.expires = new Date(Date.now() - 60000).toISOString();
        await api('PUT', path, {body: token, headers: etag ? {'If-Match': etag} : {}});
    } catch (e) {
        show('invite-error', explain(e));
    }
    if ($('invite-link').href.endsWith('token=' + encodeURIComponent(name)))
        $('invite-result').hidden = true;
    await refreshInvitations();
}

async function deleteInvitation(name) {
    try {
        await api('DELETE', `${groupPath(state.group)}/.tokens/${encodeURIComponent(name)}`);
    } catch (e) {
        show('invite-error', explain(e));
    }
    await refreshInvitations();
}

// ---------------------------------------------------------------- wiring

/** Runs `f` with `button` disabled; reports errors in `errorId`. */
function busy(button, errorId, f) {
    return async e => {
        e?.preventDefault();
        button.disabled = true;
        try {
            await f();
        } catch (err) {
            show(errorId, explain(err));
        } finally {
            button.disabled = false;
        }
    };
}

function wire() {
    $('setup-form').addEventListener('submit', busy($('setup-submit'), 'setup-error', async () => {
        const user = $('setup-username').value.trim();
        const password = $('setup-password').value;
        if (password !== $('setup-password2').value) {
            show('setup-error', 'The two passwords differ.');
            return;
        }
        if (password.length < 8) {
            show('setup-error', 'Use at least 8 characters.');
            return;
        }
        const r = await fetch(`${API}/.setup`, {
            method: 'POST',
            headers: {'Content-Type': 'application/json'},
            body: JSON.stringify({username: user, password}),
            credentials: 'omit',
        });
        if (!r.ok)
            throw new Error((await r.text()).trim() || `HTTP error ${r.status}`);
        await signIn(user, password);
        await enterDashboard();
    }));
    $('signin-form').addEventListener('submit', busy($('signin-submit'), 'signin-error', async () => {
        try {
            await signIn($('signin-username').value.trim(), $('signin-password').value);
        } catch (e) {
            if (e instanceof ApiError && e.status === 401) {
                show('signin-error', 'Wrong name or password, or not an administrator of this server.');
                return;
            }
            throw e;
        }
        $('signin-password').value = '';
        await enterDashboard();
    }));
    $('signout').addEventListener('click', signOut);
    $('new-group').addEventListener('click', busy($('new-group'), 'page-error', () => openGroup(null)));
    $('group-close').addEventListener('click', closeGroup);
    $('group-form').addEventListener('submit', busy($('g-save'), 'g-error', saveGroup));
    $('g-delete').addEventListener('click', busy($('g-delete'), 'g-error', deleteGroup));
    $('user-form').addEventListener('submit', busy($('u-add'), 'user-error', addUser));
    $('invite-form').addEventListener('submit', busy($('i-create'), 'invite-error', createInvitation));
    $('invite-copy').addEventListener('click', async () => {
        try {
            await navigator.clipboard.writeText($('invite-link').href);
            $('invite-copy').textContent = 'Copied';
        } catch (e) {
            $('invite-copy').textContent = 'Select the link to copy it';
        }
        setTimeout(() => { $('invite-copy').textContent = 'Copy the link'; }, 2000);
    });
}

start();
