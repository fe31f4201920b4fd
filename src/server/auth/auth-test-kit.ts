/** Helpers the auth tests share: an auth store after some changes, and the invalid-token check. */

import { isSynodError } from '../../base/index.js';
import { AuthStore, MemoryBackend, type AuthChange } from '../../kv/index.js';

/** A fresh in-memory auth store with `changes` applied in order. */
export function storeWith(changes: readonly AuthChange[]): AuthStore {
  const store = AuthStore.load(new MemoryBackend());
  for (const change of changes) store.apply(change);
  return store;
}

/** Whether `fn` throws SYNOD_AUTH_INVALID_TOKEN (false if it returns or throws anything else). */
export function rejectsAsInvalidToken(fn: () => unknown): boolean {
  try {
    fn();
    return false;
  } catch (error) {
    return isSynodError(error, 'SYNOD_AUTH_INVALID_TOKEN');
  }
}
