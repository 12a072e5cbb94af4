// The REST API as the app uses it. The access token lives in this module's memory only; the
// refresh token is an HttpOnly cookie the page cannot read. Requests that use the cookie carry the
// CSRF token from the readable `fa_csrf` cookie. When the access token is refused, the app
// refreshes once and retries; when the session is over, it asks the person to sign in again
// (without leaving the page, so nothing typed is lost) and then retries.

let accessToken = null;
let refreshTimer = null;
let sessionLost = null; // async () => boolean, set by the app: asks for credentials again.

/** An API error with the problem document's words. */
export class ApiError extends Error {
  constructor(status, problem, retryAfter) {
    super(problem?.detail || problem?.title || `request failed (${status})`);
    this.status = status;
    this.problem = problem || {};
    this.retryAfter = retryAfter;
  }
}

/** What went wrong, in words a person can act on. */
export function explain(error) {
  if (!(error instanceof ApiError)) return 'The server could not be reached. Check your connection and try again.';
  const detail = error.problem.detail;
  if (error.problem.type === 'urn:finagent:problem:quota-exceeded') {
    return `Your storage is full (${detail}). Delete receipts you no longer need, or ask an administrator for more room.`;
  }
  switch (error.status) {
    case 408: return 'The upload was too slow and was stopped. Try again on a better connection.';
    case 400: case 422: return detail ? `That was not accepted: ${detail}.` : 'That was not accepted.';
    case 401: return 'Your session has ended. Please sign in again.';
    case 403: return detail ? `Not allowed: ${detail}.` : 'You are not allowed to do that.';
    case 404: return 'It is not there any more (deleted, or never yours).';
    case 409: return detail ? `${detail.charAt(0).toUpperCase()}${detail.slice(1)}.` : 'That conflicts with what is stored.';
    case 413: return 'The file is too large (at most 25 MB).';
    case 415: return 'That file is not a receipt we can read (PDF, JPEG, PNG, WebP, TIFF, BMP or GIF).';
    case 429: return `Too many requests. Try again in ${error.retryAfter || 'a few'} seconds.`;
    case 503: return 'The service is busy or a part of it is down. Try again in a moment.';
    default: return detail || `Something went wrong on the server (${error.status}).`;
  }
}

export function onSessionLost(handler) {
  sessionLost = handler;
}

export function signedIn() {
  return accessToken !== null;
}

// Over TLS the cookie is `__Host-fa_csrf`; over plain HTTP it is `fa_csrf`.
function csrfToken() {
  const parts = document.cookie.split(';').map((part) => part.trim());
  for (const name of ['__Host-fa_csrf=', 'fa_csrf=']) {
    const match = parts.find((part) => part.startsWith(name));
    if (match) return match.slice(name.length);
  }
  return '';
}

async function problemOf(response) {
  try {
    return await response.json();
  } catch {
    return null;
  }
}

function adopt(session) {
  accessToken = session.access_token;
  clearTimeout(refreshTimer);
  // Refresh a minute before the token expires, so a person at work never sees a refusal.
  const lead = Math.max(10, session.expires_in - 60) * 1000;
  refreshTimer = setTimeout(() => { refresh().catch(() => {}); }, lead);
}

