/**
 * Leader election: etcd's `concurrency.Election` over plain KV, and Curator's LeaderLatch on top.
 *
 * Key scheme (etcd's, so Go clients and `etcdctl elect` can share an election): a candidate puts
 * `<name>/<lease ID in hex>` on its session's lease, creating it only if absent (a session that
 * campaigns again finds its own key). The leader is the candidate whose key has the lowest create
 * revision, so candidates lead in campaign order. A waiting candidate watches only its
 * predecessor — the key with the greatest create revision below its own — for a delete, so a
 * resignation wakes one candidate, not all of them (no herd effect); when the predecessor goes it
 * looks again, and leads once no older key remains.
 *
 * A term ends when its holder resigns, when its session is lost (the lease's expiry deletes the
 * key), or when anyone else deletes the key; `Leadership.lost` aborts in the last two cases. The
 * key's create revision names the term: it grows with every term, so it is a fencing token, and
 * `proclaim` writes only while the key is still the one created then (etcd's compare). A campaign
 * that is aborted or fails deletes its key, so it never becomes a leader nobody acts for.
 *
 * `leader()` answers null when no one leads, where etcd's Go client returns ErrElectionNoLeader:
 * absence is an ordinary answer here, not a failure. (Synod's server-side Election service still
 * answers etcd's "election: no leader", SYNOD_ELECTION_NO_LEADER.)
 *
 * `observe()` follows etcd's Observe — the current leader, each proclamation, then the next
 * leader — but reads the next leader as of the revision that deleted the last one, so it yields
 * every term in order, none skipped, as long as that history has not been compacted (then it
 * resumes from the latest state, and terms in between are not seen).
 *
 * LeaderLatch (leader-latch.ts) is a background candidate built on this.
 */

import { SynodError, assert, isSynodError } from '../../base/index.js';
import type { SynodClient } from '../client.js';
import { invalidArgument } from '../errors.js';
import { toBuffer, type Bytes, type KeyValue } from '../kv-types.js';
import type { CallOptions } from '../transport.js';
import { compare, op } from '../txn.js';
import type { WatchEvent } from '../watch.js';
import { waitForEvent } from './wait.js';
import type { Session } from './session.js';
import { waitScope } from './wait.js';

/** Election names longer than this are refused (keys stay well inside etcd's request limit). */
export const electionNameBytesMax = 4096;

/** One leader as the store holds it. */
export interface ElectionLeader {
  /** The leader's candidate key, `<name>/<lease hex>`. */
  readonly key: string;
  /** The value last proclaimed (or campaigned with). */
  readonly value: Buffer;
  /** The key's create revision: names the term and grows with every term (a fencing token). */
  readonly revision: bigint;
  /** The revision of the last proclamation (the key's mod revision). */
  readonly modRevision: bigint;
  /** The leader's session lease. */
  readonly lease: bigint;
}

/** Options of `Election.campaign`. */
export interface CampaignOptions {
  /** Abort the wait; the campaign's key is deleted and the promise rejects with the reason. */
  readonly signal?: AbortSignal;
}

function leaderOf(kv: KeyValue): ElectionLeader {
  return {
    key: kv.key.toString(), value: kv.value, revision: kv.createRevision,
    modRevision: kv.modRevision, lease: kv.lease,
  };
}

function notLeader(): SynodError {
  return new SynodError('SYNOD_ELECTION_NOT_LEADER');
}

function checkedName(name: string): string {
  if (name === '' || Buffer.byteLength(name) > electionNameBytesMax) {
    throw invalidArgument(`election name must be 1..${electionNameBytesMax} bytes`);
  }
  return name;
}

/** One term of leadership held through a session; resign it (or dispose) to hand over. */
export class Leadership implements AsyncDisposable {
  readonly name: string;
  readonly key: string;
  /** The leader key's create revision: this term's fencing token. */
  readonly revision: bigint;
  readonly #session: Session;
  readonly #lost = new AbortController();
  /** Aborts when the term ends for any reason; stops the key watch. */
  readonly #ended = new AbortController();
  readonly #onEnded: () => void;
  readonly #onSessionLost = (): void => this.#lose(this.#session.lost.reason);

