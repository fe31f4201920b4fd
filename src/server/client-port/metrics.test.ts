import { describe, expect, it } from 'vitest';
import { KvStateMachine } from '../../kv/index.js';
import type { SoftState, Status } from '../../raft/index.js';
import { formatFamily, MemberMetrics, type MetricsNode } from './metrics.js';

/** A node whose soft state the test drives. */
function fakeNode(leaderId: number): MetricsNode & { emit(softState: SoftState): void } {
  const listeners = new Set<(softState: SoftState) => void>();
  const node = {
    leaderId,
    isLeader: false,
    appliedIndex: 7,
    stateMachine: KvStateMachine.open(),
    raftStatus: () => ({
      id: 2, commit: 9, confState: { voters: [1, 2], learners: [] },
    }) as unknown as Status,
    onSoftState: (listener: (softState: SoftState) => void) => {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    emit: (softState: SoftState) => {
      node.leaderId = softState.leader;
      for (const listener of listeners) listener(softState);
    },
  };
  return node;
}

function valueOf(text: string, name: string): number {
  const match = new RegExp(`^${name} (\\S+)$`, 'm').exec(text);
  if (match === null) throw new Error(`${name} missing`);
  return Number(match[1]);
}

describe('MemberMetrics', () => {
  it('counts each new leader as etcd does, a lost leader not at all', async () => {
    const node = fakeNode(0);
    const metrics = new MemberMetrics({
      node, memberId: 0x10n, etcdVersion: '3.5.0', dbSizeBytes: async () => 4096,
    });
    const changes = async () => valueOf(
      await metrics.render(), 'etcd_server_leader_changes_seen_total',
    );
    expect(await changes()).toBe(0);
    expect(valueOf(await metrics.render(), 'etcd_server_has_leader')).toBe(0);
    node.emit({ leader: 1, role: 'follower' });
    node.emit({ leader: 1, role: 'follower' });
    expect(await changes()).toBe(1);
    node.emit({ leader: 0, role: 'candidate' });
    expect(await changes()).toBe(1);
    node.emit({ leader: 1, role: 'follower' });
    node.emit({ leader: 2, role: 'leader' });
    expect(await changes()).toBe(3);
    metrics.dispose();
    node.emit({ leader: 1, role: 'follower' });
    expect(await changes()).toBe(3);
  });

  it('reads committed, applied, pending and sizes when scraped', async () => {
    const node = fakeNode(1);
    let pending = 3;
    const metrics = new MemberMetrics({
      node, memberId: 0x10n, etcdVersion: '3.5.0', dbSizeBytes: async () => 4096,
      proposalsPending: () => pending,
    });
    const text = await metrics.render();
    expect(valueOf(text, 'etcd_server_leader_changes_seen_total')).toBe(1);
    expect(valueOf(text, 'etcd_server_proposals_committed_total')).toBe(9);
    expect(valueOf(text, 'etcd_server_proposals_applied_total')).toBe(7);
    expect(valueOf(text, 'etcd_server_proposals_pending')).toBe(3);
    expect(valueOf(text, 'etcd_mvcc_db_total_size_in_bytes')).toBe(4096);
    expect(valueOf(text, 'etcd_debugging_mvcc_keys_total')).toBe(0);
    pending = 0;
    expect(valueOf(await metrics.render(), 'etcd_server_proposals_pending')).toBe(0);
    // Every family has HELP and TYPE before its samples, and the text ends with a newline.
    expect(text.endsWith('\n')).toBe(true);
    for (const name of text.match(/^[a-z_]+(?=[ {])/gm) ?? []) {
      expect(text).toContain(`# TYPE ${name} `);
    }
  });

  it('escapes help text and label values as the text format requires', () => {
    expect(formatFamily({
      name: 'x', help: 'a\\b\nc', type: 'gauge',
      samples: [{ value: Infinity, labels: { v: 'q"\\\n' } }],
    })).toBe('# HELP x a\\\\b\\nc\n# TYPE x gauge\nx{v="q\\"\\\\\\n"} +Inf\n');
  });
});
