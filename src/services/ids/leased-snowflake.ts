/**
 * The usual way to run Snowflake on Synod: lease a worker id (worker-lease.ts) and start a
 * generator on it, in one call. The generator waits out the predecessor's reservation at its first
 * id (the grant's startWaitMsMax), releases the worker id on close, and stops issuing the moment
 * the lease is lost; a caller that sees SYNOD_ID_WORKER_LEASE_LOST calls this again for a new one.
 */

import { SnowflakeGenerator, type SnowflakeGeneratorOptions } from './snowflake.js';
import { snowflakeLayoutDefault } from './snowflake-layout.js';
import { leaseWorkerId, type WorkerLeaseOptions } from './worker-lease.js';

/** The worker lease's options and the generator's, minus the grant this call makes. */
export interface LeasedSnowflakeOptions extends WorkerLeaseOptions {
  readonly generator?: Omit<SnowflakeGeneratorOptions, 'grant'>;
}

/** Leases a worker id for the generator's layout and starts a generator on it. */
export async function leaseSnowflakeGenerator(options: LeasedSnowflakeOptions): Promise<SnowflakeGenerator> {
  const { generator: generatorOptions = {}, ...leaseOptions } = options;
  const layout = generatorOptions.layout ?? snowflakeLayoutDefault;
  const grant = await leaseWorkerId({ workerIdsMax: 2 ** layout.workerBits, ...leaseOptions });
  try {
    return new SnowflakeGenerator({ ...generatorOptions, layout, grant });
  } catch (error) {
    await grant.release();
    throw error;
  }
}
