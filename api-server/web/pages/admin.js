// Administration: the instance (who may register, storage used against its limit), invites to
// register, accounts made by hand, and every user, their role, and disabling or enabling them.
// Disabling ends the user's sessions at once; their next page load asks them to sign in, which
// they cannot.

import * as api from '../api.js';
import { field, fieldError, formatTime, h, pageHeading, replace, toast } from '../dom.js';

const POLICIES = {
  open: 'Open: anyone can create an account.',
  invite: 'By invitation: an account needs an invite code made here.',
  closed: 'Closed: only administrators create accounts.',
};

function formatBytes(bytes) {
  const units = ['bytes', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) { value /= 1024; unit += 1; }
  return `${unit === 0 ? value : value.toFixed(1)} ${units[unit]}`;
}

function instanceSection(instance) {
  const storage = instance.storage;
  const limit = storage.limit_image_bytes;
  const use = limit
    ? h('div', {}, h('progress', { max: String(limit), value: String(Math.min(storage.image_bytes, limit)), 'aria-label': 'Storage used' }),
      h('p', {}, `${formatBytes(storage.image_bytes)} of ${formatBytes(limit)} used by ${storage.receipts} receipts.`))
    : h('p', {}, `${formatBytes(storage.image_bytes)} used by ${storage.receipts} receipts; no instance-wide limit (STORAGE_LIMIT_BYTES).`);
  return h('section', { class: 'card', 'aria-labelledby': 'instance-title', dataset: { registration: instance.registration } },
    h('h2', { id: 'instance-title' }, 'This instance'),
    h('p', {}, h('strong', {}, 'Registration: '), POLICIES[instance.registration] || instance.registration, ' ', h('span', { class: 'hint' }, '(REGISTRATION)')),
    use);
}

function invitesSection() {
  const list = h('div', { class: 'table-wrap' });
  const shown = h('div', { 'aria-live': 'polite' });
  const load = async () => {
    const invites = await api.get('/api/admin/invites');
    replace(list, invites.length
      ? h('table', {}, h('caption', { class: 'visually-hidden' }, 'Outstanding invites'),
        h('thead', {}, h('tr', {}, ['For', 'Made', 'Expires'].map((title) => h('th', { scope: 'col' }, title)), h('th', { scope: 'col' }, h('span', { class: 'visually-hidden' }, 'Actions')))),
        h('tbody', {}, invites.map((invite) => h('tr', { dataset: { invite: invite.id } }, h('th', { scope: 'row' }, invite.note || '—'),
          h('td', {}, formatTime(invite.created_at)), h('td', {}, formatTime(invite.expires_at)),
          h('td', {}, h('button', { type: 'button', class: 'danger', 'aria-label': `Withdraw the invite for ${invite.note || 'nobody in particular'}`, onclick: async () => {
            try {
              await api.del(`/api/admin/invites/${invite.id}`);
              toast('Invite withdrawn.');
              await load();
            } catch (error) {
              toast(api.explain(error), 'error');
            }
          } }, 'Withdraw'))))))
      : h('p', { class: 'hint' }, 'No invites outstanding.'));
  };
  const note = h('input', { name: 'note', maxlength: '200', autocomplete: 'off' });
  const hours = h('input', { name: 'hours', type: 'number', min: '1', max: '720', value: '168', inputmode: 'numeric' });
  const form = h('form', { class: 'inline-form', novalidate: true }, field('For', note, 'Whom it is for, to tell invites apart.'),
    field('Valid for (hours)', hours), h('button', { type: 'submit', class: 'primary' }, 'Make invite'));
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    fieldError(hours, null);
    const valid = Number(hours.value);
    if (!Number.isInteger(valid) || valid < 1 || valid > 720) { fieldError(hours, 'Between 1 and 720 hours.'); hours.focus(); return; }
    try {
      const invite = await api.post('/api/admin/invites', { note: note.value.trim(), expires_in_hours: valid });
      note.value = '';
      const link = `${location.origin}/register?invite=${encodeURIComponent(invite.code)}`;
      const value = h('input', { readonly: true, value: link, class: 'secret', 'aria-label': 'The invite link', id: 'new-invite-link' });
      const copy = h('button', { type: 'button', onclick: async () => {
        try {
          await navigator.clipboard.writeText(link);
          toast('Copied.');
        } catch {
          value.select();
          toast('Select the link and copy it (Ctrl+C).');
        }
      } }, 'Copy');
      replace(shown, h('div', { class: 'card notice' }, h('h3', {}, 'Invite made'),
        h('p', {}, `Send this link now: it is shown only this once, works for one account, and expires ${formatTime(invite.expires_at)}.`),
        h('div', { class: 'inline-form' }, value, copy)));
      value.focus();
      value.select();
      await load();
    } catch (error) {
      toast(api.explain(error), 'error');
    }
  });
  return { element: h('section', { class: 'card', 'aria-labelledby': 'invites-title' }, h('h2', { id: 'invites-title' }, 'Invites'), form, shown, list), load };
}

