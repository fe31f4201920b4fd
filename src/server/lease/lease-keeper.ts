/**
 * `LeaseKeeper`: the leader's lease clock (etcd's lessor, server/lease/lessor.go, without
 * checkpointing). The replicated state machine holds only each lease's granted TTL; when a lease
 * expires is decided here, on the leader, from an injected monotonic clock, and carried out by
 * proposing `leaseRevoke` through Raft, so every member deletes the attached keys at one revision.
 *
 * - Deadlines exist only while this member leads. On becoming leader every lease's deadline is
 *   now + TTL + election timeout (etcd's Promote): a client renewing through the old leader gets
 *   at least one election timeout to find the new one. On stepping down they are dropped.
 * - Leases granted elsewhere (through a follower) are learned from the state machine: each apply
 *   marks the view stale and the next check reconciles it (so such a lease's clock starts at most
 *   one check interval late, which errs toward keeping it). `noteGranted`, `keepAlive` and
 *   `remainingTtlSeconds` start a lease's clock at once if the check has not yet.
 * - Expired leases are revoked at most `revokesPerSecondMax` per sliding second (etcd's
 *   leaseRevokeRate), oldest deadline first, never two revokes of one lease at a time, and at
 *   most `revokesInFlightMax` outstanding.
 * - Stall guard (etcd#15247): when the check runs an election timeout later than scheduled, this
 *   process stalled and may have been deposed without knowing yet. Its clients could not reach it
 *   either, so every deadline moves by the stall and nothing is revoked in that round.
 *
 * Memory: the deadline map holds only leases the state machine holds (entries are added after a
 * lookup there and removed on revoke or reconcile), so clients cannot grow it by renewing IDs.
 */

import { AssertionFailure, assert, isSynodError, mark, SynodError } from '../../base/index.js';
import type { ApplyResult, Command, Lease, LeaseTimeToLiveResponse } from '../../kv/index.js';
import type { SoftState } from '../../raft/index.js';
import {
  intervalCheckScheduler, monotonicClock, type CheckScheduler, type LeaseClock,
} from './clock.js';

/** etcd's expiry check period (lessor.go runLoop: every 500 ms). */
export const checkIntervalMsDefault = 500;
/** etcd's leaseRevokeRate: expired leases revoked per second, at most. */
export const revokesPerSecondMaxDefault = 1000;
/**
 * Revoke proposals outstanding at once. Below the node's pendingProposalsMax (4096), so expiry
 * alone never fills the proposal queue clients' writes share.
 */
export const revokesInFlightMax = 1000;

const millisecondsPerSecond = 1000;

/** What the keeper needs of a `RaftNode`; a `RaftNode` is one. */
export interface LeaseKeeperNode {
  readonly isLeader: boolean;
  readonly stateMachine: {
    readonly store: {
      leaseLeases(): { leases: Lease[] };
      leaseTimeToLive(request: { id: bigint; keys?: boolean }): LeaseTimeToLiveResponse;
    };
  };
  propose(command: Command): Promise<ApplyResult>;
  /** Resolves once a quorum confirmed this member's leadership after the call (ReadIndex). */
  linearizableRead(): Promise<number>;
  onApplied(listener: (appliedIndex: number) => void): () => void;
  onSoftState(listener: (softState: SoftState) => void): () => void;
}

/** Options of `new LeaseKeeper(...)`. */
export interface LeaseKeeperOptions {
  readonly node: LeaseKeeperNode;
  /** The Raft election timeout in ms (electionTicks × tickIntervalMs): the promote grace. */
  readonly electionTimeoutMs: number;
  /** Default `monotonicClock`. */
  readonly clock?: LeaseClock;
  /** Default `intervalCheckScheduler` (setInterval). */
  readonly scheduler?: CheckScheduler;
  /** Default `checkIntervalMsDefault`. */
  readonly checkIntervalMs?: number;
  /** Default `revokesPerSecondMaxDefault`. */
  readonly revokesPerSecondMax?: number;
  /** Receives an `AssertionFailure` met by a revoke. Default: rethrow asynchronously (crash). */
  readonly onFatal?: (error: unknown) => void;
  /** Planted bug for the chaos harness (src/server/planted-bugs.ts): never revoke. */
  readonly neverExpire?: boolean;
}

