// A tenant: its settings and last run, "Run now" with live progress, and its run history.
import {
  api, badge, el, enc, fill, fmtCount, fmtDuration, fmtRelative, fmtTime, page, runLink,
  setStatus, showError, tenantApi, triggerAndFollow,
} from './api.js';

const tenant = page.tenant;
const base = tenantApi(tenant);
const status = document.getElementById('status');
const summary = document.getElementById('summary');
const runsBody = document.querySelector('#runs tbody');
const button = document.getElementById('run-now');
const progressLine = document.getElementById('progress');
const progressSteps = document.getElementById('progress-steps');

function field(label, value) {
  return el('div', { class: 'field' }, el('span', { class: 'label' }, label), el('span', { class: 'value' }, value));
}

function showProgress(progress) {
  if (!progress.running) {
    progressLine.textContent = 'queued…';
    return;
  }
  progressLine.textContent = 'running';
  fill(progressSteps, (progress.steps || []).map((s) => {
    const pct = s.total ? Math.min(100, Math.round((100 * s.done) / s.total)) : null;
    const bar = el('progress', { max: s.total || 1, value: s.total ? s.done : undefined });
    return el('li', { dataset: { step: s.step } }, el('span', { class: 'step' }, s.step), bar,
      el('span', { class: 'sub' }, s.total ? `${fmtCount(s.done)} / ${fmtCount(s.total)} (${pct}%)` : fmtCount(s.done)));
  }));
}

/** After the run: each step's outcome where the live bars were. */
function showFinalSteps(run) {
  const steps = (run.summary && run.summary.integrationStepResults) || [];
  fill(progressSteps, steps.map((s) => el('li', { dataset: { step: s.id, status: s.status } },
    el('span', { class: 'step' }, s.id), badge(s.status),
    el('span', { class: 'sub' }, ` ${fmtDuration(s.durationMs)}`))));
}

async function loadTenant() {
  const t = await api(base);
  document.title = `${t.tenant} · integration-host`;
  fill(summary,
    field('Account name', t.accountName || '—'),
    field('Description', t.description || '—'),
    field('Polling interval', t.pollingInterval),
    field('Next run', t.pollingInterval === 'DISABLED' ? 'manual only' : `${fmtTime(t.nextDueMs)} (${fmtRelative(t.nextDueMs)})`),
    field('Runs', fmtCount(t.runs)),
    field('Open alerts', el('a', { href: `/tenants/${enc(tenant)}/alerts` }, fmtCount(t.openAlerts))),
    field('Tag with account name', t.tagWithAccountName ? 'yes' : 'no'),
  );
  button.disabled = t.running;
  return t;
}

async function loadRuns() {
  const runs = await api(`${base}/runs?limit=50`);
  setStatus(status, runs.length ? '' : 'No runs yet: press “Run now”.');
  fill(runsBody, runs.map((r) => {
    const ended = r.finishedAtMs ?? null;
    const c = r.changes || { entities: {}, relationships: {} };
    const sum = (k) => (c.entities?.[k] || 0) + (c.relationships?.[k] || 0);
    const changes = `/tenants/${enc(tenant)}/changes?run=${enc(r.id)}`;
    return el('tr', { dataset: { run: r.id } },
      el('td', null, runLink(tenant, r), r.baseline ? el('span', { class: 'tag' }, 'baseline') : null),
      el('td', null, r.trigger),
      el('td', null, badge(r.status)),
      el('td', { title: fmtTime(r.startedAtMs) }, fmtTime(r.startedAtMs)),
      el('td', { class: 'num' }, ended ? fmtDuration(ended - r.startedAtMs) : '—'),
      el('td', { class: 'num' }, fmtCount(r.entities)),
      el('td', { class: 'num' }, fmtCount(r.relationships)),
      el('td', { class: 'num' }, r.persisted ? el('a', { href: `${changes}&change=created` }, fmtCount(sum('created'))) : '—'),
      el('td', { class: 'num' }, r.persisted ? el('a', { href: `${changes}&change=updated` }, fmtCount(sum('updated'))) : '—'),
      el('td', { class: 'num' }, r.persisted ? el('a', { href: `${changes}&change=deleted` }, fmtCount(sum('deleted'))) : '—'),
      el('td', null, (r.partialTypes || []).join(', ') || '—'),
    );
  }));
}

async function load() {
  try {
    await Promise.all([loadTenant(), loadRuns()]);
  } catch (error) {
    showError(status, error);
  }
}

button.addEventListener('click', async () => {
  button.disabled = true;
  progressLine.className = 'progress';
  progressLine.textContent = 'queued…';
  fill(progressSteps);
  try {
    const view = await triggerAndFollow(tenant, showProgress);
    const last = view.lastRun;
    progressLine.textContent = last ? `run #${last.id} finished: ${last.status}` : 'finished';
    if (last) showFinalSteps(await api(`${base}/runs/${enc(last.id)}`));
  } catch (error) {
    progressLine.className = 'progress error';
    progressLine.textContent = error.message;
  }
  await load();
});

load();
