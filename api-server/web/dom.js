// Small DOM helpers: elements from data (never from HTML strings, so nothing a receipt says can
// become markup), formatting, and announcements for screen readers.

/** Creates an element: h('a', {href: '/x', class: 'link'}, 'text', child). */
export function h(tag, attributes = {}, ...children) {
  const element = tag.startsWith('svg:')
    ? document.createElementNS('http://www.w3.org/2000/svg', tag.slice(4))
    : document.createElement(tag);
  for (const [name, value] of Object.entries(attributes || {})) {
    if (value === false || value === null || value === undefined) continue;
    if (name.startsWith('on') && typeof value === 'function') {
      element.addEventListener(name.slice(2), value);
    } else if (name === 'dataset') {
      Object.assign(element.dataset, value);
    } else if (value === true) {
      element.setAttribute(name, '');
    } else {
      element.setAttribute(name, String(value));
    }
  }
  append(element, children);
  return element;
}

function append(element, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    element.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

/** Replaces an element's children. */
export function replace(element, ...children) {
  element.replaceChildren();
  append(element, children);
  return element;
}

/** Announces a message in the status region (and shows it briefly). */
export function toast(message, kind = 'info') {
  const region = document.getElementById('toast');
  region.dataset.kind = kind;
  region.textContent = message;
  region.classList.add('shown');
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => region.classList.remove('shown'), kind === 'error' ? 8000 : 4000);
}

/** A label and a control, tied together, with an optional hint and an error slot. */
export function field(label, control, hint) {
  const id = control.id || `f-${Math.random().toString(36).slice(2, 9)}`;
  control.id = id;
  const described = [];
  const hintElement = hint ? h('p', { class: 'hint', id: `${id}-hint` }, hint) : null;
  if (hintElement) described.push(hintElement.id);
  const error = h('p', { class: 'field-error', id: `${id}-error`, hidden: true });
  described.push(error.id);
  control.setAttribute('aria-describedby', described.join(' '));
  return h('div', { class: 'field' }, h('label', { for: id }, label), control, hintElement, error);
}

/** Shows (or clears, with null) the error of a control made by field(). */
export function fieldError(control, message) {
  const error = document.getElementById(`${control.id}-error`);
  if (!error) return;
  error.hidden = !message;
  error.textContent = message || '';
  if (message) control.setAttribute('aria-invalid', 'true');
  else control.removeAttribute('aria-invalid');
}

const money = new Map();
/** An amount (a decimal string) in a currency, in the reader's locale. */
export function formatMoney(amount, currency) {
  if (amount === null || amount === undefined || amount === '') return '—';
  const key = currency || '';
  if (!money.has(key)) {
    money.set(key, currency
      ? new Intl.NumberFormat(undefined, { style: 'currency', currency })
      : new Intl.NumberFormat(undefined, { minimumFractionDigits: 2, maximumFractionDigits: 4 }));
  }
  return money.get(key).format(Number(amount));
}

/** An ISO date (YYYY-MM-DD) in the reader's locale. */
export function formatDate(iso) {
  if (!iso) return '—';
  const [year, month, day] = iso.split('-').map(Number);
  return new Date(Date.UTC(year, month - 1, day)).toLocaleDateString(undefined, { timeZone: 'UTC', year: 'numeric', month: 'short', day: 'numeric' });
}

/** A timestamp in the reader's locale. */
export function formatTime(iso) {
  return iso ? new Date(iso).toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'short' }) : '—';
}

/** A confidence (0–1) as words and a percentage. */
export function confidenceLabel(value) {
  if (value === null || value === undefined) return { text: 'not read', level: 'none' };
  const percent = Math.round(value * 100);
  if (value >= 0.999) return { text: 'checked', level: 'sure' };
  if (value >= 0.8) return { text: `${percent}% sure`, level: 'high' };
  if (value >= 0.5) return { text: `${percent}% sure, check it`, level: 'medium' };
  return { text: `${percent}% sure, needs review`, level: 'low' };
}

export const CATEGORIES = ['groceries', 'dining', 'hardware', 'office', 'health', 'transport', 'lodging', 'electronics', 'shopping', 'utilities', 'other'];
export const PAYMENT_METHODS = ['cash', 'card', 'mobile', 'voucher', 'other'];
export const STATUSES = ['queued', 'processing', 'done', 'failed'];

/** 'groceries' → 'Groceries'. */
export function titleCase(word) {
  return word ? word.charAt(0).toUpperCase() + word.slice(1).replaceAll('_', ' ') : '';
}

/** Sets the page's heading and title, and moves focus there for screen readers. */
export function pageHeading(text) {
  document.title = `${text} · FinancialAgent`;
  return h('h1', { tabindex: '-1', id: 'page-heading' }, text);
}

/** Whether a keyboard event happened while typing in a form control. */
export function typing(event) {
  const target = event.target;
  return target instanceof HTMLElement && (target.isContentEditable || ['INPUT', 'TEXTAREA', 'SELECT'].includes(target.tagName));
}