interface LeaseDeadline {
  readonly ttlSeconds: number;
  /** Monotonic ms after which the lease is expired; renewing moves it. */
  deadlineMs: number;
}

/** The leader-side lease clock of one member. Single-threaded, like the node. */
export class LeaseKeeper {
  readonly #node: LeaseKeeperNode;
  readonly #clock: LeaseClock;
  readonly #scheduler: CheckScheduler;
  readonly #electionTimeoutMs: number;
  readonly #checkIntervalMs: number;
  readonly #neverExpire: boolean;
  readonly #onFatal: (error: unknown) => void;
  readonly #deadlines = new Map<bigint, LeaseDeadline>();
  readonly #revoking = new Set<bigint>();
  readonly #revokeWindow: SlidingWindow;
  #leading = false;
  #stale = true;
  #lastCheckMs = 0;
  #unsubscribe: (() => void)[] = [];

  /** Validates `options` (SYNOD_INVALID_CONFIG). Call `start()` to begin. */
  constructor(options: LeaseKeeperOptions) {
    this.#node = options.node;
    this.#clock = options.clock ?? monotonicClock;
    this.#scheduler = options.scheduler ?? intervalCheckScheduler;
    this.#electionTimeoutMs = options.electionTimeoutMs;
    this.#checkIntervalMs = options.checkIntervalMs ?? checkIntervalMsDefault;
    this.#neverExpire = options.neverExpire ?? false;
    this.#onFatal = options.onFatal ?? rethrowLater;
    const revokesPerSecondMax = options.revokesPerSecondMax ?? revokesPerSecondMaxDefault;
    const invalid = (why: string): never => {
      throw new SynodError('SYNOD_INVALID_CONFIG', `invalid lease keeper options: ${why}`);
    };
    if (!isPositiveInteger(this.#electionTimeoutMs)) invalid('electionTimeoutMs');
    if (!isPositiveInteger(this.#checkIntervalMs)) invalid('checkIntervalMs');
    if (!isPositiveInteger(revokesPerSecondMax)) invalid('revokesPerSecondMax');
    this.#revokeWindow = new SlidingWindow({
      eventsMax: revokesPerSecondMax, windowMs: millisecondsPerSecond,
    });
  }

  /** Subscribes to the node and schedules the expiry check. Call once, after the node exists. */
  start(): void {
    assert(this.#unsubscribe.length === 0, 'LeaseKeeper started twice');
    this.#unsubscribe = [
      this.#node.onSoftState((softState) => this.#onRole(softState.role === 'leader')),
      this.#node.onApplied(() => {
        this.#stale = true;
      }),
      this.#scheduler.schedule(() => this.check(), this.#checkIntervalMs),
    ];
    this.#onRole(this.#node.isLeader);
  }

