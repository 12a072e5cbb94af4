// Browser scenarios for the web app, run by api-server/tests/browser.rs against the real binary:
//
//   node run.mjs <scenario> --base http://127.0.0.1:PORT --artifacts DIR --fixtures DIR
//
// Drives Debian's chromium headless through playwright-core (no browser download). Every page a
// scenario visits is checked with axe-core (no serious or critical violation) and for content
// security policy violations. On failure a screenshot of every open page is saved in the
// artifacts folder. Exits 0 when the scenario passed.

import { readFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

const require = createRequire(import.meta.url);
const axeSource = readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');

const args = Object.fromEntries(process.argv.slice(3).reduce((pairs, value, index, all) => {
  if (value.startsWith('--')) pairs.push([value.slice(2), all[index + 1]]);
  return pairs;
}, []));
const scenario = process.argv[2];
const base = args.base;
const artifacts = args.artifacts;
const fixtures = args.fixtures;
mkdirSync(artifacts, { recursive: true });

const CHROMIUM_FLAGS = ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
  '--disable-sync', '--no-first-run', '--disable-dev-shm-usage'];

const pages = [];
const checked = [];
const violations = [];

function log(...parts) {
  console.log(`[${scenario}]`, ...parts);
}

function assert(condition, message) {
  if (!condition) throw new Error(`assertion failed: ${message}`);
}

async function newPage(browser, options = {}) {
  const context = await browser.newContext({ acceptDownloads: true, ...options });
  const page = await context.newPage();
  // CSP violations are reported by the browser as events: collect every one.
  await page.addInitScript(() => {
    document.addEventListener('securitypolicyviolation', (event) => {
      console.error(`CSP violation: ${event.violatedDirective} blocked ${event.blockedURI}`);
    });
  });
  page.on('console', (message) => {
    if (message.type() === 'error' && /Content Security Policy|CSP violation/.test(message.text())) violations.push(message.text());
  });
  page.on('pageerror', (error) => violations.push(`page error: ${error.message}`));
  pages.push(page);
  return page;
}

/** axe-core on the current page: fails on serious or critical violations. */
async function accessible(page, name) {
  await page.evaluate(axeSource);
  const result = await page.evaluate(async () => {
    // eslint-disable-next-line no-undef
    const outcome = await axe.run(document, { runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'wcag22aa', 'best-practice'] } });
    return outcome.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.slice(0, 3).map((n) => n.target.join(' ')) }));
  });
  const bad = result.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  checked.push({ page: name, violations: result.length, serious: bad.length, minor: result.filter((v) => !bad.includes(v)).map((v) => `${v.id} (${v.impact})`) });
  assert(bad.length === 0, `axe-core on ${name}: ${JSON.stringify(bad, null, 1)}`);
}

async function heading(page, text) {
  await page.getByRole('heading', { level: 1, name: text }).waitFor({ timeout: 15000 });
}

async function register(page, username, password = 'receipts-are-fun-42') {
  await page.goto(`${base}/register`);
  await heading(page, 'Create an account');
  await page.getByLabel('User name').fill(username);
  await page.getByLabel('Email').fill(`${username}@example.com`);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Create account' }).click();
  await heading(page, 'Upload receipts');
  return password;
}

async function signIn(page, username, password) {
  await page.goto(`${base}/login`);
  await heading(page, 'Sign in');
  await page.getByLabel('User name').fill(username);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.locator('#top:not([hidden])').waitFor();
}

/** Drops files on an element, as a drag from the desktop does. `files`: [{name, type, bytes}]. */
async function drop(page, selector, files) {
  const transfer = await page.evaluateHandle((list) => {
    const data = new DataTransfer();
    for (const file of list) data.items.add(new File([Uint8Array.from(file.bytes)], file.name, { type: file.type }));
    return data;
  }, files.map((file) => ({ ...file, bytes: [...file.bytes] })));
  await page.dispatchEvent(selector, 'drop', { dataTransfer: transfer });
}

