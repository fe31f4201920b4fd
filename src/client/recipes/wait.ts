/**
 * Waiting helpers the recipes share: combining abort sources with a timeout, and waiting for a key
 * to be deleted by watching it (the predecessor wait that keeps locks and elections free of the
 * herd effect: each waiter watches one key, not the whole prefix).
 */

import type { SynodClient } from '../client.js';
import { CompactedError, LockTimeoutError } from '../errors.js';
import type { Bytes, KeyRange } from '../kv-types.js';
import type { Watcher } from '../watch.js';

/** A signal that aborts when any of `signals` does, or after `timeoutMs` with a LockTimeoutError. */
export interface WaitScope {
  readonly signal: AbortSignal;
  /** Releases the timer and listeners; call when the wait is over. */
  dispose(): void;
}

/** Combines the caller's signal, the session's `lost` and an optional timeout into one signal. */
export function waitScope(options: {
  readonly name: string;
  readonly signals: readonly (AbortSignal | undefined)[];
  readonly timeoutMs?: number;
}): WaitScope {
  const controller = new AbortController();
  const cleanups: (() => void)[] = [];
  for (const signal of options.signals) {
    if (signal === undefined) continue;
    if (signal.aborted) {
      controller.abort(signal.reason);
      break;
    }
    const onAbort = (): void => controller.abort(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    cleanups.push(() => signal.removeEventListener('abort', onAbort));
  }
  if (options.timeoutMs !== undefined && !controller.signal.aborted) {
    const { timeoutMs, name } = options;
    const timer = setTimeout(() => controller.abort(new LockTimeoutError(name, timeoutMs)), timeoutMs);
    cleanups.push(() => clearTimeout(timer));
  }
  return { signal: controller.signal, dispose: () => cleanups.forEach((cleanup) => cleanup()) };
}

/**
 * Resolves once `key` (or any key of `range`) is deleted at `revision` or later, or once the history from `revision` was
 * compacted away (the caller then reads the key again, as it does after every wait). Rejects with
 * the signal's reason when aborted.
 */
export async function waitForDelete(
  client: SynodClient, key: Bytes, revision: bigint, signal: AbortSignal, range: KeyRange = {},
): Promise<void> {
  signal.throwIfAborted();
  let watcher: Watcher;
  try {
    watcher = await client.watch(key, { ...range, startRevision: revision, filters: { noPut: true } });
  } catch (error) {
    if (error instanceof CompactedError) return;
    throw error;
  }
  const onAbort = (): void => void watcher.close();
  signal.addEventListener('abort', onAbort, { once: true });
  // An abort while the watch was being created fires no event for the listener added after it.
  if (signal.aborted) onAbort();
  try {
    // A delete at any revision from `revision` on ends the wait; puts are filtered out.
    for await (const batch of watcher) {
      if (batch.events.some((event) => event.type === 'delete')) return;
    }
    signal.throwIfAborted();
  } catch (error) {
    signal.throwIfAborted();
    if (!(error instanceof CompactedError)) throw error;
  } finally {
    signal.removeEventListener('abort', onAbort);
    await watcher.close();
  }
}
