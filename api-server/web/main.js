// The app's shell: who is signed in, the navigation, the router (History API; the server answers
// every page's path with this same page), and the sign-in dialog that appears when a session ends
// while a page is open.

import * as api from './api.js';
import { h, replace, toast } from './dom.js';
import { loginPage, registerPage, reauthenticate } from './pages/auth.js';
import { uploadPage } from './pages/upload.js';
import { receiptsPage } from './pages/receipts.js';
import { receiptPage } from './pages/receipt.js';
import { insightsPage } from './pages/insights.js';
import { settingsPage } from './pages/settings.js';
import { adminPage } from './pages/admin.js';

const main = document.getElementById('main');
const app = { user: null, navigate, refreshUser, leave: null };

const routes = [
  { pattern: /^\/login$/, page: loginPage, open: true },
  { pattern: /^\/register$/, page: registerPage, open: true },
  { pattern: /^\/upload$/, page: uploadPage },
  { pattern: /^\/receipts$/, page: receiptsPage },
  { pattern: /^\/receipts\/([0-9a-f-]{36})$/, page: receiptPage },
  { pattern: /^\/insights$/, page: insightsPage },
  { pattern: /^\/settings$/, page: settingsPage },
  { pattern: /^\/admin$/, page: adminPage, admin: true },
];

async function refreshUser() {
  app.user = await api.get('/api/auth/me');
  shell();
}

function shell() {
  const header = document.getElementById('top');
  header.hidden = !app.user;
  document.getElementById('who').textContent = app.user ? app.user.username : '';
  for (const link of header.querySelectorAll('[data-admin]')) link.hidden = app.user?.role !== 'admin';
  for (const link of header.querySelectorAll('nav a')) {
    const current = location.pathname === link.getAttribute('href')
      || (link.getAttribute('href') === '/receipts' && location.pathname.startsWith('/receipts/'));
    if (current) link.setAttribute('aria-current', 'page');
    else link.removeAttribute('aria-current');
  }
}

/** Goes to a path of the app (pushing history unless `replace`). */
async function navigate(path, { replace: replacing = false } = {}) {
  if (app.leave && !app.leave()) return;
  app.leave = null;
  if (replacing) history.replaceState(null, '', path);
  else if (path !== location.pathname + location.search) history.pushState(null, '', path);
  await render();
}

async function render() {
  const path = location.pathname === '/' ? '/receipts' : location.pathname;
  const route = routes.find((candidate) => candidate.pattern.test(path));
  if (!route) {
    replace(main, h('h1', { tabindex: '-1', id: 'page-heading' }, 'Not found'), h('p', {}, h('a', { href: '/receipts' }, 'Back to your receipts')));
    return;
  }
  if (!route.open && !app.user) {
    const next = encodeURIComponent(location.pathname + location.search);
    history.replaceState(null, '', `/login?next=${next}`);
    return render();
  }
  if (route.open && app.user) {
    history.replaceState(null, '', '/receipts');
    return render();
  }
  if (route.admin && app.user.role !== 'admin') {
    replace(main, h('h1', { tabindex: '-1', id: 'page-heading' }, 'Administrators only'));
    return;
  }
  shell();
  const params = path.match(route.pattern).slice(1);
  // A page that finishes loading after the user went elsewhere must not replace the newer page.
  const generation = ++render.generation;
  replace(main, h('p', { class: 'loading', role: 'status' }, 'Loading…'));
  try {
    const content = await route.page(app, ...params);
    if (generation !== render.generation) return;
    replace(main, content);
  } catch (error) {
    if (generation !== render.generation) return;
    replace(main, h('h1', { tabindex: '-1', id: 'page-heading' }, 'Could not load this page'), h('p', { class: 'error' }, api.explain(error)),
      h('button', { type: 'button', onclick: () => render() }, 'Try again'));
  }
  const heading = document.getElementById('page-heading');
  if (heading && render.count++ > 0) heading.focus({ preventScroll: true });
  window.scrollTo(0, 0);
}
render.count = 0;
render.generation = 0;

document.addEventListener('click', (event) => {
  const link = event.target.closest('a[href]');
  if (!link || event.defaultPrevented || event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
  const href = link.getAttribute('href');
  if (!href.startsWith('/') || href.startsWith('/api/') || href.startsWith('/docs') || link.hasAttribute('download') || link.target) return;
  event.preventDefault();
  navigate(href);
});

window.addEventListener('popstate', () => render());

document.getElementById('signout').addEventListener('click', async () => {
  try {
    await api.logout();
  } catch (error) {
    toast(api.explain(error), 'error');
  }
  app.user = null;
  shell();
  navigate('/login', { replace: true });
});

// A session that ends while a page is open (expired, signed out elsewhere, disabled): ask for
// the password again in a dialog over the page, keep everything typed, and retry the request.
let asking = null;
api.onSessionLost(() => {
  if (!app.user) return Promise.resolve(false);
  asking ||= reauthenticate(app).finally(() => { asking = null; });
  return asking;
});

async function start() {
  try {
    if (await api.refresh()) app.user = await api.get('/api/auth/me');
  } catch (error) {
    if (!(error instanceof api.ApiError)) toast(api.explain(error), 'error');
  }
  if (!app.user && location.search.includes('ended=1')) toast('Your session has ended. Please sign in again.');
  await render();
}

start();
