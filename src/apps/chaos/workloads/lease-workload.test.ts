import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkLease } from '../checkers/lease-checker.js';
import { startTestMember, type TestMember } from './lease-test-member.js';
import { runLeaseWorkload } from './lease-workload.js';

describe('runLeaseWorkload against one Synod member', () => {
  let member: TestMember;
  beforeAll(async () => {
    member = await startTestMember();
  });
  afterAll(async () => member.close());

  it('keeps each key for its TTL after the last renewal, then removes it', async () => {
    // Synod's minimum TTL is 2 s. One member and no faults: the late grace need only cover the
    // 500 ms expiry check and a revoke's commit, so 1.5 s keeps the run short.
    const lateGraceMs = 1500;
    const history = await runLeaseWorkload({
      proto: member.proto, endpoints: [member.endpoint], nowMs: member.nowMs,
      durationMs: 1000, prefix: 'chaos/lease/', clients: 3, ttlSeconds: 2, holdMs: 600,
      keepAliveIntervalMs: 200, observeAfterMs: 2000 + lateGraceMs + 300,
    });
    const verdict = checkLease(history, { lateGraceMs });
    expect(verdict.violations).toEqual([]);
    expect(verdict.valid).toBe(true);
    expect(verdict.stats['leases']).toBeGreaterThanOrEqual(3);
    expect(verdict.stats['keepAlivesOk']).toBeGreaterThan(0);
    expect(verdict.stats['earlyChecked']).toBe(verdict.stats['leases']);
    expect(verdict.stats['lateChecked']).toBe(verdict.stats['leases']);
    expect(history.samples.at(-1)?.keys).toEqual([]);
  });
});
