/**
 * Mutex: etcd's `concurrency.Mutex`, with a fencing token and `await using`.
 *
 * Each contender puts `<name>/<lease ID in hex>` attached to its session's lease, in one Txn that
 * creates the key only if it is absent (so a session re-locking finds its own key). Contenders are
 * ordered by the key's create revision — first come, first served (FIFO) — and the holder is the
 * lowest. A waiter watches only its predecessor (the key created just before its own) for a
 * delete, never the whole prefix, so a release wakes one waiter, not a herd (ZooKeeper's
 * ephemeral-sequential recipe). When the predecessor goes, the waiter looks again: it holds the
 * lock only once no key older than its own remains.
 *
 * The fencing token is the holder key's create revision: cluster-wide, it grows strictly with
 * every grant of the name. A resource that remembers the highest token it accepted and refuses
 * lower ones is safe even from a holder that was paused past its session's TTL (Kleppmann's
 * fencing). Within etcd itself, `guard()` gives the compare a Txn needs to write only while the
 * lock is held.
 *
 * On session loss the lock is lost too: `lost` aborts, since the lease's expiry deletes the key and
 * the next waiter takes over. A holder must stop acting on `lost`, and should pass its fencing
 * token to every resource it touches because it may learn of the loss late. A wait that is
 * aborted, times out, or loses its session deletes its key, so it never blocks those behind it.
 */

import { SynodError, assert } from '../../base/index.js';
import type { SynodClient } from '../client.js';
import { invalidArgument } from '../errors.js';
import type { AcquireOptions, HeldLock } from '../locks/lock.js';
import { compare, op, type Compare } from '../txn.js';
import type { Session } from './session.js';
import { waitForDelete, waitScope } from './wait.js';

/** Lock names longer than this are refused (keys stay well inside etcd's request limit). */
export const lockNameBytesMax = 4096;

/** A contender's position after its key is in place. */
interface Contender {
  readonly key: string;
  readonly createRevision: bigint;
  readonly ownerCreateRevision: bigint;
}

/** One held grant of a Mutex. */
class MutexGrant implements HeldLock {
  readonly name: string;
  readonly fencingToken: bigint;
  readonly key: string;
  readonly #lost = new AbortController();
  readonly #release: () => Promise<void>;
  #released = false;
  readonly #stopWatching: () => void;

  constructor(options: { name: string; key: string; revision: bigint; session: Session; release: () => Promise<void> }) {
    this.name = options.name;
    this.key = options.key;
    this.fencingToken = options.revision;
    this.#release = options.release;
    const onSessionLost = (): void => this.#lose(options.session.lost.reason);
    options.session.lost.addEventListener('abort', onSessionLost, { once: true });
    this.#stopWatching = (): void => options.session.lost.removeEventListener('abort', onSessionLost);
    if (options.session.lost.aborted) onSessionLost();
  }

  get lost(): AbortSignal {
    return this.#lost.signal;
  }

  /** @internal The key was deleted (by an operator, or its lease expired on the server). */
  markLost(reason: unknown): void {
    this.#lose(reason);
  }

