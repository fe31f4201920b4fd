/**
 * The options of `leaseWorkerId` (worker-lease.ts): their bounds as named constants, and the one
 * place they are validated, defaulted and frozen. A bad option is SYNOD_INVALID_ARGUMENT naming
 * it, before anything is leased.
 */

import { hostname } from 'node:os';
import { SynodError, assert, type Random } from '../../base/index.js';
import type { SynodClient } from '../../client/index.js';
import { liveWorkersReadMax, reportHostLengthMax, type WorkerClock } from './clock-guard.js';
import { newJitter } from './segment-store.js';
import { snowflakeWorkerBitsDefault } from './snowflake-layout.js';

/** Options of `leaseWorkerId`. Every number is a whole number; bounds are in the constants. */
export interface WorkerLeaseOptions {
  /** The client to use; the grant does not close it. */
  readonly client: SynodClient;
  /** Names the key prefix `synod/ids/snowflake/<cluster>`; default `default`. */
  readonly cluster?: string;
  /** The whole key prefix instead (not with `cluster`); must not end with `/`. */
  readonly prefix?: string;
  /** The datacenter whose worker ids are leased, in [0, datacenterIdsLimit). */
  readonly datacenterId: number;
  /**
   * How many worker ids a datacenter has (2^workerBits), in [1, workerIdsMaxLimit]; default 32,
   * the default layout's 5 worker bits.
   */
  readonly workerIdsMax?: number;
  /** The id tried first (a previous run's, or the host's); default a random one. */
  readonly preferredWorkerId?: number;
  /** The lease's TTL; default 10 s. */
  readonly leaseTtlSeconds?: number;
  /** How long before its lease deadline the grant counts itself lost; default min(1 s, TTL/4). */
  readonly leaseMarginMs?: number;
  /** Time between reports (and at most between lease checks); default 1000 ms, below the TTL. */
  readonly reportIntervalMs?: number;
  /** How far past its clock the first reservation goes; default 3000 ms. */
  readonly reservationWindowMs?: number;
  /**
   * The longest a start accepts a stored reservation ahead of this clock (the generator waits
   * it out), and the furthest ahead of it `extend` reserves (a further ask is clamped, so that a
   * successor on this clock can always start); default 3 × reservationWindowMs. A generator's
   * own reservation lead must stay below it.
   */
  readonly startWaitMsMax?: number;
  /** How far this clock may be from the live workers' at start; default 5000 ms. */
  readonly clockSkewMsMax?: number;
  /** The wall clock (unix ms) timestamps come from; default `Date.now`. */
  readonly clock?: WorkerClock;
  /** The monotonic clock lease deadlines are measured on; default `performance.now`. */
  readonly monotonicClock?: WorkerClock;
  /** Picks the first id tried when none is preferred; default seeded from the OS. */
  readonly random?: Random;
  /** The host name reported; default `os.hostname()`. */
  readonly host?: string;
  /** The process id reported; default `process.pid`. */
  readonly pid?: number;
  /** Aborts the start (not the grant: `release()` ends that). */
  readonly signal?: AbortSignal;
}

/** The key prefix's first part; the cluster name follows. */
export const snowflakePrefixBase = 'synod/ids/snowflake';
/** The cluster name when none is given. */
export const snowflakeClusterDefault = 'default';
/** Datacenter ids are below this (16 bits, more than any Snowflake layout gives them). */
export const datacenterIdsLimit = 65_536;
/** The most worker ids a datacenter may have: one live read returns them all. */
export const workerIdsMaxLimit = 4096;
assert(workerIdsMaxLimit <= liveWorkersReadMax, 'worker lease: one read covers every worker id');
/** The lease's TTL when none is given. */
export const workerLeaseTtlSecondsDefault = 10;
/** A lease longer than an hour would keep a crashed owner's worker id for as long. */
export const workerLeaseTtlSecondsMax = 3600;
/** Time between reports when none is given (halved for a TTL under 2 s). */
export const reportIntervalMsDefault = 1000;
/** Reports more often than this would cost more than they tell. */
export const reportIntervalMsMin = 10;
/** How far past the clock the first reservation goes when nothing else is given. */
export const reservationWindowMsDefault = 3000;
/** Leaf's tolerance for a clock off from the others: its default threshold is 5 s. */
export const clockSkewMsMaxDefault = 5000;
/** An hour: any larger bound on clocks or waits means the clocks are not being kept. */
export const clockBoundMsLimit = 3_600_000;

/**
 * The options after `resolveOptions`: every default filled in, every bound checked, frozen. The
 * preferred worker id and the signal are resolved on their own (`resolvePreferred`,
 * `resolveSignal`); the cluster is folded into `prefix`.
 */
export type ResolvedWorkerLeaseOptions = Readonly<Required<
  Omit<WorkerLeaseOptions, 'preferredWorkerId' | 'signal' | 'cluster'>
>>;
type Timing = Pick<ResolvedWorkerLeaseOptions, 'leaseTtlSeconds' | 'leaseMarginMs' |
  'reportIntervalMs' | 'reservationWindowMs' | 'startWaitMsMax' | 'clockSkewMsMax'>;

function invalidArgument(message: string): SynodError {
  return new SynodError('SYNOD_INVALID_ARGUMENT', `leaseWorkerId: ${message}`);
}

/** `value` if it is a whole number in [min, max]; SYNOD_INVALID_ARGUMENT naming `name` if not. */
function wholeNumber(name: string, value: unknown, bounds: { min: number; max: number }): number {
  const { min, max } = bounds;
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min || value > max) {
    throw invalidArgument(`${name} must be a whole number in [${min}, ${max}]`);
  }
  return value;
}

