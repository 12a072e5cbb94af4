// Insights: spend by month, category and merchant, top merchants, month-over-month change and
// anomalies over a date range, and the same range as CSV.

import * as api from '../api.js';
import { bars, columns } from '../charts.js';
import { field, formatMoney, h, pageHeading, titleCase, toast } from '../dom.js';

function isoDate(date) {
  return date.toISOString().slice(0, 10);
}

function monthLabel(key) {
  const [year, month] = key.split('-').map(Number);
  return new Date(Date.UTC(year, month - 1, 1)).toLocaleDateString(undefined, { month: 'short', year: '2-digit', timeZone: 'UTC' });
}

export async function insightsPage(app) {
  const params = new URLSearchParams(location.search);
  const today = new Date();
  const yearAgo = new Date(Date.UTC(today.getUTCFullYear(), today.getUTCMonth() - 11, 1));
  const from = h('input', { type: 'date', name: 'from', value: params.get('from') || isoDate(yearAgo) });
  const to = h('input', { type: 'date', name: 'to', value: params.get('to') || isoDate(today) });
  const exportButton = h('button', { type: 'button' }, 'Export CSV');
  const form = h('form', { class: 'filters', 'aria-label': 'Date range' }, field('From', from), field('To', to),
    h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'primary' }, 'Show'), exportButton));
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    if (from.value && to.value && from.value > to.value) { toast('The range ends before it starts.', 'error'); return; }
    app.navigate(`/insights?from=${from.value}&to=${to.value}`);
  });
  exportButton.addEventListener('click', async () => {
    exportButton.disabled = true;
    try {
      await api.download('/api/receipts/export.csv', { from: from.value, to: to.value, status: 'done' }, `receipts-${from.value}-to-${to.value}.csv`);
    } catch (error) {
      toast(api.explain(error), 'error');
    } finally {
      exportButton.disabled = false;
    }
  });

  const summary = await api.get('/api/insights/summary', { from: from.value, to: to.value, top: 5 });
  const currency = summary.currency;
  const money = (amount) => formatMoney(amount, currency);
  const rows = (spends, label = (key) => key) => spends.map((spend) => ({ label: label(spend.key), value: Number(spend.total), text: `${money(spend.total)} · ${spend.receipts} receipt${spend.receipts === 1 ? '' : 's'}` }));
  const total = summary.by_month.reduce((sum, spend) => sum + Number(spend.total), 0);
  const count = summary.by_month.reduce((sum, spend) => sum + spend.receipts, 0);
  const anomalies = h('section', { class: 'card' }, h('h2', {}, 'Worth a second look'),
    summary.anomalies.length ? h('ul', {}, summary.anomalies.map((anomaly) => anomaly.kind === 'duplicate'
      ? h('li', {}, 'Possible duplicate: ', h('a', { href: `/receipts/${anomaly.first}` }, 'this receipt'), ' and ', h('a', { href: `/receipts/${anomaly.second}` }, 'this one'),
        anomaly.reason === 'same_image' ? ' are the same image.' : ' have the same merchant, date and total.')
      : h('li', {}, h('a', { href: `/receipts/${anomaly.receipt}` }, `A total of ${money(anomaly.total)}`), ` is far above your usual ${money(anomaly.median)}.`)))
      : h('p', { class: 'hint' }, 'Nothing unusual in this range.'));
  const changes = summary.month_over_month.filter((change) => change.change_percent !== null && change.change_percent !== undefined);
  const trend = h('section', { class: 'card' }, h('h2', {}, 'Month over month'),
    changes.length ? h('table', {}, h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Month'), h('th', { scope: 'col' }, 'Spent'), h('th', { scope: 'col' }, 'Change'))),
      h('tbody', {}, changes.slice(-6).map((change) => h('tr', {}, h('th', { scope: 'row' }, monthLabel(change.month)), h('td', { class: 'number' }, money(change.total)),
        h('td', { class: `number ${Number(change.change_percent) > 0 ? 'up' : 'down'}` }, `${Number(change.change_percent) > 0 ? '+' : ''}${Number(change.change_percent).toFixed(1)}%`)))))
      : h('p', { class: 'hint' }, 'Two months of receipts are needed.'));
  const content = h('div', { class: 'insights' },
    h('p', { class: 'totals', 'data-testid': 'insights-total' }, h('strong', {}, money(total.toFixed(2))), ` spent over ${count} receipt${count === 1 ? '' : 's'}`,
      summary.other_currency_receipts ? ` (${summary.other_currency_receipts} in other currencies not counted)` : ''),
    columns('Spend by month', rows(summary.by_month, monthLabel)),
    h('div', { class: 'grid-2' }, bars('By category', rows(summary.by_category, titleCase)), bars('Top merchants', rows(summary.top_merchants))),
    h('div', { class: 'grid-2' }, anomalies, trend),
    bars('By merchant', rows(summary.by_merchant.slice(0, 15))));
  return h('section', {}, pageHeading('Insights'), form, count ? content : h('div', { class: 'empty' }, h('p', {}, 'No processed receipts with a date and total in this range.'), h('a', { href: '/upload', class: 'button primary' }, 'Upload receipts')));
}
