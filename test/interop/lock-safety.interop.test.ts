/**
 * The lock safety run can fail: the same holder-pause case that holds with fencing on a Synod lock
 * (the resource refuses the frozen holder's late write) fails when the resource ignores the tokens,
 * and fails for a Redis lock, which has no token to give.
 */

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runSafetyCase } from '../../bench/locks/safety.js';
import { startProcessTarget, type ClientTarget } from '../client/targets.js';
import { startRedisServer, type RedisServer } from '../support/redis-servers.js';

describe('lock safety runs (holder frozen past its TTL)', () => {
  let synod: ClientTarget;
  let redis: RedisServer;
  beforeAll(async () => {
    synod = await startProcessTarget('synod');
    redis = await startRedisServer();
  });
  afterAll(async () => {
    await synod?.stop();
    await redis?.stop();
  });

  const synodSpec = () => ({ kind: 'synod' as const, endpoints: [synod.endpoint], ttlMs: 2000 });

  it('holds on a Synod lock whose token the resource checks', async () => {
    const outcome = await runSafetyCase({ backend: 'synod', fault: 'holder-pause', spec: synodSpec() });
    expect(outcome.mutual_exclusion_held).toBe(true);
    expect(outcome.verdict.refused).toBeGreaterThanOrEqual(1);
    expect(outcome.noticedLoss.a).toBe(true);
  });

  it('fails on the same lock when the token is not checked (planted bug)', async () => {
    const outcome = await runSafetyCase({ backend: 'synod', fault: 'holder-pause', spec: synodSpec(), fenced: false });
    expect(outcome.mutual_exclusion_held).toBe(false);
    expect(outcome.verdict.witness).toEqual(['A', 'B']);
  });

  it('fails on a Redis lock, which has no token', async () => {
    const outcome = await runSafetyCase({
      backend: 'redis', fault: 'holder-pause', spec: { kind: 'redis', url: redis.url, ttlMs: 2000 },
    });
    expect(outcome.mutual_exclusion_held).toBe(false);
  });
});
