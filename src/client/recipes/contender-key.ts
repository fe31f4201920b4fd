/**
 * Contender keys shared by the ranked recipes (ReadWriteLock, Semaphore): a key unique to one
 * acquisition, created under a session's lease, and the grant object that ties its life to the
 * session. Unlike Mutex (one key per session and name, etcd's scheme), these recipes let one
 * session hold several places, so each acquisition gets `<prefix><lease hex>-<sequence>`.
 */

import { SynodError, assert } from '../../base/index.js';
import type { HeldLock } from '../locks/lock.js';
import { compare, op } from '../txn.js';
import type { Session } from './session.js';

let sequence = 0;

/** A new contender key under `prefix` for `session`, unique within this process. */
export function uniqueContenderKey(session: Session, prefix: string): string {
  sequence = (sequence + 1) % Number.MAX_SAFE_INTEGER;
  return `${prefix}${session.leaseId.toString(16)}-${sequence.toString(16)}`;
}

/**
 * Creates `key` on the session's lease if absent; resolves to its create revision. The Txn is
 * create-if-absent, so a resend after a failover reads the key created by the first attempt.
 */
export async function createContender(session: Session, key: string, signal?: AbortSignal): Promise<bigint> {
  const result = await session.client.txn()
    .if(compare.createRevision(key, '==', 0n))
    .then(op.put(key, '', { lease: session.leaseId }))
    .else(op.get(key))
    .commit({ idempotent: true, ...(signal === undefined ? {} : { signal }) });
  if (result.succeeded) return result.header.revision;
  const existing = result.responses[0];
  assert(existing?.kind === 'range' && existing.range.kvs[0] !== undefined, 'contender: an existing key is read back');
  return existing.range.kvs[0].createRevision;
}

/** Deletes `key` if it is still the one created at `createRevision` (never a later one). */
export async function deleteContender(session: Session, key: string, createRevision: bigint): Promise<void> {
  await session.client.txn().if(compare.createRevision(key, '==', createRevision)).then(op.delete(key)).commit({ idempotent: true });
}

/** Like deleteContender for a wait that gave up: errors are left to the lease's expiry. */
export async function withdrawContender(session: Session, key: string, createRevision: bigint): Promise<void> {
  try {
    await deleteContender(session, key, createRevision);
  } catch {
    // The session's lease deletes the key at the latest when it expires.
  }
}

/** A grant held through a contender key: lost with the session, released by deleting the key. */
export class ContenderGrant implements HeldLock {
  readonly name: string;
  readonly fencingToken: bigint;
  readonly key: string;
  readonly #session: Session;
  readonly #lost = new AbortController();
  readonly #onSessionLost = (): void => this.#lost.abort(this.#session.lost.reason);
  #released = false;

  constructor(options: { name: string; key: string; createRevision: bigint; session: Session }) {
    this.name = options.name;
    this.key = options.key;
    this.fencingToken = options.createRevision;
    this.#session = options.session;
    if (options.session.lost.aborted) this.#onSessionLost();
    else options.session.lost.addEventListener('abort', this.#onSessionLost, { once: true });
  }

  get lost(): AbortSignal {
    return this.#lost.signal;
  }

  async release(): Promise<void> {
    if (this.#released) return;
    this.#released = true;
    this.#session.lost.removeEventListener('abort', this.#onSessionLost);
    if (this.#lost.signal.aborted) return;
    await deleteContender(this.#session, this.key, this.fencingToken);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.release();
  }
}

/** The error when a contender's own key vanished while it waited (its lease expired). */
export function sessionExpired(): SynodError {
  return new SynodError('SYNOD_LOCK_SESSION_EXPIRED');
}
