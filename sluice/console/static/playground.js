// Playground: submit a message to a workflow with the admin key, then watch it stream through the browser SDK
// (the same module apps use), text and structured object growing as events arrive.
import { connect } from '/sdk/sluice.js';
import { $, api, h, pretty, requireSignIn, showError } from './console.js';

let client = null;

async function start() {
  const { workflows } = await api('/v1/admin/workflows');
  $('#pg-workflow').replaceChildren(...workflows.map((wf) => h('option', {}, wf.name)));
  const preset = new URLSearchParams(location.search).get('workflow');
  if (preset) $('#pg-workflow').value = preset;
}

$('#playground').addEventListener('submit', async (event) => {
  event.preventDefault();
  client?.disconnect();
  $('#pg-send').disabled = true;
  $('#pg-error').hidden = true;
  try {
    const accepted = await api('/v1/ai/async', { method: 'POST', body: {
      workflow: $('#pg-workflow').value, messages: [{ role: 'user', content: $('#pg-message').value }],
      metadata: { source: 'console-playground' } } });
    $('#pg-output').hidden = false;
    $('#pg-output').dataset.channel = accepted.channel_id;
    $('#pg-detail').href = `/console/requests/${encodeURIComponent(accepted.channel_id)}`;
    $('#pg-text').textContent = '';
    $('#pg-message-out').textContent = '';
    window.__pgTexts = [];
    client = connect(accepted, { storage: false });
    client.subscribe((state) => {
      $('#pg-status').textContent = state.status;
      $('#pg-connection').textContent = `(${state.connection})`;
      $('#pg-text').textContent = state.text;
      if (window.__pgTexts.at(-1) !== state.text) window.__pgTexts.push(state.text);
      $('#pg-message-out').textContent = state.message ? pretty(state.message) : '';
      if (state.error) {
        $('#pg-error').textContent = `${state.error.code}: ${state.error.message}`;
        $('#pg-error').hidden = false;
      }
      if (state.done) $('#pg-send').disabled = false;
    });
  } catch (error) {
    showError(error);
    $('#pg-send').disabled = false;
  }
});

if (requireSignIn()) start().catch(showError);
