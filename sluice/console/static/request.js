// One request: summary, messages, result, attempts, webhook deliveries and the channel's event timeline (runs of
// deltas folded into one line). Polls until the request has finished; a finished one can be re-run (a new request).
import { $, api, badge, every, fmtMs, fmtTime, h, pretty, requireSignIn, showError, usd } from './console.js';

const id = $('#request-id').dataset.requestId;
const FINISHED = ['completed', 'failed', 'cancelled'];

function stat(label, value) {
  return h('div', { class: 'stat' }, h('div', { class: 'value' }, value), h('div', { class: 'label' }, label));
}

function describe(event) {
  switch (event.type) {
    case 'status': return event.status;
    case 'attempt': return `attempt ${event.attempt}: ${event.provider}/${event.model}`;
    case 'failover': return `${event.from} → ${event.to}: ${event.error}`;
    case 'reset': return event.reason;
    case 'webhook': return `${event.state} (attempt ${event.attempt}${event.status_code ? `, HTTP ${event.status_code}` : ''})`;
    case 'partial': return JSON.stringify(event.data).slice(0, 160);
    case 'response': return JSON.stringify(event.data).slice(0, 240);
    case 'error': return `${event.code}: ${event.message}`;
    default: return JSON.stringify(event);
  }
}

const STREAM = ['delta', 'partial'];

// A run of deltas and partials is folded into one line: the text it streamed and how many events it took.
function timeline(events) {
  const items = [];
  for (const event of events) {
    const last = items.at(-1);
    if (STREAM.includes(event.type) && last?.type === 'stream') {
      last.counts[event.type] += 1;
      last.text += event.text ?? '';
      last.lastSeq = event.seq;
      continue;
    }
    const type = STREAM.includes(event.type) ? 'stream' : event.type;
    const counts = { delta: 0, partial: 0 };
    if (type === 'stream') counts[event.type] = 1;
    items.push({ type, event, counts, text: event.text ?? '', seq: event.seq, lastSeq: event.seq, ts: event.ts });
  }
  return items.map((item) => {
    const seq = item.lastSeq > item.seq ? `${item.seq}–${item.lastSeq}` : String(item.seq);
    const what = item.type === 'stream'
      ? `${item.counts.delta} deltas, ${item.counts.partial} partials: ${item.text.slice(0, 400)}`
      : describe(item.event);
    return h('li', { class: item.type, dataset: { type: item.type } }, h('span', { class: 'muted' }, seq),
      h('span', { class: 'muted' }, item.ts.slice(11, 23)), h('strong', {}, item.type), h('span', {}, what));
  });
}

function render(r) {
  $('#summary').replaceChildren(
    stat('status', badge(r.status)), stat('workflow', r.workflow), stat('API', r.api),
    stat('provider', r.provider ? `${r.provider}/${r.model}` : '—'), stat('time to first token', fmtMs(r.ttft_ms)),
    stat('duration', fmtMs(r.duration_ms)), stat('cost', r.cost_usd === null ? '—' : usd(r.cost_usd)),
    stat('created', fmtTime(r.created_at)));
  $('#messages').textContent = r.messages.map((m) => `${m.role}: ${m.content}`).join('\n\n');
  $('#result-title').textContent = r.error ? 'Error' : 'Result';
  $('#result').textContent = r.error ? `${r.error.code}: ${r.error.message}` : r.data ? pretty(r.data) : '—';
  $('#attempts tbody').replaceChildren(...r.attempts.map((a) => h('tr', {},
    h('td', {}, a.attempt), h('td', {}, a.provider), h('td', {}, a.model), h('td', {}, badge(a.status)),
    h('td', {}, fmtMs(a.ttft_ms)), h('td', {}, fmtMs(a.duration_ms)),
    h('td', {}, `${a.tokens_in ?? '—'} / ${a.tokens_out ?? '—'}`, a.usage_estimated ? ' (estimated)' : ''),
    h('td', {}, a.cost_usd === null || a.cost_usd === undefined ? '—' : usd(a.cost_usd)),
    h('td', { class: 'muted' }, a.error_message ?? ''))));
  $('#deliveries tbody').replaceChildren(...r.deliveries.map((d) => h('tr', {},
    h('td', {}, h('a', { href: `/console/webhooks?delivery=${encodeURIComponent(d.id)}` }, d.type)), h('td', {}, d.url),
    h('td', {}, badge(d.status)), h('td', {}, d.attempts), h('td', {}, d.last_status_code ?? '—'),
    h('td', {}, fmtTime(d.created_at)))));
  $('#timeline-note').textContent = r.timeline.held
    ? (r.timeline.truncated ? 'The first events only.' : '')
    : 'The broker no longer holds this channel\'s events (retention passed); the store keeps the result above.';
  $('#timeline').replaceChildren(...timeline(r.timeline.events));
  $('#request-body').textContent = pretty(r.request);
  $('#rerun').hidden = !FINISHED.includes(r.status);
}

$('#rerun').addEventListener('click', async () => {
  try {
    const rerun = await api(`/v1/admin/requests/${encodeURIComponent(id)}/rerun`, { method: 'POST' });
    location.assign(`/console/requests/${encodeURIComponent(rerun.channel_id)}`);
  } catch (error) {
    showError(error);
  }
});

if (requireSignIn()) {
  const stop = every(1000, async () => {
    const detail = await api(`/v1/admin/requests/${encodeURIComponent(id)}`);
    render(detail);
    if (FINISHED.includes(detail.status) && detail.deliveries.every((d) => d.status !== 'pending')) stop();
  });
}
