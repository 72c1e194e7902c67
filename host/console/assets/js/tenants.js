// Tenants: account name, polling interval, next and last run, status, counts, open
// alerts, and a "Run now" button per tenant (also for DISABLED tenants).
import {
  api, badge, changeCounts, el, enc, fill, fmtCount, fmtRelative, fmtTime, runLink,
  setStatus, showError, triggerAndFollow,
} from './api.js';

const status = document.getElementById('status');
const body = document.querySelector('#tenants tbody');
// Runs this page is following: the periodic refresh waits, so their progress stays shown.
let following = 0;

function runNowButton(tenant, cell) {
  const button = el('button', {
    class: 'run-now',
    dataset: { tenant: tenant.tenant },
    disabled: tenant.running,
    onclick: async () => {
      button.disabled = true;
      following += 1;
      const progress = el('span', { class: 'progress' }, 'queued…');
      cell.append(progress);
      try {
        await triggerAndFollow(tenant.tenant, (p) => {
          progress.textContent = p.running ? stepsText(p.steps) : 'queued…';
        });
      } catch (error) {
        progress.textContent = error.message;
        progress.className = 'progress error';
      }
      following -= 1;
      await load();
    },
  }, tenant.running ? 'Running…' : 'Run now');
  return button;
}

function stepsText(steps) {
  const active = (steps || []).filter((s) => !s.total || s.done < s.total);
  const done = (steps || []).length - active.length;
  const current = active.map((s) => (s.total ? `${s.step} ${s.done}/${s.total}` : s.step)).join(', ');
  return `running: ${done} step(s) done${current ? `; ${current}` : ''}`;
}

async function load() {
  let tenants;
  try {
    tenants = await api('/api/tenants');
  } catch (error) {
    showError(status, error);
    return;
  }
  setStatus(status, tenants.length ? '' : 'No tenants: start serve with --tenants FILE.');
  fill(body, tenants.map((t) => {
    const last = t.lastRun;
    const actions = el('td', { class: 'actions' });
    actions.append(runNowButton(t, actions));
    const href = `/tenants/${enc(t.tenant)}`;
    return el('tr', { dataset: { tenant: t.tenant } },
      el('td', null, el('a', { href }, t.tenant), t.description ? el('div', { class: 'sub' }, t.description) : null),
      el('td', null, t.accountName || '—'),
      el('td', null, t.pollingInterval),
      el('td', { title: fmtTime(t.nextDueMs) }, t.pollingInterval === 'DISABLED' ? 'manual only' : fmtRelative(t.nextDueMs)),
      el('td', null, last ? [runLink(t.tenant, last), ' ', el('span', { class: 'sub', title: fmtTime(last.startedAtMs) }, fmtRelative(last.startedAtMs))] : 'never'),
      el('td', null, t.running ? badge('running') : last ? badge(last.status) : '—'),
      el('td', { class: 'num' }, last ? fmtCount(last.entities) : '—'),
      el('td', { class: 'num' }, last ? fmtCount(last.relationships) : '—'),
      el('td', null, last ? el('a', { href: `${href}/changes?run=${enc(last.id)}` }, changeCounts(last.changes)) : '—'),
      el('td', { class: 'num' }, el('a', { href: `${href}/alerts`, class: t.openAlerts ? 'alert-count' : '' }, fmtCount(t.openAlerts))),
      actions,
      el('td', null, el('a', { href: `${href}/graph`, class: 'button' }, 'Graph')),
    );
  }));
}

load();
setInterval(() => following || load(), 15000);
