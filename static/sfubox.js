// Placeholder client for sfubox: the landing page and a protocol demonstration on the
// group page. No dependencies, nothing loaded from elsewhere.
'use strict';

function landingPage() {
    const form = document.getElementById('join-form');
    const input = document.getElementById('group');
    const error = document.getElementById('join-error');
    form.addEventListener('submit', async (e) => {
        e.preventDefault();
        const name = input.value.trim().replace(/^\/+|\/+$/g, '');
        if (!name)
            return;
        const url = '/group/' + name.split('/').map(encodeURIComponent).join('/') + '/';
        const r = await fetch(url + '.status.json', {method: 'HEAD'});
        if (r.ok) {
            location.href = url;
        } else {
            error.textContent = r.status === 404 ? 'No such group' : 'Error ' + r.status;
            error.hidden = false;
        }
    });
    const list = document.getElementById('public-groups');
    fetch('/public-groups.json').then(r => r.json()).then(groups => {
        list.textContent = '';
        if (groups.length === 0) {
            list.textContent = '(no public groups)';
            return;
        }
        for (const g of groups) {
            const li = document.createElement('li');
            const a = document.createElement('a');
            a.href = g.redirect || g.location || '/group/' + g.name + '/';
            a.textContent = g.displayName || g.name;
            li.appendChild(a);
            if (typeof g.clientCount === 'number')
                li.append(' (' + g.clientCount + (g.locked ? ', locked)' : ')'));
            if (g.description)
                li.append(' — ' + g.description);
            list.appendChild(li);
        }
    }).catch(e => { list.textContent = 'Cannot load the list: ' + e; });
}

function randomId() {
    const a = new Uint8Array(16);
    crypto.getRandomValues(a);
    return Array.from(a, b => b.toString(16).padStart(2, '0')).join('');
}

async function groupPage() {
    const log = document.getElementById('log');
    const show = (text) => { log.textContent += text + '\n'; };
    const status = await fetch('.status').then(r => r.json()).catch(() => ({}));
    const group = status.name || decodeURIComponent(location.pathname.replace(/^\/group\/|\/$/g, ''));
    document.getElementById('title').textContent = status.displayName || group;
    const endpoint = status.endpoint ||
          (location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + '/ws';
    const form = document.getElementById('login-form');
    form.addEventListener('submit', (e) => {
        e.preventDefault();
        const username = document.getElementById('username').value;
        const password = document.getElementById('password').value;
        const id = randomId();
        const ws = new WebSocket(endpoint);
        const send = (m) => { show('> ' + JSON.stringify(m)); ws.send(JSON.stringify(m)); };
        ws.onopen = () => {
            send({type: 'handshake', version: ['2'], id: id});
            send({type: 'join', kind: 'join', group: group,
                  username: username, password: password});
        };
        ws.onmessage = (m) => {
            show('< ' + m.data);
            const msg = JSON.parse(m.data);
            if (msg.type === 'ping')
                send({type: 'pong'});
        };
        ws.onclose = (e) => show('closed: ' + e.code + ' ' + e.reason);
    });
}

document.addEventListener('DOMContentLoaded', () => {
    if (document.getElementById('join-form'))
        landingPage();
    else if (document.getElementById('login-form'))
        groupPage();
});
