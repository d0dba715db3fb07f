// Types for the Sluice browser SDK (sluice.js). The wire format is DESIGN.md §3: numbered channel events.

export type RequestStatus =
  | 'idle'
  | 'connecting'
  | 'queued'
  | 'running'
  | 'streaming'
  | 'validating'
  | 'awaiting_callback'
  | 'completed'
  | 'failed'
  | 'cancelled'
  | (string & {});

export type ConnectionState = 'idle' | 'connecting' | 'open' | 'reconnecting' | 'closed';

interface BaseEvent<T extends string> {
  seq: number;
  type: T;
  ts: string;
}

export type StatusEvent = BaseEvent<'status'> & { status: RequestStatus };
export type AttemptEvent = BaseEvent<'attempt'> & { provider: string; model: string; attempt: number };
export type DeltaEvent = BaseEvent<'delta'> & { text: string };
/** A piece of a tool call: the first piece of call `index` has `id` and `name`, later ones more `arguments`. */
export type ToolCallEvent = BaseEvent<'tool_call'> & {
  index: number;
  id: string | null;
  name: string | null;
  arguments: string;
};
export type PartialEvent<M = Record<string, unknown>> = BaseEvent<'partial'> & { data: Partial<M> };
export type ResetEvent = BaseEvent<'reset'> & { reason: string };
/** The answer goes on in attempt `to_attempt` from where `from_attempt` stopped: nothing is taken back. `at_chars`:
 * the answer's length so far in Unicode code points (`[...text].length`). */
export type SpliceEvent = BaseEvent<'splice'> & {
  from_attempt: number;
  to_attempt: number;
  at_chars: number;
  method: 'prefill' | 'instruction';
};
export type FailoverEvent = BaseEvent<'failover'> & { from: string; to: string; error: string };
export type WebhookEvent = BaseEvent<'webhook'> & {
  state: 'sent' | 'delivered' | 'failed';
  attempt: number;
  status_code: number | null;
};
export type ResponseEvent<M = Record<string, unknown>> = BaseEvent<'response'> & {
  data: M;
  meta: Record<string, unknown>;
  from_store?: boolean;
};
export type ErrorEvent = BaseEvent<'error'> & { code: string; message: string; from_store?: boolean };

export type ChannelEvent<M = Record<string, unknown>> =
  | StatusEvent
  | AttemptEvent
  | DeltaEvent
  | ToolCallEvent
  | PartialEvent<M>
  | ResetEvent
  | SpliceEvent
  | FailoverEvent
  | WebhookEvent
  | ResponseEvent<M>
  | ErrorEvent;

export interface ToolCall {
  id: string | null;
  name: string;
  /** JSON text; complete once the call is (when the next call starts, or at the terminal event). */
  arguments: string;
}

export interface SluiceError {
  code: string;
  message: string;
}

export interface ChannelState<M = Record<string, unknown>> {
  channelId: string | null;
  connection: ConnectionState;
  /** The request's lifecycle state, from `status` events; `completed`, `failed` or `cancelled` after the terminal
   * event. */
  status: RequestStatus;
  /** The structured object so far (from `partial` events), then the final one (from `response`). */
  message: Partial<M> | M | null;
  /** The answer's raw generated text (from `delta` events): since the last `reset`, across `splice`s. */
  text: string;
  /** The tools the model is calling, as they stream (`tool_call` events), then as the final answer has them:
   * show "calling get_weather…" from `name` before `arguments` is complete JSON. */
  toolCalls: ToolCall[];
  /** The answer was continued across a provider failure (a `splice`): one answer from several attempts. */
  continued: boolean;
  meta: Record<string, unknown> | null;
  error: SluiceError | null;
  /** Every event received, in order. */
  events: ChannelEvent<M>[];
  lastSeq: number;
  attempt: number;
  /** The terminal event has arrived. */
  done: boolean;
}

/** What your backend got from `POST /v1/ai/async`; camelCase (ModelRiver style) is accepted too. */
export interface ConnectParams {
  websocket_url?: string;
  ws_token?: string;
  channel_id?: string;
  websocketUrl?: string;
  wsToken?: string;
  channelId?: string;
  /** Resume after this seq. */
  after?: number;
  /** What `cancel()` POSTs: the request's `cancel_url` (it cancels that request only). Omit it to not allow it. */
  cancel_url?: string;
  cancelUrl?: string;
}

/** A request as `GET /v1/requests/{id}` (and `cancel()`) gives it. */
export interface RequestInfo {
  id: string;
  channel_id: string;
  workflow: string;
  status: RequestStatus;
  data: unknown;
  error: SluiceError | null;
  meta: Record<string, unknown> | null;
  metadata: Record<string, unknown> | null;
  attempts: Record<string, unknown>[];
  created_at: string;
  started_at: string | null;
  first_token_at: string | null;
  completed_at: string | null;
}

/** `cancel()` failed: `code` is the gateway's (`invalid_cancel_token`, …), `status` its HTTP status. */
export interface CancelError extends Error {
  code: string;
  status: number;
}

export interface StorageLike {
  getItem(key: string): string | null;
  setItem(key: string, value: string): void;
  removeItem(key: string): void;
}

export interface SluiceOptions {
  /** Gateway base URL, used when `websocket_url` is not given. */
  baseUrl?: string | null;
  /** Where the active channel is kept across reloads: 'session' (default), 'local', false, or a Storage. */
  storage?: 'session' | 'local' | false | null | StorageLike;
  storageKey?: string;
  /** A stored channel older than this is not resumed (default 1 h, the gateway's log retention). */
  maxAgeMs?: number;
  initialDelayMs?: number;
  maxDelayMs?: number;
  maxRetries?: number;
  /** Reconnect when nothing (not even a heartbeat) arrives for this long; 0 disables. Default 45 s. */
  idleTimeoutMs?: number;
  /** A WebSocket implementation, for runtimes without a global one. */
  WebSocket?: unknown;
  /** A fetch implementation for `cancel()`, for runtimes without a global one. */
  fetch?: unknown;
}

export interface ClientEvents<M> {
  change: ChannelState<M>;
  event: ChannelEvent<M>;
  status: RequestStatus;
  message: ChannelState<M>['message'];
  error: SluiceError | null;
  done: ChannelState<M>;
  connection: ConnectionState;
}

export declare class SluiceClient<M = Record<string, unknown>> {
  constructor(options?: SluiceOptions);
  readonly state: ChannelState<M>;
  getState(): ChannelState<M>;
  subscribe(listener: (state: ChannelState<M>) => void): () => void;
  on<K extends keyof ClientEvents<M>>(type: K, listener: (value: ClientEvents<M>[K]) => void): () => void;
  connect(params: ConnectParams): this;
  resume(): boolean;
  hasPending(): boolean;
  disconnect(): void;
  close(): void;
  /** Cancel the request through the `cancel_url` given to `connect()`; rejects with a `CancelError`. */
  cancel(): Promise<RequestInfo>;
}

export declare function connect<M = Record<string, unknown>>(
  params: ConnectParams,
  options?: SluiceOptions,
): SluiceClient<M>;
export declare function createSluice<M = Record<string, unknown>>(options?: SluiceOptions): SluiceClient<M>;
export declare function initialState<M = Record<string, unknown>>(channelId?: string | null): ChannelState<M>;
export declare function applyEvent<M>(state: ChannelState<M>, event: unknown): ChannelState<M>;
export declare function channelUrl(
  target: { channel_id: string; websocket_url: string; ws_token: string | null },
  lastSeq?: number,
): string;
