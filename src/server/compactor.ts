/**
 * `AutoCompactor`: etcd's `--auto-compaction-mode` / `--auto-compaction-retention` (etcd 3.4,
 * etcdserver/api/v3compactor), acting on `ServerConfig.autoCompaction`. The leader decides a
 * revision and proposes `compact` through Raft, so every member compacts at the same log index.
 *
 * - `revision` mode (etcd's revision.go): every `revisionCheckIntervalMs` (etcd's revInterval,
 *   5 minutes), when `currentRevision - retentionRevisions > compactRevision`, compact to
 *   `currentRevision - retentionRevisions`.
 * - `periodic` mode (etcd's periodic.go): let `compactIntervalMs = min(retention, 1 h)`. Every
 *   `compactIntervalMs / 10` the current revision is sampled; the first compaction comes once
 *   `retention` has passed since `start()`, then one every `compactIntervalMs` after the last that
 *   succeeded. Each compacts to the newest revision sampled at least `retention` ago. So a 24 h
 *   retention samples every 6 minutes and compacts hourly; a 10 m retention samples every minute
 *   and compacts every 10 minutes. A failed attempt is retried at the next sample. Unlike etcd,
 *   samples carry their time, so a late timer cannot make the compactor keep less than
 *   `retention` of history, and for retentions past `periodicSamplesMax` samples the sampling
 *   interval widens to keep memory bounded.
 * - Only the leader proposes. Stepping down pauses at the next tick and becoming leader resumes at
 *   the next tick, as etcd's Pause/Resume. Periodic samples are taken on every member whatever its
 *   role and the compaction timer is not reset on resume (etcd 3.4 keeps sampling while paused
 *   too): a member that followed for longer than `retention` can compact as soon as it leads,
 *   and frequent elections cannot postpone compaction forever.
 * - At most one compaction is in flight. Its outcome: applied → `onCompacted(revision)`;
 *   SYNOD_COMPACTED or SYNOD_FUTURE_REVISION → skipped (periodic: counts as done, as etcd treats
 *   ErrCompacted); SYNOD_NO_LEADER, SYNOD_PROPOSAL_DROPPED or SYNOD_REQUEST_TIMEOUT → retried at
 *   the next tick; SYNOD_NODE_STOPPED → ignored (the server is shutting down); anything else →
 *   `onFatal`.
 */

import { AssertionFailure, assert, isSynodError, mark, SynodError } from '../base/index.js';
import type { ApplyResult, Command } from '../kv/index.js';
import type { AutoCompaction } from './flags.js';
import {
  intervalCheckScheduler, monotonicClock, type CheckScheduler, type LeaseClock,
} from './lease/clock.js';

/** etcd's revInterval: how often revision mode checks, in ms. */
export const revisionCheckIntervalMsDefault = 5 * 60 * 1000;
/** etcd's periodic compactor compacts at most this far apart, in ms (one hour). */
export const periodicCompactIntervalMsMax = 60 * 60 * 1000;
/** etcd's retryDivisor: revision samples taken per periodic compaction interval. */
export const periodicSamplesPerCompactInterval = 10;
/**
 * Revision samples one periodic compactor holds, at most. With etcd's 6-minute sampling this
 * covers retentions up to ~999 h; longer ones sample less often instead of holding more.
 */
export const periodicSamplesMax = 10_000;

/** Outcomes after which a compaction is retried at the next tick (it may not have committed). */
const retriedCodes = new Set([
  'SYNOD_NO_LEADER', 'SYNOD_PROPOSAL_DROPPED', 'SYNOD_REQUEST_TIMEOUT',
]);
/** Applied outcomes that mean there was nothing to compact to this revision. */
const skippedCodes = new Set(['SYNOD_COMPACTED', 'SYNOD_FUTURE_REVISION']);

/** What the compactor needs of a `RaftNode`; a `RaftNode` is one. */
export interface AutoCompactorNode {
  readonly isLeader: boolean;
  readonly stateMachine: { readonly store: CompactorStoreView };
  propose(command: Command): Promise<ApplyResult>;
}

