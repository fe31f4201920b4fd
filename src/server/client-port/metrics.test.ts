import { describe, expect, it } from 'vitest';
import { KvStateMachine } from '../../kv/index.js';
import type { SoftState, Status } from '../../raft/index.js';
import { Histogram } from '../../base/index.js';
import { diskBucketBoundsSeconds, formatFamily, MemberMetrics, type MetricsNode } from './metrics.js';

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

  it('writes the disk histograms with etcd\'s buckets, and the watch gauges', async () => {
    const walFsync = new Histogram(diskBucketBoundsSeconds);
    const backendCommit = new Histogram(diskBucketBoundsSeconds);
    const metrics = new MemberMetrics({
      node: fakeNode(1), memberId: 0x10n, etcdVersion: '3.5.0', dbSizeBytes: async () => 4096,
      disk: { walFsync, backendCommit }, watches: { streamCount: 2, watcherCount: 5 },
    });
    walFsync.observe(0.0015);
    walFsync.observe(20);
    const text = await metrics.render();
    expect(text).toContain('# TYPE etcd_disk_wal_fsync_duration_seconds histogram\n');
    expect(text).toContain('etcd_disk_wal_fsync_duration_seconds_bucket{le="0.001"} 0\n');
    expect(text).toContain('etcd_disk_wal_fsync_duration_seconds_bucket{le="0.002"} 1\n');
    expect(text).toContain('etcd_disk_wal_fsync_duration_seconds_bucket{le="8.192"} 1\n');
    expect(text).toContain('etcd_disk_wal_fsync_duration_seconds_bucket{le="+Inf"} 2\n');
    expect(text).toContain('etcd_disk_wal_fsync_duration_seconds_sum 20.0015\n');
    expect(text).toContain('etcd_disk_wal_fsync_duration_seconds_count 2\n');
    expect(text).toContain('etcd_disk_backend_commit_duration_seconds_count 0\n');
    expect(valueOf(text, 'etcd_debugging_mvcc_watch_stream_total')).toBe(2);
    expect(valueOf(text, 'etcd_debugging_mvcc_watcher_total')).toBe(5);
  });

  it('escapes help text and label values as the text format requires', () => {
    expect(formatFamily({
      name: 'x', help: 'a\\b\nc', type: 'gauge',
      samples: [{ value: Infinity, labels: { v: 'q"\\\n' } }],
    })).toBe('# HELP x a\\\\b\\nc\n# TYPE x gauge\nx{v="q\\"\\\\\\n"} +Inf\n');
  });
});
