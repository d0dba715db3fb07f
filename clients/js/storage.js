// Keeping the active channel across a page reload.
//
// sessionStorage by default: it survives a reload but is private to the tab, so two tabs never fight over one
// channel. Every storage error is swallowed: a full or disabled storage must never break streaming.

/** Resolve the `storage` option: 'session' (default), 'local', false/null, or any object with the Storage methods. */
export function resolveStorage(option = 'session') {
  if (option === false || option === null) return null;
  if (typeof option === 'object') return option;
  try {
    const store = option === 'local' ? globalThis.localStorage : globalThis.sessionStorage;
    return store ?? null;
  } catch {
    return null; // e.g. storage blocked by the browser's privacy settings
  }
}

export function load(storage, key, maxAgeMs) {
  if (!storage) return null;
  try {
    const raw = storage.getItem(key);
    if (!raw) return null;
    const record = JSON.parse(raw);
    if (!record || !record.channel_id || !record.websocket_url) return null;
    if (maxAgeMs && Date.now() - (record.saved_at ?? 0) > maxAgeMs) {
      storage.removeItem(key);
      return null;
    }
    return record;
  } catch {
    return null;
  }
}

export function save(storage, key, record) {
  if (!storage) return;
  try {
    storage.setItem(key, JSON.stringify({ ...record, saved_at: Date.now() }));
  } catch {
    // quota exceeded or storage disabled: the stream goes on, only reload-resume is lost
  }
}

export function remove(storage, key) {
  if (!storage) return;
  try {
    storage.removeItem(key);
  } catch {
    // ignored, see save()
  }
}