  /** @internal Use `Election.campaign`. The key is known to exist at `watchFromRevision - 1`. */
  constructor(options: {
    name: string; key: string; revision: bigint; session: Session; watchFromRevision: bigint;
    onEnded: () => void;
  }) {
    this.name = options.name;
    this.key = options.key;
    this.revision = options.revision;
    this.#session = options.session;
    this.#onEnded = options.onEnded;
    if (this.#session.lost.aborted) {
      // Born lost; `onEnded` is for terms that end later (the caller never records this one).
      this.#lost.abort(this.#session.lost.reason);
      this.#ended.abort();
      return;
    }
    this.#session.lost.addEventListener('abort', this.#onSessionLost, { once: true });
    void this.#watchKey(options.watchFromRevision);
  }

  /** Aborts when the term ends other than by `resign`: session loss, or the key deleted. */
  get lost(): AbortSignal {
    return this.#lost.signal;
  }

  /** Whether the term is still held (not resigned, not lost). */
  get held(): boolean {
    return !this.#ended.signal.aborted;
  }

  /** Replaces the leader's value; rejects with SYNOD_ELECTION_NOT_LEADER once the term is over. */
  async proclaim(value: Bytes, options: CallOptions = {}): Promise<void> {
    if (!this.held) throw notLeader();
    const result = await this.#session.client.txn()
      .if(compare.createRevision(this.key, '==', this.revision))
      .then(op.put(this.key, value, { lease: this.#session.leaseId }))
      .commit(options);
    if (result.succeeded) return;
    this.#lose(notLeader());
    throw notLeader();
  }

  /** Ends the term by deleting the key (only this term's key); safe to repeat. */
  async resign(options: CallOptions = {}): Promise<void> {
    if (!this.held) return;
    this.#end();
    // Guarded by this term's create revision, a resend deletes nothing else: safe to retry.
    await this.#session.client.txn()
      .if(compare.createRevision(this.key, '==', this.revision))
      .then(op.delete(this.key))
      .commit({ ...options, idempotent: true });
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.resign();
  }

  #lose(reason: unknown): void {
    if (!this.held) return;
    this.#lost.abort(reason);
    this.#end();
  }

  #end(): void {
    this.#ended.abort();
    this.#session.lost.removeEventListener('abort', this.#onSessionLost);
    this.#onEnded();
  }

  /** Loses the term when the key is deleted by anyone but `resign` (an operator, lease expiry). */
  async #watchKey(fromRevision: bigint): Promise<void> {
    const client = this.#session.client;
    const signal = this.#ended.signal;
    let revision = fromRevision;
    try {
      while (!signal.aborted) {
        // Ends on a delete, or with null when the history from `revision` was compacted away.
        await waitForEvent(client, this.key, { type: 'delete', startRevision: revision, signal });
        const now = await client.range(this.key, { signal });
        const kv = now.kvs[0];
        if (kv === undefined || kv.createRevision !== this.revision) {
          const reason = `election ${this.name}: the leader key was deleted`;
          this.#lose(new SynodError('SYNOD_ELECTION_NOT_LEADER', reason));
          return;
        }
        revision = now.header.revision + 1n;
      }
    } catch {
      // The term ended (resigned or lost) or the client closed: nothing left to watch.
    }
  }
}

/** A candidate in the election `name`, campaigning through `session`. */
export class Election implements AsyncDisposable {
  readonly session: Session;
  readonly name: string;
  readonly #prefix: string;
  readonly #key: string;
  #leadership: Leadership | null = null;
  #campaigning = false;

  constructor(session: Session, name: string) {
    this.session = session;
    this.name = checkedName(name);
    this.#prefix = `${name}/`;
    this.#key = `${this.#prefix}${session.leaseId.toString(16)}`;
  }

  /** This candidate's key, `<name>/<lease hex>`. */
  get key(): string {
    return this.#key;
  }

  /** The term this object holds, or null. */
  get leadership(): Leadership | null {
    return this.#leadership;
  }

  /** Whether this object holds a term now (as far as it knows; see `Leadership.lost`). */
  get isLeader(): boolean {
    return this.#leadership !== null;
  }

