// The console's client of the JSON API (the same API scripts and the CLI use), and the
// small DOM helpers every page shares. Data is put into the page as text nodes only
// (never innerHTML): names and properties come from the tenant's directory.

// Problems the page ran into (script errors, failed promises, Content-Security-Policy
// violations), kept for the browser tests and for anyone at the devtools console.
window.consoleProblems = window.consoleProblems || [];
window.addEventListener('error', (e) => window.consoleProblems.push(`error: ${e.message}`));
window.addEventListener('unhandledrejection', (e) => window.consoleProblems.push(`unhandled: ${e.reason}`));
document.addEventListener('securitypolicyviolation', (e) =>
  window.consoleProblems.push(`csp: ${e.violatedDirective} blocked ${e.blockedURI || 'inline'}`));

/** The page's parameters, from `<main data-page data-tenant data-run>`. */
export const page = document.getElementById('page').dataset;

export const enc = encodeURIComponent;

/** An API answer other than 2xx; `detail` is the body's `error` object when there is one. */
export class ApiError extends Error {
  constructor(status, detail, text) {
    super((detail && detail.message) || text || `HTTP ${status}`);
    this.status = status;
    this.detail = detail || {};
  }
}

/** Calls the API: JSON in, JSON out; throws ApiError on a non-2xx answer. */
export async function api(path, { method = 'GET', body } = {}) {
  const init = { method, credentials: 'same-origin', headers: { accept: 'application/json' } };
  if (body !== undefined) {
    init.headers['content-type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  const response = await fetch(path, init);
  const text = await response.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch (_) {
    data = null;
  }
  if (!response.ok) {
    throw new ApiError(response.status, data && data.error, text.slice(0, 300));
  }
  return data;
}

/** The tenant's API prefix. */
export function tenantApi(tenant) {
  return `/api/tenants/${enc(tenant)}`;
}

/** el('a', {href: '/x', class: 'y'}, 'text', childNode): a DOM element. */
export function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name === 'class') node.className = value;
    else if (name === 'dataset') Object.assign(node.dataset, value);
    else if (name.startsWith('on')) node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value === true ? '' : String(value));
  }
  append(node, children);
  return node;
}

function append(node, children) {
  for (const child of children) {
    if (child === undefined || child === null || child === false) continue;
    if (Array.isArray(child)) append(node, child);
    else node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

/** Replaces a node's children. */
export function fill(node, ...children) {
  node.replaceChildren();
  append(node, children);
  return node;
}

/** Sets a status line; kind is '', 'error' or 'ok'. */
export function setStatus(node, text, kind = '') {
  node.textContent = text;
  node.className = `status ${kind}`.trim();
  node.hidden = !text;
}

export function fmtTime(ms) {
  if (ms === null || ms === undefined) return '—';
  const d = new Date(ms);
  const pad = (n) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

export function fmtDuration(ms) {
  if (ms === null || ms === undefined || Number.isNaN(ms)) return '—';
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60000) return `${(ms / 1000).toFixed(2)} s`;
  const m = Math.floor(ms / 60000);
  return `${m} min ${Math.round((ms % 60000) / 1000)} s`;
}

/** "in 5 min" / "3 min ago" next to an absolute time. */
export function fmtRelative(ms, now = Date.now()) {
  if (ms === null || ms === undefined) return '—';
  const delta = ms - now;
  const abs = Math.abs(delta);
  let text;
  if (abs < 60000) text = `${Math.round(abs / 1000)} s`;
  else if (abs < 3600000) text = `${Math.round(abs / 60000)} min`;
  else if (abs < 86400000 * 2) text = `${(abs / 3600000).toFixed(1)} h`;
  else text = `${Math.round(abs / 86400000)} d`;
  return delta >= 0 ? `in ${text}` : `${text} ago`;
}

/** A property value as text: arrays joined, objects as JSON, null as an em dash. */
export function fmtValue(value) {
  if (value === null || value === undefined) return '—';
  if (Array.isArray(value)) return value.map(fmtValue).join(', ');
  if (typeof value === 'object') return JSON.stringify(value);
  return String(value);
}

export function fmtCount(n) {
  return n === null || n === undefined ? '—' : Number(n).toLocaleString('en-US');
}

/** A coloured badge for a run status, change kind, alert level or alert status. */
export function badge(text, extra = '') {
  const value = text === null || text === undefined ? '—' : String(text);
  return el('span', { class: `badge b-${value.toLowerCase().replace(/[^a-z0-9]+/g, '-')} ${extra}`.trim() }, value);
}

/** A table row of cells (strings or nodes). */
export function row(cells, attrs) {
  return el('tr', attrs, cells.map((c) => el('td', null, c)));
}

/** Created/updated/deleted counts of a run, as "+c ~u -d". */
export function changeCounts(changes) {
  if (!changes) return '—';
  const e = changes.entities || {};
  const r = changes.relationships || {};
  const sum = (k) => (e[k] || 0) + (r[k] || 0);
  return `+${fmtCount(sum('created'))} ~${fmtCount(sum('updated'))} −${fmtCount(sum('deleted'))}`;
}

export function runLink(tenant, run) {
  return el('a', { href: `/tenants/${enc(tenant)}/runs/${enc(run.id)}` }, `#${run.id}`);
}

/** Shows an API error where the page shows its status. */
export function showError(node, error) {
  const text = error instanceof ApiError ? `${error.message} (HTTP ${error.status})` : String(error.message || error);
  setStatus(node, text, 'error');
}

/** Calls fn every `ms` until it returns false; returns a stop function. */
export function poll(fn, ms) {
  let stopped = false;
  let timer = null;
  const tick = async () => {
    if (stopped) return;
    let again = true;
    try {
      again = (await fn()) !== false;
    } catch (error) {
      console.warn('poll', error);
    }
    if (again && !stopped) timer = setTimeout(tick, ms);
  };
  tick();
  return () => {
    stopped = true;
    clearTimeout(timer);
  };
}

/** Triggers a run of `tenant` and follows its progress until it ends.
 *  onProgress({running, steps}) is called at each poll; resolves with the tenant's view
 *  once a run newer than the one before the click has finished. */
export async function triggerAndFollow(tenant, onProgress, intervalMs = 700) {
  const lastId = (view) => (view && view.lastRun ? view.lastRun.id : null);
  const before = lastId(await api(tenantApi(tenant)));
  await api(`${tenantApi(tenant)}/trigger`, { method: 'POST', body: {} });
  return new Promise((resolve) => {
    poll(async () => {
      const progress = await api(`${tenantApi(tenant)}/progress`);
      onProgress(progress);
      if (progress.running) return true;
      // Not running: either the run has not started yet (queued) or it is over.
      const view = await api(tenantApi(tenant));
      if (lastId(view) !== before && !view.running) {
        resolve(view);
        return false;
      }
      return true;
    }, intervalMs);
  });
}

/** Webhook deliveries of an evaluation: outcome, method, endpoint, attempts, status. */
export function deliveriesCell(deliveries) {
  if (!deliveries || !deliveries.length) return '—';
  return el('ul', { class: 'plain' }, deliveries.map((d) => el('li', null,
    badge(d.outcome), ` ${d.method || 'POST'} ${d.endpoint}`,
    el('span', { class: 'sub' }, ` ${d.attempts} attempt(s)${d.status ? `, HTTP ${d.status}` : ''}${d.reason ? `: ${d.reason}` : ''}`))));
}
