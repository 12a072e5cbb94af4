// Settings: API keys (created and shown once with a copy button, revoked) and the password.

import * as api from '../api.js';
import { field, fieldError, formatTime, h, pageHeading, replace, toast } from '../dom.js';

export async function settingsPage(app) {
  const keyList = h('div', { class: 'table-wrap' });
  const created = h('div', { 'aria-live': 'polite' });

  const load = async () => {
    const keys = await api.get('/api/auth/api-keys');
    replace(keyList, keys.length
      ? h('table', {}, h('caption', { class: 'visually-hidden' }, 'Your API keys'),
        h('thead', {}, h('tr', {}, ['Name', 'Starts with', 'Created'].map((title) => h('th', { scope: 'col' }, title)), h('th', { scope: 'col' }, h('span', { class: 'visually-hidden' }, 'Actions')))),
        h('tbody', {}, keys.map((key) => h('tr', {}, h('th', { scope: 'row' }, key.name), h('td', {}, h('code', {}, `${key.prefix}…`)), h('td', {}, formatTime(key.created_at)),
          h('td', {}, h('button', { type: 'button', class: 'danger', 'aria-label': `Revoke ${key.name}`, onclick: () => revoke(key) }, 'Revoke'))))))
      : h('p', { class: 'hint' }, 'No API keys yet.'));
  };

  const revoke = async (key) => {
    if (!window.confirm(`Revoke “${key.name}”? Programs using it stop working at once.`)) return;
    try {
      await api.del(`/api/auth/api-keys/${key.id}`);
      toast(`“${key.name}” revoked.`);
      await load();
    } catch (error) {
      toast(api.explain(error), 'error');
    }
  };

  const name = h('input', { name: 'name', required: true, maxlength: '64', autocomplete: 'off' });
  const createForm = h('form', { class: 'inline-form', novalidate: true }, field('Key name', name, 'What will use it, e.g. “bookkeeping export”.'),
    h('button', { type: 'submit', class: 'primary' }, 'Create key'));
  createForm.addEventListener('submit', async (event) => {
    event.preventDefault();
    fieldError(name, null);
    if (!name.value.trim()) { fieldError(name, 'Give the key a name.'); name.focus(); return; }
    try {
      const key = await api.post('/api/auth/api-keys', { name: name.value.trim() });
      name.value = '';
      const value = h('input', { readonly: true, value: key.key, class: 'secret', 'aria-label': 'The new API key', id: 'new-api-key' });
      const copy = h('button', { type: 'button' }, 'Copy');
      copy.addEventListener('click', async () => {
        try {
          await navigator.clipboard.writeText(key.key);
          toast('Copied.');
        } catch {
          value.select();
          toast('Select the key and copy it (Ctrl+C).');
        }
      });
      replace(created, h('div', { class: 'card notice' }, h('h3', {}, `Key “${key.name}” created`),
        h('p', {}, 'Copy it now: it is shown only this once. Send it as the X-API-Key header.'), h('div', { class: 'inline-form' }, value, copy)));
      value.focus();
      value.select();
      await load();
    } catch (error) {
      fieldError(name, api.explain(error));
    }
  });

  const current = h('input', { type: 'password', autocomplete: 'current-password', name: 'current' });
  const fresh = h('input', { type: 'password', autocomplete: 'new-password', name: 'new' });
  const passwordForm = h('form', { novalidate: true }, field('Current password', current), field('New password', fresh, 'At least 8 characters. Other sessions end and API keys are revoked.'),
    h('button', { type: 'submit' }, 'Change password'));
  passwordForm.addEventListener('submit', async (event) => {
    event.preventDefault();
    fieldError(current, null);
    fieldError(fresh, null);
    try {
      // Every other session ends; this page's continues under a new cookie.
      await api.changePassword(current.value, fresh.value);
      current.value = '';
      fresh.value = '';
      toast('Password changed. Other sessions were signed out and API keys revoked.');
      await load();
    } catch (error) {
      const detail = error instanceof api.ApiError ? error.problem.detail || '' : '';
      if (detail.startsWith('current_password')) fieldError(current, 'That is not your current password.');
      else fieldError(fresh, api.explain(error));
    }
  });

  await load();
  return h('section', {}, pageHeading('Settings'),
    h('section', { class: 'card' }, h('h2', {}, 'API keys'), h('p', { class: 'hint' }, 'Keys let programs use the API as you. ', h('a', { href: '/docs' }, 'API documentation')), createForm, created, keyList),
    h('section', { class: 'card' }, h('h2', {}, 'Password'), passwordForm),
    h('section', { class: 'card' }, h('h2', {}, 'Account'), h('dl', {}, h('dt', {}, 'User name'), h('dd', {}, app.user.username), h('dt', {}, 'Email'), h('dd', {}, app.user.email), h('dt', {}, 'Role'), h('dd', {}, app.user.role))));
}