  /**
   * Waits until this candidate leads, with `value` as the leader's value. When it already leads,
   * proclaims `value` instead. Rejects on abort or session loss, after deleting its key.
   */
  async campaign(value: Bytes, options: CampaignOptions = {}): Promise<Leadership> {
    const current = this.#leadership;
    if (current !== null) {
      await current.proclaim(value);
      return current;
    }
    if (this.#campaigning) {
      throw invalidArgument(`election ${this.name}: this object is already campaigning`);
    }
    this.session.throwIfLost();
    this.#campaigning = true;
    const scope = waitScope({ name: this.name, signals: [options.signal, this.session.lost] });
    let createRevision: bigint | null = null;
    try {
      createRevision = await this.#enter(value, scope.signal);
      const verifiedAt = await this.#waitForTurn(createRevision, scope.signal);
      const leadership: Leadership = new Leadership({
        name: this.name, key: this.#key, revision: createRevision, session: this.session,
        watchFromRevision: verifiedAt + 1n,
        onEnded: () => {
          if (this.#leadership === leadership) this.#leadership = null;
        },
      });
      if (leadership.held) this.#leadership = leadership;
      return leadership;
    } catch (error) {
      await this.#withdraw(createRevision);
      throw error;
    } finally {
      scope.dispose();
      this.#campaigning = false;
    }
  }

  /** Replaces the leader's value; SYNOD_ELECTION_NOT_LEADER unless this object leads. */
  async proclaim(value: Bytes, options?: CallOptions): Promise<void> {
    const leadership = this.#leadership;
    if (leadership === null) throw notLeader();
    await leadership.proclaim(value, options);
  }

  /** Gives up the term this object holds, if any (etcd: resigning a non-leader is a no-op). */
  async resign(options?: CallOptions): Promise<void> {
    await this.#leadership?.resign(options);
  }

  /** The current leader, or null when there is none (see the module comment). */
  async leader(options: CallOptions = {}): Promise<ElectionLeader | null> {
    const first = await this.session.client.range(this.#prefix, {
      ...options, prefix: true, sort: { target: 'create', order: 'ascend' }, limit: 1,
    });
    const kv = first.kvs[0];
    return kv === undefined ? null : leaderOf(kv);
  }

