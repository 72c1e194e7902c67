// A run's change set: created, updated and deleted entities and relationships, each
// property's old and new value side by side, filtered by run, type and kind of change.
import {
  api, badge, el, enc, fill, fmtCount, fmtTime, fmtValue, page, runLink, setStatus,
  showError, tenantApi,
} from './api.js';

const PAGE_SIZE = 100;
const tenant = page.tenant;
const base = tenantApi(tenant);
const status = document.getElementById('status');
const list = document.getElementById('changes');
const more = document.getElementById('more');
const summaryCard = document.getElementById('run-summary');
const runSelect = document.getElementById('run-select');
const typeSelect = document.getElementById('type-select');
const changeSelect = document.getElementById('change-select');

const params = new URLSearchParams(location.search);
const state = {
  run: page.run || params.get('run') || '',
  type: params.get('type') || '',
  change: params.get('change') || '',
  offset: 0,
};

function keepInAddress() {
  const q = new URLSearchParams();
  for (const k of ['run', 'type', 'change']) if (state[k]) q.set(k, state[k]);
  history.replaceState(null, '', `${location.pathname}${q.toString() ? `?${q}` : ''}`);
}

/** A changed entity's name for people: its name in the change itself (a renamed user
 *  shows the new name), else its current name from the API's `names`. */
function label(change, names) {
  for (const name of ['displayName', 'name', 'email', 'username']) {
    const p = (change.properties || []).find((x) => x.name === name);
    if (p && (p.new ?? p.old) !== null && (p.new ?? p.old) !== undefined) return fmtValue(p.new ?? p.old);
  }
  return names[change.key] || null;
}

/** One end of a changed relationship: its name, the key in a tooltip. */
function endpoint(key, names) {
  return names[key] ? el('span', { class: 'endpoint', title: key }, names[key]) : el('code', { class: 'key' }, key);
}

function renderChange(change, names = {}) {
  const graphLink = change.kind === 'entity' && change.change !== 'deleted'
    ? el('a', { href: `/tenants/${enc(tenant)}/graph?focus=${enc(change.key)}`, class: 'sub' }, 'show in graph')
    : null;
  const title = change.kind === 'entity' ? label(change, names) : null;
  const head = el('div', { class: 'change-head' },
    badge(change.change),
    el('span', { class: 'type' }, change.type),
    title ? el('strong', { class: 'name' }, title) : null,
    change.kind === 'relationship'
      ? el('span', { class: 'ends' }, endpoint(change.fromKey, names), ' → ', endpoint(change.toKey, names))
      : null,
    el('code', { class: 'key sub' }, change.key),
    graphLink);
  const props = change.properties || [];
  const table = props.length
    ? el('table', { class: 'diff' },
      el('thead', null, el('tr', null, el('th', null, 'property'), el('th', null, 'old'), el('th', null, 'new'))),
      el('tbody', null, props.map((p) => el('tr', { dataset: { property: p.name } },
        el('td', { class: 'prop' }, p.name),
        el('td', { class: p.old === undefined || p.old === null ? 'old none' : 'old' }, fmtValue(p.old)),
        el('td', { class: p.new === undefined || p.new === null ? 'new none' : 'new' }, fmtValue(p.new))))))
    : null;
  return el('article', { class: `change c-${change.change}`, dataset: { key: change.key, change: change.change, type: change.type } }, head, table);
}

function renderSummary(run) {
  const c = run.changes || { entities: {}, relationships: {} };
  const part = (x) => `+${fmtCount(x?.created)} ~${fmtCount(x?.updated)} −${fmtCount(x?.deleted)}`;
  fill(summaryCard,
    el('div', null, 'Run ', runLink(tenant, run), ' ', badge(run.status), ' ', fmtTime(run.startedAtMs),
      run.baseline ? el('span', { class: 'tag' }, 'baseline: the first run, everything is new') : null),
    el('div', { class: 'sub' }, `entities ${part(c.entities)}; relationships ${part(c.relationships)}`),
    (run.partialTypes || []).length ? el('div', { class: 'partial' }, `partial types (nothing of them deleted): ${run.partialTypes.join(', ')}`) : null);
  document.getElementById('title').textContent = `Changes of run #${run.id}`;
}

async function loadPage(append) {
  const q = new URLSearchParams({ limit: PAGE_SIZE, offset: state.offset });
  for (const k of ['run', 'type', 'change']) if (state[k]) q.set(k, state[k]);
  const set = await api(`${base}/changes?${q}`);
  if (!append) {
    renderSummary(set.run);
    if (!state.run) {
      state.run = String(set.run.id);
      runSelect.value = state.run;
    }
    fill(list);
  }
  for (const change of set.changes) list.append(renderChange(change, set.names || {}));
  const shown = state.offset + set.changes.length;
  more.hidden = shown >= set.total;
  setStatus(status, set.total ? `${fmtCount(set.total)} change(s)${shown < set.total ? `, showing ${fmtCount(shown)}` : ''}` : 'No changes match.');
}

async function reload() {
  state.offset = 0;
  keepInAddress();
  try {
    await loadPage(false);
  } catch (error) {
    showError(status, error);
    fill(list);
  }
}

async function loadFilters() {
  const [runs, types] = await Promise.all([api(`${base}/runs?limit=50`), api(`${base}/types`)]);
  fill(runSelect, runs.filter((r) => r.persisted).map((r) =>
    el('option', { value: r.id }, `#${r.id} ${fmtTime(r.startedAtMs)} ${r.status}${r.baseline ? ' (baseline)' : ''}`)));
  const names = [...Object.keys(types.entities || {}), ...Object.keys(types.relationships || {})].sort();
  if (state.type && !names.includes(state.type)) names.unshift(state.type);
  typeSelect.append(...names.map((t) => el('option', { value: t }, t)));
  runSelect.value = state.run;
  typeSelect.value = state.type;
  changeSelect.value = state.change;
}

runSelect.addEventListener('change', () => { state.run = runSelect.value; reload(); });
typeSelect.addEventListener('change', () => { state.type = typeSelect.value; reload(); });
changeSelect.addEventListener('change', () => { state.change = changeSelect.value; reload(); });
more.addEventListener('click', async () => {
  state.offset += PAGE_SIZE;
  try {
    await loadPage(true);
  } catch (error) {
    showError(status, error);
  }
});

loadFilters().catch((error) => showError(status, error)).then(reload);
