// sfubox change-password page (/change-password.html?group=G&username=U): a user of a group
// changes its own password through the admin API, proving who it is with its current
// password (the API's "explicit password" rule, as Galène's page does). The server must have
// writableGroups on; the meeting page links here only when it has.

const $ = id => document.getElementById(id);

const params = new URLSearchParams(location.search);
const group = params.get('group') || '';
const username = params.get('username') || '';

function show(id, text) {
    $(id).textContent = text || '';
    $(id).hidden = !text;
}

function basic(user, password) {
    const bytes = new TextEncoder().encode(`${user}:${password}`);
    let binary = '';
    for (const b of bytes)
        binary += String.fromCharCode(b);
    return 'Basic ' + btoa(binary);
}

const groupPath = '/group/' + group.split('/').map(encodeURIComponent).join('/') + '/';
$('back-link').href = groupPath;
if (!group || !username) {
    show('password-error', 'This page needs a group and a user name (open it from the meeting page).');
    $('password-submit').disabled = true;
} else {
    $('password-who').textContent = `${username} in ${group}`;
}

$('password-form').addEventListener('submit', async e => {
    e.preventDefault();
    show('password-error', '');
    $('password-done').hidden = true;
    const old = $('old-password').value;
    const fresh = $('new-password').value;
    if (fresh !== $('new-password2').value) {
        show('password-error', 'The two new passwords differ.');
        return;
    }
    if (!fresh) {
        show('password-error', 'Choose a new password.');
        return;
    }
    $('password-submit').disabled = true;
    try {
        const path = '/galene-api/v0/.groups/' + group.split('/').map(encodeURIComponent).join('/') +
            '/.users/' + encodeURIComponent(username) + '/.password';
        const r = await fetch(path, {
            method: 'POST',
            headers: {'Content-Type': 'text/plain', Authorization: basic(username, old)},
            body: fresh,
            credentials: 'omit',
        });
        if (r.status === 401) {
            const text = (await r.text()).trim();
            throw new Error(text === 'not authorised'
                ? 'Passwords cannot be changed on this server.'
                : 'The current password is wrong.');
        }
        if (!r.ok)
            throw new Error(`The server refused (${r.status} ${(await r.text()).trim()}).`);
        for (const id of ['old-password', 'new-password', 'new-password2'])
            $(id).value = '';
        $('password-done').hidden = false;
    } catch (err) {
        show('password-error', err.message || String(err));
    } finally {
        $('password-submit').disabled = false;
    }
});