async function uploadAndWait(page, file) {
  await page.goto(`${base}/upload`);
  await heading(page, 'Upload receipts');
  await page.locator('#upload-files').setInputFiles(join(fixtures, file));
  const item = page.locator('.upload', { hasText: file });
  await page.locator('.upload[data-state=done], .upload[data-state=failed]', { hasText: file }).waitFor({ timeout: 120000 });
  assert(await item.getAttribute('data-state') === 'done', `the receipt was read: ${await item.innerText()}`);
  return item;
}

// ---------------------------------------------------------------------------------------------

const scenarios = {
  /** Register, upload, watch it become done, open it, correct the total, see insights change, export CSV. */
  async journey(browser) {
    const page = await newPage(browser, { viewport: { width: 1280, height: 900 } });
    const user = `journey${Date.now() % 100000}`;
    await register(page, user);
    await accessible(page, 'upload');
    // Several files dropped at once; the ones that are not receipt images say why, in words.
    await drop(page, '.dropzone', [
      { name: 'notes.txt', type: 'text/plain', bytes: Buffer.from('not a receipt') },
      { name: 'broken.png', type: 'image/png', bytes: Buffer.from('this is not really a PNG file') },
    ]);
    await page.locator('.upload[data-state=failed]', { hasText: 'notes.txt' }).getByText('Not a receipt file we can read').waitFor();
    const broken = page.locator('.upload[data-state=failed]', { hasText: 'broken.png' });
    await broken.waitFor();
    log('a broken image is refused with:', await broken.locator('.status').innerText());
    assert(!/\b(Error|error:|panicked|stack)\b/.test(await broken.innerText()), 'the refusal is in plain words');
    const item = await uploadAndWait(page, '000.jpg');
    log('the upload list says:', await item.locator('.status').innerText());
    await screenshot(page, 'upload');
    // Insights before the correction (the receipt's date may be years back: a wide range).
    const insightsTotal = async () => {
      await page.goto(`${base}/insights?from=2000-01-01&to=2099-12-31`);
      await heading(page, 'Insights');
      // A receipt read without a date or total does not count yet: the page says so.
      const text = await page.locator('[data-testid=insights-total]').or(page.locator('.empty')).first().innerText();
      log('insights say:', text);
      return text;
    };
    const insightsBefore = await insightsTotal();
    await page.goto(`${base}/receipts`);
    await heading(page, 'Receipts');
    await page.locator('tbody tr a').first().click();
    await page.locator('form.fields').waitFor();
    await page.locator('.stage img[src^="blob:"]').waitFor();
    await page.waitForFunction(() => document.querySelector('.stage img').complete && document.querySelector('.stage img').naturalWidth > 0);
    await accessible(page, 'receipt');
    const total = page.getByLabel('Total', { exact: true });
    const before = await total.inputValue();
    log('total read by OCR:', before);
    await total.focus();
    const outlined = await page.locator('.box.active[data-field=total]').count();
    const hasBox = await page.locator('.box[data-field=total]').count();
    assert(hasBox === 0 || outlined === 1, 'focusing the total outlines where it was read');
    log('total outlined on the image:', outlined === 1);
    await screenshot(page, 'review');
    await total.fill('abc');
    await page.keyboard.press('Control+Enter');
    await page.getByText('An amount such as 12.50.').waitFor();
    await total.fill('123.45');
    await page.keyboard.press('Control+Enter');
    await page.getByText('Saved. The original reading is kept.').waitFor();
    await page.getByText('Original reading (before your corrections)').waitFor();
    await page.reload();
    await page.locator('form.fields').waitFor();
    assert(await page.getByLabel('Total', { exact: true }).inputValue() === '123.45', 'the correction is stored');

    await page.getByRole('link', { name: 'Insights' }).click();
    await heading(page, 'Insights');
    // The date range form: widen it to cover the receipt's date.
    await page.getByLabel('From').fill('2000-01-01');
    await page.getByRole('button', { name: 'Show' }).click();
    await page.waitForURL(/from=2000-01-01/);
    await page.locator('[data-testid=insights-total]').waitFor();
    const shown = await page.locator('[data-testid=insights-total]').innerText();
    log('insights say:', shown);
    assert(/123[.,]45/.test(shown) && shown !== insightsBefore, `the insights count the corrected total: ${insightsBefore} → ${shown}`);
    await accessible(page, 'insights');
    await screenshot(page, 'insights');
    const [download] = await Promise.all([page.waitForEvent('download'), page.getByRole('button', { name: 'Export CSV' }).click()]);
    const csv = readFileSync(await download.path(), 'utf8');
    assert(csv.includes('123.45'), `the CSV has the corrected total: ${csv.slice(0, 300)}`);
    log('CSV rows:', csv.trim().split('\n').length - 1);

    await page.getByRole('link', { name: 'Receipts', exact: true }).click();
    await heading(page, 'Receipts');
    await page.locator('tbody tr').first().waitFor();
    await accessible(page, 'receipts');
    // Bulk delete: select all on the page, delete, confirm.
    page.once('dialog', (dialog) => dialog.accept());
    await page.getByLabel('Select all on this page').check();
    await page.getByRole('button', { name: /^Delete 1$/ }).click();
    await page.getByText('No receipts yet.').waitFor();
  },

  /** Create an API key (shown once, works), revoke it (stops working). */
  async apiKeys(browser) {
    const page = await newPage(browser);
    await register(page, `keys${Date.now() % 100000}`);
    await page.getByRole('link', { name: 'Settings' }).click();
    await heading(page, 'Settings');
    await accessible(page, 'settings');
    await page.getByLabel('Key name').fill('bookkeeping export');
    await page.getByRole('button', { name: 'Create key' }).click();
    const value = await page.locator('#new-api-key').inputValue();
    assert(value.length > 20, 'the key is shown');
    const call = () => fetch(`${base}/api/auth/me`, { headers: { 'x-api-key': value } }).then((r) => r.status);
    assert(await call() === 200, 'the new key works');
    await page.getByRole('row', { name: /bookkeeping export/ }).waitFor();
    await page.reload();
    await heading(page, 'Settings');
    assert(await page.locator('#new-api-key').count() === 0, 'the key is not shown again');
    page.once('dialog', (dialog) => dialog.accept());
    await page.getByRole('button', { name: 'Revoke bookkeeping export' }).click();
    await page.getByText('No API keys yet.').waitFor();
    assert(await call() === 401, 'the revoked key is refused');
  },

  /** Change the password: the page stays signed in through a reload, the old password stops. */
  async passwordChange(browser) {
    const page = await newPage(browser);
    const name = `pw${Date.now() % 100000}`;
    const old = await register(page, name);
    await page.getByRole('link', { name: 'Settings' }).click();
    await heading(page, 'Settings');
    await page.getByLabel('Current password').fill(old);
    await page.getByLabel('New password').fill('a brand new passphrase 7');
    await page.getByRole('button', { name: 'Change password' }).click();
    await page.getByText('Password changed.').waitFor();
    // The session continues under the new refresh cookie.
    await page.reload();
    await heading(page, 'Settings');
    const login = (password) => fetch(`${base}/api/auth/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ username: name, password }),
    }).then((r) => r.status);
    assert(await login(old) === 401, 'the old password is refused');
    assert(await login('a brand new passphrase 7') === 200, 'the new password works');
  },

  /** A page still loading when the user goes elsewhere never replaces the page they went to. */
  async slowPage(browser) {
    const page = await newPage(browser);
    await register(page, `slow${Date.now() % 100000}`);
    let release;
    const held = new Promise((resolve) => { release = resolve; });
    await page.route(/\/api\/receipts(\?|$)/, async (route) => {
      await held;
      await route.continue();
    });
    await page.getByRole('link', { name: 'Receipts', exact: true }).click();
    await page.getByRole('status').filter({ hasText: 'Loading' }).waitFor();
    await page.getByRole('link', { name: 'Settings' }).click();
    await heading(page, 'Settings');
    const answered = page.waitForResponse(/\/api\/receipts(\?|$)/);
    release();
    await answered;
    // The list arrived after the user left: it is dropped, and Settings stays.
    await page.waitForTimeout(300);
    assert(await page.getByRole('heading', { level: 1, name: 'Receipts' }).count() === 0, 'the late list replaced Settings');
    await heading(page, 'Settings');
    assert(new URL(page.url()).pathname === '/settings', `still on /settings: ${page.url()}`);
  },

  /** An admin disables a user; that user's next page load signs them out. */
  async adminDisables(browser) {
    const victim = await newPage(browser);
    const name = `victim${Date.now() % 100000}`;
    await register(victim, name);
    await victim.getByRole('link', { name: 'Receipts', exact: true }).click();
    await heading(victim, 'Receipts');

    const admin = await newPage(browser);
    await signIn(admin, 'admin', 'admin123');
    await admin.getByRole('link', { name: 'Administration' }).click();
    await heading(admin, 'Administration');
    await accessible(admin, 'admin');
    admin.once('dialog', (dialog) => dialog.accept());
    await admin.getByRole('button', { name: `Disable ${name}` }).click();
    await admin.locator(`tr[data-user="${name}"]`, { hasText: 'Disabled' }).waitFor();

    await victim.reload();
    await heading(victim, 'Sign in');
    assert(new URL(victim.url()).pathname === '/login', `the disabled user is on the sign-in page: ${victim.url()}`);
    await victim.getByLabel('User name').fill(name);
    await victim.getByLabel('Password').fill('receipts-are-fun-42');
    await victim.getByRole('button', { name: 'Sign in' }).click();
    await victim.getByText('do not match an active account').waitFor();

    await admin.getByRole('button', { name: `Enable ${name}` }).click();
    await admin.locator(`tr[data-user="${name}"]`, { hasText: 'Active' }).waitFor();
  },

  /** Registration by invitation (the server runs with REGISTRATION=invite): an administrator
   * makes an invite, the link admits one account, and a wrong code is explained. */
  async invites(browser) {
    const admin = await newPage(browser);
    await signIn(admin, 'admin', 'admin123');
    await admin.getByRole('link', { name: 'Administration' }).click();
    await heading(admin, 'Administration');
    await admin.getByText('By invitation: an account needs an invite code made here.').waitFor();
    await admin.getByLabel('For', { exact: true }).fill('a new colleague');
    await admin.getByRole('button', { name: 'Make invite' }).click();
    const link = await admin.locator('#new-invite-link').inputValue();
    assert(link.startsWith(`${base}/register?invite=inv_`), `an invite link: ${link}`);
    await admin.locator('tr[data-invite]', { hasText: 'a new colleague' }).waitFor();
    await accessible(admin, 'admin-invites');

    const guest = await newPage(browser);
    await guest.goto(`${base}/register`);
    await heading(guest, 'Create an account');
    const name = `invited${Date.now() % 100000}`;
    await guest.getByLabel('Invite code').fill('inv_not-a-real-code');
    await guest.getByLabel('User name').fill(name);
    await guest.getByLabel('Email').fill(`${name}@example.com`);
    await guest.getByLabel('Password').fill('receipts-are-fun-42');
    await guest.getByRole('button', { name: 'Create account' }).click();
    await guest.getByText('That invite code is unknown, used or expired').waitFor();
    await accessible(guest, 'register-invite');

    await guest.goto(link);
    await heading(guest, 'Create an account');
    const code = await guest.getByLabel('Invite code').inputValue();
    assert(link.endsWith(encodeURIComponent(code)), 'the link fills the code in');
    await guest.getByLabel('User name').fill(name);
    await guest.getByLabel('Email').fill(`${name}@example.com`);
    await guest.getByLabel('Password').fill('receipts-are-fun-42');
    await guest.getByRole('button', { name: 'Create account' }).click();
    await heading(guest, 'Upload receipts');

    await admin.reload();
    await heading(admin, 'Administration');
    await admin.getByText('No invites outstanding.').waitFor();
    await admin.locator(`tr[data-user="${name}"]`).waitFor();
  },

  /** A session that ends while a page is open: sign in again in a dialog, keep what was typed. */
  async sessionExpiry(browser) {
    const page = await newPage(browser);
    const user = `expiry${Date.now() % 100000}`;
    const password = await register(page, user);
    await page.getByRole('link', { name: 'Settings' }).click();
    await heading(page, 'Settings');
    await page.getByLabel('Key name').fill('typed before expiry');
    // End the session behind the page's back (as a sign-out in another tab does).
    const status = await page.evaluate(async () => {
      const csrf = document.cookie.split('; ').find((c) => c.startsWith('fa_csrf=')).slice(8);
      return (await fetch('/api/auth/browser/logout', { method: 'POST', headers: { 'x-csrf-token': csrf } })).status;
    });
    assert(status === 204, 'signed out elsewhere');
    await page.getByRole('button', { name: 'Create key' }).click();
    const dialog = page.getByRole('dialog', { name: 'Your session has ended' });
    await dialog.waitFor();
    await accessible(page, 'reauthentication dialog');
    await dialog.getByLabel('Password').fill(password);
    await dialog.getByRole('button', { name: 'Sign in' }).click();
    await page.locator('#new-api-key').waitFor();
    await page.getByRole('row', { name: /typed before expiry/ }).waitFor();
  },

  /** Headers and cookies: a strict CSP, an HttpOnly SameSite=Strict refresh cookie no script can read. */
  async policies(browser) {
    const page = await newPage(browser);
    const response = await page.goto(`${base}/`);
    const csp = response.headers()['content-security-policy'];
    assert(csp && !csp.includes('unsafe-inline') && !csp.includes('unsafe-eval') && csp.includes("script-src 'self'"), `strict CSP: ${csp}`);
    await heading(page, 'Sign in');
    await accessible(page, 'sign in');
    await page.goto(`${base}/register`);
    await heading(page, 'Create an account');
    await accessible(page, 'register');
    const user = `policy${Date.now() % 100000}`;
    await register(page, user);
    const cookies = await page.context().cookies();
    const refresh = cookies.find((c) => c.name === 'fa_refresh');
    assert(refresh && refresh.httpOnly && refresh.sameSite === 'Strict' && refresh.path === '/api/auth/browser', `refresh cookie: ${JSON.stringify(refresh)}`);
    const csrf = cookies.find((c) => c.name === 'fa_csrf');
    assert(csrf && csrf.sameSite === 'Strict', 'CSRF cookie is SameSite=Strict');
    const visible = await page.evaluate(() => document.cookie);
    assert(!visible.includes('fa_refresh'), 'scripts cannot read the refresh token');
    const forged = await page.evaluate(async () => (await fetch('/api/auth/browser/refresh', { method: 'POST' })).status);
    assert(forged === 403, `a refresh without the CSRF header is refused: ${forged}`);
    // Keyboard only: sign out and back in without a mouse.
    await page.getByRole('button', { name: 'Sign out' }).focus();
    await page.keyboard.press('Enter');
    await heading(page, 'Sign in');
    await page.getByLabel('User name').focus();
    await page.keyboard.type(user);
    await page.keyboard.press('Tab');
    await page.keyboard.type('receipts-are-fun-42');
    await page.keyboard.press('Enter');
    await heading(page, 'Receipts');
  },

  /** Phone width: every page usable, no horizontal scroll, accessible; the camera input exists. */
  async phone(browser) {
    const page = await newPage(browser, { viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true, deviceScaleFactor: 2 });
    await register(page, `phone${Date.now() % 100000}`);
    assert(await page.locator('input[type=file][capture=environment]').count() === 1, 'a camera input');
    for (const [path, title] of [['/upload', 'Upload receipts'], ['/receipts', 'Receipts'], ['/insights', 'Insights'], ['/settings', 'Settings']]) {
      await page.goto(`${base}${path}`);
      await heading(page, title);
      const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
      assert(overflow <= 1, `${path} fits a phone's width (overflow ${overflow}px)`);
      await accessible(page, `${path} (phone)`);
    }
  },

  /** Page weight and the time to a usable upload page, for the report. */
  async weight(browser) {
    const page = await newPage(browser);
    await register(page, `weight${Date.now() % 100000}`);
    const runs = [];
    for (let i = 0; i < 5; i += 1) {
      const started = Date.now();
      await page.goto(`${base}/upload`, { waitUntil: 'commit' });
      await page.locator('#upload-files').waitFor({ state: 'attached' });
      await heading(page, 'Upload receipts');
      runs.push(Date.now() - started);
    }
    const resources = await page.evaluate(() => performance.getEntriesByType('resource')
      .filter((entry) => entry.name.includes('/assets/'))
      .map((entry) => ({ name: entry.name.replace(/^.*\/assets\/[^/]+\//, ''), encoded: entry.encodedBodySize, decoded: entry.decodedBodySize })));
    const cold = await newPage(browser);
    await cold.goto(`${base}/login`);
    await heading(cold, 'Sign in');
    const firstLoad = await cold.evaluate(() => performance.getEntriesByType('resource')
      .filter((entry) => /\.(js|css)$/.test(entry.name))
      .reduce((sum, entry) => ({ encoded: sum.encoded + entry.transferSize, decoded: sum.decoded + entry.decodedBodySize }), { encoded: 0, decoded: 0 }));
    const sorted = [...runs].sort((a, b) => a - b);
    const report = { firstLoadJsCss: firstLoad, uploadPageMs: { runs, median: sorted[2] }, cachedAssets: resources };
    writeFileSync(join(artifacts, 'weight.json'), JSON.stringify(report, null, 2));
    log(`first load, JS and CSS: ${firstLoad.encoded} bytes over the wire (gzip), ${firstLoad.decoded} bytes uncompressed`);
    log(`signed-in upload page usable after (ms): ${runs.join(', ')}; median ${sorted[2]}`);
    assert(firstLoad.encoded > 0 && firstLoad.encoded <= 200 * 1024, `first load within 200 KB compressed: ${firstLoad.encoded}`);
  },
};

async function screenshot(page, name) {
  const folder = process.env.FINAGENT_SCREENSHOTS_DIR || artifacts;
  mkdirSync(folder, { recursive: true });
  await page.screenshot({ path: join(folder, `${name}.png`), fullPage: false });
}

async function main() {
  const run = scenarios[scenario];
  if (!run) {
    console.error(`unknown scenario ${scenario}; known: ${Object.keys(scenarios).join(', ')}`);
    process.exit(2);
  }
  const browser = await chromium.launch({ executablePath: process.env.CHROMIUM || '/usr/bin/chromium', headless: true, args: CHROMIUM_FLAGS });
  let failed = null;
  try {
    await run(browser);
    assert(violations.length === 0, `no CSP violations or script errors: ${violations.join('; ')}`);
  } catch (error) {
    failed = error;
    for (const [index, page] of pages.entries()) {
      try {
        const path = join(artifacts, `${scenario}-failure-${index}.png`);
        await page.screenshot({ path, fullPage: true });
        console.error(`[${scenario}] screenshot of page ${index} (${page.url()}): ${path}`);
      } catch { /* a closed page */ }
    }
  } finally {
    for (const entry of checked) log(`axe-core ${entry.page}: ${entry.serious} serious or critical, ${entry.violations} in all${entry.minor.length ? ` (${entry.minor.join(', ')})` : ''}`);
    await browser.close();
  }
  if (failed) {
    console.error(`[${scenario}] FAILED: ${failed.stack || failed}`);
    process.exit(1);
  }
  log('passed');
}

main();
