/**
 * Snowflake worker ids leased from Synod, with Leaf-snowflake's clock guards. `leaseWorkerId`
 * hands a generator a `WorkerGrant`: a worker id nobody else holds, the timestamp above which it
 * may issue, and a reservation bound it moves forward through `extend`.
 *
 * Keys, under `<prefix>` (default `synod/ids/snowflake/<cluster>`):
 * - `<prefix>/workers/<dc>/<w>`, on the owner's lease, holds a `WorkerReport` (clock-guard.ts).
 *   Why a lease and create-if-absent: a Txn comparing the key's create revision with 0 lets one
 *   process in; a crashed owner's key vanishes one TTL later, so its id is reused instead of
 *   leaking (Leaf's persistent ZooKeeper nodes never free a worker id).
 * - `<prefix>/reserved/<dc>/<w>`, without a lease, holds the reservation bound: the highest
 *   timestamp (unix ms) any owner of `w` may have issued. Why: Leaf refuses to start behind the
 *   last timestamp it recorded; keeping that bound durable and reading it as the next owner's
 *   `lastUsedMs` keeps ids of one worker id increasing across owners whatever their clocks say.
 *   Every write of it is a Txn that also requires the worker key to be ours (its create revision
 *   and lease), so an owner that lost the id can never move it; only the worker key's owner
 *   writes it, so an unexpected value is one of our own writes whose answer was lost.
 *
 * Loss (why locally: the server may expire the lease before the client hears of it, e.g. after a
 * pause of this process). The grant counts itself lost at `send time + remaining TTL − margin` of
 * its last answered check, on a monotonic clock. The SDK's keep-alive (lease.ts) renews the lease
 * and reports TTL 0 answers, revokes through this client and a full TTL without renewal; it does
 * not expose when it sent the renewals it heard back from, nor take a margin, so each heartbeat
 * also asks the lease's remaining TTL (LeaseTimeToLive, whole seconds truncated as etcd does): the
 * server's deadline is at least the remaining TTL after the moment we asked, which is what a
 * renewal's send time gives too. Each heartbeat also rewrites the report, guarded by the worker
 * key's create revision, so a key deleted or taken by someone else is noticed within one beat.
 *
 * Clock checks at start (clock-guard.ts): Leaf compares a starting node with the others' average
 * time, so a start reads the live reports and refuses a clock more than `clockSkewMsMax` off;
 * and it refuses a stored reservation further ahead of this clock than `startWaitMsMax`, which
 * the generator would otherwise have to wait out before its first id.
 */

import { SynodError, assert, isSynodError } from '../../base/index.js';
import type {
  Compare, KeyValue, LeaseKeepAlive, OpResult, SynodClient,
} from '../../client/index.js';
import { compare, op } from '../../client/index.js';
import {
  checkReservationReachable, formatWorkerReport, sampleLiveWorkers, wallNowMs,
} from './clock-guard.js';
import type { WorkerGrant } from './worker-grant.js';
import {
  resolveOptions, resolvePreferred, resolveSignal, type ResolvedWorkerLeaseOptions,
  type WorkerLeaseOptions,
} from './worker-lease-options.js';

export type { WorkerClock } from './clock-guard.js';
export {
  clockBoundMsLimit, clockSkewMsMaxDefault, datacenterIdsLimit, reportIntervalMsDefault,
  reportIntervalMsMin, reservationWindowMsDefault, snowflakeClusterDefault, snowflakePrefixBase,
  workerIdsMaxLimit, workerLeaseTtlSecondsDefault, workerLeaseTtlSecondsMax,
  type WorkerLeaseOptions,
} from './worker-lease-options.js';

/**
 * What `leaseWorkerId` returns: a WorkerGrant that also names its lease (for operators and tests)
 * and releases on `await using`. After `release()`, `lost` does not abort: the holder gave the id
 * back itself, and `extend` rejects with SYNOD_ID_WORKER_LEASE_LOST.
 */
export interface LeasedWorkerGrant extends WorkerGrant, AsyncDisposable {
  /** The Synod lease the worker key is attached to. */
  readonly leaseId: bigint;
  /** The lease's `startWaitMsMax`: the generator waits out a reservation up to this far ahead. */
  readonly startWaitMsMax: number;
}