  async release(): Promise<void> {
    if (this.#released) return;
    this.#released = true;
    this.#stopWatching();
    if (this.#lost.signal.aborted) return;
    await this.#release();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.release();
  }

  #lose(reason: unknown): void {
    if (this.#released || this.#lost.signal.aborted) return;
    this.#lost.abort(reason);
  }
}

/** A named lock held through a session. One Mutex object serves one holder at a time. */
export class Mutex {
  readonly session: Session;
  readonly name: string;
  readonly #prefix: string;
  readonly #key: string;
  #held: MutexGrant | null = null;

  constructor(session: Session, name: string) {
    if (name === '' || Buffer.byteLength(name) > lockNameBytesMax) {
      throw invalidArgument(`lock name must be 1..${lockNameBytesMax} bytes`);
    }
    this.session = session;
    this.name = name;
    this.#prefix = `${name}/`;
    this.#key = `${this.#prefix}${session.leaseId.toString(16)}`;
  }

  /** The holder key of this contender (`<name>/<lease hex>`). */
  get key(): string {
    return this.#key;
  }

  /** The grant this object holds now, if any. */
  get held(): HeldLock | null {
    return this.#held;
  }

  /** Waits for the lock (FIFO); rejects on timeout (LockTimeoutError), abort, or session loss. */
  async acquire(options: AcquireOptions = {}): Promise<HeldLock> {
    this.#refuseIfHeld();
    const scope = waitScope({ name: this.name, signals: [options.signal, this.session.lost], timeoutMs: options.timeoutMs });
    try {
      let contender: Contender;
      try {
        // An enqueue cancelled in flight may still have created the key: withdraw it either way.
        contender = await this.#waitForTurn(await this.#enqueue(scope.signal), scope.signal);
      } catch (error) {
        await this.#withdraw();
        throw error;
      }
      return this.#grant(contender);
    } finally {
      scope.dispose();
    }
  }

  /** The lock if no one else holds it now, else null (this contender's key is withdrawn). */
  async tryAcquire(): Promise<HeldLock | null> {
    this.#refuseIfHeld();
    this.session.throwIfLost();
    const contender = await this.#enqueue(undefined);
    if (contender.ownerCreateRevision === contender.createRevision) return this.#grant(contender);
    await this.#withdraw();
    return null;
  }

  /** A Txn compare that holds only while this grant's key is in place: write under the lock. */
  guard(): Compare {
    const held = this.#held;
    if (held === null) throw new SynodError('SYNOD_INVALID_ARGUMENT', `mutex ${this.name}: guard() needs the lock held`);
    return compare.createRevision(this.#key, '==', held.fencingToken);
  }

  #refuseIfHeld(): void {
    if (this.#held !== null) {
      throw invalidArgument(`mutex ${this.name} is already held by this object; use ReentrantMutex to nest`);
    }
  }

  /** Puts this contender's key if absent; reads its create revision and the owner's. */
  async #enqueue(signal: AbortSignal | undefined): Promise<Contender> {
    const owner = op.get(this.#prefix, { prefix: true, sort: { target: 'create', order: 'ascend' }, limit: 1 });
    const result = await this.session.client.txn()
      .if(compare.createRevision(this.#key, '==', 0n))
      .then(op.put(this.#key, '', { lease: this.session.leaseId }), owner)
      .else(op.get(this.#key), owner)
      // Sent twice, the second finds the key and reads it: the same outcome, so failover may resend.
      .commit({ idempotent: true, ...(signal === undefined ? {} : { signal }) });
    const [mine, first] = result.responses;
    let createRevision: bigint;
    if (result.succeeded) {
      createRevision = result.header.revision;
    } else {
      assert(mine?.kind === 'range', 'mutex: the else branch reads the key');
      const existing = mine.range.kvs[0];
      // The key vanished between the compare and the read: impossible inside one Txn.
      assert(existing !== undefined, 'mutex: a key that failed create==0 exists');
      createRevision = existing.createRevision;
    }
    assert(first?.kind === 'range', 'mutex: the Txn reads the owner');
    const ownerCreateRevision = first.range.kvs[0]?.createRevision ?? createRevision;
    return { key: this.#key, createRevision, ownerCreateRevision };
  }

  /** Waits until no key created before ours remains, watching one predecessor at a time. */
  async #waitForTurn(contender: Contender, signal: AbortSignal): Promise<Contender> {
    if (contender.ownerCreateRevision === contender.createRevision) return contender;
    const client: SynodClient = this.session.client;
    while (true) {
      signal.throwIfAborted();
      const before = await client.range(this.#prefix, {
        prefix: true, maxCreateRevision: contender.createRevision - 1n,
        sort: { target: 'create', order: 'descend' }, limit: 1, signal,
      });
      const predecessor = before.kvs[0];
      if (predecessor === undefined) break;
      await waitForDelete(client, predecessor.key, before.header.revision + 1n, signal);
    }
    // Our own key may have gone with an expired lease while we waited: then we hold nothing.
    const own = await client.get(this.#key, { signal });
    if (own === null || own.createRevision !== contender.createRevision) {
      throw new SynodError('SYNOD_LOCK_SESSION_EXPIRED');
    }
    return { ...contender, ownerCreateRevision: contender.createRevision };
  }

  #grant(contender: Contender): HeldLock {
    const grant: MutexGrant = new MutexGrant({
      name: this.name, key: this.#key, revision: contender.createRevision, session: this.session,
      release: (): Promise<void> => this.#release(grant),
    });
    this.#held = grant;
    void this.#watchOwnKey(grant);
    return grant;
  }

  /** Marks the grant lost if its key is deleted by anyone but its own release. */
  async #watchOwnKey(grant: MutexGrant): Promise<void> {
    try {
      await waitForDelete(this.session.client, this.#key, grant.fencingToken, grant.lost);
      if (this.#held === grant) grant.markLost(new SynodError('SYNOD_LOCK_SESSION_EXPIRED', `mutex ${this.name}: holder key deleted`));
    } catch {
      // The grant ended (released or lost) or the client closed; nothing left to watch.
    }
  }

  async #release(grant: MutexGrant): Promise<void> {
    if (this.#held === grant) this.#held = null;
    // The key watch of #watchOwnKey sees this delete and ends; the grant is released, not lost.
    // Delete only our own grant: a key re-created later by this session is a different grant.
    await this.session.client.txn()
      .if(compare.createRevision(this.#key, '==', grant.fencingToken))
      .then(op.delete(this.#key))
      .commit({ idempotent: true });
  }

  async #withdraw(): Promise<void> {
    try {
      await this.session.client.txn().then(op.delete(this.#key)).commit({ idempotent: true });
    } catch {
      // The session's lease deletes the key at the latest when it expires.
    }
  }
}
