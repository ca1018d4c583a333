// sfubox landing page: the public groups, and a box to join any group.

const $ = id => document.getElementById(id);

/** The URL of a group's meeting page. */
function groupURL(name) {
    return '/group/' + name.split('/').map(encodeURIComponent).join('/') + '/';
}

function showError(text) {
    $('join-error').textContent = text;
    $('join-error').hidden = !text;
}

function groupItem(g) {
    const a = document.createElement('a');
    a.className = 'group-link card';
    a.href = g.redirect || g.location || groupURL(g.name);
    const info = document.createElement('div');
    info.className = 'info';
    const name = document.createElement('div');
    name.className = 'name';
    name.textContent = g.displayName || g.name;
    info.append(name);
    if (g.description) {
        const d = document.createElement('p');
        d.className = 'description';
        d.textContent = g.description;
        info.append(d);
    }
    const meta = document.createElement('div');
    meta.className = 'meta';
    if (g.locked) {
        const lock = document.createElement('span');
        lock.className = 'badge';
        lock.textContent = 'Locked';
        meta.append(lock);
    }
    if (typeof g.clientCount === 'number') {
        const count = document.createElement('span');
        count.textContent = g.clientCount === 1 ? '1 person' : g.clientCount + ' people';
        meta.append(count);
    }
    a.append(info, meta);
    a.setAttribute('aria-label', [g.displayName || g.name, g.description, g.locked ? 'locked' : '',
        typeof g.clientCount === 'number' ? meta.lastChild.textContent : ''].filter(Boolean).join(', '));
    const li = document.createElement('li');
    li.dataset.group = g.name;
    li.append(a);
    return li;
}

async function listGroups() {
    const list = $('public-groups');
    try {
        const r = await fetch('/public-groups.json', {cache: 'no-cache'});
        if (!r.ok)
            throw new Error(`${r.status} ${r.statusText}`);
        const groups = await r.json();
        list.replaceChildren(...groups.map(groupItem));
        $('public-empty').hidden = groups.length > 0;
    } catch (e) {
        $('public-empty').textContent = 'Could not load the list of groups (' + e.message + ').';
        $('public-empty').hidden = false;
    } finally {
        list.removeAttribute('aria-busy');
    }
}

$('join-form').addEventListener('submit', async e => {
    e.preventDefault();
    const name = $('group-input').value.trim().replace(/^\/+|\/+$/g, '');
    if (!name) {
        showError('Type the name of a group.');
        $('group-input').focus();
        return;
    }
    showError('');
    const url = groupURL(name);
    try {
        const r = await fetch(url + '.status', {method: 'HEAD', cache: 'no-cache'});
        if (r.status === 404) {
            showError('There is no group called “' + name + '”.');
            return;
        }
    } catch (err) {
        // let the group page report the problem
    }
    location.href = url;
});

listGroups();
