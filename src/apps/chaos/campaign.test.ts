import { describe, expect, it } from 'vitest';
import { availabilityTable, campaignTable, type CampaignEntry } from './campaign.js';
import type { ChaosSummary } from './report.js';

const summary = (target: 'synod' | 'etcd', verdict: 'valid' | 'invalid'): ChaosSummary => ({
  target, nodes: 5, duration_s: 120, ops: 100, ok: 60, failed: 30, unknown: 10, faults: 3,
  violations: verdict === 'valid' ? 0 : 1, lost_writes: 0, verdict, report: 'r.html',
});
const gaps = (kind: 'kill' | 'pause', gapsMs: number[]) => ({ kind, faults: gapsMs.length, gapsMs, p50Ms: 0, maxMs: 0 });

const entries: CampaignEntry[] = [
  { seed: 1, summary: summary('synod', 'valid'), availability: [gaps('kill', [100, 300]), gaps('pause', [50])] },
  { seed: 1, summary: summary('etcd', 'invalid'), availability: [gaps('kill', [200])] },
  { seed: 2, summary: summary('synod', 'valid'), availability: [gaps('kill', [200])] },
  { seed: 2, target: 'etcd', error: 'no agreed leader within 30000 ms' },
];

describe('campaign tables', () => {
  it('lists every run, a failed one with its reason', () => {
    const lines = campaignTable(entries).split('\n');
    expect(lines).toHaveLength(6);
    expect(lines[3]).toBe('| 1 | etcd | 100 | 60 | 30 | 10 | 3 | 1 | 0 | invalid |');
    expect(lines[5]).toBe('| 2 | etcd | | | | | | | | run failed: no agreed leader within 30000 ms |');
  });

  it('merges every run\'s gaps per target and fault kind', () => {
    const lines = availabilityTable(entries).split('\n');
    expect(lines[0]).toBe('| fault | synod faults | synod p50 ms | synod max ms | etcd faults | etcd p50 ms | etcd max ms |');
    expect(lines[2]).toBe('| kill | 3 | 200 | 300 | 1 | 200 | 200 |');
    expect(lines[3]).toBe('| pause | 1 | 50 | 50 | 0 | – | – |');
  });
});
