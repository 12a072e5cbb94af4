// Sign in, register, and signing in again when a session ends while a page is open.

import * as api from '../api.js';
import { field, fieldError, h, pageHeading } from '../dom.js';

function nextPath() {
  const next = new URLSearchParams(location.search).get('next');
  // Only paths of this app: never another origin, never a protocol-relative URL.
  return next && next.startsWith('/') && !next.startsWith('//') ? next : '/receipts';
}

function credentials(autocomplete) {
  const username = h('input', { name: 'username', autocomplete: 'username', required: true, autocapitalize: 'none', spellcheck: 'false' });
  const password = h('input', { name: 'password', type: 'password', autocomplete: autocomplete, required: true });
  return { username, password };
}

export function loginPage(app) {
  const { username, password } = credentials('current-password');
  const message = h('p', { class: 'error', role: 'alert', hidden: true });
  const submit = h('button', { type: 'submit', class: 'primary' }, 'Sign in');
  const form = h('form', { class: 'card narrow', novalidate: true }, pageHeading('Sign in'),
    field('User name', username), field('Password', password), message, submit,
    h('p', {}, 'New here? ', h('a', { href: '/register' }, 'Create an account')));
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    message.hidden = true;
    if (!username.value.trim() || !password.value) {
      message.textContent = 'Enter your user name and password.';
      message.hidden = false;
      return;
    }
    submit.disabled = true;
    try {
      await api.login(username.value.trim(), password.value);
      await app.refreshUser();
      app.navigate(nextPath(), { replace: true });
    } catch (error) {
      message.textContent = error instanceof api.ApiError && error.status === 401
        ? 'That user name and password do not match an active account.'
        : api.explain(error);
      message.hidden = false;
      password.select();
    } finally {
      submit.disabled = false;
    }
  });
  return form;
}

export async function registerPage(app) {
  let policy = 'open';
  try {
    policy = (await api.get('/api/auth/registration')).policy;
  } catch {
    // An older server without the route: registration is open there.
  }
  if (policy === 'closed') {
    return h('div', { class: 'card narrow' }, pageHeading('Create an account'),
      h('p', {}, 'This instance does not take new accounts: an administrator creates them. Ask yours for one.'),
      h('p', {}, 'Already have an account? ', h('a', { href: '/login' }, 'Sign in')));
  }
  const { username, password } = credentials('new-password');
  const email = h('input', { name: 'email', type: 'email', autocomplete: 'email', required: true });
  const invite = policy === 'invite'
    ? h('input', { name: 'invite_code', autocomplete: 'off', required: true, spellcheck: 'false', value: new URLSearchParams(location.search).get('invite') || '' })
    : null;
  const message = h('p', { class: 'error', role: 'alert', hidden: true });
  const submit = h('button', { type: 'submit', class: 'primary' }, 'Create account');
  const form = h('form', { class: 'card narrow', novalidate: true }, pageHeading('Create an account'),
    invite ? field('Invite code', invite, 'Accounts here are by invitation; the code came with your invite.') : null,
    field('User name', username, '3 to 32 letters, digits, dots, dashes or underscores.'),
    field('Email', email),
    field('Password', password, 'At least 8 characters, not a common password.'),
    message, submit,
    h('p', {}, 'Already have an account? ', h('a', { href: '/login' }, 'Sign in')));
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    message.hidden = true;
    for (const control of [username, email, password, invite].filter(Boolean)) fieldError(control, null);
    let valid = true;
    if (invite && !invite.value.trim()) { fieldError(invite, 'Enter the code of your invite.'); valid = false; }
    if (!/^[a-zA-Z0-9._-]{3,32}$/.test(username.value.trim())) { fieldError(username, 'Use 3 to 32 letters, digits, dots, dashes or underscores.'); valid = false; }
    if (!email.validity.valid || !email.value) { fieldError(email, 'Enter an email address.'); valid = false; }
    if (password.value.length < 8) { fieldError(password, 'Use at least 8 characters.'); valid = false; }
    if (!valid) {
      form.querySelector('[aria-invalid]')?.focus();
      return;
    }
    submit.disabled = true;
    try {
      const body = { username: username.value.trim(), email: email.value.trim(), password: password.value };
      if (invite) body.invite_code = invite.value.trim();
      await api.post('/api/auth/register', body);
      await api.login(username.value.trim(), password.value);
      await app.refreshUser();
      app.navigate('/upload', { replace: true });
    } catch (error) {
      const detail = error instanceof api.ApiError ? error.problem.detail || '' : '';
      const target = { username, email, password }[detail.split(':')[0]];
      if (target) {
        fieldError(target, detail.slice(detail.indexOf(':') + 1).trim());
        target.focus();
      } else if (invite && error instanceof api.ApiError && error.status === 403) {
        fieldError(invite, 'That invite code is unknown, used or expired. Ask for a new one.');
        invite.focus();
      } else {
        message.textContent = api.explain(error);
        message.hidden = false;
      }
    } finally {
      submit.disabled = false;
    }
  });
  return form;
}

/** Asks for the password again over the current page; resolves true once signed in. */
export function reauthenticate(app) {
  return new Promise((resolve) => {
    const dialog = document.getElementById('reauth');
    const { username, password } = credentials('current-password');
    username.value = app.user.username;
    username.readOnly = true;
    const message = h('p', { class: 'error', role: 'alert', hidden: true });
    const form = h('form', { method: 'dialog', novalidate: true },
      h('h2', { id: 'reauth-title' }, 'Your session has ended'),
      h('p', {}, 'Sign in again to carry on. Nothing you typed on this page is lost.'),
      field('User name', username), field('Password', password), message,
      h('div', { class: 'actions' },
        h('button', { type: 'submit', class: 'primary' }, 'Sign in'),
        h('button', { type: 'button', value: 'leave', onclick: () => { dialog.close(); app.user = null; resolve(false); location.assign('/login?ended=1'); } }, 'Sign out')));
    form.addEventListener('submit', async (event) => {
      event.preventDefault();
      try {
        await api.login(username.value, password.value);
        dialog.close();
        resolve(true);
      } catch (error) {
        message.textContent = error instanceof api.ApiError && error.status === 401 ? 'Wrong password, or the account was disabled.' : api.explain(error);
        message.hidden = false;
      }
    });
    dialog.setAttribute('aria-labelledby', 'reauth-title');
    dialog.replaceChildren(form);
    dialog.addEventListener('cancel', (event) => event.preventDefault(), { once: true });
    dialog.showModal();
    password.focus();
  });
}
