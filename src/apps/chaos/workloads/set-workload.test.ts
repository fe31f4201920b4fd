import { afterEach, describe, expect, it } from 'vitest';
import { setWorkload } from './set-workload.js';
import { runWorkload, startMember } from './workload-test-kit.js';

describe('set workload against a single Synod member', () => {
  const cleanups: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  it('finds every acknowledged add in the paged final read', async () => {
    const client = await startMember(cleanups);
    // Pages of 7 keys make the final read span many pages at one revision.
    const workload = setWorkload({ finalReadPageKeys: 7 });
    const { history, finalRead, verdict } = await runWorkload(workload, client, {
      clientCount: 4, durationMs: 2_000, entriesTarget: 400,
    });
    expect(verdict.violations).toEqual([]);
    expect(verdict.valid).toBe(true);
    expect(verdict.lostWrites).toBe(0);
    const acknowledged = history.filter((entry) => entry.outcome === 'ok').length;
    expect(acknowledged).toBeGreaterThan(0);
    expect(finalRead.elements.length).toBe(acknowledged);
  });
});