  /** Stops checking and forgets every deadline. Revokes in flight still settle. */
  stop(): void {
    for (const unsubscribe of this.#unsubscribe.splice(0)) unsubscribe();
    this.#onRole(false);
  }

  /** Leases with a deadline (0 unless leading). */
  get size(): number {
    return this.#deadlines.size;
  }

  /** Revoke proposals outstanding. */
  get revokesInFlight(): number {
    return this.#revoking.size;
  }

  /**
   * etcd's LeaseRenew on the leader: restarts lease `id`'s clock and returns its granted TTL, or
   * 0 when the lease is unknown, expired or being revoked (etcd answers a keep-alive for a lost
   * lease with TTL 0, not an error). Throws SYNOD_NOT_LEADER unless this member leads.
   */
  keepAlive(id: bigint): number {
    this.#assertLeading();
    const entry = this.#lookup(id);
    if (entry === undefined) return 0;
    const nowMs = this.#clock.nowMs();
    // etcd waits for an expired lease's revoke and then answers "not found"; the revoke is already
    // decided here, so the answer is the same without the wait.
    if (entry.deadlineMs <= nowMs || this.#revoking.has(id)) return 0;
    entry.deadlineMs = nowMs + entry.ttlSeconds * millisecondsPerSecond;
    return entry.ttlSeconds;
  }

  /**
   * A client's keep-alive: `keepAlive` once a quorum has confirmed, after the request arrived,
   * that this member still leads (the renewal half of etcd#15247). Without it a leader that was
   * paused or cut off, and deposed without knowing yet, answers "renewed" while the real leader's
   * clock runs on; the client then believes its key safe for a TTL the real leader never
   * granted. Any new leader is elected after the confirming quorum answered, and promotes every
   * lease to TTL + election timeout from then, so a renewal answered here is honoured there.
   * Rejects as `linearizableRead` does (no leader, leadership lost) or with SYNOD_NOT_LEADER.
   */
  async renew(id: bigint): Promise<number> {
    this.#assertLeading();
    await this.#node.linearizableRead();
    return this.keepAlive(id);
  }

  /**
   * The whole seconds lease `id` has left (etcd truncates), 0 once expired, or -1 when unknown.
   * Throws SYNOD_NOT_LEADER unless this member leads.
   */
  remainingTtlSeconds(id: bigint): number {
    this.#assertLeading();
    const entry = this.#lookup(id);
    if (entry === undefined) return -1;
    const remainingMs = entry.deadlineMs - this.#clock.nowMs();
    return Math.max(0, Math.trunc(remainingMs / millisecondsPerSecond));
  }

  /** Starts lease `id`'s clock now if it is granted and not yet tracked; a no-op off the leader. */
  noteGranted(id: bigint): void {
    if (this.#leading) this.#lookup(id);
  }

  /**
   * One expiry round (the scheduler calls it): reconcile with the state machine, then propose
   * revokes for expired leases within the rate and in-flight bounds. A no-op off the leader.
   */
  check(): void {
    if (!this.#leading || this.#neverExpire) return;
    const nowMs = this.#clock.nowMs();
    const lateMs = nowMs - this.#lastCheckMs - this.#checkIntervalMs;
    this.#lastCheckMs = nowMs;
    const stalled = lateMs > this.#electionTimeoutMs;
    if (stalled) {
      mark('lease check: stalled, deadlines extended');
      for (const entry of this.#deadlines.values()) entry.deadlineMs += lateMs;
    }
    // After the stall extension: a lease first seen now starts its clock now, not later.
    if (this.#stale) this.#reconcile(nowMs);
    if (stalled) return;
    for (const id of this.#expired(nowMs)) {
      if (this.#revoking.size >= revokesInFlightMax) {
        mark('lease revoke deferred: revokesInFlightMax');
        break;
      }
      if (!this.#revokeWindow.allows(nowMs)) {
        mark('lease revoke deferred: revokesPerSecondMax');
        break;
      }
      this.#revokeWindow.record(nowMs);
      this.#revoke(id);
    }
  }

  #assertLeading(): void {
    if (!this.#leading || !this.#node.isLeader) {
      throw new SynodError('SYNOD_NOT_LEADER', 'lease deadlines are kept by the leader');
    }
  }

  #onRole(leading: boolean): void {
    if (leading === this.#leading) return;
    this.#leading = leading;
    this.#deadlines.clear();
    if (leading) this.#promote();
  }

  /** etcd's Promote without checkpoints: every lease gets TTL + election timeout from now. */
  #promote(): void {
    const nowMs = this.#clock.nowMs();
    this.#lastCheckMs = nowMs;
    for (const lease of this.#node.stateMachine.store.leaseLeases().leases) {
      const deadlineMs = nowMs + lease.ttlSeconds * millisecondsPerSecond + this.#electionTimeoutMs;
      this.#deadlines.set(lease.id, { ttlSeconds: lease.ttlSeconds, deadlineMs });
    }
    this.#stale = false;
  }

  /** Mirrors the state machine's leases: drops revoked ones, starts the clock of new ones. */
  #reconcile(nowMs: number): void {
    const granted = new Set<bigint>();
    for (const lease of this.#node.stateMachine.store.leaseLeases().leases) {
      granted.add(lease.id);
      if (this.#deadlines.has(lease.id)) continue;
      const deadlineMs = nowMs + lease.ttlSeconds * millisecondsPerSecond;
      this.#deadlines.set(lease.id, { ttlSeconds: lease.ttlSeconds, deadlineMs });
    }
    for (const id of this.#deadlines.keys()) {
      if (!granted.has(id)) this.#deadlines.delete(id);
    }
    this.#stale = false;
    // Invariant: the map mirrors the state machine's leases exactly after a reconcile.
    assert(this.#deadlines.size === granted.size, 'lease deadlines mirror the state machine');
  }

  /** The deadline of lease `id` if the state machine holds it, starting its clock if new. */
  #lookup(id: bigint): LeaseDeadline | undefined {
    const { grantedTtlSeconds } = this.#node.stateMachine.store.leaseTimeToLive({ id });
    if (grantedTtlSeconds < 0) {
      this.#deadlines.delete(id);
      return undefined;
    }
    let entry = this.#deadlines.get(id);
    if (entry === undefined) {
      const deadlineMs = this.#clock.nowMs() + grantedTtlSeconds * millisecondsPerSecond;
      entry = { ttlSeconds: grantedTtlSeconds, deadlineMs };
      this.#deadlines.set(id, entry);
    }
    assert(entry.ttlSeconds === grantedTtlSeconds, 'a lease keeps its granted TTL');
    return entry;
  }

  /** Expired leases not already being revoked, oldest deadline first. */
  #expired(nowMs: number): bigint[] {
    const expired: [bigint, number][] = [];
    for (const [id, entry] of this.#deadlines) {
      if (entry.deadlineMs > nowMs || this.#revoking.has(id)) continue;
      expired.push([id, entry.deadlineMs]);
    }
    return expired.sort((a, b) => a[1] - b[1]).map(([id]) => id);
  }

  #revoke(id: bigint): void {
    assert(!this.#revoking.has(id), 'one revoke per lease at a time');
    this.#revoking.add(id);
    mark('lease expired: revoke proposed');
    this.#node.propose({ type: 'leaseRevoke', id }).then(
      (result) => {
        this.#revoking.delete(id);
        // Applied, or already revoked by a client: either way the lease is gone everywhere.
        if (result.ok || isSynodError(result.error, 'SYNOD_LEASE_NOT_FOUND')) {
          this.#deadlines.delete(id);
          return;
        }
        // Refused when applied (a write-blocking alarm, say): the lease is still expired, so
        // the next check proposes again.
        mark('lease revoke refused when applied: retried');
      },
      (error: unknown) => {
        this.#revoking.delete(id);
        if (error instanceof AssertionFailure || !isSynodError(error)) throw error;
        // Dropped, timed out or no leader: the next check retries while the lease is expired.
        mark('lease revoke not committed: retried');
      },
    ).catch(this.#onFatal);
  }
}

/** Admits at most `eventsMax` events in any `windowMs` of time; memory is `eventsMax` numbers. */
class SlidingWindow {
  readonly #windowMs: number;
  readonly #timesMs: number[] = [];
  #oldest = 0;
  readonly #eventsMax: number;

  constructor(options: { eventsMax: number; windowMs: number }) {
    assert(options.eventsMax > 0 && options.windowMs > 0, 'a window admits something');
    this.#eventsMax = options.eventsMax;
    this.#windowMs = options.windowMs;
  }

  allows(nowMs: number): boolean {
    if (this.#timesMs.length < this.#eventsMax) return true;
    return this.#timesMs[this.#oldest]! <= nowMs - this.#windowMs;
  }

  record(nowMs: number): void {
    assert(this.allows(nowMs), 'record only what the window allows');
    if (this.#timesMs.length < this.#eventsMax) {
      this.#timesMs.push(nowMs);
      return;
    }
    // Full: the oldest slot is overwritten, and the next one becomes the oldest.
    this.#timesMs[this.#oldest] = nowMs;
    this.#oldest = (this.#oldest + 1) % this.#eventsMax;
  }
}

function isPositiveInteger(value: number): boolean {
  return Number.isSafeInteger(value) && value > 0;
}

function rethrowLater(error: unknown): void {
  queueMicrotask(() => {
    throw error;
  });
}