/** The shortest pause between heartbeats, however close the deadline. */
const heartbeatDelayMsMin = 10;
/** Reservation writes per extend: our own lost answers are adopted, then the write is retried. */
const extendAttemptsMax = 3;

/** The keys of one datacenter's worker ids. */
class WorkerKeys {
  /** Every live worker key of the datacenter starts with this. */
  readonly workersPrefix: string;
  readonly #reservedPrefix: string;

  constructor(prefix: string, datacenterId: number) {
    this.workersPrefix = `${prefix}/workers/${datacenterId}/`;
    this.#reservedPrefix = `${prefix}/reserved/${datacenterId}/`;
  }

  worker(workerId: number): string {
    return `${this.workersPrefix}${workerId}`;
  }

  reserved(workerId: number): string {
    return `${this.#reservedPrefix}${workerId}`;
  }

  /** The worker id a live key names, or null for a key that names none in [0, workerIdsMax). */
  workerIdOf(key: Buffer, workerIdsMax: number): number | null {
    const suffix = key.toString('utf8').slice(this.workersPrefix.length);
    if (!/^(0|[1-9]\d{0,4})$/.test(suffix)) return null;
    const workerId = Number(suffix);
    return workerId < workerIdsMax ? workerId : null;
  }
}

/** A stored reservation: its bound (0 when never written) and the key's mod revision (0n then). */
interface Reservation {
  readonly ms: number;
  readonly modRevision: bigint;
}

function reservationOf(kv: KeyValue | null, key: string): Reservation {
  if (kv === null) return { ms: 0, modRevision: 0n };
  const text = kv.value.toString('utf8');
  const ms = /^\d{1,16}$/.test(text) ? Number(text) : Number.NaN;
  if (!Number.isSafeInteger(ms)) {
    throw new SynodError('SYNOD_ID_STORE_UNAVAILABLE',
      `reservation key ${key} does not hold a unix ms timestamp`);
  }
  return { ms, modRevision: kv.modRevision };
}

function rangeKv(result: OpResult | undefined): KeyValue | null {
  assert(result?.kind === 'range', 'worker lease: the Txn branch reads the key');
  return result.range.kvs[0] ?? null;
}

/** The compare that the reservation key is as we last saw it (absent when never written). */
function unchangedSince(key: string, modRevision: bigint): Compare {
  return modRevision === 0n
    ? compare.createRevision(key, '==', 0n)
    : compare.modRevision(key, '==', modRevision);
}

/** What a start shares between its steps. */
interface StartContext {
  readonly options: ResolvedWorkerLeaseOptions;
  readonly keys: WorkerKeys;
  readonly leaseId: bigint;
  readonly signal: AbortSignal | undefined;
}

/** A worker id taken: the worker key's create revision, and the reservation as it was. */
interface Claim {
  readonly workerId: number;
  readonly createRevision: bigint;
  readonly reservation: Reservation;
}

/** Creates `workerId`'s key if absent, reading its reservation in the same Txn; null if taken. */
async function claimWorkerId(context: StartContext, workerId: number): Promise<Claim | null> {
  const { options, keys, leaseId, signal } = context;
  const workerKey = keys.worker(workerId);
  const reservedKey = keys.reserved(workerId);
  const report = formatWorkerReport({
    host: options.host, pid: options.pid, reportedAtMs: wallNowMs(options.clock),
    reservedUntilMs: 0,
  });
  // Idempotent: a resend after a lost answer finds the key on our own lease, handled below.
  const result = await options.client.txn()
    .if(compare.createRevision(workerKey, '==', 0n))
    .then(op.put(workerKey, report, { lease: leaseId }), op.get(reservedKey))
    .else(op.get(workerKey), op.get(reservedKey))
    .commit({ idempotent: true, ...(signal === undefined ? {} : { signal }) });
  const reservation = reservationOf(rangeKv(result.responses[1]), reservedKey);
  if (result.succeeded) return { workerId, createRevision: result.header.revision, reservation };
  const holder = rangeKv(result.responses[0]);
  assert(holder !== null, 'claim: a failed create-if-absent finds the key');
  if (holder.lease !== leaseId) return null;
  return { workerId, createRevision: holder.createRevision, reservation };
}

/**
 * Tries every worker id from the preferred (or a random) one on: first those not seen live, then
 * the rest, whose owners may have gone since the read.
 */
