// Charts drawn as SVG from data, each with the same figures as a table beside it for screen
// readers and for reading exact values. No inline styles: sizes are SVG attributes.

import { h } from './dom.js';

/** Vertical columns, e.g. spend by month. `rows` are {label, value, text}. */
export function columns(title, rows) {
  const width = 640;
  const height = 220;
  const top = 16;
  const bottom = 36;
  const max = Math.max(1, ...rows.map((row) => row.value));
  const slot = width / Math.max(rows.length, 1);
  const bar = Math.min(48, slot * 0.7);
  const svg = h('svg:svg', { viewBox: `0 0 ${width} ${height}`, class: 'chart', 'aria-hidden': 'true', focusable: 'false' });
  svg.append(h('svg:line', { x1: 0, x2: width, y1: height - bottom, y2: height - bottom, class: 'axis' }));
  rows.forEach((row, index) => {
    const barHeight = ((height - top - bottom) * row.value) / max;
    const x = index * slot + (slot - bar) / 2;
    svg.append(h('svg:rect', { x, y: height - bottom - barHeight, width: bar, height: Math.max(barHeight, 1), class: 'bar', rx: 3 },
      h('svg:title', {}, `${row.label}: ${row.text}`)));
    svg.append(h('svg:text', { x: x + bar / 2, y: height - bottom + 16, 'text-anchor': 'middle', class: 'tick' }, row.label));
  });
  return figure(title, svg, rows);
}

/** Horizontal bars, e.g. spend by category. */
export function bars(title, rows) {
  const max = Math.max(1, ...rows.map((row) => row.value));
  const list = h('div', { class: 'hbars', 'aria-hidden': 'true' }, rows.map((row) => {
    const fill = h('span', { class: 'hbar-fill' });
    fill.style.width = `${Math.max(1, (100 * row.value) / max)}%`;
    return h('div', { class: 'hbar' }, h('span', { class: 'hbar-label' }, row.label), h('span', { class: 'hbar-track' }, fill), h('span', { class: 'hbar-value' }, row.text));
  }));
  return figure(title, list, rows);
}

function figure(title, picture, rows) {
  const table = h('table', { class: 'visually-hidden' }, h('caption', {}, title),
    h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Item'), h('th', { scope: 'col' }, 'Amount'))),
    h('tbody', {}, rows.map((row) => h('tr', {}, h('th', { scope: 'row' }, row.label), h('td', {}, row.text)))));
  return h('figure', { class: 'card chart-card' }, h('figcaption', {}, title), rows.length ? picture : h('p', { class: 'hint' }, 'Nothing in this range.'), table);
}