  /**
   * Every leader in order, with each proclamation, until `signal` aborts or the consumer stops
   * (see the module comment). Starts with the current leader, or waits for the first one.
   */
  observe(options: { readonly signal?: AbortSignal } = {}): AsyncIterable<ElectionLeader> {
    const signal = options.signal ?? new AbortController().signal;
    return observeLeaders(this.session.client, this.#prefix, signal);
  }

  /** Resigns the term this object holds. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.resign();
  }

  /** Puts our key if absent (proclaiming `value` on a key this session already had). */
  async #enter(value: Bytes, signal: AbortSignal): Promise<bigint> {
    const result = await this.session.client.txn()
      .if(compare.createRevision(this.#key, '==', 0n))
      .then(op.put(this.#key, value, { lease: this.session.leaseId }))
      .else(op.get(this.#key))
      // A resend after an unknown outcome finds our key and takes the else branch, as a
      // re-campaign does.
      .commit({ signal, idempotent: true });
    if (result.succeeded) return result.header.revision;
    const mine = result.responses[0];
    assert(mine?.kind === 'range', 'election: the else branch reads the key');
    const existing = mine.range.kvs[0];
    assert(existing !== undefined, 'election: a key that failed create==0 exists');
    if (!existing.value.equals(toBuffer(value))) {
      const proclaimed = await this.session.client.txn()
        .if(compare.createRevision(this.#key, '==', existing.createRevision))
        .then(op.put(this.#key, value, { lease: this.session.leaseId }))
        .commit({ signal });
      if (!proclaimed.succeeded) throw notLeader();
    }
    return existing.createRevision;
  }

  /**
   * Waits until no key older than ours remains, watching one predecessor at a time; resolves to
   * the revision at which our own key was seen in place afterwards.
   */
  async #waitForTurn(createRevision: bigint, signal: AbortSignal): Promise<bigint> {
    const client: SynodClient = this.session.client;
    while (true) {
      signal.throwIfAborted();
      const before = await client.range(this.#prefix, {
        prefix: true, maxCreateRevision: createRevision - 1n,
        sort: { target: 'create', order: 'descend' }, limit: 1, signal,
      });
      const predecessor = before.kvs[0];
      if (predecessor === undefined) break;
      const from = before.header.revision + 1n;
      await waitForEvent(client, predecessor.key, { type: 'delete', startRevision: from, signal });
    }
    // Our key may have gone with the lease (or an operator) while we waited: then we lead nothing.
    const own = await client.range(this.#key, { signal });
    if (own.kvs[0]?.createRevision !== createRevision) throw notLeader();
    return own.header.revision;
  }

  /** Deletes our key after a failed campaign; an unknown one only if it is on our lease. */
  async #withdraw(createRevision: bigint | null): Promise<void> {
    const guard = createRevision === null
      ? compare.lease(this.#key, '==', this.session.leaseId)
      : compare.createRevision(this.#key, '==', createRevision);
    try {
      await this.session.client.txn()
        .if(guard)
        .then(op.delete(this.#key))
        .commit({ idempotent: true });
    } catch {
      // The session's lease deletes the key at the latest when it ends.
    }
  }
}

/** The events on `key` (a prefix if asked) from `startRevision` on; ends quietly on abort. */
async function* eventsFrom(
  client: SynodClient, key: string,
  options: { startRevision: bigint; prefix?: boolean; signal: AbortSignal },
): AsyncGenerator<WatchEvent> {
  if (options.signal.aborted) return;
  const { startRevision } = options;
  const watcher = await client.watch(key, { startRevision, prefix: options.prefix === true });
  const onAbort = (): void => void watcher.close();
  options.signal.addEventListener('abort', onAbort, { once: true });
  // An abort while the watch was being created fired no listener: it would wait forever.
  if (options.signal.aborted) onAbort();
  try {
    for await (const batch of watcher) yield* batch.events;
  } finally {
    options.signal.removeEventListener('abort', onAbort);
    await watcher.close();
  }
}

/**
 * The leader as of `atRevision` (null: the latest), or else the first key put after it; with the
 * revision to follow that leader's key from. Null when aborted first.
 */
async function leaderFrom(
  client: SynodClient, prefix: string, atRevision: bigint | null, signal: AbortSignal,
): Promise<{ leader: ElectionLeader; followFrom: bigint } | null> {
  const first = await client.range(prefix, {
    prefix: true, sort: { target: 'create', order: 'ascend' }, limit: 1, signal,
    ...(atRevision === null ? {} : { revision: atRevision }),
  });
  const seenAt = atRevision ?? first.header.revision;
  const kv = first.kvs[0];
  if (kv !== undefined) return { leader: leaderOf(kv), followFrom: seenAt + 1n };
  // No candidate: with the prefix empty, the first key put on it is the next leader.
  const puts = eventsFrom(client, prefix, { prefix: true, startRevision: seenAt + 1n, signal });
  for await (const event of puts) {
    if (event.type !== 'put') continue;
    return { leader: leaderOf(event.kv), followFrom: event.kv.modRevision + 1n };
  }
  return null;
}

function sameVersion(a: ElectionLeader | null, b: ElectionLeader): boolean {
  return a !== null && a.key === b.key && a.revision === b.revision &&
    a.modRevision === b.modRevision;
}

/** Yields each leader and proclamation in revision order (see the module comment). */
async function* observeLeaders(
  client: SynodClient, prefix: string, signal: AbortSignal,
): AsyncGenerator<ElectionLeader> {
  // The revision to read the next leader at: the one that deleted the last; null means latest.
  let atRevision: bigint | null = null;
  let last: ElectionLeader | null = null;
  while (!signal.aborted) {
    try {
      const found = await leaderFrom(client, prefix, atRevision, signal);
      if (found === null) return;
      atRevision = null;
      if (!sameVersion(last, found.leader)) yield (last = found.leader);
      const startRevision = found.followFrom;
      const changes = eventsFrom(client, found.leader.key, { startRevision, signal });
      for await (const event of changes) {
        if (event.type === 'delete') {
          atRevision = event.kv.modRevision;
          break;
        }
        yield (last = leaderOf(event.kv));
      }
    } catch (error) {
      if (signal.aborted) return;
      // The history we follow is gone: resume from the latest state, skipping terms in between.
      if (!isSynodError(error, 'SYNOD_COMPACTED')) throw error;
      atRevision = null;
    }
  }
}
