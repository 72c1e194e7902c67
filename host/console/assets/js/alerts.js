// Alerts: open and resolved, with rule, level, results (linked to the graph) and the
// webhook deliveries of the rule's evaluations.
import {
  api, badge, deliveriesCell, el, enc, fill, fmtCount, fmtTime, runLink, setStatus,
  showError, page, tenantApi,
} from './api.js';

const tenant = page.tenant;
const base = tenantApi(tenant);
const status = document.getElementById('status');
const list = document.getElementById('alerts');
const select = document.getElementById('status-select');
select.value = new URLSearchParams(location.search).get('status') || 'active';

function field(label, value) {
  return el('div', { class: 'field' }, el('span', { class: 'label' }, label), el('span', { class: 'value' }, value));
}

function renderAlert(alert, evaluations) {
  const mine = evaluations.filter((e) => e.rule === alert.rule);
  const latest = mine[0];
  const deliveries = mine.flatMap((e) => (e.deliveries || []).map((d) => ({ ...d, run: e.run })));
  const ids = alert.resultIds || [];
  return el('article', { class: `alert a-${alert.status}`, dataset: { rule: alert.rule, status: alert.status } },
    el('div', { class: 'change-head' }, alert.level ? badge(alert.level) : badge('no level'), badge(alert.status === 'active' ? 'open' : 'resolved'),
      el('strong', { class: 'name' }, alert.rule)),
    alert.description ? el('p', { class: 'sub' }, alert.description) : null,
    el('div', { class: 'fields' },
      field('Opened', [fmtTime(alert.openedAtMs), ' by run ', runLink(tenant, { id: alert.openedRun })]),
      alert.resolvedAtMs ? field('Resolved', [fmtTime(alert.resolvedAtMs), ' by run ', runLink(tenant, { id: alert.resolvedRun })]) : null,
      field('Last evaluated', fmtTime(alert.lastEvaluatedAtMs)),
      field('Results', fmtCount(alert.results)),
      latest ? field('Last change', `+${fmtCount((latest.added || []).length)} / −${latest.removed ? fmtCount(latest.removed.length) : '?'}`) : null),
    latest && (latest.added || []).length ? el('div', { class: 'new-results' },
      el('h4', null, 'New in run ', runLink(tenant, { id: latest.run })),
      el('ul', { class: 'keys' }, latest.added.slice(0, 50).map((k) => el('li', { dataset: { key: k } },
        el('a', { href: `/tenants/${enc(tenant)}/graph?focus=${enc(k)}` }, k)))),
      latest.added.length > 50 ? el('p', { class: 'sub' }, `and ${fmtCount(latest.added.length - 50)} more`) : null) : null,
    ids.length ? el('details', { open: ids.length <= 12 },
      el('summary', null, `Result entities (${ids.length < alert.results ? `first ${ids.length} of ${fmtCount(alert.results)}` : fmtCount(ids.length)})`),
      el('ul', { class: 'keys' }, ids.map((k) => el('li', { dataset: { key: k } }, el('a', { href: `/tenants/${enc(tenant)}/graph?focus=${enc(k)}` }, k))))) : null,
    el('h4', null, 'Webhook deliveries'),
    deliveries.length ? deliveriesCell(deliveries) : el('p', { class: 'sub' }, 'None: this rule has no WEBHOOK action, or it has not fired.'));
}

async function load() {
  const which = select.value;
  history.replaceState(null, '', `${location.pathname}?status=${which}`);
  try {
    const [alerts, evaluations] = await Promise.all([
      api(`${base}/alerts?status=${enc(which)}`),
      api(`${base}/evaluations`),
    ]);
    evaluations.sort((a, b) => (b.evaluatedAtMs || 0) - (a.evaluatedAtMs || 0));
    fill(list, alerts.map((a) => renderAlert(a, evaluations)));
    setStatus(status, alerts.length ? `${alerts.length} alert(s)` : `No ${which === 'active' ? 'open' : which === 'all' ? '' : 'resolved'} alerts.`);
    await nameResults();
  } catch (error) {
    showError(status, error);
  }
}

/** Puts each listed result's name in its link, the key beside it (names are text). */
async function nameResults() {
  const items = [...list.querySelectorAll('ul.keys li[data-key]')];
  const keys = [...new Set(items.map((li) => li.dataset.key))].slice(0, 1000);
  if (!keys.length) return;
  let names;
  try {
    names = await api(`${base}/names`, { method: 'POST', body: { keys } });
  } catch (_) {
    return; // the keys stay: still correct, only less readable
  }
  for (const li of items) {
    const name = names[li.dataset.key];
    if (!name) continue;
    li.querySelector('a').textContent = name;
    li.append(' ', el('code', { class: 'key sub' }, li.dataset.key));
  }
}

select.addEventListener('change', load);
load();
