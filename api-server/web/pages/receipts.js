// The receipt list: search and the API's filters (kept in the address, so a filtered list can be
// bookmarked and Back works), sorting, paging by cursor, and deleting several at once.

import * as api from '../api.js';
import { CATEGORIES, STATUSES, confidenceLabel, field, formatDate, formatMoney, formatTime, h, pageHeading, replace, titleCase, toast } from '../dom.js';

const SORTS = [['newest', 'Newest upload'], ['oldest', 'Oldest upload'], ['purchased', 'Purchase date'], ['total', 'Largest total'], ['review', 'Needs review first']];
const FILTERS = ['merchant', 'from', 'to', 'category', 'status', 'min_total', 'max_total', 'sort'];

function select(name, options, value, empty) {
  return h('select', { name },
    empty ? h('option', { value: '' }, empty) : null,
    options.map(([key, label]) => h('option', { value: key, selected: key === value }, label)));
}

export async function receiptsPage(app) {
  const params = new URLSearchParams(location.search);
  const value = (name) => params.get(name) || '';
  const form = h('form', { class: 'filters', role: 'search', 'aria-label': 'Filter receipts' },
    field('Merchant', h('input', { name: 'merchant', type: 'search', value: value('merchant'), placeholder: 'Any' })),
    field('From', h('input', { name: 'from', type: 'date', value: value('from') })),
    field('To', h('input', { name: 'to', type: 'date', value: value('to') })),
    field('Category', select('category', CATEGORIES.map((c) => [c, titleCase(c)]), value('category'), 'Any')),
    field('Status', select('status', STATUSES.map((s) => [s, titleCase(s)]), value('status'), 'Any')),
    field('Total from', h('input', { name: 'min_total', inputmode: 'decimal', value: value('min_total'), pattern: '\\d+(\\.\\d{1,4})?', size: '8' })),
    field('Total to', h('input', { name: 'max_total', inputmode: 'decimal', value: value('max_total'), pattern: '\\d+(\\.\\d{1,4})?', size: '8' })),
    field('Sort by', select('sort', SORTS, value('sort') || 'newest')),
    h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'primary' }, 'Apply'), h('a', { href: '/receipts', class: 'button' }, 'Clear')));
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const next = new URLSearchParams();
    for (const name of FILTERS) {
      const input = form.elements[name];
      if (input.value && !(name === 'sort' && input.value === 'newest')) next.set(name, input.value.trim());
    }
    app.navigate(`/receipts${next.toString() ? `?${next}` : ''}`);
  });
  for (const input of form.querySelectorAll('select')) input.addEventListener('change', () => form.requestSubmit());

  const query = Object.fromEntries(FILTERS.filter((name) => params.get(name)).map((name) => [name, params.get(name)]));
  const cursors = [null];
  let page = 0;
  const table = h('div', { class: 'table-wrap' });
  const pager = h('nav', { class: 'pager', 'aria-label': 'Pages' });
  const bulk = h('div', { class: 'bulk', hidden: true });
  const summary = h('p', { class: 'hint', 'aria-live': 'polite' });

  const load = async () => {
    const answer = await api.get('/api/receipts', { ...query, limit: 20, cursor: cursors[page] || undefined });
    cursors[page + 1] = answer.next_cursor || null;
    draw(answer.items, Boolean(answer.next_cursor));
  };

  const selected = () => [...table.querySelectorAll('input[name=pick]:checked')].map((box) => box.value);

  const updateBulk = () => {
    const count = selected().length;
    bulk.hidden = count === 0;
    replace(bulk, `${count} selected `, h('button', { type: 'button', class: 'danger', onclick: remove }, `Delete ${count}`));
  };

  const remove = async () => {
    const ids = selected();
    if (!window.confirm(`Delete ${ids.length} receipt${ids.length === 1 ? '' : 's'} and their images? This cannot be undone.`)) return;
    let failed = 0;
    for (const id of ids) {
      try {
        await api.del(`/api/receipts/${id}`);
      } catch {
        failed += 1;
      }
    }
    toast(failed ? `${ids.length - failed} deleted, ${failed} could not be deleted.` : `${ids.length} deleted.`, failed ? 'error' : 'info');
    await load();
  };

  const draw = (items, more) => {
    if (!items.length && page === 0) {
      replace(table, h('div', { class: 'empty' }, h('p', {}, Object.keys(query).length ? 'No receipts match these filters.' : 'No receipts yet.'),
        h('a', { href: '/upload', class: 'button primary' }, 'Upload receipts')));
      replace(pager);
      summary.textContent = '';
      return;
    }
    const all = h('input', { type: 'checkbox', 'aria-label': 'Select all on this page' });
    all.addEventListener('change', () => {
      for (const box of table.querySelectorAll('input[name=pick]')) box.checked = all.checked;
      updateBulk();
    });
    const rows = items.map((receipt) => {
      const result = receipt.result || {};
      const review = receipt.review_confidence;
      const label = receipt.status === 'done' ? confidenceLabel(review) : null;
      const name = result.merchant?.name || receipt.file_name || 'Receipt';
      return h('tr', { dataset: { id: receipt.id } },
        h('td', {}, h('input', { type: 'checkbox', name: 'pick', value: receipt.id, 'aria-label': `Select ${name}`, onchange: updateBulk })),
        h('th', { scope: 'row' }, h('a', { href: `/receipts/${receipt.id}` }, name)),
        h('td', {}, formatDate(result.date)),
        h('td', { class: 'number' }, formatMoney(result.total, result.currency)),
        h('td', {}, result.category ? titleCase(result.category) : '—'),
        h('td', {}, h('span', { class: `badge ${receipt.status}` }, titleCase(receipt.status)),
          label && review < 0.8 ? h('span', { class: 'badge low' }, 'Needs review') : null,
          receipt.corrected ? h('span', { class: 'badge sure' }, 'Corrected') : null),
        h('td', {}, formatTime(receipt.created_at)));
    });
    replace(table, h('table', {},
      h('caption', { class: 'visually-hidden' }, 'Your receipts'),
      h('thead', {}, h('tr', {}, h('td', {}, all), ...['Merchant', 'Date', 'Total', 'Category', 'Status', 'Uploaded'].map((title) => h('th', { scope: 'col' }, title)))),
      h('tbody', {}, rows)));
    summary.textContent = `Page ${page + 1}: ${items.length} receipt${items.length === 1 ? '' : 's'}.`;
    replace(pager,
      h('button', { type: 'button', disabled: page === 0, onclick: async () => { page -= 1; await load(); } }, 'Previous page'),
      h('button', { type: 'button', disabled: !more, onclick: async () => { page += 1; await load(); } }, 'Next page'));
    updateBulk();
  };

  await load();
  return h('section', {}, h('div', { class: 'heading-row' }, pageHeading('Receipts'), h('a', { href: '/upload', class: 'button primary' }, 'Upload')),
    form, summary, bulk, table, pager);
}