async function claimAny(
  context: StartContext, seenLive: ReadonlySet<number>, preferred: number | null,
): Promise<Claim> {
  const { workerIdsMax, random, datacenterId } = context.options;
  const first = preferred ?? random.int(workerIdsMax);
  const order = Array.from({ length: workerIdsMax },
    (_, offset) => (first + offset) % workerIdsMax);
  const candidates = [
    ...order.filter((workerId) => !seenLive.has(workerId)),
    ...order.filter((workerId) => seenLive.has(workerId)),
  ];
  assert(candidates.length === workerIdsMax, 'claim: every worker id is tried once');
  for (const workerId of candidates) {
    const claim = await claimWorkerId(context, workerId);
    if (claim !== null) return claim;
  }
  throw new SynodError('SYNOD_ID_WORKER_IDS_EXHAUSTED',
    `all ${workerIdsMax} worker ids of datacenter ${datacenterId} are leased by live processes`);
}

async function revokeQuietly(client: SynodClient, leaseId: bigint): Promise<void> {
  try {
    await client.lease.revoke(leaseId);
  } catch {
    // Best effort: a lease not revoked expires after its TTL, and its keys with it.
  }
}

/**
 * Leases a worker id of `datacenterId` (see the file comment). Rejects with
 * SYNOD_INVALID_ARGUMENT for a bad option, SYNOD_ID_WORKER_IDS_EXHAUSTED when every id is held,
 * SYNOD_ID_CLOCK_BEHIND when this clock is off from the live workers' or far behind the stored
 * reservation, or the client's error; nothing is left held when it rejects.
 */
export async function leaseWorkerId(options: WorkerLeaseOptions): Promise<LeasedWorkerGrant> {
  const resolved = resolveOptions(options);
  const preferred = resolvePreferred(options, resolved.workerIdsMax);
  const signal = resolveSignal(options);
  signal?.throwIfAborted();
  const keys = new WorkerKeys(resolved.prefix, resolved.datacenterId);
  const grantRequestedMs = resolved.monotonicClock.nowMs();
  const keepAlive = await resolved.client.lease.grantKeptAlive(resolved.leaseTtlSeconds,
    signal === undefined ? {} : { signal });
  const context: StartContext = { options: resolved, keys, leaseId: keepAlive.id, signal };
  let grant: WorkerLease | null = null;
  try {
    const seenLive = await sampleLiveWorkers({
      client: resolved.client, workersPrefix: keys.workersPrefix,
      workerIdOf: (key) => keys.workerIdOf(key, resolved.workerIdsMax),
      liveWorkersMax: resolved.workerIdsMax, clock: resolved.clock,
      monotonicClock: resolved.monotonicClock, reportIntervalMs: resolved.reportIntervalMs,
      clockSkewMsMax: resolved.clockSkewMsMax, signal,
    });
    const claim = await claimAny(context, seenLive, preferred);
    checkReservationReachable({
      nowMs: wallNowMs(resolved.clock), reservedMs: claim.reservation.ms,
      startWaitMsMax: resolved.startWaitMsMax, worker: `${resolved.datacenterId}/${claim.workerId}`,
    });
    grant = new WorkerLease({ context, claim, keepAlive, grantRequestedMs });
    await grant.start();
    signal?.throwIfAborted();
    return grant;
  } catch (error) {
    keepAlive.close();
    if (grant !== null) await grant.release().catch(() => undefined);
    else await revokeQuietly(resolved.client, keepAlive.id);
    throw error;
  }
}

type GrantState = 'held' | 'lost' | 'released';

