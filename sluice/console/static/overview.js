// Overview: the last hour's totals and per-minute charts from /v1/admin/stats, and each provider's circuit.
import { $, api, badge, chart, every, fmtMs, h, requireSignIn } from './console.js';

function stat(label, value) {
  return h('div', { class: 'stat', dataset: { stat: label } }, h('div', { class: 'value' }, value),
    h('div', { class: 'label' }, label));
}

function render(stats) {
  const t = stats.totals;
  $('#totals').replaceChildren(
    stat('requests / min', t.requests_per_minute.toFixed(2)),
    stat('requests (1 h)', t.requests),
    stat('error rate', `${(t.error_rate * 100).toFixed(1)} %`),
    stat('retries & failovers', t.failovers),
    stat('latency p50 / p99', `${fmtMs(t.p50_latency_ms)} / ${fmtMs(t.p99_latency_ms)}`),
    stat('TTFT p50 / p99', `${fmtMs(t.p50_ttft_ms)} / ${fmtMs(t.p99_ttft_ms)}`),
  );
  const labels = stats.buckets.map((b) => b.t.slice(11, 16));
  const pick = (name) => stats.buckets.map((b) => b[name]);
  $('#chart-requests').replaceChildren(chart([{ label: 'requests', values: pick('requests'), kind: 'bar' }], labels));
  $('#chart-errors').replaceChildren(chart([
    { label: 'errors', values: pick('errors'), kind: 'bar' },
    { label: 'retries & failovers', values: pick('failovers') },
  ], labels));
  $('#chart-latency').replaceChildren(chart([
    { label: 'p50', values: pick('p50_latency_ms') }, { label: 'p99', values: pick('p99_latency_ms') },
  ], labels, { format: fmtMs }));
  $('#chart-ttft').replaceChildren(chart([
    { label: 'p50', values: pick('p50_ttft_ms') }, { label: 'p99', values: pick('p99_ttft_ms') },
  ], labels, { format: fmtMs }));
  $('#health tbody').replaceChildren(...stats.providers.map((p) => h('tr', {},
    h('td', {}, p.provider), h('td', {}, p.model), h('td', {}, p.type ?? '—'),
    h('td', {}, badge(p.state), p.retry_in_s ? ` retry in ${p.retry_in_s} s` : '',
      p.configured ? '' : h('span', { class: 'muted' }, ' (not configured)')),
    h('td', {}, p.failures))));
}

if (requireSignIn()) every(10_000, async () => render(await api('/v1/admin/stats')));