/** The store's revision bounds, as this member has applied them. */
export interface CompactorStoreView {
  readonly currentRevision: number;
  /** 0 when never compacted. */
  readonly compactRevision: number;
}

/** Options of `new AutoCompactor(...)`. */
export interface AutoCompactorOptions {
  readonly node: AutoCompactorNode;
  /** `ServerConfig.autoCompaction`; with `{ mode: 'off' }` start() and stop() do nothing. */
  readonly autoCompaction: AutoCompaction;
  /** Default `monotonicClock`. Periodic mode reads it to date its samples. */
  readonly clock?: LeaseClock;
  /** Default `intervalCheckScheduler` (setInterval, unref'd). */
  readonly scheduler?: CheckScheduler;
  /** Revision mode's check period in ms. Default `revisionCheckIntervalMsDefault`. */
  readonly revisionCheckIntervalMs?: number;
  /** Called with the revision of each compaction this member proposed, once applied here. */
  readonly onCompacted?: (revision: number) => void;
  /** Receives an unexpected compaction failure or a bug. Default: rethrow asynchronously. */
  readonly onFatal?: (error: unknown) => void;
}

/** The periodic compactor's timing for one retention, all in ms. */
export interface PeriodicIntervals {
  /** How often the current revision is sampled (etcd's retryInterval, widened past the bound). */
  readonly sampleIntervalMs: number;
  /** Time between two successful compactions: min(retention, 1 h). */
  readonly compactIntervalMs: number;
}

/** etcd's getCompactInterval and getRetryInterval, with samples bounded by `periodicSamplesMax`. */
export function periodicIntervals(retentionMs: number): PeriodicIntervals {
  assert(Number.isSafeInteger(retentionMs) && retentionMs > 0, 'a retention is positive');
  const compactIntervalMs = Math.min(retentionMs, periodicCompactIntervalMsMax);
  // Two slots spare: the sample at or before the window's start, and one for timer rounding.
  const sampleIntervalMs = Math.max(
    1,
    Math.ceil(compactIntervalMs / periodicSamplesPerCompactInterval),
    Math.ceil(retentionMs / (periodicSamplesMax - 2)),
  );
  // Invariant: a whole retention of samples fits the bound.
  assert(retentionMs / sampleIntervalMs + 2 <= periodicSamplesMax, 'periodic samples bounded');
  return { sampleIntervalMs, compactIntervalMs };
}

/** How one mode picks the revision to compact to. */
interface CompactionPolicy {
  /** How often the compactor ticks, in ms. */
  readonly tickIntervalMs: number;
  /** Runs once, at `start()`. */
  begin(nowMs: number, store: CompactorStoreView): void;
  /** Runs on every tick, leader or not. */
  observe(nowMs: number, store: CompactorStoreView): void;
  /** The revision to compact to now, if any. Called only on the leader, nothing in flight. */
  target(nowMs: number, store: CompactorStoreView): number | undefined;
  /** A compaction ended applied or moot (compacted already, or a future revision). */
  done(nowMs: number): void;
}

/** Revision mode: keep the last `retentionRevisions` revisions. */
class RevisionPolicy implements CompactionPolicy {
  readonly tickIntervalMs: number;
  readonly #retentionRevisions: number;

  constructor(options: { retentionRevisions: number; tickIntervalMs: number }) {
    this.#retentionRevisions = options.retentionRevisions;
    this.tickIntervalMs = options.tickIntervalMs;
  }

  begin(): void {}

  observe(): void {}

  target(_nowMs: number, store: CompactorStoreView): number | undefined {
    const revision = store.currentRevision - this.#retentionRevisions;
    if (revision <= store.compactRevision) {
      mark('auto compaction: revision retention not exceeded');
      return undefined;
    }
    return revision;
  }

  done(): void {}
}

interface RevisionSample {
  readonly atMs: number;
  readonly revision: number;
}

