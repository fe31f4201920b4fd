/**
 * Waiting helpers the recipes share: combining abort sources with a timeout, and waiting for a key
 * to be deleted by watching it (the predecessor wait that keeps locks and elections free of the
 * herd effect: each waiter watches one key, not the whole prefix).
 */

import type { SynodClient } from '../client.js';
import { isSynodError } from '../../base/index.js';
import { LockTimeoutError } from '../errors.js';
import type { Bytes, KeyRange } from '../kv-types.js';
import type { WatchEvent, Watcher } from '../watch.js';

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
 * The first event of `type` on `key` (a prefix if asked) at `startRevision` or later; null when
 * that history was compacted away (the caller reads the key again). Rejects with the signal's
 * reason when aborted.
 */
export async function waitForEvent(client: SynodClient, key: Bytes, options: {
  readonly type: 'put' | 'delete'; readonly startRevision: bigint; readonly prefix?: boolean;
  readonly signal: AbortSignal;
}): Promise<WatchEvent | null> {
  const { signal } = options;
  signal.throwIfAborted();
  let watcher: Watcher;
  try {
    watcher = await client.watch(key, {
      startRevision: options.startRevision, prefix: options.prefix === true,
      filters: options.type === 'put' ? { noDelete: true } : { noPut: true },
    });
  } catch (error) {
    if (isSynodError(error, 'SYNOD_COMPACTED')) return null;
    throw error;
  }
  const onAbort = (): void => void watcher.close();
  signal.addEventListener('abort', onAbort, { once: true });
  // An abort while the watch was being created fired no listener: it would wait forever.
  if (signal.aborted) onAbort();
  try {
    for await (const batch of watcher) {
      const event = batch.events.find((each) => each.type === options.type);
      if (event !== undefined) return event;
    }
    // Only our own close ends the iteration quietly, and only an abort closes it.
    signal.throwIfAborted();
    return null;
  } catch (error) {
    signal.throwIfAborted();
    if (isSynodError(error, 'SYNOD_COMPACTED')) return null;
    throw error;
  } finally {
    signal.removeEventListener('abort', onAbort);
    await watcher.close();
  }
}

/**
 * Resolves once `key` (or any key of `range`) is deleted at `revision` or later, or once the
 * history from `revision` was compacted away (the caller reads the key again, as it does after
 * every wait). Rejects with the signal's reason when aborted.
 */
export async function waitForDelete(
  client: SynodClient, key: Bytes, revision: bigint, signal: AbortSignal, range: KeyRange = {},
): Promise<void> {
  await waitForEvent(client, key, { type: 'delete', startRevision: revision, prefix: range.prefix === true, signal });
}
