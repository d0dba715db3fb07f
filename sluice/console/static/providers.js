// Providers: list (config-file ones read-only), add/edit with an API key that is never shown again, test connection.
// The types, their options and hints come from GET /v1/admin/providers/types (the provider registry).
import { $, api, badge, fmtMs, h, requireSignIn, showError } from './console.js';

let editing = null;
let types = {};

function kind(prop) {
  if (prop.enum) return prop.enum.join(' | ');
  if (prop.$ref) return 'mapping';
  const kinds = prop.anyOf ? prop.anyOf.map(kind) : [].concat(prop.type ?? 'any');
  return kinds.filter((k) => k && k !== 'null').map((k) => (k === 'object' ? 'mapping' : k)).join(' or ');
}

function optionHint(name, prop, schema, secret) {
  let shape = kind(prop);
  if (prop.$ref) {  // a nested mapping (breaker): list its own options
    const nested = schema.$defs[prop.$ref.split('/').pop()].properties;
    shape = `{${Object.entries(nested).map(([key, sub]) => `${key}: ${kind(sub)} = ${sub.default}`).join(', ')}}`;
  } else if (prop.default !== undefined && prop.default !== null) {
    shape += ` = ${JSON.stringify(prop.default)}`;
  }
  return h('li', { dataset: { option: name } }, h('code', {}, name), ` ${shape}`,
    prop.description ? ` — ${prop.description}` : '', secret ? ' (secret: sent as a credential, never shown)' : '');
}

function showType() {
  const type = types[$('#provider-type').value];
  if (!type) return;
  const { properties } = type.options;
  $('#provider-type-hint').textContent = type.description;
  $('#provider-base-url-label').hidden = !properties.base_url;
  $('#provider-base-url').placeholder = properties.base_url?.default ?? properties.base_url?.description ?? '';
  $('#provider-api-key-label').hidden = !properties.api_key;
  $('#provider-option-hints').replaceChildren(...Object.entries(properties)
    .filter(([name]) => name !== 'base_url' && name !== 'api_key')
    .map(([name, prop]) => optionHint(name, prop, type.options, type.secrets.includes(name))));
}

async function loadTypes() {
  const listed = (await api('/v1/admin/providers/types')).types;
  types = Object.fromEntries(listed.map((type) => [type.name, type]));
  const first = listed.find((type) => type.http) ?? listed[0];  // the form's default: a provider to connect to
  $('#provider-type').replaceChildren(...listed.map((type) =>
    h('option', { value: type.name, title: type.description, selected: type === first }, type.name)));
  showType();
}

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
  showType();
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
  showType();
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
  const type = $('#provider-type').value;
  const credentials = {};
  for (const name of types[type]?.secrets ?? []) {  // secrets typed into the JSON go where they are encrypted
    if (name in options) { credentials[name] = options[name]; delete options[name]; }
  }
  const apiKey = $('#provider-api-key').value;
  if (apiKey) credentials.api_key = apiKey;
  const body = { type, options };
  if (Object.keys(credentials).length) body.credentials = credentials;
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

$('#provider-type').addEventListener('change', showType);
$('#provider-cancel').addEventListener('click', reset);

if (requireSignIn()) loadTypes().then(load).catch(showError);
