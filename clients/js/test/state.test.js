import assert from 'node:assert/strict';
import { test } from 'node:test';

import { applyEvent, initialState, persistable } from '../state.js';

const ev = (seq, type, fields = {}) => ({ seq, type, ts: '2026-11-24T10:00:00.000Z', ...fields });

function run(events, state = initialState('ch')) {
  return events.reduce(applyEvent, state);
}

test('partial objects then the final one become `message`', () => {
  const state = run([
    ev(1, 'status', { status: 'queued' }),
    ev(2, 'status', { status: 'running' }),
    ev(3, 'attempt', { provider: 'sim', model: 'm', attempt: 1 }),
    ev(4, 'delta', { text: '{"reply":"He' }),
    ev(5, 'partial', { data: { reply: 'He' } }),
    ev(6, 'delta', { text: 'llo"}' }),
    ev(7, 'partial', { data: { reply: 'Hello' } }),
  ]);
  assert.equal(state.status, 'running');
  assert.deepEqual(state.message, { reply: 'Hello' });
  assert.equal(state.text, '{"reply":"Hello"}');
  assert.equal(state.lastSeq, 7);
  assert.equal(state.done, false);
  const final = applyEvent(state, ev(8, 'response', { data: { reply: 'Hello', id: 'm1' }, meta: { provider: 'sim' } }));
  assert.deepEqual(final.message, { reply: 'Hello', id: 'm1' });
  assert.equal(final.status, 'completed');
  assert.equal(final.done, true);
  assert.equal(final.events.length, 8);
});

test('events at or below the last seq are ignored, and return the same state object', () => {
  const state = run([ev(1, 'delta', { text: 'a' }), ev(2, 'delta', { text: 'b' })]);
  assert.equal(applyEvent(state, ev(2, 'delta', { text: 'b' })), state);
  assert.equal(applyEvent(state, ev(1, 'delta', { text: 'a' })), state);
  assert.equal(applyEvent(state, { type: 'heartbeat', ts: 'x' }), state);
  assert.equal(applyEvent(state, ev(3, 'delta', { text: 'c' })).text, 'abc');
});

test('a reset drops what the failed attempt streamed', () => {
  const state = run([
    ev(1, 'attempt', { provider: 'a', model: 'm', attempt: 1 }),
    ev(2, 'delta', { text: '{"reply":"wro' }),
    ev(3, 'partial', { data: { reply: 'wro' } }),
    ev(4, 'reset', { reason: 'attempt 1 failed' }),
    ev(5, 'failover', { from: 'a/m', to: 'b/m', error: 'boom' }),
    ev(6, 'attempt', { provider: 'b', model: 'm', attempt: 2 }),
    ev(7, 'delta', { text: '{"reply":"ri' }),
    ev(8, 'partial', { data: { reply: 'ri' } }),
  ]);
  assert.deepEqual(state.message, { reply: 'ri' });
  assert.equal(state.text, '{"reply":"ri');
  assert.equal(state.attempt, 2);
});

test('a splice keeps what streamed and the text goes on; a later reset drops the whole answer', () => {
  const spliced = run([
    ev(1, 'attempt', { provider: 'a', model: 'm', attempt: 1 }),
    ev(2, 'delta', { text: '{"reply":"Hel' }),
    ev(3, 'partial', { data: { reply: 'Hel' } }),
    ev(4, 'failover', { from: 'a/m', to: 'b/m', error: 'cut' }),
    ev(5, 'attempt', { provider: 'b', model: 'm', attempt: 2 }),
    ev(6, 'splice', { from_attempt: 1, to_attempt: 2, at_chars: 13, method: 'prefill' }),
    ev(7, 'delta', { text: 'lo"}' }),
    ev(8, 'partial', { data: { reply: 'Hello' } }),
  ]);
  assert.equal(spliced.text, '{"reply":"Hello"}');
  assert.deepEqual(spliced.message, { reply: 'Hello' });
  assert.equal(spliced.continued, true);
  const reset = applyEvent(spliced, ev(9, 'reset', { reason: 'the spliced answer failed its schema' }));
  assert.equal(reset.text, '');
  assert.equal(reset.message, null);
  assert.equal(reset.continued, false);
});

test('an error event is terminal and nothing after it applies', () => {
  const state = run([ev(1, 'status', { status: 'running' }), ev(2, 'error', { code: 'timeout', message: 'slow' })]);
  assert.deepEqual(state.error, { code: 'timeout', message: 'slow' });
  assert.equal(state.status, 'failed');
  assert.equal(state.done, true);
  assert.equal(applyEvent(state, ev(3, 'delta', { text: 'late' })), state);
});

test('an error whose code is cancelled ends the channel as cancelled, keeping what was shown', () => {
  const state = run([ev(1, 'delta', { text: 'Once' }), ev(2, 'error', { code: 'cancelled', message: 'cancelled' })]);
  assert.equal(state.status, 'cancelled');
  assert.equal(state.text, 'Once');
  assert.equal(state.done, true);
});

test('persistable drops the connection and caps the events kept', () => {
  const state = run(Array.from({ length: 10 }, (_, i) => ev(i + 1, 'delta', { text: String(i) })));
  const kept = persistable({ ...state, connection: 'open' }, 3);
  assert.equal('connection' in kept, false);
  assert.deepEqual(kept.events.map((e) => e.seq), [8, 9, 10]);
  assert.equal(kept.text, '0123456789');
});

test('tool calls grow piece by piece, parallel ones by index, and a reset drops them', () => {
  const state = run([
    ev(1, 'tool_call', { index: 0, id: 'call_1', name: 'get_weather', arguments: '' }),
    ev(2, 'tool_call', { index: 1, id: 'call_2', name: 'get_time', arguments: '{"tz":' }),
    ev(3, 'tool_call', { index: 0, id: null, name: null, arguments: '{"city":' }),
    ev(4, 'tool_call', { index: 0, id: null, name: null, arguments: '"Paris"}' }),
    ev(5, 'tool_call', { index: 1, id: null, name: null, arguments: '"UTC"}' }),
  ]);
  assert.deepEqual(state.toolCalls, [
    { id: 'call_1', name: 'get_weather', arguments: '{"city":"Paris"}' },
    { id: 'call_2', name: 'get_time', arguments: '{"tz":"UTC"}' },
  ]);
  assert.deepEqual(applyEvent(state, ev(6, 'reset', { reason: 'failover' })).toolCalls, []);
  const calls = [{ id: 'call_9', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Oslo"}' } }];
  const final = applyEvent(state, ev(6, 'response', { data: { content: '', tool_calls: calls }, meta: {} }));
  assert.deepEqual(final.toolCalls, [{ id: 'call_9', name: 'get_weather', arguments: '{"city":"Oslo"}' }]);
  assert.equal(initialState('x').toolCalls.length, 0);
});
