// A Snowflake generator for long-running processes: after its worker lease is revoked it refuses
// ids (never issuing on a worker id that may be someone else's), leases a new one, and goes on;
// every id it issued across both leases is unique.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { isSynodError } from '../../base/index.js';
import type { SynodClient } from '../../client/index.js';
import { startInProcessSynod, type ClientTarget } from '../../../test/client/targets.js';
import { RenewingSnowflakeGenerator } from './renewing-snowflake.js';

let target: ClientTarget;
let client: SynodClient;

beforeAll(async () => {
  target = await startInProcessSynod();
  client = target.client();
});
afterAll(async () => {
  client?.close();
  await target?.stop();
});

function whenAborted(signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.resolve();
  return new Promise((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
}

it('leases a new worker id after losing its lease, and never repeats an id', async () => {
  const generator = await RenewingSnowflakeGenerator.start({
    client, datacenterId: 2, cluster: 'renewing', reportIntervalMs: 50,
  });
  try {
    const first = generator.current!;
    const before = await generator.nextBatch(10_000);
    // Revoke the worker key's lease behind the generator's back.
    const workers = await client.getPrefix('synod/ids/snowflake/renewing/workers/2/');
    expect(workers).toHaveLength(1);
    await client.lease.revoke(workers[0]!.lease);
    await whenAborted(first.lost);
    let refused: unknown = null;
    try {
      generator.next();
    } catch (error) {
      refused = error;
    }
    // Refused until the new lease lands (the generator dropped the old one on the same abort).
    expect(isSynodError(refused, 'SYNOD_ID_WORKER_LEASE_LOST')).toBe(true);
    while (generator.current === null || generator.current === first) {
      await new Promise((resolve) => setImmediate(resolve));
    }
    expect(generator.leases).toBe(2);
    const after = await generator.nextBatch(10_000);
    expect(new Set([...before, ...after]).size).toBe(20_000);
  } finally {
    await generator.close();
  }
  expect(isSynodError((() => {
    try {
      generator.next();
    } catch (error) {
      return error;
    }
    return null;
  })(), 'SYNOD_ID_GENERATOR_CLOSED')).toBe(true);
});
