// Sluice browser SDK: follow one request's channel over WebSocket.
//
//   import { connect } from '/sdk/sluice.js';
//   const channel = connect({ websocket_url, ws_token, channel_id });   // what your backend got from /v1/ai/async
//   channel.subscribe((state) => render(state.status, state.message));
//   stopButton.onclick = () => channel.cancel();   // needs the cancel_url your backend got too
//
// The socket may drop and the page may reload: the client reconnects with backoff and resumes with
// `after=<last seq>`, so the user sees every token once, in order. No build step; types are in sluice.d.ts.

import { applyEvent, initialState, persistable } from './state.js';
import * as stored from './storage.js';

export { applyEvent, initialState } from './state.js';

const DEFAULTS = {
  baseUrl: null,
  storage: 'session',
  storageKey: 'sluice:active',
  maxAgeMs: 60 * 60 * 1000, // the gateway keeps event logs for 1 h by default; older channels cannot resume
  initialDelayMs: 250,
  maxDelayMs: 5000,
  maxRetries: Infinity,
  idleTimeoutMs: 45000, // three missed heartbeats at the gateway's default 15 s: the connection is dead
  WebSocket: null,
  fetch: null, // for cancel(); globalThis.fetch when not given
};

// 44xx: the gateway refused this channel or token (4000 + the HTTP status); retrying cannot help.
const REFUSALS = { 4400: 'bad_request', 4401: 'unauthorized', 4403: 'forbidden', 4404: 'channel_not_found' };

export class SluiceClient {
  constructor(options = {}) {
    this.options = { ...DEFAULTS, ...options };
    this._storage = stored.resolveStorage(this.options.storage);
    this._state = initialState();
    this._target = null; // {channel_id, websocket_url, ws_token}
    this._socket = null;
    this._retries = 0;
    this._retryTimer = null;
    this._idleTimer = null;
    this._listeners = new Map();
    this.subscribe = this.subscribe.bind(this); // stable, for React's useSyncExternalStore
    this.getState = this.getState.bind(this);
  }

  /** The current state (a new object after every change, so identity comparison detects changes). */
  get state() {
    return this._state;
  }

  getState() {
    return this._state;
  }

  /** Call `listener(state)` after every change; returns the unsubscribe function. */
  subscribe(listener) {
    return this.on('change', listener);
  }

  /** Listen to 'change' | 'event' | 'status' | 'message' | 'error' | 'done' | 'connection'; returns unsubscribe. */
  on(type, listener) {
    if (!this._listeners.has(type)) this._listeners.set(type, new Set());
    this._listeners.get(type).add(listener);
    return () => this._listeners.get(type)?.delete(listener);
  }

  /**
   * Follow a channel. Takes what `POST /v1/ai/async` returned (snake_case, or ModelRiver's camelCase).
   * Replaces any channel this client was following.
   */
  connect(params) {
    const target = normaliseTarget(params, this.options.baseUrl);
    this._stop();
    this._target = target;
    this._retries = 0;
    this._state = { ...initialState(target.channel_id), lastSeq: params?.after ?? 0 };
    this._persist();
    this._emitChange(null);
    this._open();
    return this;
  }

  /**
   * Pick up the channel a previous page left unfinished (same tab, same storage key): restore what it showed and
   * resume the stream after the last event it saw. Returns false when there is nothing to resume.
   */
  resume() {
    if ((this._socket || this._retryTimer) && !this._state.done) return true; // already following
    const record = stored.load(this._storage, this.options.storageKey, this.options.maxAgeMs);
    if (!record || record.state?.done) return false;
    this._target = {
      channel_id: record.channel_id,
      websocket_url: record.websocket_url,
      ws_token: record.ws_token,
      cancel_url: record.cancel_url ?? null,
    };
    this._retries = 0;
    this._state = { ...initialState(record.channel_id), ...record.state, connection: 'idle' };
    this._emitChange(null);
    this._open();
    return true;
  }

  /** Whether storage holds an unfinished channel that `resume()` would pick up. */
  hasPending() {
    const record = stored.load(this._storage, this.options.storageKey, this.options.maxAgeMs);
    return Boolean(record && !record.state?.done);
  }