function isClock(value: unknown): value is WorkerClock {
  return typeof value === 'object' && value !== null &&
    typeof (value as WorkerClock).nowMs === 'function';
}

function resolvePrefix(options: WorkerLeaseOptions): string {
  if (options.prefix !== undefined && options.cluster !== undefined) {
    throw invalidArgument('give either prefix or cluster, not both');
  }
  if (options.prefix !== undefined) {
    const { prefix } = options;
    if (typeof prefix !== 'string' || prefix === '' || prefix.endsWith('/')) {
      throw invalidArgument('prefix must be non-empty and not end with "/"');
    }
    return prefix;
  }
  const cluster = options.cluster ?? snowflakeClusterDefault;
  if (typeof cluster !== 'string' || !/^[A-Za-z0-9._-]{1,128}$/.test(cluster)) {
    throw invalidArgument('cluster must be 1 to 128 letters, digits, ".", "_" or "-"');
  }
  return `${snowflakePrefixBase}/${cluster}`;
}

function resolveTiming(options: WorkerLeaseOptions): Timing {
  const leaseTtlSeconds = wholeNumber('leaseTtlSeconds',
    options.leaseTtlSeconds ?? workerLeaseTtlSecondsDefault,
    { min: 1, max: workerLeaseTtlSecondsMax });
  const ttlMs = leaseTtlSeconds * 1000;
  // Half the TTL at most, so that lease checks twice per remaining window keep ahead of it.
  const leaseMarginMs = wholeNumber('leaseMarginMs',
    options.leaseMarginMs ?? Math.min(1000, ttlMs / 4), { min: 0, max: ttlMs / 2 });
  // Below the TTL: a report slower than the lease says nothing about the owner being alive.
  const reportIntervalMs = wholeNumber('reportIntervalMs',
    options.reportIntervalMs ?? Math.min(reportIntervalMsDefault, ttlMs / 2),
    { min: reportIntervalMsMin, max: ttlMs - 1 });
  const reservationWindowMs = wholeNumber('reservationWindowMs',
    options.reservationWindowMs ?? reservationWindowMsDefault, { min: 1, max: clockBoundMsLimit });
  // At least one window: the first reservation must be one a successor on this clock waits out.
  const startWaitMsMax = wholeNumber('startWaitMsMax',
    options.startWaitMsMax ?? 3 * reservationWindowMs,
    { min: reservationWindowMs, max: 3 * clockBoundMsLimit });
  const clockSkewMsMax = wholeNumber('clockSkewMsMax',
    options.clockSkewMsMax ?? clockSkewMsMaxDefault, { min: 0, max: clockBoundMsLimit });
  return {
    leaseTtlSeconds, leaseMarginMs, reportIntervalMs, reservationWindowMs, startWaitMsMax,
    clockSkewMsMax,
  };
}

/**
 * Validates `options` once, fills the defaults and freezes the result; SYNOD_INVALID_ARGUMENT
 * naming the first bad option.
 */
export function resolveOptions(options: WorkerLeaseOptions): ResolvedWorkerLeaseOptions {
  if (typeof options !== 'object' || options === null) {
    throw invalidArgument('options must be an object');
  }
  const { client } = options;
  if (typeof client !== 'object' || client === null || typeof client.txn !== 'function') {
    throw invalidArgument('client must be a SynodClient');
  }
  const prefix = resolvePrefix(options);
  const datacenterId = wholeNumber('datacenterId', options.datacenterId,
    { min: 0, max: datacenterIdsLimit - 1 });
  const workerIdsMax = wholeNumber('workerIdsMax',
    options.workerIdsMax ?? 2 ** snowflakeWorkerBitsDefault, { min: 1, max: workerIdsMaxLimit });
  const clock = options.clock ?? { nowMs: () => Date.now() };
  const monotonicClock = options.monotonicClock ?? { nowMs: () => performance.now() };
  if (!isClock(clock) || !isClock(monotonicClock)) throw invalidArgument('a clock needs nowMs()');
  const host = options.host ?? hostname().slice(0, reportHostLengthMax);
  if (typeof host !== 'string' || host.length > reportHostLengthMax) {
    throw invalidArgument(`host must be a string of at most ${reportHostLengthMax} characters`);
  }
  const pid = wholeNumber('pid', options.pid ?? process.pid, { min: 0, max: 2 ** 32 });
  const random = options.random ?? newJitter();
  if (typeof random !== 'object' || random === null || typeof random.int !== 'function') {
    throw invalidArgument('random must be a Random');
  }
  return Object.freeze({
    client, prefix, datacenterId, workerIdsMax, clock, monotonicClock, host, pid, random,
    ...resolveTiming(options),
  });
}

/** The preferred worker id, checked against `workerIdsMax`; null when none is preferred. */
export function resolvePreferred(options: WorkerLeaseOptions, workerIdsMax: number): number | null {
  if (options.preferredWorkerId === undefined) return null;
  return wholeNumber('preferredWorkerId', options.preferredWorkerId,
    { min: 0, max: workerIdsMax - 1 });
}

/** The start's abort signal, if any; SYNOD_INVALID_ARGUMENT if it is not an AbortSignal. */
export function resolveSignal(options: WorkerLeaseOptions): AbortSignal | undefined {
  const { signal } = options;
  if (signal !== undefined && !(signal instanceof AbortSignal)) {
    throw invalidArgument('signal must be an AbortSignal');
  }
  return signal;
}
