/**
 * The options of a SnowflakeGenerator (snowflake.ts), their defaults, and the one place they and
 * the grant are checked: a bad one is SYNOD_INVALID_ARGUMENT before the generator exists.
 */

import { SynodError, type Random } from '../../base/index.js';
import type { SnowflakeLayout } from './snowflake-layout.js';
import type { WorkerGrant } from './worker-grant.js';

function invalid(message: string): SynodError {
  return new SynodError('SYNOD_INVALID_ARGUMENT', message);
}

/** The wall clock in unix ms (fractions allowed); injected so tests drive time. */
export interface SnowflakeClock {
  nowMs(): number;
}

/** Options of a SnowflakeGenerator. */
export interface SnowflakeGeneratorOptions {
  /** The worker id this generator issues for. */
  readonly grant: WorkerGrant;
  /** Default `snowflakeLayoutDefault` (Twitter's, from 2020-01-01). */
  readonly layout?: SnowflakeLayout;
  /** Default `Date.now()`. */
  readonly clock?: SnowflakeClock;
  /** The longest backward clock step waited out rather than refused; default 10 ms. */
  readonly rollbackWaitMsMax?: number;
  /** How far ahead of the clock the reservation is extended; default 3 000 ms. */
  readonly reservationAheadMs?: number;
  /** Calls that may wait at once (next, nextBatch); more are refused. Default 10 000. */
  readonly waitersMax?: number;
  /** The first pause after a failed extension, doubling to the max; default 10 ms. */
  readonly extendRetryDelayMs?: number;
  /** The longest pause between failed extensions; default 1 000 ms. */
  readonly extendRetryDelayMsMax?: number;
  /** Resolves after `ms`, or at once when `signal` aborts (on close or loss). Default a ref'd
   *  setTimeout; tests inject one they resolve by hand, with no global fake timers. */
  readonly sleep?: (ms: number, signal: AbortSignal) => Promise<void>;
  /** Jitter of the extension retry pauses; default seeded from the OS. */
  readonly random?: Random;
}

/** Default `rollbackWaitMsMax`. */
export const snowflakeRollbackWaitMsMaxDefault = 10;
/** Default `reservationAheadMs`. */
export const snowflakeReservationAheadMsDefault = 3_000;
/** Default `waitersMax`. */
export const snowflakeWaitersMaxDefault = 10_000;
/** Default `extendRetryDelayMs`. */
export const snowflakeExtendRetryDelayMsDefault = 10;
/** Default `extendRetryDelayMsMax`. */
export const snowflakeExtendRetryDelayMsMaxDefault = 1_000;

/** The options that tune the generator, resolved: defaults filled in, checked, frozen. */
export type SnowflakeConfig = Readonly<Required<Pick<SnowflakeGeneratorOptions,
  'rollbackWaitMsMax' | 'reservationAheadMs' | 'waitersMax' | 'extendRetryDelayMs' |
  'extendRetryDelayMsMax'>>>;

/** Checks the tuning options once and fills their defaults; SYNOD_INVALID_ARGUMENT if bad. */
export function resolveConfig(options: SnowflakeGeneratorOptions): SnowflakeConfig {
  const config: SnowflakeConfig = {
    rollbackWaitMsMax: options.rollbackWaitMsMax ?? snowflakeRollbackWaitMsMaxDefault,
    reservationAheadMs: options.reservationAheadMs ?? snowflakeReservationAheadMsDefault,
    waitersMax: options.waitersMax ?? snowflakeWaitersMaxDefault,
    extendRetryDelayMs: options.extendRetryDelayMs ?? snowflakeExtendRetryDelayMsDefault,
    extendRetryDelayMsMax: options.extendRetryDelayMsMax ?? snowflakeExtendRetryDelayMsMaxDefault,
  };
  if (!(Number.isFinite(config.rollbackWaitMsMax) && config.rollbackWaitMsMax >= 0)) {
    throw invalid('snowflake: rollbackWaitMsMax must be a finite number of ms, not negative');
  }
  if (!(Number.isFinite(config.reservationAheadMs) && config.reservationAheadMs > 0)) {
    throw invalid('snowflake: reservationAheadMs must be a positive finite number of ms');
  }
  if (!Number.isSafeInteger(config.waitersMax) || config.waitersMax < 1) {
    throw invalid('snowflake: waitersMax must be a positive whole number');
  }
  const { extendRetryDelayMs: firstMs, extendRetryDelayMsMax: maxMs } = config;
  if (!(firstMs >= 0 && Number.isFinite(maxMs) && maxMs >= firstMs)) {
    throw invalid('snowflake: retry delays must satisfy 0 <= extendRetryDelayMs <= ' +
      'extendRetryDelayMsMax < Infinity');
  }
  return Object.freeze(config);
}

/** Checks the grant's shape (bounds, signal); SYNOD_INVALID_ARGUMENT if it is not one. */
export function checkGrant(grant: WorkerGrant | undefined): asserts grant is WorkerGrant {
  if (grant === undefined || grant === null || typeof grant !== 'object') {
    throw invalid('snowflake: a grant (staticWorkerGrant or a worker lease) is required');
  }
  if (typeof grant.lastUsedMs !== 'number' || !(grant.lastUsedMs < Infinity)) {
    throw invalid('snowflake: grant.lastUsedMs must be a number below Infinity');
  }
  const { startWaitMsMax } = grant;
  if (startWaitMsMax !== undefined && !(Number.isFinite(startWaitMsMax) && startWaitMsMax >= 0)) {
    throw invalid('snowflake: grant.startWaitMsMax must be a finite number of ms, not negative');
  }
  if (typeof grant.reservedUntilMs !== 'number' || Number.isNaN(grant.reservedUntilMs)) {
    throw invalid('snowflake: grant.reservedUntilMs must be a number');
  }
  if (!(grant.lost instanceof AbortSignal)) throw invalid('snowflake: grant.lost must be a signal');
}