  /** Stop following and forget the channel (the stored copy too). */
  disconnect() {
    this._stop();
    this._target = null;
    stored.remove(this._storage, this.options.storageKey);
    this._state = initialState();
    this._emitChange(null);
  }

  /**
   * Cancel the request (the user pressed "stop"): POSTs the `cancel_url` your backend got from `POST /v1/ai/async`
   * and passed to `connect()` (it cancels that one request and nothing else; no API key). The gateway closes the
   * provider call and the channel ends with an `error` event, code `cancelled`: `status` becomes 'cancelled', and
   * what had streamed stays shown. Resolves with the request as it ended (`GET /v1/requests/{id}`'s shape).
   */
  async cancel() {
    const url = this._target?.cancel_url;
    if (!url) {
      throw new Error('cancel() needs the cancel_url of POST /v1/ai/async: pass it to connect() with the rest');
    }
    const fetchImpl = this.options.fetch ?? globalThis.fetch;
    const response = await fetchImpl(url, { method: 'POST' });
    const body = await response.json().catch(() => null);
    if (!response.ok) {
      const error = new Error(body?.error?.message ?? `the cancel failed: HTTP ${response.status}`);
      error.code = body?.error?.code ?? 'cancel_failed';
      error.status = response.status;
      throw error;
    }
    return body;
  }

  /** Close the socket but keep the stored channel, so `resume()` continues later (e.g. a component unmounting). */
  close() {
    this._stop();
    if (this._state.connection !== 'idle' && this._state.connection !== 'closed') {
      this._setConnection('closed');
    }
  }

  // -- internals ---------------------------------------------------------------------------------------------------

  _open() {
    const WebSocketImpl = this.options.WebSocket ?? globalThis.WebSocket;
    if (!WebSocketImpl) throw new Error('no WebSocket implementation: pass options.WebSocket');
    const url = channelUrl(this._target, this._state.lastSeq);
    this._setConnection(this._retries === 0 ? 'connecting' : 'reconnecting');
    const socket = new WebSocketImpl(url);
    this._socket = socket;
    socket.onopen = () => {
      if (this._socket !== socket) return;
      this._retries = 0;
      this._armIdle();
      this._setConnection('open');
    };
    socket.onmessage = (message) => {
      if (this._socket !== socket) return;
      this._armIdle();
      this._receive(message.data);
    };
    socket.onerror = () => {}; // the close event that follows decides what to do
    socket.onclose = (event) => {
      if (this._socket !== socket) return;
      this._socket = null;
      this._clearIdle();
      this._closed(event.code, event.reason);
    };
  }

  _receive(data) {
    let event;
    try {
      event = JSON.parse(typeof data === 'string' ? data : String(data));
    } catch {
      return; // not ours to interpret; never let one bad frame stop the stream
    }
    const before = this._state;
    const after = applyEvent(before, event);
    if (after === before) return;
    this._state = after;
    if (after.done) {
      // The terminal event: the server closes the socket next; nothing is left to resume.
      stored.remove(this._storage, this.options.storageKey);
    } else {
      this._persist();
    }
    this._emitChange(event, before);
  }

  _closed(code, reason) {
    if (this._state.done || !this._target) {
      this._setConnection('closed');
      return;
    }
    if (REFUSALS[code]) {
      stored.remove(this._storage, this.options.storageKey);
      this._state = { ...this._state, connection: 'closed', error: { code: REFUSALS[code], message: reason || '' } };
      this._emitChange(null, null, ['error']);
      return;
    }
    if (this._retries >= this.options.maxRetries) {
      this._state = {
        ...this._state,
        connection: 'closed',
        error: { code: 'connection_lost', message: `gave up after ${this._retries} reconnects` },
      };
      this._emitChange(null, null, ['error']);
      return;
    }
    // Exponential backoff with jitter, so a gateway restart is not met by every browser at the same instant.
    const ceiling = Math.min(this.options.maxDelayMs, this.options.initialDelayMs * 2 ** this._retries);
    const delay = ceiling / 2 + Math.random() * (ceiling / 2);
    this._retries += 1;
    this._setConnection('reconnecting');
    this._retryTimer = setTimeout(() => {
      this._retryTimer = null;
      this._open();
    }, delay);
  }

