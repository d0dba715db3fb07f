// Sign-in: check the key against an admin route before keeping it, so a wrong key is reported here.
import { $, api, signIn } from './console.js';

$('#login-form').addEventListener('submit', async (event) => {
  event.preventDefault();
  const key = $('#admin-key').value.trim();
  const error = $('#login-error');
  error.hidden = true;
  try {
    await api('/v1/admin/keys', { key });
  } catch (failure) {
    error.textContent = failure.status === 403 ? 'This key is valid but not an admin key.'
      : failure.status === 401 ? 'This key is not valid.' : failure.message;
    error.hidden = false;
    return;
  }
  signIn(key);
  const next = new URLSearchParams(location.search).get('next');
  location.assign(next && next.startsWith('/console/') ? next : '/console/overview');
});
