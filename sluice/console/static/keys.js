// API keys: create (the key is shown once, with its budget and limits), list with spend, revoke (a second click
// confirms).
import { $, api, badge, fmtTime, h, requireSignIn, showError, usd } from './console.js';

const PERIODS = { total: '', daily: ' / day', monthly: ' / month' };

function budget(key) {
  return key.budget_usd === null ? '—' : `${usd(key.budget_usd)}${PERIODS[key.budget_period] ?? ''}`;
}

function limits(key) {
  const parts = [key.rpm && `${key.rpm} rpm`, key.tpm && `${key.tpm} tpm`].filter(Boolean);
  return parts.length ? parts.join(', ') : '—';
}

function numberOf(selector) {
  const value = $(selector).value.trim();
  return value === '' ? null : Number(value);
}

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
      h('td', {}, key.admin ? 'yes' : ''), h('td', { dataset: { budget: key.id } }, budget(key)),
      h('td', { dataset: { spent: key.id } }, usd(key.spend.spent_usd),
        key.spend.held_usd ? h('span', { class: 'muted' }, ` (+${usd(key.spend.held_usd)} held)`) : ''),
      h('td', {}, limits(key)), h('td', {}, fmtTime(key.created_at)),
      h('td', {}, badge(key.active ? 'ok' : 'revoked'), key.active ? ' active' : ` ${fmtTime(key.revoked_at)}`),
      h('td', {}, revoke));
  }));
}

$('#create-key').addEventListener('submit', async (event) => {
  event.preventDefault();
  showError(null);
  try {
    const created = await api('/v1/admin/keys', {
      method: 'POST',
      body: {
        name: $('#key-name').value.trim(), admin: $('#key-admin').checked, budget_usd: numberOf('#key-budget'),
        budget_period: $('#key-period').value, rpm: numberOf('#key-rpm'), tpm: numberOf('#key-tpm'),
      },
    });
    $('#new-key-value').textContent = created.key;
    $('#new-key').hidden = false;
    $('#key-name').value = '';
    await load();
  } catch (error) { showError(error); }
});

$('#copy-key').addEventListener('click', () => navigator.clipboard?.writeText($('#new-key-value').textContent));

if (requireSignIn()) load().catch(showError);
