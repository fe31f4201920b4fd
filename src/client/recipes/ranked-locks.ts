/**
 * Locks that rank contenders by create revision, beyond the plain Mutex:
 *
 * - `ReadWriteLock` (etcd recipes.RWMutex): readers put `<name>/read/…`, writers `<name>/write/…`.
 *   A reader holds once no writer key is older than its own; a writer once no key at all is
 *   older. Arrival order is kept, so a waiting writer is not starved by readers arriving after it.
 *   Each waits on one predecessor (the newest older key it must outlive), as Mutex does.
 * - `Semaphore` (Curator InterProcessSemaphoreV2): `permits` holders at a time, FIFO. A waiter
 *   holds once fewer than `permits` keys are older than its own. Any older key's deletion can
 *   admit it, so it watches the prefix for deletes (a wake-up per release, not per change).
 *
 * Both give a fencing token (the contender key's create revision) and lose their grants with the
 * session; a wait that is aborted or times out withdraws its key.
 */

import type { SynodClient } from '../client.js';
import { invalidArgument } from '../errors.js';
import type { AcquireOptions, HeldLock } from '../locks/lock.js';
import { ContenderGrant, createContender, sessionExpired, uniqueContenderKey, withdrawContender } from './contender-key.js';
import { lockNameBytesMax } from './mutex.js';
import type { Session } from './session.js';
import { waitForDelete, waitScope } from './wait.js';

/** Permits beyond this are refused: a semaphore that large is a configuration mistake. */
export const semaphorePermitsMax = 1_000_000;

function checkedName(name: string): string {
  if (name === '' || Buffer.byteLength(name) > lockNameBytesMax) throw invalidArgument(`lock name must be 1..${lockNameBytesMax} bytes`);
  return name;
}

/** Waits until no key under `prefix` is older than `createRevision`, one predecessor at a time. */
async function outliveOlderKeys(client: SynodClient, prefix: string, createRevision: bigint, signal: AbortSignal): Promise<void> {
  while (true) {
    signal.throwIfAborted();
    const older = await client.range(prefix, {
      prefix: true, maxCreateRevision: createRevision - 1n, sort: { target: 'create', order: 'descend' }, limit: 1, signal,
    });
    const predecessor = older.kvs[0];
    if (predecessor === undefined) return;
    await waitForDelete(client, predecessor.key, older.header.revision + 1n, signal);
  }
}

/** Waits until fewer than `permits` keys under `prefix` are older than `createRevision`. */
async function waitForPermit(
  client: SynodClient, prefix: string, createRevision: bigint, permits: number, signal: AbortSignal,
): Promise<void> {
  while (true) {
    signal.throwIfAborted();
    // Not countOnly: etcd's count ignores the create-revision filter (it counts the whole range).
    const older = await client.range(prefix, {
      prefix: true, maxCreateRevision: createRevision - 1n, keysOnly: true, limit: permits,
      sort: { target: 'create', order: 'ascend' }, signal,
    });
    if (older.kvs.length < permits) return;
    await waitForDelete(client, prefix, older.header.revision + 1n, signal, { prefix: true });
  }
}

/** Creates a contender key, runs `wait`, and grants; withdraws the key if the wait fails. */
async function contend(options: {
  session: Session; name: string; keyPrefix: string; acquire: AcquireOptions;
  wait: (createRevision: bigint, signal: AbortSignal) => Promise<void>;
}): Promise<HeldLock> {
  const { session, name, acquire } = options;
  const scope = waitScope({ name, signals: [acquire.signal, session.lost], timeoutMs: acquire.timeoutMs });
  const key = uniqueContenderKey(session, options.keyPrefix);
  let createRevision: bigint | null = null;
  try {
    createRevision = await createContender(session, key, scope.signal);
    await options.wait(createRevision, scope.signal);
    const own = await session.client.get(key, { signal: scope.signal });
    if (own === null || own.createRevision !== createRevision) throw sessionExpired();
    return new ContenderGrant({ name, key, createRevision, session });
  } catch (error) {
    if (createRevision !== null) await withdrawContender(session, key, createRevision);
    else await session.client.delete(key).catch(() => undefined);
    throw error;
  } finally {
    scope.dispose();
  }
}

/** A reader-writer lock; many readers or one writer. */
export class ReadWriteLock {
  readonly session: Session;
  readonly name: string;

  constructor(session: Session, name: string) {
    this.session = session;
    this.name = checkedName(name);
  }

  /** A shared (read) grant: waits for older writers only. */
  acquireRead(options: AcquireOptions = {}): Promise<HeldLock> {
    const writers = `${this.name}/write/`;
    return contend({
      session: this.session, name: this.name, keyPrefix: `${this.name}/read/`, acquire: options,
      wait: (revision, signal) => outliveOlderKeys(this.session.client, writers, revision, signal),
    });
  }

  /** An exclusive (write) grant: waits for every older reader and writer. */
  acquireWrite(options: AcquireOptions = {}): Promise<HeldLock> {
    const everyone = `${this.name}/`;
    return contend({
      session: this.session, name: this.name, keyPrefix: `${this.name}/write/`, acquire: options,
      wait: (revision, signal) => outliveOlderKeys(this.session.client, everyone, revision, signal),
    });
  }
}

/** A counting semaphore with `permits` holders at a time. */
export class Semaphore {
  readonly session: Session;
  readonly name: string;
  readonly permits: number;

  constructor(session: Session, name: string, permits: number) {
    if (!Number.isSafeInteger(permits) || permits < 1 || permits > semaphorePermitsMax) {
      throw invalidArgument(`permits must be a whole number in 1..${semaphorePermitsMax}`);
    }
    this.session = session;
    this.name = checkedName(name);
    this.permits = permits;
  }

  /** One permit, FIFO among waiters. */
  acquire(options: AcquireOptions = {}): Promise<HeldLock> {
    const prefix = `${this.name}/`;
    return contend({
      session: this.session, name: this.name, keyPrefix: prefix, acquire: options,
      wait: (revision, signal) => waitForPermit(this.session.client, prefix, revision, this.permits, signal),
    });
  }
}
