// API keys: create (the key is shown once), list, revoke (a second click confirms).
import { $, api, badge, fmtTime, h, requireSignIn, showError } from './console.js';

async function load() {
  const { keys } = await api('/v1/admin/keys');
  $('#keys tbody').replaceChildren(...keys.map((key) => {
    const revoke = key.active ? h('button', { type: 'button', class: 'secondary', dataset: { revoke: key.id } },
      'Revoke') : '';
    if (revoke) {
      revoke.addEventListener('click', async () => {
        if (revoke.dataset.armed !== 'yes') {
          revoke.dataset.armed = 'yes';
          revoke.textContent = 'Confirm revoke';
          revoke.className = 'danger';
          return;
        }
        try { await api(`/v1/admin/keys/${encodeURIComponent(key.id)}`, { method: 'DELETE' }); await load(); }
        catch (error) { showError(error); }
      });
    }
    return h('tr', { dataset: { key: key.id } }, h('td', {}, key.name), h('td', {}, h('code', {}, `${key.prefix}…`)),
      h('td', {}, key.admin ? 'yes' : ''), h('td', {}, fmtTime(key.created_at)),
      h('td', {}, badge(key.active ? 'ok' : 'revoked'), key.active ? ' active' : ` ${fmtTime(key.revoked_at)}`),
      h('td', {}, revoke));
  }));
}

$('#create-key').addEventListener('submit', async (event) => {
  event.preventDefault();
  showError(null);
  try {
    const created = await api('/v1/admin/keys', {
      method: 'POST', body: { name: $('#key-name').value.trim(), admin: $('#key-admin').checked } });
    $('#new-key-value').textContent = created.key;
    $('#new-key').hidden = false;
    $('#key-name').value = '';
    await load();
  } catch (error) { showError(error); }
});

$('#copy-key').addEventListener('click', () => navigator.clipboard?.writeText($('#new-key-value').textContent));

if (requireSignIn()) load().catch(showError);
