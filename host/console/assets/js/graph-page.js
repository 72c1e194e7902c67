// The graph view of a tenant. It never draws the whole graph: it starts from a query (by
// default the account with its groups and applications), a searched entity, or an
// entity named in the address (?focus=KEY), and grows as the user expands neighbours.
// What changed in the last run is ringed (green created, orange updated, red deleted).
import {
  api, ApiError, el, enc, fill, fmtCount, fmtTime, fmtValue, page, setStatus, tenantApi,
} from './api.js';
import { GraphView, colourOf, flatEntity, labelOf, swatch } from './graph.js';

const tenant = page.tenant;
const base = tenantApi(tenant);
/** Neighbours added per expansion; the rest stay reachable through search. */
const EXPAND_MAX = 150;
/** Entities one start query may draw. */
const START_MAX = 1500;
export const DEFAULT_START =
  'FIND (jumpcloud_group|jumpcloud_application) THAT (HAS|ASSIGNED) (jumpcloud_account|jumpcloud_group|jumpcloud_application) RETURN TREE';

/** Classes of the types the legend shows before any of them is drawn. */
const KNOWN_CLASSES = {
  jumpcloud_account: ['Account', 'Organization'],
  jumpcloud_user: ['User'],
  jumpcloud_group: ['Group'],
  jumpcloud_application: ['Application'],
  employee: ['Person'],
};

const $ = (id) => document.getElementById(id);
const statusLine = $('graph-status');
const details = $('details');
const errorBox = $('graph-error');
const startQuery = $('start-query');
const typeClasses = new Map(Object.entries(KNOWN_CLASSES));
const neighbourCounts = new Map();
let typeCounts = {};
let lastChangeRun = null;
/** Time spent laying out the view (reported in window.consoleTimings). */
let layoutMs = 0;

const view = new GraphView($('graph'), {
  onSelect: (entity, key) => showDetails(key),
  onExpand: (key) => expand(key),
});
// For tests and for people at the devtools console.
window.consoleGraph = view;

function status(text, kind = '') {
  setStatus(statusLine, text, kind);
  statusLine.hidden = false;
}

function showError(error) {
  const d = error instanceof ApiError ? error.detail : {};
  errorBox.textContent = d.rendered || error.message;
  errorBox.hidden = false;
}

function learnClasses(rows) {
  for (const row of rows) {
    const e = flatEntity(row);
    if (e && e._type && !typeClasses.has(e._type)) typeClasses.set(e._type, [].concat(e._class || []));
  }
}

function describeSize() {
  const { nodes, edges } = view.size();
  return `${fmtCount(nodes)} nodes, ${fmtCount(edges)} relationships drawn of ${fmtCount(Object.values(typeCounts).reduce((a, b) => a + b, 0))} entities`;
}

// ---- legend --------------------------------------------------------------------------

const hiddenTypes = new Set();

function renderLegend() {
  const types = new Set([...Object.keys(typeCounts), ...view.cy.nodes().map((n) => n.data('type'))]);
  fill($('legend'), [...types].sort().map((type) => {
    const box = el('input', { type: 'checkbox', checked: !hiddenTypes.has(type), title: 'show or hide this type' });
    box.addEventListener('change', () => {
      if (box.checked) hiddenTypes.delete(type);
      else hiddenTypes.add(type);
      view.setTypeVisible(type, box.checked);
    });
    const classes = typeClasses.get(type) || [];
    const item = el('li', { dataset: { type } }, box, swatch(type, classes),
      el('span', { class: 'legend-type' }, type),
      el('span', { class: 'sub' }, ` ${classes.join(', ')}${typeCounts[type] !== undefined ? ` · ${fmtCount(typeCounts[type])}` : ''}`));
    item.querySelector('svg').classList.add('swatch');
    return item;
  }));
}

// ---- drawing -------------------------------------------------------------------------

