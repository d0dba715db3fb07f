// Request log: filter by workflow, status, time and a metadata value; newest first; live (polling) while checked.
import { $, api, badge, every, fmtMs, fmtTime, h, requireSignIn, showError, usd } from './console.js';

let nextBefore = null;

function query(before) {
  const params = new URLSearchParams();
  const pairs = { workflow: $('#f-workflow').value, status: $('#f-status').value, metadata: $('#f-metadata').value.trim() };
  for (const [name, value] of Object.entries(pairs)) if (value) params.set(name, value);
  for (const [name, id] of [['since', '#f-since'], ['until', '#f-until']]) {
    if ($(id).value) params.set(name, new Date($(id).value).toISOString());
  }
  if (before) params.set('before', before);
  return params.toString();
}

function row(r) {
  const open = () => location.assign(`/console/requests/${encodeURIComponent(r.id)}`);
  return h('tr', { class: 'clickable', dataset: { request: r.id }, onclick: open },
    h('td', {}, h('a', { href: `/console/requests/${encodeURIComponent(r.id)}` }, fmtTime(r.created_at))),
    h('td', {}, r.workflow), h('td', { class: 'muted' }, r.api), h('td', {}, badge(r.status), r.error_code ? ` ${r.error_code}` : ''),
    h('td', {}, r.provider ? `${r.provider}/${r.model}` : '—'), h('td', {}, r.attempts || '—'),
    h('td', {}, fmtMs(r.ttft_ms)), h('td', {}, fmtMs(r.duration_ms)),
    h('td', { class: 'muted' }, r.usage ? `${r.usage.input_tokens} / ${r.usage.output_tokens}` : '—'),
    h('td', {}, r.cost_usd === null ? '—' : usd(r.cost_usd)),
    h('td', { class: 'muted' }, r.metadata && Object.keys(r.metadata).length ? JSON.stringify(r.metadata) : ''));
}

async function load(append = false) {
  const page = await api(`/v1/admin/requests?${query(append ? nextBefore : null)}`);
  const rows = page.requests.map(row);
  if (append) $('#requests tbody').append(...rows);
  else $('#requests tbody').replaceChildren(...rows);
  nextBefore = page.next_before;
  $('#more').hidden = !nextBefore;
}

async function start() {
  const { workflows } = await api('/v1/admin/workflows');
  $('#f-workflow').append(...workflows.map((wf) => h('option', {}, wf.name)));
  const preset = new URLSearchParams(location.search);
  for (const name of ['workflow', 'status', 'metadata']) if (preset.get(name)) $(`#f-${name}`).value = preset.get(name);
  every(2000, () => ($('#f-live').checked || !$('#requests tbody').children.length ? load() : null));
}

$('#filters').addEventListener('submit', (event) => { event.preventDefault(); load().catch(showError); });
$('#more').addEventListener('click', () => { $('#f-live').checked = false; load(true).catch(showError); });

if (requireSignIn()) start().catch(showError);
