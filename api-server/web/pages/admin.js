// Administration: every user, their role, and disabling or enabling them. Disabling ends the
// user's sessions at once; their next page load asks them to sign in, which they cannot.

import * as api from '../api.js';
import { formatTime, h, pageHeading, replace, toast } from '../dom.js';

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
  await load();
  return h('section', {}, pageHeading('Administration'), h('p', { class: 'hint' }, 'Changing a role or disabling a user ends their sessions at once.'), table);
}
