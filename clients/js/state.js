// The channel state machine, free of I/O: events in, a new state out (DESIGN.md §3).
//
// The client (sluice.js) feeds every frame here and only does sockets, timers and storage, so the rules that
// decide what the user sees — ordering, de-duplication, resets — are tested without a network.

/** @returns {import('./sluice.js').ChannelState} */
export function initialState(channelId = null) {
  return {
    channelId,
    connection: 'idle',
    status: channelId ? 'connecting' : 'idle',
    message: null,
    text: '',
    toolCalls: [],
    continued: false,
    meta: null,
    error: null,
    events: [],
    lastSeq: 0,
    attempt: 0,
    done: false,
  };
}

/**
 * Apply one channel event. Returns the same object when the event changes nothing (a heartbeat, or a seq already
 * seen after a reconnect), so callers can skip re-rendering with an identity check.
 */
export function applyEvent(state, event) {
  if (!event || typeof event.seq !== 'number') return state; // heartbeats and anything unnumbered
  if (event.seq <= state.lastSeq || state.done) return state; // replayed after a resume: already applied
  const next = { ...state, lastSeq: event.seq, events: [...state.events, event] };
  switch (event.type) {
    case 'status':
      next.status = event.status;
      break;
    case 'attempt':
      next.attempt = event.attempt;
      break;
    case 'delta':
      next.text = state.text + event.text;
      break;
    case 'tool_call':
      next.toolCalls = withToolCallPiece(state.toolCalls, event);
      break;
    case 'partial':
      next.message = event.data;
      break;
    case 'splice':
      // Another attempt goes on from where the failed one stopped: nothing is taken back, the text keeps growing.
      next.continued = true;
      break;
    case 'reset':
      // A failover or a repair threw away the answer streamed so far: so does the user's screen.
      next.text = '';
      next.message = null;
      next.toolCalls = [];
      next.continued = false;
      break;
    case 'response':
      next.message = event.data;
      next.meta = event.meta ?? null;
      if (Array.isArray(event.data?.tool_calls)) {
        next.toolCalls = event.data.tool_calls.map((call) => ({
          id: call.id,
          name: call.function?.name ?? '',
          arguments: call.function?.arguments ?? '',
        }));
      }
      next.status = 'completed';
      next.done = true;
      break;
    case 'error':
      next.error = { code: event.code, message: event.message };
      next.status = event.code === 'cancelled' ? 'cancelled' : 'failed';
      next.done = true;
      break;
    default:
      break; // failover, webhook and future types: kept in `events` only
  }
  return next;
}

/**
 * The calls streamed so far with one more piece: the first piece of call `index` names it (`id`, `name`), later
 * ones add to its `arguments` (JSON text, complete once the call is).
 */
function withToolCallPiece(calls, event) {
  const next = calls.slice();
  const current = next[event.index] ?? { id: null, name: '', arguments: '' };
  next[event.index] = {
    id: current.id ?? event.id ?? null,
    name: current.name || event.name || '',
    arguments: current.arguments + (event.arguments ?? ''),
  };
  return next;
}

/** The part of a state worth keeping across a page reload (connection details are not state). */
export function persistable(state, maxEvents = 500) {
  const { connection, ...rest } = state;
  return { ...rest, events: state.events.slice(-maxEvents) };
}
