// One receipt: the image (zoom and pan) beside its fields. Focusing or hovering a field outlines
// where it was read on the image. Every field can be corrected; the server keeps the original
// reading. `n` goes to the next receipt that needs review (lowest confidence first).

import * as api from '../api.js';
import { CATEGORIES, PAYMENT_METHODS, confidenceLabel, field, fieldError, formatMoney, formatTime, h, pageHeading, replace, titleCase, toast, typing } from '../dom.js';

const AMOUNT = /^-?\d{1,12}([.,]\d{1,4})?$/;

const FIELDS = [
  { key: 'merchant_name', label: 'Merchant', get: (r) => r.merchant?.name, kind: 'text' },
  { key: 'merchant_address', label: 'Address', get: (r) => r.merchant?.address, kind: 'text' },
  { key: 'date', label: 'Date', get: (r) => r.date, kind: 'date' },
  { key: 'total', label: 'Total', get: (r) => r.total, kind: 'amount' },
  { key: 'subtotal', label: 'Subtotal', get: (r) => r.subtotal, kind: 'amount' },
  { key: 'tax', label: 'Tax', get: (r) => r.tax, kind: 'amount' },
  { key: 'tip', label: 'Tip or service', get: (r) => r.tip, kind: 'amount' },
  { key: 'currency', label: 'Currency', get: (r) => r.currency, kind: 'currency' },
  { key: 'payment_method', label: 'Paid by', get: (r) => r.payment_method, kind: 'choice', options: PAYMENT_METHODS },
  { key: 'category', label: 'Category', get: (r) => r.category, kind: 'choice', options: CATEGORIES },
];

function control(spec, value) {
  const attributes = { name: spec.key, value: value ?? '' };
  switch (spec.kind) {
    case 'date': return h('input', { ...attributes, type: 'date' });
    case 'amount': return h('input', { ...attributes, inputmode: 'decimal', autocomplete: 'off' });
    case 'currency': return h('input', { ...attributes, maxlength: '3', size: '4', autocapitalize: 'characters', autocomplete: 'off' });
    case 'choice': return h('select', { name: spec.key }, h('option', { value: '' }, '—'),
      spec.options.map((option) => h('option', { value: option, selected: option === value }, titleCase(option))));
    default: return h('input', { ...attributes, autocomplete: 'off', maxlength: '200' });
  }
}

function validate(spec, text) {
  if (!text) return null;
  if (spec.kind === 'amount' && !AMOUNT.test(text)) return 'An amount such as 12.50.';
  if (spec.kind === 'currency' && !/^[A-Za-z]{3}$/.test(text)) return 'A three-letter currency code such as EUR.';
  if (spec.kind === 'date' && Number.isNaN(Date.parse(text))) return 'A date.';
  return null;
}

