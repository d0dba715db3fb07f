import type { ChannelState, ConnectParams, RequestInfo, SluiceClient, SluiceOptions } from './sluice.js';

export interface UseSluiceOptions extends SluiceOptions {
  /** Resume a channel a previous page left unfinished (default true). */
  resume?: boolean;
  /** Use this client instead of creating one. */
  client?: SluiceClient<any>;
}

export interface UseSluiceResult<M> extends ChannelState<M> {
  connect(params: ConnectParams): SluiceClient<M>;
  disconnect(): void;
  /** `client.cancel()`: cancel the request through the `cancel_url` given to `connect()`. */
  cancel(): Promise<RequestInfo>;
  client: SluiceClient<M>;
}

export declare function useSluice<M = Record<string, unknown>>(options?: UseSluiceOptions): UseSluiceResult<M>;
