// The query box: J1QL against a tenant's current graph through POST /api/query, results
// as a table or drawn as a graph, parse errors shown with a caret under the column (and
// the cursor put there).
import { api, ApiError, el, fill, fmtCount, fmtValue, page, setStatus } from './api.js';
import { GraphView, flatEntity } from './graph.js';

const $ = (id) => document.getElementById(id);
const form = $('query-form');
const textarea = $('query');
const tenantSelect = $('tenant-select');
const viewSelect = $('view-select');
const errorBox = $('query-error');
const status = $('status');
const results = $('results');
const graphBox = $('query-graph');
let graph = null;
const params = new URLSearchParams(location.search);
if (params.get('q')) textarea.value = params.get('q');
if (params.get('view')) viewSelect.value = params.get('view');

async function loadTenants() {
  const tenants = await api('/api/tenants');
  fill(tenantSelect, tenants.map((t) => el('option', { value: t.tenant }, t.accountName ? `${t.tenant} (${t.accountName})` : t.tenant)));
  const wanted = page.tenant || params.get('tenant');
  if (wanted) tenantSelect.value = wanted;
}

/** The error as text with the query line and a caret under the column. */
function renderError(error) {
  const d = error instanceof ApiError ? error.detail : {};
  if (d.rendered) return d.rendered;
  if (d.line && d.column) {
    const line = textarea.value.split('\n')[d.line - 1] || '';
    const expected = d.expected && d.expected.length ? `\nexpected: ${d.expected.join(', ')}` : '';
    return `${d.message}\n  --> line ${d.line}, column ${d.column}\n${line}\n${' '.repeat(d.column - 1)}^${expected}`;
  }
  return error.message;
}

/** Puts the cursor where the error is. */
function pointAt(detail) {
  if (!detail || !detail.line || !detail.column) return;
  const lines = textarea.value.split('\n');
  let offset = 0;
  for (let i = 0; i < detail.line - 1 && i < lines.length; i += 1) offset += lines[i].length + 1;
  offset += detail.column - 1;
  textarea.focus();
  textarea.setSelectionRange(offset, Math.min(offset + 1, textarea.value.length));
}

function cell(value) {
  return el('td', null, fmtValue(value));
}

/** A J1 result as a table: entities with their key columns, table rows as they come,
 *  trees as vertices then edges. */
function table(result) {
  if (result.type === 'table') {
    const rows = result.data || [];
    const columns = [...new Set(rows.flatMap((r) => Object.keys(r)))];
    return el('table', { class: 'grid', id: 'result-table' },
      el('thead', null, el('tr', null, columns.map((c) => el('th', null, c)))),
      el('tbody', null, rows.map((r) => el('tr', null, columns.map((c) => cell(r[c]))))));
  }
  const entities = result.type === 'tree' ? result.data.vertices || [] : result.data || [];
  const flat = entities.map(flatEntity);
  const extra = ['name', 'email', 'username', 'active', 'mfaEnabled'].filter((c) => flat.some((e) => e[c] !== undefined));
  const columns = ['_key', '_type', '_class', 'displayName', ...extra];
  const parts = [el('table', { class: 'grid', id: 'result-table' },
    el('thead', null, el('tr', null, columns.map((c) => el('th', null, c)))),
    el('tbody', null, flat.map((e) => el('tr', { dataset: { key: e._key } }, columns.map((c) => cell(e[c]))))))];
  if (result.type === 'tree') {
    const edges = result.data.edges || [];
    parts.push(el('h3', null, `Relationships (${fmtCount(edges.length)})`), el('table', { class: 'grid' },
      el('thead', null, el('tr', null, ['_type', '_class', 'from', 'to'].map((c) => el('th', null, c)))),
      el('tbody', null, edges.map((e) => el('tr', null, cell(e.relationship && e.relationship._type),
        cell(e.relationship && e.relationship._class), cell(e.fromVertexId), cell(e.toVertexId))))));
  }
  return parts;
}

async function draw(result) {
  graphBox.hidden = false;
  if (!graph) graph = new GraphView(graphBox, { onExpand: () => {} });
  graph.clear();
  graph.addResult(result);
  await graph.layout();
  graph.fit();
}

async function run() {
  errorBox.hidden = true;
  const query = textarea.value;
  const tenant = tenantSelect.value;
  const q = new URLSearchParams({ tenant, q: query, view: viewSelect.value });
  history.replaceState(null, '', `${location.pathname}?${q}`);
  setStatus(status, 'Running…');
  const started = performance.now();
  let result;
  try {
    result = await api('/api/query', {
      method: 'POST',
      body: { tenant, query, includeDeleted: $('include-deleted').checked },
    });
  } catch (error) {
    errorBox.textContent = renderError(error);
    errorBox.hidden = false;
    setStatus(status, error.status === 400 ? 'The query is not valid.' : 'The query failed.', 'error');
    pointAt(error.detail);
    fill(results);
    graphBox.hidden = true;
    return;
  }
  const ms = performance.now() - started;
  const shown = result.type === 'tree' ? (result.data.vertices || []).length : (result.data || []).length;
  setStatus(status, `${fmtCount(shown)} ${result.type === 'table' ? 'row(s)' : 'entities'}${result.total > shown ? ` of ${fmtCount(result.total)}` : ''} in ${Math.round(ms)} ms`);
  if (viewSelect.value === 'graph') {
    fill(results);
    try {
      await draw(result);
    } catch (error) {
      errorBox.textContent = error.message;
      errorBox.hidden = false;
      graphBox.hidden = true;
      fill(results, table(result));
    }
  } else {
    graphBox.hidden = true;
    fill(results, table(result));
  }
}

form.addEventListener('submit', (e) => {
  e.preventDefault();
  run();
});
textarea.addEventListener('keydown', (e) => {
  if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) {
    e.preventDefault();
    run();
  }
});
viewSelect.addEventListener('change', () => {
  if (results.childNodes.length || !graphBox.hidden) run();
});

loadTenants().then(() => {
  if (params.get('q')) run();
}).catch((error) => setStatus(status, error.message, 'error'));
