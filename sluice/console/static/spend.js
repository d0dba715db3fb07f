// Spend: cost and requests per day, per workflow, per model and per key, from /v1/admin/spend.
import { $, api, chart, h, requireSignIn, showError, usd } from './console.js';

function stat(label, value) {
  return h('div', { class: 'stat', dataset: { stat: label } }, h('div', { class: 'value' }, value),
    h('div', { class: 'label' }, label));
}

function rows(selector, items, cells) {
  $(`${selector} tbody`).replaceChildren(...items.map((item) => h('tr', {}, ...cells(item).map((c) => h('td', {}, c)))));
}

function render(spend) {
  const top = (items) => items.slice(0, 8);
  $('#totals').replaceChildren(
    stat(`spent (${spend.days} d)`, usd(spend.total_usd)),
    stat('requests', spend.requests),
    stat('per request', usd(spend.requests ? spend.total_usd / spend.requests : 0)),
    stat('models', spend.by_model.length),
  );
  const days = spend.by_day.map((d) => d.day.slice(5));
  $('#chart-cost').replaceChildren(chart([{ label: 'USD', values: spend.by_day.map((d) => d.cost_usd), kind: 'bar' }],
    days, { format: usd }));
  $('#chart-requests').replaceChildren(chart([{ label: 'requests', values: spend.by_day.map((d) => d.requests),
    kind: 'bar' }], days));
  const models = top(spend.by_model);
  $('#chart-models').replaceChildren(chart([{ label: 'USD', values: models.map((m) => m.cost_usd), kind: 'bar' }],
    models.map((m) => m.model), { format: usd }));
  const workflows = top(spend.by_workflow);
  $('#chart-workflows').replaceChildren(chart([{ label: 'USD', values: workflows.map((w) => w.cost_usd),
    kind: 'bar' }], workflows.map((w) => w.workflow), { format: usd }));
  rows('#by-workflow', spend.by_workflow, (w) => [w.workflow, String(w.requests), usd(w.cost_usd)]);
  rows('#by-model', spend.by_model, (m) => [m.model, String(m.attempts), `${m.input_tokens} / ${m.output_tokens}`,
    usd(m.cost_usd)]);
  rows('#by-key', spend.by_key, (k) => [k.name ?? h('code', {}, k.key ?? 'before 0005'), String(k.requests),
    usd(k.cost_usd)]);
}

async function load() {
  showError(null);
  render(await api(`/v1/admin/spend?days=${$('#days').value}`));
}

$('#days').addEventListener('change', () => load().catch(showError));
if (requireSignIn()) load().catch(showError);
