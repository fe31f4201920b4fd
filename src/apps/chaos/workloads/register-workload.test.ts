import { afterEach, describe, expect, it } from 'vitest';
import { registerWorkload } from './register-workload.js';
import { runWorkload, startMember } from './workload-test-kit.js';

describe('register workload against a single Synod member', () => {
  const cleanups: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  it('records gets, puts and cas operations that check as linearizable', async () => {
    const client = await startMember(cleanups);
    const workload = registerWorkload({ keyCount: 3 });
    const { history, finalRead, verdict } = await runWorkload(workload, client, {
      clientCount: 4, durationMs: 2_000, entriesTarget: 600,
    });
    expect(verdict.violations).toEqual([]);
    expect(verdict.valid).toBe(true);
    expect(verdict.stats['ok']).toBeGreaterThan(0);
    const kinds = new Set(history.map((entry) => (entry.call as { kind: string }).kind));
    expect([...kinds].sort()).toEqual(['cas', 'get', 'put']);
    const casOutcomes = history
      .filter((entry) => (entry.call as { kind: string }).kind === 'cas')
      .map((entry) => (entry.result as { ok: boolean }).ok);
    expect(casOutcomes).toContain(true);
    expect(casOutcomes).toContain(false);
    expect(Object.keys(finalRead.values)).toHaveLength(3);
  });
});
