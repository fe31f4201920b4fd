/**
 * MultiLock (Curator InterProcessMultiLock): several named locks taken all or nothing, on any
 * LockBackend. Deadlock-free by ordering: every caller takes the names in one global order (sorted
 * by their UTF-8 bytes), so no two callers can each hold a lock the other waits for. If any
 * acquisition fails, times out or is aborted, the locks already taken are released before the
 * error is thrown. The whole wait shares one deadline.
 */

import { invalidArgument } from '../errors.js';
import type { AcquireOptions, HeldLock, LockBackend } from '../locks/lock.js';

/** More names than this in one MultiLock are refused. */
export const multiLockNamesMax = 1024;

/** Every named lock, held together. */
export interface HeldLocks extends AsyncDisposable {
  /** The grants in the order they were taken (sorted names). */
  readonly grants: readonly HeldLock[];
  /** Aborts when any of the grants is lost. */
  readonly lost: AbortSignal;
  /** Releases every grant (in reverse order); safe to repeat. */
  release(): Promise<void>;
}

/** Takes every lock in `names` from `backend`, or none of them. */
export async function acquireAll(
  backend: LockBackend, names: readonly string[], options: AcquireOptions = {},
): Promise<HeldLocks> {
  const unique = [...new Set(names)].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
  if (unique.length === 0 || unique.length > multiLockNamesMax) {
    throw invalidArgument(`a multi-lock takes 1..${multiLockNamesMax} names`);
  }
  const deadlineMs = options.timeoutMs === undefined ? null : performance.now() + options.timeoutMs;
  const grants: HeldLock[] = [];
  try {
    for (const name of unique) {
      const timeoutMs = deadlineMs === null ? undefined : Math.max(1, Math.ceil(deadlineMs - performance.now()));
      grants.push(await backend.acquire(name, { ...(options.signal === undefined ? {} : { signal: options.signal }), ...(timeoutMs === undefined ? {} : { timeoutMs }) }));
    }
  } catch (error) {
    await releaseAll(grants);
    throw error;
  }
  const lost = AbortSignal.any(grants.map((grant) => grant.lost));
  let released = false;
  const release = async (): Promise<void> => {
    if (released) return;
    released = true;
    await releaseAll(grants);
  };
  return { grants, lost, release, [Symbol.asyncDispose]: release };
}

async function releaseAll(grants: readonly HeldLock[]): Promise<void> {
  const failures: unknown[] = [];
  for (const grant of [...grants].reverse()) {
    try {
      await grant.release();
    } catch (error) {
      failures.push(error);
    }
  }
  if (failures.length > 0) throw failures[0];
}