/** A held worker id: its heartbeat, lease deadline and reservation writes. */
class WorkerLease implements LeasedWorkerGrant {
  readonly datacenterId: number;
  readonly workerId: number;
  readonly lastUsedMs: number;
  readonly startWaitMsMax: number;
  /** The lease the worker key is on. */
  readonly leaseId: bigint;
  readonly #options: ResolvedWorkerLeaseOptions;
  readonly #keepAlive: LeaseKeepAlive;
  readonly #workerKey: string;
  readonly #reservedKey: string;
  readonly #createRevision: bigint;
  readonly #lost = new AbortController();
  /** Cancels the grant's calls in flight once it is lost or released. */
  readonly #calls = new AbortController();
  #state: GrantState = 'held';
  #reservedUntilMs: number;
  #reservedModRevision: bigint;
  /** The highest bound ever sent: a stored value above the confirmed one is ours up to this. */
  #attemptedUntilMs: number;
  #extending: Promise<number> | null = null;
  /** On the monotonic clock: past this the lease may be gone. */
  #deadlineMs: number;
  #heartbeatTimer: NodeJS.Timeout | null = null;
  /** When the last heartbeat began, on the monotonic clock: beats keep a fixed rate. */
  #heartbeatStartedMs = 0;
  #expiryTimer: NodeJS.Timeout | null = null;
  #revoking: Promise<void> | null = null;