/** The image with zoom, pan, and the boxes where fields were read. */
function viewer(receipt, layout) {
  const image = h('img', { alt: `Receipt image${receipt.file_name ? ` (${receipt.file_name})` : ''}`, draggable: 'false' });
  const stage = h('div', { class: 'stage' }, image);
  const frame = h('div', { class: 'viewer', tabindex: '0', role: 'group', 'aria-label': 'Receipt image. Plus and minus zoom, arrow keys move, 0 fits.' }, stage);
  const view = { scale: 1, x: 0, y: 0 };
  const apply = () => { stage.style.transform = `translate(${view.x}px, ${view.y}px) scale(${view.scale})`; };
  const zoom = (factor) => {
    view.scale = Math.min(8, Math.max(0.5, view.scale * factor));
    apply();
  };
  const fit = () => { Object.assign(view, { scale: 1, x: 0, y: 0 }); apply(); };
  const boxes = new Map();
  image.addEventListener('load', () => {
    const width = layout?.width || image.naturalWidth;
    const height = layout?.height || image.naturalHeight;
    for (const [name, [left, top, right, bottom]] of Object.entries(layout?.fields || {})) {
      const box = h('div', { class: 'box', dataset: { field: name } });
      box.style.left = `${(left / width) * 100}%`;
      box.style.top = `${(top / height) * 100}%`;
      box.style.width = `${((right - left) / width) * 100}%`;
      box.style.height = `${((bottom - top) / height) * 100}%`;
      stage.append(box);
      boxes.set(name, box);
    }
  });
  api.imageUrl(receipt).then((src) => { image.src = src; }).catch(() => { image.alt = 'The image could not be loaded.'; });
  frame.addEventListener('wheel', (event) => { event.preventDefault(); zoom(event.deltaY < 0 ? 1.15 : 1 / 1.15); }, { passive: false });
  let drag = null;
  frame.addEventListener('pointerdown', (event) => { drag = { x: event.clientX - view.x, y: event.clientY - view.y }; frame.setPointerCapture(event.pointerId); });
  frame.addEventListener('pointermove', (event) => { if (drag) { view.x = event.clientX - drag.x; view.y = event.clientY - drag.y; apply(); } });
  frame.addEventListener('pointerup', () => { drag = null; });
  frame.addEventListener('keydown', (event) => {
    const step = 40;
    const moves = { ArrowLeft: [step, 0], ArrowRight: [-step, 0], ArrowUp: [0, step], ArrowDown: [0, -step] };
    if (event.key === '+' || event.key === '=') zoom(1.25);
    else if (event.key === '-') zoom(0.8);
    else if (event.key === '0') fit();
    else if (moves[event.key]) { view.x += moves[event.key][0]; view.y += moves[event.key][1]; apply(); }
    else return;
    event.preventDefault();
  });
  const tools = h('div', { class: 'viewer-tools', role: 'toolbar', 'aria-label': 'Image' },
    h('button', { type: 'button', onclick: () => zoom(0.8), 'aria-label': 'Zoom out' }, '−'),
    h('button', { type: 'button', onclick: () => zoom(1.25), 'aria-label': 'Zoom in' }, '+'),
    h('button', { type: 'button', onclick: fit }, 'Fit'));
  const highlight = (name) => {
    for (const [key, box] of boxes) box.classList.toggle('active', key === name);
  };
  return { element: h('div', { class: 'viewer-wrap' }, frame, tools), highlight, hasBox: (name) => Boolean(layout?.fields?.[name]) };
}

async function nextToReview(currentId) {
  const page = await api.get('/api/receipts', { sort: 'review', status: 'done', limit: 5 });
  return page.items.find((item) => item.id !== currentId && item.review_confidence < 0.8) || null;
}

