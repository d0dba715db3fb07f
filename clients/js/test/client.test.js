// The client's I/O decisions (reconnect, resume, persistence) against a scripted WebSocket. The real socket, the
// real gateway and a real browser are exercised by tests/e2e/test_chatbot_browser.py.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { SluiceClient, channelUrl, connect } from '../sluice.js';

class FakeSocket {
  static all = [];
  constructor(url) {
    this.url = url;
    this.closed = false;
    FakeSocket.all.push(this);
    for (const resolve of FakeSocket.waiting.splice(0)) resolve(this);
  }
  static waiting = [];
  /** Resolves with the next socket the client opens. */
  static next(timeoutMs = 2000) {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('no new socket was opened')), timeoutMs);
      FakeSocket.waiting.push((socket) => {
        clearTimeout(timer);
        resolve(socket);
      });
    });
  }
  open() {
    this.onopen?.({});
  }
  send(event) {
    this.onmessage?.({ data: JSON.stringify(event) });
  }
  drop(code = 1006, reason = '') {
    this.closed = true;
    this.onclose?.({ code, reason });
  }
  close() {
    this.closed = true;
  }
  static last() {
    return FakeSocket.all.at(-1);
  }
}

class MemoryStorage {
  constructor() {
    this.items = new Map();
  }
  getItem(key) {
    return this.items.has(key) ? this.items.get(key) : null;
  }
  setItem(key, value) {
    this.items.set(key, String(value));
  }
  removeItem(key) {
    this.items.delete(key);
  }
}

const TARGET = {
  channel_id: 'ch-1',
  websocket_url: 'ws://gw.test/v1/ws?channel_id=ch-1&token=tok',
  ws_token: 'tok',
};
const ev = (seq, type, fields = {}) => ({ seq, type, ts: 't', ...fields });

function options(storage = new MemoryStorage()) {
  return { WebSocket: FakeSocket, storage, initialDelayMs: 1, maxDelayMs: 4, idleTimeoutMs: 0 };
}

test('connect() follows the channel and reports status, message and the terminal event', async () => {
  const seen = [];
  const client = connect(TARGET, options());
  client.on('message', (message) => seen.push(message?.reply));
  const socket = FakeSocket.last();
  assert.equal(socket.url, 'ws://gw.test/v1/ws?channel_id=ch-1&token=tok');
  socket.open();
  assert.equal(client.state.connection, 'open');
  socket.send({ type: 'heartbeat', ts: 't' });
  socket.send(ev(1, 'status', { status: 'running' }));
  socket.send(ev(2, 'partial', { data: { reply: 'Hi' } }));
  socket.send(ev(3, 'partial', { data: { reply: 'Hi there' } }));
  socket.send(ev(4, 'response', { data: { reply: 'Hi there', sentiment: 'positive' }, meta: {} }));
  socket.drop(1000);
  assert.equal(client.state.status, 'completed');
  assert.equal(client.state.connection, 'closed');
  assert.deepEqual(seen, ['Hi', 'Hi there', 'Hi there']);
  assert.equal(FakeSocket.all.at(-1), socket, 'no reconnect after the terminal event');
});

test('a dropped socket reconnects with after=<last seq>, and replayed events are not applied twice', async () => {
  const client = new SluiceClient(options()).connect(TARGET);
  const first = FakeSocket.last();
  first.open();
  first.send(ev(1, 'delta', { text: 'Hel' }));
  first.send(ev(2, 'delta', { text: 'lo' }));
  const opened = FakeSocket.next();
  first.drop(1006);
  assert.equal(client.state.connection, 'reconnecting');
  const second = await opened;
  assert.equal(new URL(second.url).searchParams.get('after'), '2');
  second.open();
  second.send(ev(2, 'delta', { text: 'lo' })); // a server may resend the boundary event
  second.send(ev(3, 'delta', { text: ' world' }));
  assert.equal(client.state.text, 'Hello world');
});

test('backoff grows between failed reconnects', async () => {
  const client = new SluiceClient({ ...options(), initialDelayMs: 20, maxDelayMs: 1000 }).connect(TARGET);
  const stamps = [];
  for (let i = 0; i < 4; i += 1) {
    const socket = FakeSocket.last();
    stamps.push(performance.now());
    const opened = FakeSocket.next();
    socket.drop(1006);
    await opened;
  }
  const gaps = stamps.slice(1).map((t, i) => t - stamps[i]);
  // Delays are in [c/2, c] for c = 20, 40, 80: the last gap must exceed the first ceiling.
  assert.ok(gaps[2] >= 40, `gaps ${gaps}`);
  client.disconnect();
});

test('a 44xx close is a refusal: no reconnect, an error, and the stored channel is forgotten', () => {
  const storage = new MemoryStorage();
  const client = new SluiceClient(options(storage)).connect(TARGET);
  const socket = FakeSocket.last();
  assert.ok(storage.getItem('sluice:active'));
  socket.drop(4401, 'the ws_token has expired');
  assert.deepEqual(client.state.error, { code: 'unauthorized', message: 'the ws_token has expired' });
  assert.equal(client.state.connection, 'closed');
  assert.equal(storage.getItem('sluice:active'), null);
  assert.equal(FakeSocket.last(), socket);
});