/** Periodic mode: keep `retentionMs` of history. */
class PeriodicPolicy implements CompactionPolicy {
  readonly tickIntervalMs: number;
  readonly #retentionMs: number;
  readonly #compactIntervalMs: number;
  /** Oldest first; at most one sample is older than `retentionMs`. */
  readonly #samples: RevisionSample[] = [];
  /** No compaction before this time (etcd: lastSuccess + baseInterval). */
  #nextCompactionMs = Number.POSITIVE_INFINITY;

  constructor(options: { retentionMs: number }) {
    const { sampleIntervalMs, compactIntervalMs } = periodicIntervals(options.retentionMs);
    this.#retentionMs = options.retentionMs;
    this.#compactIntervalMs = compactIntervalMs;
    this.tickIntervalMs = sampleIntervalMs;
  }

  begin(nowMs: number, store: CompactorStoreView): void {
    // etcd waits a whole retention before the first compaction, then compactIntervalMs.
    this.#nextCompactionMs = nowMs + this.#retentionMs;
    this.observe(nowMs, store);
  }

  get sampleCount(): number {
    return this.#samples.length;
  }

  observe(nowMs: number, store: CompactorStoreView): void {
    const last = this.#samples.at(-1);
    assert(last === undefined || last.atMs <= nowMs, 'samples are taken in time order');
    this.#samples.push({ atMs: nowMs, revision: store.currentRevision });
    const horizonMs = nowMs - this.#retentionMs;
    // Keep the newest sample at or before the horizon: it is the one a compaction uses.
    while (this.#samples.length > 1 && this.#samples[1]!.atMs <= horizonMs) this.#samples.shift();
    if (this.#samples.length > periodicSamplesMax) {
      // Only a scheduler firing faster than asked gets here; the bound holds regardless.
      mark('auto compaction: periodicSamplesMax');
      this.#samples.shift();
    }
  }

  target(nowMs: number, store: CompactorStoreView): number | undefined {
    if (nowMs < this.#nextCompactionMs) return undefined;
    const oldest = this.#samples[0];
    if (oldest === undefined || oldest.atMs > nowMs - this.#retentionMs) {
      mark('auto compaction: no sample a retention old');
      return undefined;
    }
    if (oldest.revision <= store.compactRevision) {
      // Compacted past it already (by a client, say): as etcd on ErrCompacted, wait an interval.
      mark('auto compaction: periodic target already compacted');
      this.done(nowMs);
      return undefined;
    }
    return oldest.revision;
  }

  done(nowMs: number): void {
    this.#nextCompactionMs = nowMs + this.#compactIntervalMs;
  }
}

/** One member's automatic compaction. Single-threaded, like the node. */
export class AutoCompactor {
  readonly #node: AutoCompactorNode;
  readonly #clock: LeaseClock;
  readonly #scheduler: CheckScheduler;
  readonly #policy: CompactionPolicy | undefined;
  readonly #onCompacted: (revision: number) => void;
  readonly #onFatal: (error: unknown) => void;
  #cancelTick: (() => void) | undefined;
  #started = false;
  #stopped = false;
  /** The revision of the compaction in flight, or undefined. */
  #inFlightRevision: number | undefined;

  /** Validates `options` (SYNOD_INVALID_CONFIG). Call `start()` to begin. */
  constructor(options: AutoCompactorOptions) {
    this.#node = options.node;
    this.#clock = options.clock ?? monotonicClock;
    this.#scheduler = options.scheduler ?? intervalCheckScheduler;
    this.#onCompacted = options.onCompacted ?? ((): void => {});
    this.#onFatal = options.onFatal ?? rethrowLater;
    this.#policy = policyFor(options);
  }

  /** Whether a compaction this member proposed has not settled yet. */
  get compactionInFlight(): boolean {
    return this.#inFlightRevision !== undefined;
  }

  /** Periodic revision samples held (0 in other modes); at most `periodicSamplesMax`. */
  get sampleCount(): number {
    return this.#policy instanceof PeriodicPolicy ? this.#policy.sampleCount : 0;
  }

  /** Takes the first sample and schedules the ticks. Call once, after the node exists. */
  start(): void {
    assert(!this.#started, 'AutoCompactor started twice');
    this.#started = true;
    if (this.#policy === undefined) return;
    const policy = this.#policy;
    policy.begin(this.#clock.nowMs(), this.#node.stateMachine.store);
    this.#cancelTick = this.#scheduler.schedule(() => this.tick(), policy.tickIntervalMs);
  }

  /** Cancels the ticks. A compaction in flight still applies, but is no longer reported. */
  stop(): void {
    this.#stopped = true;
    this.#cancelTick?.();
    this.#cancelTick = undefined;
  }

  /** One round (the scheduler calls it): sample, then propose a compaction if one is due. */
  tick(): void {
    if (this.#policy === undefined || this.#stopped || !this.#started) return;
    const nowMs = this.#clock.nowMs();
    const store = this.#node.stateMachine.store;
    this.#policy.observe(nowMs, store);
    if (!this.#node.isLeader) {
      mark('auto compaction: paused, not leader');
      return;
    }
    if (this.#inFlightRevision !== undefined) {
      mark('auto compaction: one already in flight');
      return;
    }
    const revision = this.#policy.target(nowMs, store);
    if (revision === undefined) return;
    assert(revision > store.compactRevision, 'compact only forward');
    assert(revision <= store.currentRevision, 'compact only to a revision that exists');
    this.#propose(revision);
  }

  #propose(revision: number): void {
    this.#inFlightRevision = revision;
    mark('auto compaction: proposed');
    this.#node.propose({ type: 'compact', revision }).then(
      (result) => this.#onApplied(revision, result),
      (error: unknown) => this.#onNotApplied(error),
    ).catch(this.#onFatal);
  }

  #onApplied(revision: number, result: ApplyResult): void {
    assert(this.#inFlightRevision === revision, 'the settled compaction is the one in flight');
    this.#inFlightRevision = undefined;
    if (this.#stopped) return;
    if (result.ok) {
      this.#policy?.done(this.#clock.nowMs());
      this.#onCompacted(revision);
      return;
    }
    if (skippedCodes.has(result.error.code)) {
      mark('auto compaction: skipped');
      this.#policy?.done(this.#clock.nowMs());
      return;
    }
    throw result.error;
  }

  #onNotApplied(error: unknown): void {
    this.#inFlightRevision = undefined;
    if (error instanceof AssertionFailure || !isSynodError(error)) throw error;
    if (this.#stopped || error.code === 'SYNOD_NODE_STOPPED') return;
    if (!retriedCodes.has(error.code)) throw error;
    // Not committed, or committed unseen (a timeout): the next tick decides again.
    mark('auto compaction: not committed, retried');
  }
}

/** The policy `options` configure, validated; undefined when compaction is off. */
function policyFor(options: AutoCompactorOptions): CompactionPolicy | undefined {
  const invalid = (why: string): never => {
    throw new SynodError('SYNOD_INVALID_CONFIG', `invalid auto compaction options: ${why}`);
  };
  const revisionCheckIntervalMs = options.revisionCheckIntervalMs ?? revisionCheckIntervalMsDefault;
  if (!isPositiveInteger(revisionCheckIntervalMs)) invalid('revisionCheckIntervalMs');
  const autoCompaction = options.autoCompaction;
  switch (autoCompaction.mode) {
    case 'off':
      return undefined;
    case 'revision': {
      const { retentionRevisions } = autoCompaction;
      if (!isPositiveInteger(retentionRevisions)) invalid('retentionRevisions');
      return new RevisionPolicy({ retentionRevisions, tickIntervalMs: revisionCheckIntervalMs });
    }
    case 'periodic': {
      const { retentionMs } = autoCompaction;
      if (!isPositiveInteger(retentionMs)) invalid('retentionMs');
      return new PeriodicPolicy({ retentionMs });
    }
    default:
      return invalid(`mode ${String((autoCompaction as { mode: unknown }).mode)}`);
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