  constructor(start: {
    context: StartContext; claim: Claim; keepAlive: LeaseKeepAlive; grantRequestedMs: number;
  }) {
    const { context, claim, keepAlive } = start;
    this.#options = context.options;
    this.datacenterId = context.options.datacenterId;
    this.workerId = claim.workerId;
    this.lastUsedMs = claim.reservation.ms;
    this.startWaitMsMax = context.options.startWaitMsMax;
    this.leaseId = keepAlive.id;
    this.#keepAlive = keepAlive;
    this.#workerKey = context.keys.worker(claim.workerId);
    this.#reservedKey = context.keys.reserved(claim.workerId);
    this.#createRevision = claim.createRevision;
    this.#reservedUntilMs = claim.reservation.ms;
    this.#reservedModRevision = claim.reservation.modRevision;
    this.#attemptedUntilMs = claim.reservation.ms;
    const ttlMs = keepAlive.ttlSeconds * 1000;
    assert(this.#options.leaseMarginMs < ttlMs, 'worker lease: the margin is inside the TTL');
    this.#deadlineMs = start.grantRequestedMs + ttlMs - this.#options.leaseMarginMs;
    const onKeepAliveLost = (): void => {
      const reason: unknown = keepAlive.lost.reason;
      const text = reason instanceof Error ? reason.message : String(reason);
      this.#markLost(`the keep-alive says: ${text}`);
    };
    if (keepAlive.lost.aborted) onKeepAliveLost();
    else keepAlive.lost.addEventListener('abort', onKeepAliveLost, { once: true });
  }

  get reservedUntilMs(): number {
    return this.#reservedUntilMs;
  }

  get lost(): AbortSignal {
    return this.#lost.signal;
  }

  /**
   * @internal Checks the lease (the deadline from the grant is stale after a long start: the
   * SDK renewed the lease meanwhile), reserves the first window and reports; throws if lost.
   */
  async start(): Promise<void> {
    await this.#checkLease({ signal: this.#calls.signal });
    const nowMs = wallNowMs(this.#options.clock);
    const { reservationWindowMs, startWaitMsMax } = this.#options;
    // A window past whichever is later, this clock or the last owner's bound, so that the grant
    // is usable as soon as the clock passes lastUsedMs; but never further ahead of this clock
    // than a successor on it would wait out.
    const windowUntilMs = Math.max(nowMs, this.lastUsedMs) + reservationWindowMs;
    const firstUntilMs = Math.max(this.lastUsedMs, Math.min(windowUntilMs, nowMs + startWaitMsMax));
    if (firstUntilMs > this.#reservedUntilMs) await this.extend(firstUntilMs);
    await this.#heartbeat();
    this.#throwIfNotHeld();
    this.#armExpiry();
    this.#scheduleHeartbeat();
  }

  async extend(requestedMs: number): Promise<number> {
    if (typeof requestedMs !== 'number' || !Number.isFinite(requestedMs) || requestedMs < 0) {
      throw new SynodError('SYNOD_INVALID_ARGUMENT', 'extend: untilMs must be a unix ms timestamp');
    }
    // The generator's clock may read fractions; the bound is whole ms, and at least what it
    // asked, except that it is clamped to startWaitMsMax ahead of this clock: a successor on this
    // clock could not start behind a bound further ahead (a clamped answer is below `untilMs`).
    const untilMs = Math.min(Math.ceil(requestedMs),
      wallNowMs(this.#options.clock) + this.#options.startWaitMsMax);
    // One write at a time: two in flight could apply out of order and lower the stored bound.
    for (;;) {
      this.#throwIfNotHeld();
      if (untilMs <= this.#reservedUntilMs) return this.#reservedUntilMs;
      const pending = this.#extending;
      if (pending === null) break;
      await pending.catch(() => undefined);
    }
    const writing = this.#writeReservation(untilMs);
    this.#extending = writing;
    try {
      return await writing;
    } finally {
      if (this.#extending === writing) this.#extending = null;
    }
  }

  async release(): Promise<void> {
    if (this.#state === 'released') return;
    const wasHeld = this.#state === 'held';
    this.#state = 'released';
    this.#stop(this.#error('was released'));
    if (!wasHeld) {
      await this.#revoking;
      return;
    }
    let failure: unknown = null;
    try {
      // Guarded by our create revision: never delete a successor's key. The reservation stays.
      await this.#options.client.txn()
        .if(compare.createRevision(this.#workerKey, '==', this.#createRevision))
        .then(op.delete(this.#workerKey))
        .commit({ idempotent: true });
    } catch (error) {
      failure = error;
    }
    try {
      await this.#options.client.lease.revoke(this.leaseId);
    } catch (error) {
      // Already gone (expired) is what releasing wants.
      if (!isSynodError(error, 'SYNOD_LEASE_NOT_FOUND')) failure ??= error;
    }
    if (failure !== null) throw failure;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.release();
  }

  async #writeReservation(targetMs: number): Promise<number> {
    for (let attempt = 0; attempt < extendAttemptsMax; attempt++) {
      this.#attemptedUntilMs = Math.max(this.#attemptedUntilMs, targetMs);
      // Idempotent: a resend after a lost answer fails the compare and is adopted below.
      const result = await this.#options.client.txn()
        .if(
          compare.createRevision(this.#workerKey, '==', this.#createRevision),
          compare.lease(this.#workerKey, '==', this.leaseId),
          unchangedSince(this.#reservedKey, this.#reservedModRevision),
        )
        .then(op.put(this.#reservedKey, String(targetMs)))
        .else(op.get(this.#workerKey), op.get(this.#reservedKey))
        .commit({ idempotent: true, signal: this.#calls.signal });
      this.#throwIfNotHeld();
      if (result.succeeded) {
        this.#adoptReservation({ ms: targetMs, modRevision: result.header.revision });
        return targetMs;
      }
      const holder = rangeKv(result.responses[0]);
      const ours = holder !== null && holder.createRevision === this.#createRevision &&
        holder.lease === this.leaseId;
      if (!ours) {
        throw this.#markLost('its worker key is gone or held by another owner');
      }
      const stored = reservationOf(rangeKv(result.responses[1]), this.#reservedKey);
      if (stored.ms < this.#reservedUntilMs || stored.ms > this.#attemptedUntilMs) {
        // Not one of our writes: someone else moved the bound, so it vouches for nothing now.
        throw this.#markLost(`its reservation key was moved to ${stored.ms} by someone else`);
      }
      this.#adoptReservation(stored);
      if (stored.ms >= targetMs) return stored.ms;
    }
    throw new SynodError('SYNOD_ID_STORE_UNAVAILABLE',
      `worker ${this.#name()}: its reservation kept moving under ${extendAttemptsMax} writes`);
  }

  #adoptReservation(reservation: Reservation): void {
    assert(reservation.ms >= this.#reservedUntilMs, 'worker lease: a reservation never moves back');
    assert(reservation.modRevision > 0n, 'worker lease: an adopted reservation is stored');
    this.#reservedUntilMs = reservation.ms;
    this.#reservedModRevision = reservation.modRevision;
  }

  /** Checks the lease's remaining TTL and rewrites the report; never throws a condition. */
  async #heartbeat(): Promise<void> {
    if (this.#state !== 'held') return;
    this.#heartbeatStartedMs = this.#options.monotonicClock.nowMs();
    if (this.#heartbeatStartedMs >= this.#deadlineMs) {
      this.#markLost('no lease check was answered in time (renewal overdue)');
      return;
    }
    const report = formatWorkerReport({
      host: this.#options.host, pid: this.#options.pid,
      reportedAtMs: wallNowMs(this.#options.clock), reservedUntilMs: this.#reservedUntilMs,
    });
    const call = { signal: this.#calls.signal, timeoutMs: this.#keepAlive.ttlSeconds * 1000 };
    const [, reported] = await Promise.allSettled([
      this.#checkLease(call),
      this.#options.client.txn()
        .if(compare.createRevision(this.#workerKey, '==', this.#createRevision))
        .then(op.put(this.#workerKey, report, { lease: this.leaseId }))
        .commit({ ...call, idempotent: true }),
    ]);
    // A failed call proves nothing either way; the deadline decides if none succeeds in time.
    if (reported.status === 'fulfilled' && !reported.value.succeeded) {
      this.#markLost('its worker key was deleted or re-created by someone else');
    }
  }

  /** Moves the deadline to what the server's remaining TTL vouches for, or declares loss. */
  async #checkLease(call: { signal: AbortSignal; timeoutMs?: number }): Promise<void> {
    const sentMs = this.#options.monotonicClock.nowMs();
    const { ttlSeconds } = await this.#options.client.lease.timeToLive(this.leaseId, call);
    if (this.#state !== 'held') return;
    if (ttlSeconds <= 0) {
      this.#markLost(ttlSeconds < 0 ? 'the lease no longer exists' : 'the lease is expiring');
      return;
    }
    // The server answered after we asked, so its deadline is at least this far from `sentMs`.
    const deadlineMs = sentMs + ttlSeconds * 1000 - this.#options.leaseMarginMs;
    this.#deadlineMs = Math.max(this.#deadlineMs, deadlineMs);
    this.#armExpiry();
  }

  #scheduleHeartbeat(): void {
    if (this.#state !== 'held') return;
    const nowMs = this.#options.monotonicClock.nowMs();
    // At a fixed rate, so that readers can count on a report per interval whatever the round
    // trips cost; and twice per remaining window at least, so a short TTL is checked in time.
    const untilNextMs = this.#heartbeatStartedMs + this.#options.reportIntervalMs - nowMs;
    const delayMs = Math.max(heartbeatDelayMsMin,
      Math.min(untilNextMs, (this.#deadlineMs - nowMs) / 2));
    this.#heartbeatTimer = setTimeout(() => {
      void this.#heartbeat().then(() => this.#scheduleHeartbeat());
    }, delayMs);
    this.#heartbeatTimer.unref();
  }

  #armExpiry(): void {
    if (this.#state !== 'held') return;
    if (this.#expiryTimer !== null) clearTimeout(this.#expiryTimer);
    const remainingMs = Math.max(0, this.#deadlineMs - this.#options.monotonicClock.nowMs());
    this.#expiryTimer = setTimeout(() => {
      this.#expiryTimer = null;
      if (this.#options.monotonicClock.nowMs() < this.#deadlineMs) this.#armExpiry();
      else this.#markLost('no lease check was answered within the TTL less the margin');
    }, remainingMs);
    this.#expiryTimer.unref();
  }

  /** Declares the grant lost (once); returns why it is unusable now. */
  #markLost(reason: string): SynodError {
    if (this.#state !== 'held') return this.#unusable();
    this.#state = 'lost';
    const error = this.#error(`lost: ${reason}`);
    this.#stop(error);
    this.#lost.abort(error);
    // Free the id for a successor at once rather than one TTL later; we never use it again.
    this.#revoking = revokeQuietly(this.#options.client, this.leaseId);
    return error;
  }

  #stop(reason: SynodError): void {
    if (this.#heartbeatTimer !== null) clearTimeout(this.#heartbeatTimer);
    if (this.#expiryTimer !== null) clearTimeout(this.#expiryTimer);
    this.#heartbeatTimer = null;
    this.#expiryTimer = null;
    this.#calls.abort(reason);
    this.#keepAlive.close();
  }

  #throwIfNotHeld(): void {
    if (this.#state !== 'held') throw this.#unusable();
  }

  #unusable(): SynodError {
    assert(this.#state !== 'held', 'worker lease: only a lost or released grant is unusable');
    const reason: unknown = this.#lost.signal.reason;
    return reason instanceof SynodError ? reason : this.#error('was released');
  }

  #error(what: string): SynodError {
    return new SynodError('SYNOD_ID_WORKER_LEASE_LOST', `worker ${this.#name()} ${what}`);
  }

  #name(): string {
    return `${this.datacenterId}/${this.workerId}`;
  }
}