test('resume() after a reload restores what was shown and continues after the last seq', () => {
  const storage = new MemoryStorage();
  const page1 = new SluiceClient(options(storage)).connect(TARGET);
  FakeSocket.last().open();
  FakeSocket.last().send(ev(1, 'status', { status: 'running' }));
  FakeSocket.last().send(ev(2, 'partial', { data: { reply: 'Once upon' } }));
  // The page reloads: the old client is simply gone.
  const page2 = new SluiceClient(options(storage));
  assert.equal(page2.hasPending(), true);
  assert.equal(page2.resume(), true);
  assert.deepEqual(page2.state.message, { reply: 'Once upon' });
  assert.equal(page2.state.status, 'running');
  const socket = FakeSocket.last();
  assert.equal(new URL(socket.url).searchParams.get('after'), '2');
  socket.open();
  socket.send(ev(3, 'partial', { data: { reply: 'Once upon a time' } }));
  socket.send(ev(4, 'response', { data: { reply: 'Once upon a time' }, meta: {} }));
  assert.equal(page2.state.done, true);
  assert.equal(storage.getItem('sluice:active'), null, 'a finished channel is not resumed again');
  assert.equal(new SluiceClient(options(storage)).resume(), false);
});

test('disconnect() forgets the channel; close() keeps it for resume()', () => {
  const storage = new MemoryStorage();
  const client = new SluiceClient(options(storage)).connect(TARGET);
  client.close();
  assert.equal(FakeSocket.last().closed, true);
  assert.equal(client.resume(), true);
  client.disconnect();
  assert.equal(storage.getItem('sluice:active'), null);
  assert.equal(client.state.status, 'idle');
});

test('a silent connection (no events, no heartbeats) is dropped and resumed', async () => {
  const client = new SluiceClient({ ...options(), idleTimeoutMs: 30 }).connect(TARGET);
  const first = FakeSocket.last();
  first.open();
  first.send(ev(1, 'status', { status: 'running' }));
  const second = await FakeSocket.next();
  assert.equal(first.closed, true);
  assert.equal(new URL(second.url).searchParams.get('after'), '1');
  client.disconnect();
});

test('a storage that throws (quota, privacy mode) never stops the stream', () => {
  const broken = {
    getItem() {
      throw new Error('SecurityError');
    },
    setItem() {
      throw new Error('QuotaExceededError');
    },
    removeItem() {
      throw new Error('SecurityError');
    },
  };
  const client = new SluiceClient(options(broken)).connect(TARGET);
  FakeSocket.last().open();
  FakeSocket.last().send(ev(1, 'partial', { data: { reply: 'still' } }));
  FakeSocket.last().send(ev(2, 'response', { data: { reply: 'still here' }, meta: {} }));
  assert.deepEqual(client.state.message, { reply: 'still here' });
  assert.equal(client.resume(), false);
});

test('channelUrl maps http to ws and builds the URL from parts', () => {
  const url = channelUrl({ channel_id: 'c', websocket_url: 'https://gw.test/v1/ws', ws_token: 't' }, 5);
  assert.equal(url, 'wss://gw.test/v1/ws?channel_id=c&token=t&after=5');
  assert.throws(() => connect({ websocket_url: 'ws://x/v1/ws' }, options()), /channel_id is required/);
});

test('cancel() POSTs the cancel_url and the channel then ends cancelled', async () => {
  const posted = [];
  const fetch = async (url, init) => {
    posted.push([url, init.method]);
    return { ok: true, status: 200, json: async () => ({ id: 'ch-1', status: 'cancelled' }) };
  };
  const cancelUrl = 'http://gw.test/v1/requests/ch-1/cancel?token=cct_x';
  const client = new SluiceClient({ ...options(), fetch }).connect({ ...TARGET, cancel_url: cancelUrl });
  const socket = FakeSocket.last();
  socket.open();
  socket.send(ev(1, 'delta', { text: 'Once' }));
  assert.deepEqual(await client.cancel(), { id: 'ch-1', status: 'cancelled' });
  assert.deepEqual(posted, [[cancelUrl, 'POST']]);
  socket.send(ev(2, 'error', { code: 'cancelled', message: 'the request was cancelled' }));
  assert.equal(client.state.status, 'cancelled');
  assert.equal(client.state.text, 'Once', 'what had streamed stays shown');
  assert.equal(client.state.done, true);
});

test('cancel() without a cancel_url, or refused, rejects with the reason', async () => {
  const refused = async () => ({
    ok: false,
    status: 401,
    json: async () => ({ error: { code: 'invalid_cancel_token', message: 'not the token of this request' } }),
  });
  const storage = new MemoryStorage();
  const client = new SluiceClient({ ...options(storage), fetch: refused }).connect(TARGET);
  await assert.rejects(client.cancel(), /needs the cancel_url/);
  client.connect({ ...TARGET, cancelUrl: 'http://gw.test/v1/requests/ch-1/cancel?token=bad' });
  await assert.rejects(client.cancel(), { code: 'invalid_cancel_token', status: 401 });
  const reloaded = new SluiceClient({ ...options(storage), fetch: refused });
  assert.equal(reloaded.resume(), true);
  await assert.rejects(reloaded.cancel(), { code: 'invalid_cancel_token' }, 'the cancel_url survives a reload');
});