async function cookieCall(path, body) {
  const response = await fetch(path, {
    method: 'POST',
    credentials: 'same-origin',
    headers: { 'content-type': 'application/json', 'x-csrf-token': csrfToken() },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (!response.ok) throw new ApiError(response.status, await problemOf(response), response.headers.get('retry-after'));
  return response.status === 204 ? null : response.json();
}

/** Signs in: the refresh cookie is set by the server, the access token kept here. */
export async function login(username, password) {
  adopt(await cookieCall('/api/auth/browser/login', { username, password }));
}

/**
 * Changes the password. Every other session ends; this page's continues under a new refresh
 * cookie, so no refresh token ever reaches the page.
 */
export async function changePassword(currentPassword, newPassword) {
  adopt(await request('POST', '/api/auth/browser/password', {
    json: { current_password: currentPassword, new_password: newPassword },
    headers: { 'x-csrf-token': csrfToken() },
  }));
}

/**
 * Exchanges the refresh cookie for a new access token. Tabs take turns (a refresh token works
 * once, and two tabs presenting the same one would end the session).
 */
export async function refresh() {
  const run = async () => {
    try {
      adopt(await cookieCall('/api/auth/browser/refresh'));
      return true;
    } catch (error) {
      if (error instanceof ApiError && error.status === 401) {
        accessToken = null;
        return false;
      }
      throw error;
    }
  };
  return navigator.locks ? navigator.locks.request('finagent-refresh', run) : run();
}

export async function logout() {
  clearTimeout(refreshTimer);
  accessToken = null;
  await cookieCall('/api/auth/browser/logout');
}

function url(path, query) {
  if (!query) return path;
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(query)) {
    if (value !== undefined && value !== null && value !== '') params.set(key, value);
  }
  const text = params.toString();
  return text ? `${path}?${text}` : path;
}

/**
 * Calls the API with the access token. `json` is sent as the body; the answer is parsed JSON,
 * or the Response itself with `raw`.
 */
export async function request(method, path, { json, body, query, raw, headers = {} } = {}) {
  for (let attempt = 0; ; attempt += 1) {
    const sent = { ...headers };
    if (accessToken) sent.authorization = `Bearer ${accessToken}`;
    if (json !== undefined) sent['content-type'] = 'application/json';
    const response = await fetch(url(path, query), {
      method,
      headers: sent,
      body: json !== undefined ? JSON.stringify(json) : body,
      credentials: 'same-origin',
    });
    if (response.status === 401 && attempt === 0) {
      if (await refresh()) continue;
      if (sessionLost && await sessionLost()) continue;
    }
    if (!response.ok) throw new ApiError(response.status, await problemOf(response), response.headers.get('retry-after'));
    if (raw) return response;
    return response.status === 204 ? null : response.json();
  }
}

export const get = (path, query) => request('GET', path, { query });
export const post = (path, json) => request('POST', path, { json });
export const patch = (path, json) => request('PATCH', path, { json });
export const put = (path, json) => request('PUT', path, { json });
export const del = (path) => request('DELETE', path);

/** An object URL of a receipt's image (fetched with the token; `img` cannot send one); for a PDF,
 * the server's rendering of its pages, which an `img` can draw. */
export async function imageUrl(receipt) {
  const response = await request('GET', receipt.preview_url || receipt.image_url, { raw: true });
  return URL.createObjectURL(await response.blob());
}

/** Downloads an API response as a file. */
export async function download(path, query, fileName) {
  const response = await request('GET', path, { query, raw: true });
  const link = document.createElement('a');
  link.href = URL.createObjectURL(await response.blob());
  link.download = fileName;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(link.href), 60_000);
}

/**
 * Uploads one file with progress (fetch cannot report upload progress). Resolves to the task.
 * `onProgress` gets a fraction in 0–1.
 */
export function upload(file, onProgress) {
  const send = () => new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open('POST', '/api/ocr/process');
    if (accessToken) xhr.setRequestHeader('authorization', `Bearer ${accessToken}`);
    xhr.upload.addEventListener('progress', (event) => {
      if (event.lengthComputable) onProgress(event.loaded / event.total);
    });
    xhr.addEventListener('load', () => {
      let body = null;
      try { body = JSON.parse(xhr.responseText); } catch { /* not JSON */ }
      if (xhr.status >= 200 && xhr.status < 300) resolve(body);
      else reject(new ApiError(xhr.status, body, xhr.getResponseHeader('retry-after')));
    });
    xhr.addEventListener('error', () => reject(new TypeError('network error')));
    const form = new FormData();
    form.append('file', file, file.name);
    xhr.send(form);
  });
  return send().catch(async (error) => {
    if (error instanceof ApiError && error.status === 401 && (await refresh() || (sessionLost && await sessionLost()))) {
      return send();
    }
    throw error;
  });
}