function addWithLegend(fn) {
  const before = new Set(view.cy.nodes().map((n) => n.data('type')));
  const result = fn();
  for (const type of hiddenTypes) view.setTypeVisible(type, false);
  const after = view.cy.nodes().map((n) => n.data('type'));
  if (after.some((t) => !before.has(t))) renderLegend();
  return result;
}

async function drawQuery(query, { clear = true } = {}) {
  errorBox.hidden = true;
  status('Running the query…');
  let result;
  try {
    result = await api('/api/query', { method: 'POST', body: { tenant, query, limit: START_MAX } });
  } catch (error) {
    showError(error);
    status('The query failed.', 'error');
    return false;
  }
  if (clear) view.clear();
  try {
    const rows = result.type === 'tree' ? result.data.vertices : result.data;
    learnClasses(rows || []);
    addWithLegend(() => view.addResult(result));
  } catch (error) {
    showError(error);
    status('Nothing drawn.', 'error');
    return false;
  }
  const laidOut = performance.now();
  await view.layout();
  view.fit();
  layoutMs += performance.now() - laidOut;
  const more = result.total > view.size().nodes ? ` (the query matched ${fmtCount(result.total)}; narrow it to see the rest)` : '';
  status(`${describeSize()}${more}. Click a node for its properties; double-click to expand it.`);
  return true;
}

/** Fetches an entity with its relationships and neighbours (cached per key). */
const fetched = new Map();
async function fetchEntity(key) {
  if (!fetched.has(key)) {
    fetched.set(key, api(`${base}/entities/${enc(key)}`).catch((error) => {
      fetched.delete(key);
      throw error;
    }));
  }
  return fetched.get(key);
}

/** Classes of who someone is and what they belong to: drawn first on expansion. */
const IDENTITY_CLASSES = ['Group', 'UserGroup', 'Account', 'Organization', 'Person', 'User'];
/** Per type of device, host or policy, at most this many next to identities: a user
 *  whose groups let it log into 400 systems still shows its groups, not a wall of them. */
const EXPAND_PER_OTHER_TYPE = 30;

function identityRank(entity) {
  const classes = [].concat(entity._class || []);
  if (classes.some((c) => IDENTITY_CLASSES.includes(c))) return 0;
  return classes.includes('Application') ? 1 : 2;
}

/** The neighbours to draw: identities and memberships (groups, account, person) first,
 *  then applications, then the rest; within a rank the rarer types first. Other types
 *  are capped per type when identities are there too; EXPAND_MAX in all. */
function pickNeighbours(neighbours) {
  const perType = new Map();
  for (const n of neighbours) perType.set(n._type, (perType.get(n._type) || 0) + 1);
  const ranked = neighbours.map((n) => ({ n, rank: identityRank(n) }));
  const capOthers = ranked.some((r) => r.rank < 2);
  const taken = new Map();
  return ranked
    .sort((a, b) => a.rank - b.rank || perType.get(a.n._type) - perType.get(b.n._type)
      || labelOf(a.n).localeCompare(labelOf(b.n)))
    .filter(({ n, rank }) => {
      const count = (taken.get(n._type) || 0) + 1;
      if (capOthers && rank === 2 && count > EXPAND_PER_OTHER_TYPE) return false;
      taken.set(n._type, count);
      return true;
    })
    .slice(0, EXPAND_MAX)
    .map(({ n }) => n);
}

async function expand(key) {
  status('Expanding…');
  let answer;
  try {
    answer = await fetchEntity(key);
  } catch (error) {
    status(`Cannot expand ${key}: ${error.message}`, 'error');
    return;
  }
  const neighbours = answer.neighbours || [];
  neighbourCounts.set(key, neighbours.length);
  const chosen = pickNeighbours(neighbours);
  learnClasses([answer.entity, ...chosen]);
  const added = addWithLegend(() => {
    const keys = view.addEntities([answer.entity, ...chosen]);
    view.addRelationships(answer.relationships || []);
    return keys.filter((k) => k !== key);
  });
  view.cy.getElementById(key).addClass('expanded');
  await view.placeAround(key, added);
  const cut = neighbours.length > chosen.length ? ` (${fmtCount(chosen.length)} of ${fmtCount(neighbours.length)} neighbours: search to find the others)` : '';
  status(`Expanded ${labelOf(answer.entity)}: ${fmtCount(added.length)} added${cut}. ${describeSize()}.`);
  view.focusNeighbourhood(key);
  showDetails(key);
}

