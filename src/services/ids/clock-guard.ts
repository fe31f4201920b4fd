/**
 * Leaf-snowflake's two clock guards: the checks as pure functions over numbers (tested without a
 * cluster), and `sampleLiveWorkers`, which gathers the live reports they need at start:
 *
 * - **Against the live workers.** A worker whose clock is far from its datacenter's would issue
 *   ids out of time order with theirs, and a clock far behind may later jump forward past what it
 *   reserved. Leaf compares a starting node with the average of the others' reported times; so do
 *   we, over the reports of workers seen reporting while we sampled (see `liveClockOffsetMs`).
 * - **Against the stored reservation.** The previous owner of a worker id may have issued every
 *   timestamp up to its reservation. A successor whose clock is behind that must wait until its
 *   clock passes it; a wait longer than `startWaitMsMax` means the clocks disagree, not that a
 *   short wait is due, and the start is refused.
 *
 * Each worker key's value is a `WorkerReport` as JSON, rewritten by its owner every report
 * interval.
 */

import { SynodError, assert } from '../../base/index.js';
import type { KeyValue, SynodClient, Watcher } from '../../client/index.js';

/** A clock in milliseconds: unix ms for the wall clock, any origin for the monotonic one. */
export interface WorkerClock {
  nowMs(): number;
}

/** The wall clock in whole unix ms. */
export function wallNowMs(clock: WorkerClock): number {
  const nowMs = Math.floor(clock.nowMs());
  assert(Number.isSafeInteger(nowMs) && nowMs >= 0, 'the wall clock reads unix ms');
  return nowMs;
}

/** What a live worker key holds: its owner and that owner's clock at the last report. */
export interface WorkerReport {
  /** The owner's host name, for operators. */
  readonly host: string;
  /** The owner's process id, for operators. */
  readonly pid: number;
  /** The owner's wall clock (unix ms) when it sent this report. */
  readonly reportedAtMs: number;
  /** The owner's reservation bound (unix ms) when it sent this report. */
  readonly reservedUntilMs: number;
}

/** The longest host name a report carries (DNS names are at most 253 characters). */
export const reportHostLengthMax = 255;
/** The longest report value read back; anything longer is not a report. */
export const reportBytesMax = 1024;

function isTimestampMs(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
}

/** The JSON a worker key holds. */
export function formatWorkerReport(report: WorkerReport): string {
  assert(isTimestampMs(report.reportedAtMs), 'report: reportedAtMs is a unix ms timestamp');
  assert(isTimestampMs(report.reservedUntilMs), 'report: reservedUntilMs is a unix ms timestamp');
  assert(report.host.length <= reportHostLengthMax, 'report: host name within bounds');
  const text = JSON.stringify({
    host: report.host, pid: report.pid, reportedAtMs: report.reportedAtMs,
    reservedUntilMs: report.reservedUntilMs,
  });
  assert(Buffer.byteLength(text) <= reportBytesMax, 'report: fits the read bound');
  return text;
}

/**
 * The report in a worker key, or null when the value is not one. A value written by something
 * else (an operator, an older version) still marks the worker id as taken; it just gives no clock
 * sample, so it is skipped rather than refused.
 */
export function parseWorkerReport(value: Buffer): WorkerReport | null {
  if (value.length > reportBytesMax) return null;
  let parsed: unknown;
  try {
    parsed = JSON.parse(value.toString('utf8'));
  } catch {
    return null;
  }
  if (typeof parsed !== 'object' || parsed === null) return null;
  const { host, pid, reportedAtMs, reservedUntilMs } = parsed as Record<string, unknown>;
  if (typeof host !== 'string' || host.length > reportHostLengthMax) return null;
  if (typeof pid !== 'number' || !Number.isSafeInteger(pid)) return null;
  if (!isTimestampMs(reportedAtMs) || !isTimestampMs(reservedUntilMs)) return null;
  return { host, pid, reportedAtMs, reservedUntilMs };
}

/**
 * This clock minus the mean of the reported times, in ms (positive: this clock is ahead), or null
 * without reports. The mean is taken over the differences, not the timestamps, so a sum of
 * thousands of unix-ms values cannot leave the exact range of a double.
 */
export function liveClockOffsetMs(nowMs: number, reportedAtMs: readonly number[]): number | null {
  if (reportedAtMs.length === 0) return null;
  let sumMs = 0;
  for (const each of reportedAtMs) sumMs += nowMs - each;
  const offsetMs = sumMs / reportedAtMs.length;
  assert(Number.isFinite(offsetMs), 'clock offset is finite');
  return offsetMs;
}

