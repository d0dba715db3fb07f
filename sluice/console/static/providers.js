// Providers: list (config-file ones read-only), add/edit with an API key that is never shown again, test connection.
import { $, api, badge, fmtMs, h, requireSignIn, showError } from './console.js';

let editing = null;

function settings(provider) {
  const entries = Object.entries(provider.options ?? {});
  const text = entries.map(([k, v]) => `${k}: ${typeof v === 'string' ? v : JSON.stringify(v)}`).join(', ');
  return provider.missing_env?.length ? `${text} (needs ${provider.missing_env.join(', ')})` : text;
}

async function test(provider, cell) {
  cell.replaceChildren('testing…');
  try {
    const model = $('#test-model').value.trim();
    const result = await api(`/v1/admin/providers/${encodeURIComponent(provider.name)}/test`,
      { method: 'POST', body: model ? { model } : {} });
    cell.replaceChildren(badge(result.ok ? 'ok' : 'failed'), ' ',
      result.ok ? `${result.model} answered in ${fmtMs(result.latency_ms)}` : `${result.error.code}: ${result.error.message}`);
  } catch (error) {
    cell.replaceChildren(badge('failed'), ` ${error.message}`);
  }
}

function edit(provider) {
  editing = provider.name;
  $('#provider-form-title').textContent = `Edit provider ${provider.name}`;
  $('#provider-name').value = provider.name;
  $('#provider-name').readOnly = true;
  $('#provider-type').value = provider.type;
  const { base_url: baseUrl, ...rest } = provider.options ?? {};
  $('#provider-base-url').value = baseUrl ?? '';
  $('#provider-options').value = Object.keys(rest).length ? JSON.stringify(rest, null, 2) : '';
  $('#provider-api-key').value = '';
  $('#provider-api-key').placeholder = provider.credentials_set.length ? 'set — leave empty to keep' : 'none set';
  $('#provider-cancel').hidden = false;
}

function reset() {
  editing = null;
  $('#provider-form').reset();
  $('#provider-name').readOnly = false;
  $('#provider-form-title').textContent = 'Add a provider';
  $('#provider-api-key').placeholder = 'encrypted at rest, never shown';
  $('#provider-cancel').hidden = true;
}

async function load() {
  const { providers } = await api('/v1/admin/providers');
  $('#providers tbody').replaceChildren(...providers.map((provider) => {
    const connection = h('td', { class: 'connection' }, provider.problem ? h('span', { class: 'error' }, provider.problem) : '');
    const actions = h('td', {},
      h('button', { type: 'button', class: 'secondary', onclick: () => test(provider, connection) }, 'Test'), ' ',
      provider.editable ? h('button', { type: 'button', class: 'secondary', onclick: () => edit(provider) }, 'Edit') : '');
    return h('tr', { dataset: { provider: provider.name } }, h('td', {}, provider.name), h('td', {}, provider.type),
      h('td', {}, provider.source), h('td', {}, settings(provider)),
      h('td', {}, provider.credentials_set.join(', ') || '—'), connection, actions);
  }));
}

$('#provider-form').addEventListener('submit', async (event) => {
  event.preventDefault();
  const error = $('#provider-error');
  error.hidden = true;
  let options = {};
  try {
    options = $('#provider-options').value.trim() ? JSON.parse($('#provider-options').value) : {};
  } catch (failure) {
    error.textContent = `other options: not valid JSON (${failure.message})`;
    error.hidden = false;
    return;
  }
  if ($('#provider-base-url').value.trim()) options.base_url = $('#provider-base-url').value.trim();
  const body = { type: $('#provider-type').value, options };
  const apiKey = $('#provider-api-key').value;
  if (apiKey) body.credentials = { api_key: apiKey };
  try {
    if (editing) await api(`/v1/admin/providers/${encodeURIComponent(editing)}`, { method: 'PUT', body });
    else await api('/v1/admin/providers', { method: 'POST', body: { name: $('#provider-name').value.trim(), ...body } });
    reset();
    await load();
  } catch (failure) {
    error.textContent = failure.message;
    error.hidden = false;
  }
});

$('#provider-cancel').addEventListener('click', reset);

if (requireSignIn()) load().catch(showError);
