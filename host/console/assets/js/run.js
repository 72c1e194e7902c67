// A run: what the CLI prints after a run (steps with status, objects, requests, retries,
// duration, errors, partial types), and the alert rules evaluated after it.
import {
  api, badge, deliveriesCell, el, enc, fill, fmtCount, fmtDuration, fmtTime, fmtValue, page, setStatus,
  showError, tenantApi,
} from './api.js';

const tenant = page.tenant;
const runId = page.run;
const base = tenantApi(tenant);
const status = document.getElementById('status');
const summaryCard = document.getElementById('run-summary');
const stepsBody = document.querySelector('#steps tbody');
const evalBody = document.querySelector('#evaluations tbody');

function field(label, value) {
  return el('div', { class: 'field' }, el('span', { class: 'label' }, label), el('span', { class: 'value' }, value));
}

function encountered(step) {
  const counts = step.encounteredTypeCounts || {};
  const names = Object.keys(counts);
  if (!names.length) return (step.encounteredTypes || []).join(', ') || '—';
  return el('ul', { class: 'plain' }, names.sort().map((t) => el('li', null, `${t}: ${fmtCount(counts[t])}`)));
}

function renderRun(run) {
  const s = run.summary || {};
  const figures = s.run || {};
  const partial = (s.metadata && s.metadata.partialDatasets && s.metadata.partialDatasets.types) || run.partialTypes || [];
  const c = run.changes || { entities: {}, relationships: {} };
  const changes = `/tenants/${enc(tenant)}/changes?run=${enc(run.id)}`;
  fill(summaryCard,
    field('Status', badge(run.status)),
    field('Trigger', run.trigger),
    field('Started', fmtTime(run.startedAtMs)),
    field('Duration', run.finishedAtMs ? fmtDuration(run.finishedAtMs - run.startedAtMs) : 'running'),
    field('Entities', fmtCount(run.entities)),
    field('Relationships', fmtCount(run.relationships)),
    field('HTTP requests', `${fmtCount(figures.httpRequests)} (${fmtCount(figures.httpRetries)} retries)`),
    field('Changes', run.persisted
      ? el('a', { href: changes }, `entities +${fmtCount(c.entities?.created)} ~${fmtCount(c.entities?.updated)} −${fmtCount(c.entities?.deleted)}, relationships +${fmtCount(c.relationships?.created)} ~${fmtCount(c.relationships?.updated)} −${fmtCount(c.relationships?.deleted)}`)
      : 'not persisted'),
    field('Baseline', run.baseline ? 'yes (first run: everything is new)' : 'no'),
    field('Partial types', partial.length ? el('span', { class: 'partial' }, partial.join(', ')) : 'none'),
    run.error ? field('Error', el('span', { class: 'error' }, fmtValue(run.error))) : null,
  );
  const steps = s.integrationStepResults || [];
  fill(stepsBody, steps.map((step) => el('tr', { dataset: { step: step.id } },
    el('td', null, step.id, step.name && step.name !== step.id ? el('div', { class: 'sub' }, step.name) : null),
    el('td', null, badge(step.status)),
    el('td', { class: 'num' }, fmtDuration(step.durationMs)),
    el('td', { class: 'num' }, fmtCount(step.httpRequests)),
    el('td', { class: 'num' + (step.httpRetries ? ' warn' : '') }, fmtCount(step.httpRetries)),
    el('td', null, encountered(step)),
    el('td', null, (step.partialTypes || []).join(', ') || '—'),
    el('td', null, step.error ? el('span', { class: 'error' }, `${step.error.kind}: ${step.error.message}`) : '—'),
  )));
  if (!steps.length) fill(stepsBody, el('tr', null, el('td', { colspan: 8 }, 'No step results recorded for this run.')));
}

function renderEvaluations(evaluations) {
  fill(evalBody, evaluations.map((e) => el('tr', null,
    el('td', null, e.rule, e.error ? el('div', { class: 'error' }, fmtValue(e.error)) : null),
    el('td', null, badge(e.transition), e.partial ? el('span', { class: 'tag' }, 'partial') : null),
    el('td', null, e.alertLevel ? badge(e.alertLevel) : '—'),
    el('td', { class: 'num' }, Object.entries(e.totals || {}).map(([q, n]) => `${q}: ${fmtCount(n)}`).join(', ') || '—'),
    el('td', { class: 'num' }, fmtCount((e.added || []).length)),
    el('td', { class: 'num' }, e.removed === null || e.removed === undefined ? '—' : fmtCount(e.removed.length)),
    el('td', null, deliveriesCell(e.deliveries)),
  )));
  if (!evaluations.length) fill(evalBody, el('tr', null, el('td', { colspan: 7 }, 'No alert rules were evaluated after this run.')));
}

async function load() {
  try {
    const run = await api(`${base}/runs/${enc(runId)}`);
    renderRun(run);
    setStatus(status, '');
    renderEvaluations(await api(`${base}/evaluations?run=${enc(runId)}`));
  } catch (error) {
    showError(status, error);
  }
}

load();
