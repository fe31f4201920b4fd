import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkLock } from '../checkers/lock-checker.js';
import { startTestMember, type TestMember } from './lease-test-member.js';
import { lockTokenText, runLockWorkload } from './lock-workload.js';

describe('runLockWorkload against one Synod member', () => {
  let member: TestMember;
  beforeAll(async () => {
    member = await startTestMember();
  });
  afterAll(async () => member.close());

  it('runs critical sections one at a time with growing fencing tokens', async () => {
    const history = await runLockWorkload({
      proto: member.proto, endpoints: [member.endpoint], nowMs: member.nowMs,
      durationMs: 2000, lockName: 'chaos/lock', clients: 3,
    });
    const verdict = checkLock(history);
    expect(verdict.violations).toEqual([]);
    expect(verdict.valid).toBe(true);
    expect(verdict.stats['sectionsCompletedOk']).toBeGreaterThan(3);
    expect(new Set(history.sections.map((section) => section.clientId)).size).toBe(3);
    expect(verdict.stats['writesFenced']).toBe(0);
  });

  it('pads tokens so bytes compare as numbers', () => {
    expect(lockTokenText(9) < lockTokenText(10)).toBe(true);
    expect(lockTokenText(0)).toHaveLength(20);
  });
});