/** What `checkClockAgainstLiveWorkers` compares. */
export interface LiveClockCheck {
  /** This clock (unix ms) when the reports were read. */
  readonly nowMs: number;
  /** The reported times of the workers seen reporting. */
  readonly reportedAtMs: readonly number[];
  /** How far this clock may be from theirs, either way. */
  readonly clockSkewMsMax: number;
  /**
   * How old a report can be when read: reports only lag, so this clock may lead their mean by
   * this much more without being off.
   */
  readonly reportAgeMsMax: number;
}

/**
 * Throws SYNOD_ID_CLOCK_BEHIND (with the measured offset) when this clock is more than
 * `clockSkewMsMax` behind the live workers' mean reported time, or more than `clockSkewMsMax +
 * reportAgeMsMax` ahead of it. Without reports there is nothing to compare with, and it passes.
 */
export function checkClockAgainstLiveWorkers(check: LiveClockCheck): void {
  assert(check.clockSkewMsMax >= 0 && check.reportAgeMsMax >= 0, 'clock check: bounds >= 0');
  const offsetMs = liveClockOffsetMs(check.nowMs, check.reportedAtMs);
  if (offsetMs === null) return;
  const aheadMsMax = check.clockSkewMsMax + check.reportAgeMsMax;
  if (offsetMs >= -check.clockSkewMsMax && offsetMs <= aheadMsMax) return;
  const direction = offsetMs > 0 ? 'ahead of' : 'behind';
  const distanceMs = Math.round(Math.abs(offsetMs));
  throw new SynodError('SYNOD_ID_CLOCK_BEHIND', `this clock is ${distanceMs} ms ${direction} ` +
    `the mean of ${check.reportedAtMs.length} live workers' reports ` +
    `(allowed: ${check.clockSkewMsMax} ms behind to ${aheadMsMax} ms ahead)`);
}

/** What `checkReservationReachable` compares. */
export interface ReservationCheck {
  /** This clock (unix ms). */
  readonly nowMs: number;
  /** The stored reservation of the worker id (unix ms; 0 if none). */
  readonly reservedMs: number;
  /** The longest the generator may wait for this clock to pass the reservation. */
  readonly startWaitMsMax: number;
  /** Names the worker id in the message. */
  readonly worker: string;
}

/**
 * Throws SYNOD_ID_CLOCK_BEHIND when the stored reservation is more than `startWaitMsMax` ahead of
 * this clock: the previous owner ran on a clock far ahead of this one (or this one is far behind),
 * and waiting it out would stall the generator for longer than a start should take.
 */
export function checkReservationReachable(check: ReservationCheck): void {
  assert(isTimestampMs(check.reservedMs), 'reservation check: a unix ms reservation');
  assert(check.startWaitMsMax >= 0, 'reservation check: a non-negative wait');
  const aheadMs = check.reservedMs - check.nowMs;
  if (aheadMs <= check.startWaitMsMax) return;
  throw new SynodError('SYNOD_ID_CLOCK_BEHIND', `worker ${check.worker}: its stored reservation ` +
    `is ${aheadMs} ms ahead of this clock, more than the ${check.startWaitMsMax} ms a start waits`);
}

/** What `sampleLiveWorkers` reads and compares. */
export interface LiveWorkerSampling {
  readonly client: SynodClient;
  /** Every live worker key of the datacenter starts with this. */
  readonly workersPrefix: string;
  /** The worker id a key names, or null for a key that is not a worker key of this layout. */
  workerIdOf(key: Buffer): number | null;
  /** At most this many keys name distinct worker ids (the layout's worker ids). */
  readonly liveWorkersMax: number;
  readonly clock: WorkerClock;
  readonly monotonicClock: WorkerClock;
  /** How often live workers rewrite their reports. */
  readonly reportIntervalMs: number;
  readonly clockSkewMsMax: number;
  readonly signal?: AbortSignal | undefined;
}

/** The most keys one live read returns, whatever else sits under the prefix. */
export const liveWorkersReadMax = 4096;
/** How many report intervals a start waits at most for the live workers to report. */
export const sampleIntervalsMax = 2;

/** The datacenter's worker keys by worker id, and the revision they were read at. */
async function readLiveWorkers(
  sampling: LiveWorkerSampling,
): Promise<{ revision: bigint; live: Map<number, KeyValue> }> {
  const { signal } = sampling;
  const result = await sampling.client.range(sampling.workersPrefix, {
    prefix: true, limit: liveWorkersReadMax, ...(signal === undefined ? {} : { signal }),
  });
  const live = new Map<number, KeyValue>();
  for (const kv of result.kvs) {
    const workerId = sampling.workerIdOf(kv.key);
    if (workerId !== null) live.set(workerId, kv);
  }
  assert(live.size <= sampling.liveWorkersMax, 'live workers: at most one key per worker id');
  return { revision: result.header.revision, live };
}