function newUserSection(reload) {
  const username = h('input', { name: 'new-username', autocomplete: 'off', autocapitalize: 'none', spellcheck: 'false', required: true });
  const email = h('input', { name: 'new-email', type: 'email', autocomplete: 'off', required: true });
  const password = h('input', { name: 'new-password', type: 'password', autocomplete: 'new-password', required: true });
  const role = h('select', { name: 'new-role' }, ROLES.map((r) => h('option', { value: r }, r)));
  const form = h('form', { novalidate: true }, field('User name', username), field('Email', email),
    field('First password', password, 'At least 8 characters; they change it after signing in.'), field('Role', role),
    h('button', { type: 'submit', class: 'primary' }, 'Create account'));
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    for (const control of [username, email, password]) fieldError(control, null);
    try {
      const user = await api.post('/api/admin/users', { username: username.value.trim(), email: email.value.trim(), password: password.value, role: role.value });
      toast(`${user.username} created.`);
      form.reset();
      await reload();
    } catch (error) {
      const detail = error instanceof api.ApiError ? error.problem.detail || '' : '';
      const target = { username, email, password }[detail.split(':')[0]];
      if (target) {
        fieldError(target, detail.slice(detail.indexOf(':') + 1).trim());
        target.focus();
      } else {
        toast(api.explain(error), 'error');
      }
    }
  });
  return h('section', { class: 'card', 'aria-labelledby': 'new-user-title' }, h('h2', { id: 'new-user-title' }, 'Create an account'), form);
}

const ROLES = ['user', 'service', 'admin'];

export async function adminPage(app) {
  const table = h('div', { class: 'table-wrap' });
  const load = async () => {
    const users = await api.get('/api/admin/users');
    replace(table, h('table', {}, h('caption', { class: 'visually-hidden' }, 'Users'),
      h('thead', {}, h('tr', {}, ['User', 'Email', 'Role', 'Status', 'Created'].map((title) => h('th', { scope: 'col' }, title)), h('th', { scope: 'col' }, h('span', { class: 'visually-hidden' }, 'Actions')))),
      h('tbody', {}, users.map((user) => {
        const self = user.id === app.user.id;
        const role = h('select', { 'aria-label': `Role of ${user.username}`, disabled: self }, ROLES.map((r) => h('option', { value: r, selected: r === user.role }, r)));
        role.addEventListener('change', async () => {
          try {
            await api.put(`/api/admin/users/${user.id}/role`, { role: role.value });
            toast(`${user.username} is now ${role.value}.`);
          } catch (error) {
            toast(api.explain(error), 'error');
            role.value = user.role;
          }
        });
        const action = user.disabled ? 'enable' : 'disable';
        const button = h('button', { type: 'button', class: user.disabled ? '' : 'danger', disabled: self, 'aria-label': `${user.disabled ? 'Enable' : 'Disable'} ${user.username}` }, user.disabled ? 'Enable' : 'Disable');
        button.addEventListener('click', async () => {
          if (action === 'disable' && !window.confirm(`Disable ${user.username}? They are signed out everywhere and their API keys stop working.`)) return;
          try {
            await api.post(`/api/admin/users/${user.id}/${action}`);
            toast(`${user.username} ${action}d.`);
            await load();
          } catch (error) {
            toast(api.explain(error), 'error');
          }
        });
        return h('tr', { dataset: { user: user.username } }, h('th', { scope: 'row' }, user.username, self ? ' (you)' : ''), h('td', {}, user.email), h('td', {}, role),
          h('td', {}, h('span', { class: `badge ${user.disabled ? 'failed' : 'done'}` }, user.disabled ? 'Disabled' : 'Active')), h('td', {}, formatTime(user.created_at)), h('td', {}, button));
      }))));
  };
  const [instance] = await Promise.all([api.get('/api/admin/instance'), load()]);
  const invites = instance.registration === 'invite' ? invitesSection() : null;
  if (invites) await invites.load();
  return h('section', {}, pageHeading('Administration'), instanceSection(instance), invites?.element,
    h('section', { 'aria-labelledby': 'users-title' }, h('h2', { id: 'users-title' }, 'Users'),
      h('p', { class: 'hint' }, 'Changing a role or disabling a user ends their sessions at once.'), table),
    newUserSection(load));
}
