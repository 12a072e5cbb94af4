// Upload: drop several files, pick them, or take a photo; each shows its upload progress, then
// its place in the OCR queue until it is read.

import * as api from '../api.js';
import { formatDate, formatMoney, h, pageHeading, replace } from '../dom.js';

const ACCEPTED = ['application/pdf', 'image/jpeg', 'image/png', 'image/webp', 'image/tiff', 'image/bmp', 'image/gif'];
const STATUS_WORDS = { queued: 'Waiting for a reader…', processing: 'Reading the receipt…', done: 'Read', failed: 'Could not be read' };

export function uploadPage(app) {
  const list = h('ul', { class: 'uploads', 'aria-label': 'Uploads', 'aria-live': 'polite' });
  const pick = h('input', { type: 'file', id: 'upload-files', multiple: true, accept: ACCEPTED.join(','), class: 'visually-hidden' });
  const camera = h('input', { type: 'file', id: 'upload-camera', accept: 'image/*', capture: 'environment', class: 'visually-hidden' });
  const zone = h('div', { class: 'dropzone' },
    h('p', { class: 'dropzone-title' }, 'Drop receipt photos, scans or PDFs here'),
    h('p', { class: 'hint' }, 'PDF, JPEG, PNG, WebP, TIFF, BMP or GIF, up to 25 MB each. Several at once is fine.'),
    h('div', { class: 'actions' },
      h('label', { for: 'upload-files', class: 'button primary' }, 'Choose files'), pick,
      h('label', { for: 'upload-camera', class: 'button' }, 'Take a photo'), camera));
  const polls = new Set();
  // The server takes a few uploads of one user at once (`quota.uploads_at_once`); the rest wait
  // here, in the order they were dropped.
  const waiting = [];
  let active = 0;
  const atOnce = () => app.user?.quota?.uploads_at_once || 2;
  const pump = () => {
    while (active < atOnce() && waiting.length) {
      const job = waiting.shift();
      active += 1;
      job().finally(() => { active -= 1; pump(); });
    }
  };

  const start = (files) => {
    for (const file of files) send(file);
  };

  const send = async (file) => {
    const bar = h('progress', { max: '1', value: '0', 'aria-label': `Upload of ${file.name}` });
    const status = h('span', { class: 'status' }, 'Uploading…');
    const item = h('li', { class: 'upload' }, h('span', { class: 'name' }, file.name), bar, status);
    list.prepend(item);
    if (!ACCEPTED.includes(file.type)) {
      bar.remove();
      item.dataset.state = 'failed';
      replace(status, file.type === 'image/heic' || /\.hei[cf]$/i.test(file.name)
        ? 'HEIC photos are not read yet: set the camera to “Most compatible” (JPEG) or export as JPEG.'
        : 'Not a receipt file we can read (PDF, JPEG, PNG, WebP, TIFF, BMP or GIF).');
      return;
    }
    replace(status, 'Waiting to upload…');
    waiting.push(async () => {
      replace(status, 'Uploading…');
      try {
        const task = await api.upload(file, (fraction) => { bar.value = fraction; });
        bar.value = 1;
        follow(task, item, status, bar);
      } catch (error) {
        bar.remove();
        item.dataset.state = 'failed';
        replace(status, api.explain(error));
      }
    });
    pump();
  };

  const follow = (task, item, status, bar) => {
    let delay = 700;
    const tick = async () => {
      polls.delete(timer);
      try {
        const current = await api.get(`/api/ocr/status/${task.task_id}`);
        item.dataset.state = current.status;
        if (current.status === 'done' || current.status === 'failed') {
          bar.remove();
          const link = h('a', { href: `/receipts/${task.task_id}` }, current.status === 'done' ? 'Review it' : 'See why');
          if (current.status === 'failed') {
            replace(status, STATUS_WORDS.failed, ' · ', link);
            return;
          }
          // What was read, at a glance: merchant, date and total.
          const result = (await api.get(`/api/receipts/${task.task_id}`).catch(() => ({}))).result || {};
          const read = [result.merchant?.name, result.date && formatDate(result.date), result.total && formatMoney(result.total, result.currency)].filter(Boolean);
          replace(status, read.length ? `Read: ${read.join(' · ')}` : STATUS_WORDS.done, ' · ', link);
          return;
        }
        replace(status, STATUS_WORDS[current.status]);
        bar.removeAttribute('value'); // indeterminate while the receipt is read
      } catch (error) {
        replace(status, `${api.explain(error)} Retrying…`);
      }
      delay = Math.min(delay * 1.4, 5000);
      timer = setTimeout(tick, delay);
      polls.add(timer);
    };
    let timer = setTimeout(tick, 300);
    polls.add(timer);
  };

  pick.addEventListener('change', () => { start([...pick.files]); pick.value = ''; });
  camera.addEventListener('change', () => { start([...camera.files]); camera.value = ''; });
  for (const name of ['dragenter', 'dragover']) {
    zone.addEventListener(name, (event) => { event.preventDefault(); zone.classList.add('over'); });
  }
  zone.addEventListener('dragleave', () => zone.classList.remove('over'));
  zone.addEventListener('drop', (event) => {
    event.preventDefault();
    zone.classList.remove('over');
    start([...event.dataTransfer.files]);
  });
  app.leave = () => {
    for (const timer of polls) clearTimeout(timer);
    return true;
  };
  return h('section', {}, pageHeading('Upload receipts'), zone, list);
}
