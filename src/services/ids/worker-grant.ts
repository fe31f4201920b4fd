/**
 * The right to issue Snowflake ids for one (datacenter, worker) pair: the shape the generator
 * (snowflake.ts) consumes and the Synod worker lease (worker-lease.ts) implements, and the grant
 * for ids assigned by hand.
 */

import { SynodError } from '../../base/index.js';

function invalid(message: string): SynodError {
  return new SynodError('SYNOD_INVALID_ARGUMENT', message);
}

/**
 * The right to issue ids for one (datacenter, worker) pair, and the range of timestamps it covers.
 * worker-lease.ts implements it over Synod leases; `staticWorkerGrant` for ids assigned by hand.
 */
export interface WorkerGrant {
  readonly datacenterId: number;
  readonly workerId: number;
  /** Every timestamp (unix ms) at or below this may have been used by an earlier owner of
   *  this worker id: the generator issues only timestamps above it. */
  readonly lastUsedMs: number;
  /** The generator may issue timestamps up to and including this (unix ms); beyond it, it
   *  must await extend(). Infinity for a static grant. */
  readonly reservedUntilMs: number;
  /** Asks the coordinator to raise reservedUntilMs to at least `untilMs`; resolves with the
   *  new bound (it may reject with the coordinator's error). */
  extend(untilMs: number): Promise<number>;
  /** Aborts when the grant is lost (lease expired, revoked, or renewal overdue): from then
   *  on the generator issues nothing and rejects/throws SYNOD_ID_WORKER_LEASE_LOST. */
  readonly lost: AbortSignal;
  /** Gives the worker id back; the generator's close() calls it. */
  release(): Promise<void>;
  /**
   * How far the clock may be behind `lastUsedMs` at the first id and be waited out rather than
   * refused. A leased grant's `lastUsedMs` is the previous holder's reservation, which runs up to
   * a reservation window ahead of the clock: a successor on a correct clock waits that out (the
   * lease refuses a reservation further ahead than this). Absent: `rollbackWaitMsMax`.
   */
  readonly startWaitMsMax?: number;
}

/** The (datacenter, worker) pair of `staticWorkerGrant`: whole numbers, not negative. */
export interface StaticWorkerGrantOptions {
  readonly datacenterId: number;
  readonly workerId: number;
}

/**
 * A grant for a worker id assigned by hand (configuration, a StatefulSet ordinal). It never
 * expires and reserves all time. It remembers nothing across restarts (lastUsedMs is 0), so a
 * process restarted with its clock behind the ids of its previous run could repeat them: the
 * caveat of the original Snowflake, which a leased grant closes.
 */
export function staticWorkerGrant(pair: StaticWorkerGrantOptions): WorkerGrant {
  if (typeof pair !== 'object' || pair === null) {
    throw invalid('snowflake: staticWorkerGrant takes { datacenterId, workerId }');
  }
  const { datacenterId, workerId } = pair;
  for (const [name, value] of [['datacenterId', datacenterId], ['workerId', workerId]] as const) {
    if (!Number.isSafeInteger(value) || value < 0) {
      throw invalid(`snowflake: ${name} must be a whole number, not negative`);
    }
  }
  return Object.freeze({
    datacenterId,
    workerId,
    lastUsedMs: 0,
    reservedUntilMs: Infinity,
    extend: () => Promise.resolve(Infinity),
    lost: new AbortController().signal,
    release: () => Promise.resolve(),
  });
}