export async function receiptPage(app, id) {
  const receipt = await api.get(`/api/receipts/${id}`);
  const result = receipt.result;
  const title = result?.merchant?.name || receipt.file_name || 'Receipt';
  const heading = pageHeading(title);
  const next = h('button', { type: 'button', 'aria-keyshortcuts': 'n' }, 'Next to review');
  const goNext = async () => {
    const candidate = await nextToReview(id).catch(() => null);
    if (candidate) app.navigate(`/receipts/${candidate.id}`);
    else toast('Nothing else needs review.');
  };
  next.addEventListener('click', goNext);
  const top = h('div', { class: 'heading-row' }, heading, h('div', { class: 'actions' }, h('a', { href: '/receipts', class: 'button' }, 'All receipts'), next));

  if (receipt.status !== 'done') {
    const words = receipt.status === 'failed'
      ? `This receipt could not be read: ${receipt.failure_message || 'no reason was given'}.`
      : 'This receipt is still being read. This page updates when it is done.';
    const shown = viewer(receipt, null);
    if (receipt.status !== 'failed') {
      const timer = setTimeout(() => app.navigate(location.pathname, { replace: true }), 2000);
      app.leave = () => { clearTimeout(timer); return true; };
    }
    return h('section', {}, top, h('p', { class: receipt.status === 'failed' ? 'error' : 'hint', role: 'status' }, words), shown.element);
  }

  const shown = viewer(receipt, result.layout);
  const controls = new Map();
  const rows = FIELDS.map((spec) => {
    const value = spec.get(result);
    const input = control(spec, value);
    controls.set(spec.key, input);
    const label = confidenceLabel(result.confidence?.[spec.key]);
    const wrapper = field(spec.label, input, h('span', { class: `confidence ${label.level}` }, label.text,
      shown.hasBox(spec.key) ? ' · outlined on the image' : ''));
    wrapper.dataset.field = spec.key;
    const show = () => shown.highlight(spec.key);
    input.addEventListener('focus', show);
    wrapper.addEventListener('mouseenter', show);
    wrapper.addEventListener('mouseleave', () => { if (document.activeElement !== input) shown.highlight(null); });
    return wrapper;
  });
  const message = h('p', { class: 'error', role: 'alert', hidden: true });
  const save = h('button', { type: 'submit', class: 'primary', 'aria-keyshortcuts': 'Control+Enter' }, 'Save corrections');
  const form = h('form', { class: 'fields', novalidate: true, 'aria-label': 'Fields read from the receipt' }, rows, message,
    h('div', { class: 'actions' }, save, h('button', { type: 'reset' }, 'Undo changes')),
    h('p', { class: 'hint' }, 'Shortcuts: Ctrl+Enter saves, n opens the next receipt to review, + and − zoom the image.'));
  const original = Object.fromEntries(FIELDS.map((spec) => [spec.key, spec.get(result) ?? '']));
  const changes = () => {
    const changed = {};
    for (const spec of FIELDS) {
      const text = controls.get(spec.key).value.trim();
      if (text !== String(original[spec.key]) && text !== '') {
        changed[spec.key] = spec.kind === 'amount' ? text.replace(',', '.') : spec.kind === 'currency' ? text.toUpperCase() : text;
      }
    }
    return changed;
  };
  app.leave = () => Object.keys(changes()).length === 0 || window.confirm('You have unsaved corrections. Leave without saving?');

  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    message.hidden = true;
    let valid = true;
    for (const spec of FIELDS) {
      const problem = validate(spec, controls.get(spec.key).value.trim());
      fieldError(controls.get(spec.key), problem);
      if (problem && valid) { controls.get(spec.key).focus(); valid = false; }
    }
    if (!valid) return;
    const changed = changes();
    if (!Object.keys(changed).length) { toast('Nothing changed.'); return; }
    save.disabled = true;
    try {
      const saved = await api.patch(`/api/receipts/${id}`, changed);
      Object.assign(original, Object.fromEntries(FIELDS.map((spec) => [spec.key, spec.get(saved.result) ?? ''])));
      for (const [key, value] of Object.entries(changed)) controls.get(key).value = original[key] || value;
      toast('Saved. The original reading is kept.');
      replace(originalPanel, originalDetails(saved));
    } catch (error) {
      const detail = error instanceof api.ApiError ? error.problem.detail || '' : '';
      const target = controls.get(detail.split(':')[0]);
      if (target) { fieldError(target, detail.slice(detail.indexOf(':') + 1).trim()); target.focus(); }
      else { message.textContent = api.explain(error); message.hidden = false; }
    } finally {
      save.disabled = false;
    }
  });
  form.addEventListener('reset', () => setTimeout(() => { for (const input of controls.values()) fieldError(input, null); }));

  const keys = (event) => {
    if (event.key === 'Enter' && (event.ctrlKey || event.metaKey)) { event.preventDefault(); form.requestSubmit(); return; }
    if (typing(event) || event.ctrlKey || event.metaKey || event.altKey) return;
    if (event.key === 'n') { event.preventDefault(); goNext(); }
  };
  document.addEventListener('keydown', keys);
  const leave = app.leave;
  app.leave = () => {
    const ok = leave();
    if (ok) document.removeEventListener('keydown', keys);
    return ok;
  };

  const items = result.line_items?.length
    ? h('table', {}, h('caption', {}, 'Line items'),
      h('thead', {}, h('tr', {}, ['Item', 'Qty', 'Amount'].map((t) => h('th', { scope: 'col' }, t)))),
      h('tbody', {}, result.line_items.map((item) => h('tr', {}, h('td', {}, item.description), h('td', { class: 'number' }, item.quantity ?? ''),
        h('td', { class: 'number' }, formatMoney(item.amount, result.currency))))))
    : null;
  const originalPanel = h('div', {}, originalDetails(receipt));
  return h('section', {}, top,
    h('p', { class: 'hint' }, `Uploaded ${formatTime(receipt.created_at)}`, receipt.corrected ? ' · corrected by you' : ''),
    h('div', { class: 'review' }, shown.element, h('div', {}, form, items, originalPanel,
      h('details', {}, h('summary', {}, 'Text read from the image'), h('pre', { class: 'ocr-text' }, result.text || '')))));
}

function originalDetails(receipt) {
  const first = receipt.original_result;
  if (!first) return null;
  return h('details', { class: 'original' }, h('summary', {}, 'Original reading (before your corrections)'),
    h('dl', {}, FIELDS.flatMap((spec) => [h('dt', {}, spec.label), h('dd', {}, String(spec.get(first) ?? '—'))])));
}
