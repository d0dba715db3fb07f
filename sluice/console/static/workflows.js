// Workflows: list, create/edit (provider chain, schema with live compiled JSON Schema, prompt, webhook, callback
// policy), delete. Errors from the API name a field; the form marks that field.
import { $, api, h, pretty, requireSignIn, showError } from './console.js';

let providers = [];
let editing = null;

function chainRow(step = { provider: providers[0] ?? '', model: '' }) {
  const index = () => [...$('#wf-chain').children].indexOf(row);
  const { provider, model, ...extra } = step;
  const select = h('select', { class: 'wf-provider' },
    [...new Set([...providers, provider])].filter(Boolean).map((name) => h('option', { selected: name === provider }, name)));
  const modelInput = h('input', { class: 'wf-model', value: model ?? '', placeholder: 'model, e.g. gpt-4o-mini', size: 28 });
  const row = h('div', { class: 'chain-row' }, select, modelInput,
    h('button', { type: 'button', class: 'secondary', onclick: () => row.remove() }, 'Remove'));
  row.extra = extra; // params, timeouts, retries: kept as they were, not editable here
  row.fields = () => {
    const i = index();
    select.dataset.field = `chain[${i}].provider`;
    modelInput.dataset.field = `chain[${i}].model`;
    return { ...row.extra, provider: select.value, model: modelInput.value.trim() };
  };
  return row;
}

function toYaml(schema) {
  if (!schema) return '';
  const flat = Object.values(schema).every((v) => typeof v === 'string');
  if (!flat) return pretty(schema);
  return Object.entries(schema).map(([k, v]) => `${k}: ${/^[\w <>|,.-]*$/.test(v) ? v : JSON.stringify(v)}`).join('\n');
}

let compileTimer = null;
async function compileSchema() {
  const text = $('#wf-schema').value;
  const error = $('#wf-schema-error');
  if (!text.trim()) {
    $('#wf-compiled').textContent = '—';
    error.hidden = true;
    return { ok: true, schema: null };
  }
  try {
    const result = await api('/v1/admin/schemas/compile', { method: 'POST', body: { text } });
    $('#wf-compiled').textContent = pretty(result.json_schema);
    error.hidden = true;
    $('#wf-schema').classList.remove('invalid');
    return { ok: true, schema: result.schema };
  } catch (failure) {
    error.textContent = failure.message;
    error.hidden = false;
    $('#wf-schema').classList.add('invalid');
    return { ok: false };
  }
}

function markField(field) {
  for (const node of document.querySelectorAll('#workflow-form .invalid')) node.classList.remove('invalid');
  if (!field) return;
  const candidates = [...document.querySelectorAll('#workflow-form [data-field]')]
    .filter((node) => field === node.dataset.field || field.startsWith(`${node.dataset.field}.`)
      || field.startsWith(`${node.dataset.field}[`));
  candidates.sort((a, b) => b.dataset.field.length - a.dataset.field.length);
  candidates[0]?.classList.add('invalid');
}

function fill(workflow) {
  const d = workflow.definition;
  editing = workflow.name;
  $('#workflow-form-title').textContent = `Edit workflow ${workflow.name}`;
  $('#wf-name').value = workflow.name;
  $('#wf-name').readOnly = true;
  $('#wf-event').value = d.event ?? '';
  $('#wf-webhook').value = d.webhook_url ?? '';
  $('#wf-cb-timeout').value = d.callback?.timeout ?? '';
  $('#wf-cb-on-timeout').value = d.callback?.on_timeout ?? 'deliver';
  $('#wf-system').value = d.system ?? '';
  $('#wf-schema').value = toYaml(d.schema);
  $('#wf-chain').replaceChildren(...(d.chain ?? []).map(chainRow));
  $('#wf-cancel').hidden = false;
  compileSchema();
  $('#workflow-form').scrollIntoView();
}

function resetForm() {
  editing = null;
  $('#workflow-form').reset();
  $('#wf-name').readOnly = false;
  $('#workflow-form-title').textContent = 'Create a workflow';
  $('#wf-chain').replaceChildren(chainRow());
  $('#wf-compiled').textContent = '—';
  $('#wf-cancel').hidden = true;
  markField(null);
}

async function load() {
  const [{ workflows, problems }, { providers: list }] = await Promise.all([
    api('/v1/admin/workflows'), api('/v1/admin/providers')]);
  providers = list.map((p) => p.name);
  $('#workflows tbody').replaceChildren(...workflows.map((wf) => {
    const remove = h('button', { type: 'button', class: 'secondary' }, 'Delete');
    remove.addEventListener('click', async () => {
      if (remove.dataset.armed !== 'yes') { remove.dataset.armed = 'yes'; remove.textContent = 'Confirm delete'; return; }
      try { await api(`/v1/admin/workflows/${encodeURIComponent(wf.name)}`, { method: 'DELETE' }); await load(); }
      catch (error) { showError(error); }
    });
    const fields = Object.keys(wf.json_schema?.properties ?? {}).join(', ') || '—';
    return h('tr', { dataset: { workflow: wf.name } }, h('td', {}, wf.name), h('td', {}, wf.source),
      h('td', {}, wf.chain.map((e) => `${e.provider}/${e.model}`).join(' → ')), h('td', {}, fields),
      h('td', {}, wf.event ?? ''),
      h('td', {}, wf.editable ? [h('button', { type: 'button', class: 'secondary', onclick: () => fill(wf) }, 'Edit'), ' ', remove] : ''));
  }));
  const problemText = Object.entries(problems).map(([name, why]) => `${name}: ${why}`).join('\n');
  $('#workflow-problems').textContent = problemText;
  $('#workflow-problems').hidden = !problemText;
  if (!$('#wf-chain').children.length) $('#wf-chain').replaceChildren(chainRow());
}

$('#wf-add-step').addEventListener('click', () => $('#wf-chain').append(chainRow()));
$('#wf-cancel').addEventListener('click', resetForm);
$('#wf-schema').addEventListener('input', () => {
  clearTimeout(compileTimer);
  compileTimer = setTimeout(compileSchema, 250);
});

$('#workflow-form').addEventListener('submit', async (event) => {
  event.preventDefault();
  const error = $('#workflow-error');
  error.hidden = true;
  const compiled = await compileSchema();
  if (!compiled.ok) { markField('schema'); return; }
  const body = { chain: [...$('#wf-chain').children].map((row) => row.fields()) };
  const optional = { system: $('#wf-system').value.trim(), event: $('#wf-event').value.trim(),
    webhook_url: $('#wf-webhook').value.trim() };
  for (const [name, value] of Object.entries(optional)) if (value) body[name] = value;
  if (compiled.schema) body.schema = compiled.schema;
  body.callback = { on_timeout: $('#wf-cb-on-timeout').value };
  if ($('#wf-cb-timeout').value.trim()) body.callback.timeout = $('#wf-cb-timeout').value.trim();
  try {
    if (editing) await api(`/v1/admin/workflows/${encodeURIComponent(editing)}`, { method: 'PUT', body });
    else await api('/v1/admin/workflows', { method: 'POST', body: { name: $('#wf-name').value.trim(), ...body } });
    resetForm();
    await load();
  } catch (failure) {
    error.textContent = failure.message;
    error.hidden = false;
    markField(failure.field);
  }
});

if (requireSignIn()) load().catch(showError);