/** Draws `key` (with its neighbours when it is new to the view) and selects it. */
async function focusEntity(key) {
  if (!view.has(key)) {
    await expand(key);
  } else {
    view.focus(key);
    showDetails(key);
  }
}

// ---- details panel -------------------------------------------------------------------

function propertyTable(entity) {
  const names = Object.keys(entity).filter((k) => k !== '_rawData');
  const plain = names.filter((k) => !k.startsWith('_')).sort();
  const meta = names.filter((k) => k.startsWith('_')).sort();
  const rows = (list) => list.map((k) => el('tr', { dataset: { property: k } }, el('th', null, k), el('td', null, fmtValue(entity[k]))));
  return el('table', { class: 'props' }, el('tbody', null, rows(plain), rows(meta)));
}

async function showDetails(key) {
  if (!key) {
    fill(details, el('p', { class: 'hint' }, 'Click a node to see its properties. Double-click, or “Expand”, to add its neighbours.'));
    return;
  }
  const known = view.entities.get(key);
  const change = view.changes.get(key);
  const title = el('h2', { class: 'entity-title' }, known ? labelOf(known) : key);
  const keyLine = el('div', { class: 'sub entity-key' }, el('code', null, key));
  const expandButton = el('button', { id: 'expand', class: 'primary', onclick: () => expand(key) }, 'Expand neighbours');
  const relList = el('div', { class: 'rel-summary' });
  fill(details, title, keyLine,
    el('div', { class: 'sub' }, known ? `${known._type} · ${[].concat(known._class || []).join(', ')}` : ''),
    change ? el('div', { class: `tag c-${change}` }, `${change} in run #${lastChangeRun}`) : null,
    el('div', { class: 'row' }, expandButton,
      el('a', { class: 'button', href: `/query?tenant=${enc(tenant)}&q=${enc(`FIND * WITH _key = '${key.replace(/'/g, "\\'")}' THAT RELATES TO * RETURN TREE`)}` }, 'Query')),
    relList,
    known ? propertyTable(known) : el('p', { class: 'sub' }, 'Loading…'));
  try {
    const answer = await fetchEntity(key);
    const counts = {};
    for (const r of answer.relationships || []) counts[r._type] = (counts[r._type] || 0) + 1;
    fill(relList, el('h4', null, `Relationships (${fmtCount((answer.relationships || []).length)})`),
      el('ul', { class: 'plain' }, Object.entries(counts).sort().map(([t, n]) => el('li', null, `${t}: ${fmtCount(n)}`))));
    if (!known) {
      title.textContent = labelOf(answer.entity);
      details.lastChild.replaceWith(propertyTable(answer.entity));
    }
  } catch (error) {
    fill(relList, el('p', { class: 'error' }, error.message));
  }
}

// ---- search --------------------------------------------------------------------------

let searchSeq = 0;
async function search(text) {
  const seq = ++searchSeq;
  const list = $('search-results');
  if (text.trim().length < 2) {
    fill(list);
    view.markMatches([]);
    return;
  }
  let found;
  try {
    found = await api(`${base}/search?q=${enc(text.trim())}&limit=25`);
  } catch (error) {
    fill(list, el('li', { class: 'error' }, error.message));
    return;
  }
  if (seq !== searchSeq) return;
  view.markMatches(found.map((e) => e._key));
  fill(list, found.length ? found.map((e) => el('li', null, el('button', {
    class: 'link result', dataset: { key: e._key },
    onclick: () => focusEntity(e._key),
  }, el('span', { class: 'dot' }, swatch(e._type, [].concat(e._class || []))), el('span', null, labelOf(e)),
  el('span', { class: 'sub' }, ` ${e._type}${e.email ? ` · ${fmtValue(e.email)}` : ''}`)))) : el('li', { class: 'sub' }, 'No match.'));
}

let searchTimer = null;
$('search').addEventListener('input', (e) => {
  clearTimeout(searchTimer);
  searchTimer = setTimeout(() => search(e.target.value), 200);
});
$('search-form').addEventListener('submit', (e) => {
  e.preventDefault();
  clearTimeout(searchTimer);
  search($('search').value);
});

// ---- changes of the last run ---------------------------------------------------------

async function loadChanges() {
  const list = $('changed');
  let set;
  try {
    set = await api(`${base}/changes?limit=500`);
  } catch (error) {
    fill(list, el('li', { class: 'sub' }, error.status === 404 ? 'No run yet.' : error.message));
    return;
  }
  lastChangeRun = set.run.id;
  if (set.run.baseline) {
    fill(list, el('li', { class: 'sub' }, `Run #${set.run.id} (${fmtTime(set.run.startedAtMs)}) is the baseline: everything in it is new, so nothing is highlighted.`));
    return;
  }
  const changes = new Map(set.changes.map((c) => [c.key, c.change]));
  view.setChanges(changes);
  const entities = set.changes.filter((c) => c.kind === 'entity');
  fill(list,
    el('li', { class: 'sub' }, `Run #${set.run.id}: ${fmtCount(set.total)} change(s)`, ' · ',
      el('a', { href: `/tenants/${enc(tenant)}/changes?run=${enc(set.run.id)}` }, 'change set')),
    entities.slice(0, 60).map((c) => {
      const renamed = (c.properties || []).find((p) => p.name === 'displayName' || p.name === 'name');
      const name = renamed ? fmtValue(renamed.new ?? renamed.old) : (set.names || {})[c.key];
      return el('li', null, el('button', {
        class: `link result c-${c.change}`, dataset: { key: c.key }, title: c.key,
        disabled: c.change === 'deleted',
        onclick: () => focusEntity(c.key),
      }, el('span', { class: `tag c-${c.change}` }, c.change), ` ${name || c.key}`, el('span', { class: 'sub' }, ` ${c.type}`)));
    }));
}

// ---- start ---------------------------------------------------------------------------

$('start-form').addEventListener('submit', (e) => {
  e.preventDefault();
  drawQuery(startQuery.value);
});
startQuery.addEventListener('keydown', (e) => {
  if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) {
    e.preventDefault();
    drawQuery(startQuery.value);
  }
});
$('clear').addEventListener('click', () => {
  view.clear();
  status('Cleared. Search for an entity or draw a query.');
  showDetails(null);
});
$('highlight').addEventListener('change', (e) => view.setHighlight(e.target.checked));

async function start() {
  const t0 = performance.now();
  const params = new URLSearchParams(location.search);
  startQuery.value = params.get('q') || DEFAULT_START;
  try {
    typeCounts = (await api(`${base}/types`)).entities || {};
  } catch (error) {
    status(`Cannot read the tenant's types: ${error.message}`, 'error');
  }
  renderLegend();
  const changes = loadChanges();
  const focus = params.get('focus');
  if (focus) await expand(focus);
  else await drawQuery(startQuery.value);
  await changes;
  view.setChanges(view.changes);
  // Read by the browser test: when the first view was drawn and could be used.
  const graph = $('graph');
  graph.dataset.ready = String(Math.round(performance.now()));
  graph.dataset.startMs = String(Math.round(performance.now() - t0));
  window.consoleTimings = {
    ...view.size(), readyAtMs: performance.now(), drawMs: performance.now() - t0, layoutMs,
  };
}

start();
