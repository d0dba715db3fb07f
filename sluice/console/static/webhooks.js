// Webhook deliveries: list (dead letters with status=failed), inspect payload and attempts, replay.
import { $, api, badge, every, fmtMs, fmtTime, h, pretty, requireSignIn, showError } from './console.js';

const BASE = '/v1/admin/webhooks/deliveries';
let open = null;

async function inspect(id) {
  open = id;
  const d = await api(`${BASE}/${encodeURIComponent(id)}`);
  $('#delivery').hidden = false;
  $('#delivery').dataset.delivery = d.id;
  $('#delivery-title').replaceChildren(`${d.type} → ${d.url} `, badge(d.status));
  $('#delivery-payload').textContent = pretty(d.payload);
  $('#delivery-attempts tbody').replaceChildren(...d.attempt_log.map((a) => h('tr', {},
    h('td', {}, a.attempt), h('td', {}, a.via), h('td', {}, a.status_code ?? '—'), h('td', {}, fmtMs(a.latency_ms)),
    h('td', {}, fmtTime(a.started_at)), h('td', { class: 'muted' }, a.error ?? a.response_excerpt ?? ''))));
  $('#replay').disabled = d.status === 'pending';
}

async function load() {
  const status = $('#f-status').value;
  const { deliveries } = await api(`${BASE}?limit=100${status ? `&status=${status}` : ''}`);
  $('#deliveries tbody').replaceChildren(...deliveries.map((d) => h('tr', {
    class: 'clickable', dataset: { delivery: d.id }, onclick: () => inspect(d.id).catch(showError) },
  h('td', {}, fmtTime(d.created_at)), h('td', {}, d.type), h('td', {}, d.url), h('td', {}, badge(d.status)),
  h('td', {}, d.attempts), h('td', {}, d.last_status_code ?? '—'),
  h('td', {}, h('a', { href: `/console/requests/${encodeURIComponent(d.request_id)}`,
    onclick: (event) => event.stopPropagation() }, d.request_id.slice(0, 8))))));
  if (open) await inspect(open);
}

$('#replay').addEventListener('click', async () => {
  $('#replay-result').textContent = '';
  try {
    await api(`${BASE}/${encodeURIComponent(open)}/replay`, { method: 'POST' });
    $('#replay-result').textContent = 'Replay queued.';
    await load();
  } catch (error) {
    $('#replay-result').textContent = error.message;
  }
});
$('#filters').addEventListener('submit', (event) => { event.preventDefault(); load().catch(showError); });

if (requireSignIn()) {
  open = new URLSearchParams(location.search).get('delivery');
  every(3000, load);
}
