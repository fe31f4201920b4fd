/**
 * The chaos harness must catch a server that breaks its promises: each planted bug
 * (src/server/planted-bugs.ts) is switched on in every member of a real 3-member Synod cluster,
 * the faults that expose it are injected, and the run must come out invalid for the reason the
 * bug implies. Without a bug the same run is valid (the CI short run shows that on more faults),
 * and so is a run that replaces members through the Cluster API under load.
 */

import { describe, expect, it } from 'vitest';
import { runChaos } from '../../src/apps/chaos/run.js';

const base = { target: 'synod' as const, nodes: 3, durationMs: 20_000, seed: 7 };

describe('planted bugs are caught on real processes', () => {
  it('linearizable reads served without ReadIndex: stale reads from a partitioned member', async () => {
    const { summary, text } = await runChaos({
      ...base, faults: ['partition'], workloads: ['register'],
      extraEnv: { SYNOD_PLANTED_BUG: 'read-without-read-index' },
    });
    expect(summary.verdict, text).toBe('invalid');
    expect(summary.violations, text).toBeGreaterThan(0);
  });

  it('writes acknowledged before they commit: acknowledged adds lost when leaders fall', async () => {
    const { summary, text } = await runChaos({
      ...base, faults: ['partition', 'kill-leader'], workloads: ['set'],
      extraEnv: { SYNOD_PLANTED_BUG: 'ack-before-commit' },
    });
    expect(summary.verdict, text).toBe('invalid');
    expect(summary.lost_writes, text).toBeGreaterThan(0);
  });

  it('expired leases never revoked: keys outlive their TTL', async () => {
    const { summary, text } = await runChaos({
      ...base, faults: [], workloads: ['lease'],
      extraEnv: { SYNOD_PLANTED_BUG: 'lease-never-expires' },
    });
    expect(summary.verdict, text).toBe('invalid');
    expect(text).toMatch(/INVALID lease/);
  });

  it('the same runs without the bugs are valid', async () => {
    const { summary, text } = await runChaos({
      ...base, faults: ['partition', 'kill-leader'], workloads: ['register', 'set', 'lease'],
    });
    expect(summary.verdict, text).toBe('valid');
    expect(summary.ok, text).toBeGreaterThan(1_000);
  });

  it('members replaced under load (removed, wiped, added back empty) lose nothing', async () => {
    const { summary, text, faults } = await runChaos({
      ...base, faults: ['member-replace'], workloads: ['register', 'set'],
    });
    expect(summary.verdict, text).toBe('valid');
    const replaced = faults.filter((fault) => /removed and wiped; added back as \d+/.test(fault.detail));
    expect(replaced.length, JSON.stringify(faults)).toBeGreaterThanOrEqual(1);
  });
});