  _armIdle() {
    this._clearIdle();
    if (!this.options.idleTimeoutMs) return;
    this._idleTimer = setTimeout(() => {
      // Nothing, not even a heartbeat: the connection is half-open. Drop it and resume on a fresh one.
      const socket = this._socket;
      this._socket = null;
      if (socket) {
        socket.onclose = null;
        socket.close();
      }
      this._closed(1006, 'idle timeout');
    }, this.options.idleTimeoutMs);
  }

  _clearIdle() {
    if (this._idleTimer) clearTimeout(this._idleTimer);
    this._idleTimer = null;
  }

  _stop() {
    if (this._retryTimer) clearTimeout(this._retryTimer);
    this._retryTimer = null;
    this._clearIdle();
    const socket = this._socket;
    this._socket = null;
    if (socket) {
      socket.onclose = null;
      socket.onmessage = null;
      socket.close(1000);
    }
  }

  _persist() {
    if (!this._target) return;
    stored.save(this._storage, this.options.storageKey, { ...this._target, state: persistable(this._state) });
  }

  _setConnection(connection) {
    if (this._state.connection === connection) return;
    this._state = { ...this._state, connection };
    this._emit('connection', connection);
    this._emit('change', this._state);
  }

  _emitChange(event, before = null, extra = []) {
    const state = this._state;
    if (event) this._emit('event', event);
    if (before && state.status !== before.status) this._emit('status', state.status);
    if (before && state.message !== before.message) this._emit('message', state.message);
    if ((before && state.error !== before.error) || extra.includes('error')) this._emit('error', state.error);
    if (before && state.done && !before.done) this._emit('done', state);
    this._emit('change', state);
  }

  _emit(type, value) {
    for (const listener of this._listeners.get(type) ?? []) {
      try {
        listener(value);
      } catch (error) {
        // A failing listener must not break the stream or the other listeners.
        setTimeout(() => {
          throw error;
        });
      }
    }
  }
}

/** Create a client and start following the channel: `connect({ websocket_url, ws_token, channel_id })`. */
export function connect(params, options = {}) {
  return new SluiceClient(options).connect(params);
}

export function createSluice(options = {}) {
  return new SluiceClient(options);
}

function normaliseTarget(params, baseUrl) {
  const channelId = params?.channel_id ?? params?.channelId;
  const token = params?.ws_token ?? params?.wsToken;
  let websocketUrl = params?.websocket_url ?? params?.websocketUrl;
  if (!channelId) throw new Error('channel_id is required');
  if (!websocketUrl) {
    const base = baseUrl ?? globalThis.location?.origin;
    if (!base) throw new Error('websocket_url is required (or pass options.baseUrl)');
    websocketUrl = `${base.replace(/\/$/, '')}/v1/ws`;
  }
  if (!token && !new URL(websocketUrl, 'http://x').searchParams.get('token')) {
    throw new Error('ws_token is required');
  }
  const cancelUrl = params?.cancel_url ?? params?.cancelUrl ?? null;
  return { channel_id: channelId, websocket_url: websocketUrl, ws_token: token ?? null, cancel_url: cancelUrl };
}

/** The socket URL for a target, resuming after `lastSeq` (http(s) URLs are mapped to ws(s)). */
export function channelUrl(target, lastSeq = 0) {
  const url = new URL(target.websocket_url, globalThis.location?.href ?? 'http://localhost/');
  if (url.protocol === 'http:') url.protocol = 'ws:';
  if (url.protocol === 'https:') url.protocol = 'wss:';
  url.searchParams.set('channel_id', target.channel_id);
  if (target.ws_token) url.searchParams.set('token', target.ws_token);
  if (lastSeq > 0) url.searchParams.set('after', String(lastSeq));
  else url.searchParams.delete('after');
  return url.toString();
}
