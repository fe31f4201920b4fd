import { afterEach, describe, expect, it } from 'vitest';
import { bankWorkload } from './bank-workload.js';
import { runWorkload, startMember } from './workload-test-kit.js';

describe('bank workload against a single Synod member', () => {
  const cleanups: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  it('transfers and reads; every read sums to the total', async () => {
    const client = await startMember(cleanups);
    const workload = bankWorkload({ accountCount: 4, total: 100 });
    const { finalRead, verdict } = await runWorkload(workload, client, {
      clientCount: 4, durationMs: 2_000, entriesTarget: 600,
    });
    expect(verdict.violations).toEqual([]);
    expect(verdict.valid).toBe(true);
    expect(verdict.stats['readsChecked']).toBeGreaterThan(0);
    expect(verdict.stats['transfersSucceeded']).toBeGreaterThan(0);
    expect(Object.values(finalRead.balances).reduce((sum, balance) => sum + balance, 0)).toBe(100);
  });
});
