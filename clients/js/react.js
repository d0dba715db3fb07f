// React binding: `const { status, message, connect, cancel } = useSluice()`.
//
// One SluiceClient per component; its state is read with useSyncExternalStore so every event renders once and
// concurrent rendering never tears. On mount it resumes a channel a previous page left unfinished.

import { useCallback, useEffect, useState, useSyncExternalStore } from 'react';
import { SluiceClient } from './sluice.js';

export function useSluice(options = {}) {
  // useState's initialiser runs once per mounted component: the client lives as long as the component.
  const [client] = useState(() => options.client ?? new SluiceClient(options));
  const state = useSyncExternalStore(client.subscribe, client.getState, client.getState);

  useEffect(() => {
    if (options.resume !== false) client.resume();
    // close(), not disconnect(): the stored channel survives an unmount (and React's StrictMode double mount).
    return () => client.close();
  }, [client, options.resume]);

  const connect = useCallback((params) => client.connect(params), [client]);
  const disconnect = useCallback(() => client.disconnect(), [client]);
  const cancel = useCallback(() => client.cancel(), [client]);
  return { ...state, connect, disconnect, cancel, client };
}