/** The watcher once created, or null if `stop` aborted first (a late watcher is then closed). */
function watcherUnlessStopped(
  opening: Promise<Watcher>, stop: AbortSignal,
): Promise<Watcher | null> {
  const closeLate = (): void => void opening.then((late) => late.close(), () => undefined);
  if (stop.aborted) {
    closeLate();
    return Promise.resolve(null);
  }
  return new Promise((resolve, reject) => {
    const onStop = (): void => {
      closeLate();
      resolve(null);
    };
    stop.addEventListener('abort', onStop, { once: true });
    opening.then((watcher) => {
      stop.removeEventListener('abort', onStop);
      resolve(watcher);
    }, (error: unknown) => {
      stop.removeEventListener('abort', onStop);
      reject(error);
    });
  });
}

/**
 * The worker keys written after `revision`, latest per worker id, collected until every worker
 * in `expected` wrote once or `sampleIntervalsMax` report intervals passed. A watch rather than a
 * pause: live workers all report within about one interval, so the start waits no longer.
 */
async function freshReports(
  sampling: LiveWorkerSampling, after: { revision: bigint; expected: Iterable<number> },
): Promise<Map<number, KeyValue>> {
  const { signal } = sampling;
  const fresh = new Map<number, KeyValue>();
  const missing = new Set(after.expected);
  const stop = new AbortController();
  const timer = setTimeout(() => stop.abort(), sampleIntervalsMax * sampling.reportIntervalMs);
  const onAbort = (): void => stop.abort();
  signal?.addEventListener('abort', onAbort, { once: true });
  let watcher: Watcher | null = null;
  try {
    watcher = await watcherUnlessStopped(sampling.client.watch(sampling.workersPrefix, {
      prefix: true, startRevision: after.revision + 1n, filters: { noDelete: true },
      // Each live worker reports a few times per sample at most; the loop drains as they come.
      bufferedEventsMax: sampleIntervalsMax * 4 * sampling.liveWorkersMax,
    }), stop.signal);
    const open = watcher;
    stop.signal.addEventListener('abort', () => void open?.close(), { once: true });
    if (stop.signal.aborted) await open?.close();
    for await (const batch of watcher ?? []) {
      for (const event of batch.events) {
        const workerId = sampling.workerIdOf(event.kv.key);
        if (workerId === null) continue;
        fresh.set(workerId, event.kv);
        missing.delete(workerId);
      }
      if (missing.size === 0) break;
    }
  } finally {
    clearTimeout(timer);
    signal?.removeEventListener('abort', onAbort);
    stop.abort();
    await watcher?.close();
  }
  signal?.throwIfAborted();
  assert(fresh.size <= sampling.liveWorkersMax, 'fresh reports: at most one per worker id');
  return fresh;
}

/**
 * Reads the datacenter's live worker keys, then watches for the reports written after that read
 * and refuses this clock (`checkClockAgainstLiveWorkers`) against those. Why not the keys as
 * read: a crashed worker's key lives until its lease expires, and its ever older report would
 * drag the mean back by up to a TTL and refuse a correct clock; a key rewritten after the read
 * belongs to a worker alive meanwhile. Such a report is at most the sampling time plus one
 * interval old. An empty datacenter is not waited for. Returns the worker ids seen live.
 */
export async function sampleLiveWorkers(
  sampling: LiveWorkerSampling,
): Promise<ReadonlySet<number>> {
  const sampleStartedMs = sampling.monotonicClock.nowMs();
  const first = await readLiveWorkers(sampling);
  if (first.live.size === 0) return new Set();
  const fresh = await freshReports(sampling, {
    revision: first.revision, expected: first.live.keys(),
  });
  const nowMs = wallNowMs(sampling.clock);
  const sampleMs = sampling.monotonicClock.nowMs() - sampleStartedMs;
  const reportedAtMs: number[] = [];
  for (const kv of fresh.values()) {
    const report = parseWorkerReport(kv.value);
    if (report !== null) reportedAtMs.push(report.reportedAtMs);
  }
  checkClockAgainstLiveWorkers({
    nowMs, reportedAtMs, clockSkewMsMax: sampling.clockSkewMsMax,
    reportAgeMsMax: Math.max(0, sampleMs) + sampling.reportIntervalMs,
  });
  return new Set([...first.live.keys(), ...fresh.keys()]);
}
