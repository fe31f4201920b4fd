/**
 * One interface over every distributed lock Synod offers, so an application (and the lock
 * benchmark) can choose a backend — Synod or etcd, Redis, Redlock, PostgreSQL, SQLite — and swap
 * it without touching the code that holds the lock.
 *
 * The contract every backend keeps:
 * - `acquire` waits until the named lock is held by this caller, the timeout passes, or the
 *   signal aborts; it never resolves for a lock it does not hold.
 * - `tryAcquire` answers at once: the held lock, or null when someone else holds it.
 * - A held lock's `lost` signal aborts when the backend can no longer vouch that the lock is held
 *   (its lease or TTL ran out, a renewal failed, the connection that held it closed). Work guarded
 *   by the lock should stop when it fires.
 * - `fencingToken` grows strictly with every grant of the same name, across holders and restarts,
 *   where the backend can promise that; a resource that refuses tokens lower than the highest it
 *   has seen is then safe even against a holder that was paused past its expiry. Backends that
 *   cannot promise it (Redis, Redlock) report null, and docs/locks.md says why.
 * - `release` gives the lock up if it is still held by this grant and never releases someone
 *   else's; releasing twice, or after loss, is a no-op.
 */

/** Which system a backend keeps its locks in; the names the lock benchmark reports. */
export type LockBackendKind = 'synod' | 'etcd' | 'redis' | 'redlock' | 'postgres' | 'sqlite';

/** How long to wait for a lock, and how to give up early. */
export interface AcquireOptions {
  /** Give up after this many milliseconds with a `LockTimeoutError`; default: wait forever. */
  readonly timeoutMs?: number;
  /** Abort the wait; the promise rejects with the signal's reason. */
  readonly signal?: AbortSignal;
}

/** A lock this caller holds. Dispose it (`await using`) or call `release`. */
export interface HeldLock extends AsyncDisposable {
  /** The lock's name, as passed to `acquire`. */
  readonly name: string;
  /**
   * Grows strictly with every grant of this name; null when the backend cannot promise that.
   * For Synod and etcd it is the holder key's create revision.
   */
  readonly fencingToken: bigint | null;
  /** Aborts when the lock may no longer be held (see the module comment). */
  readonly lost: AbortSignal;
  /** Gives the lock up if this grant still holds it; safe to call more than once. */
  release(): Promise<void>;
}

/** A backend that grants named locks. */
export interface LockBackend extends AsyncDisposable {
  readonly kind: LockBackendKind;
  /** Waits for the named lock (see the module comment). */
  acquire(name: string, options?: AcquireOptions): Promise<HeldLock>;
  /** The named lock if it is free now, else null. */
  tryAcquire(name: string): Promise<HeldLock | null>;
  /** Releases what this backend holds and closes its connections. */
  close(): Promise<void>;
}
