/**
 * The member's Prometheus metrics, under the names etcd exports so dashboards and alerts written
 * for etcd read Synod unchanged (etcd `server/etcdserver/metrics.go`, `server/mvcc/metrics.go`),
 * plus the `process_*` series every Prometheus client exports (`etcdctl check datascale` reads
 * `process_resident_memory_bytes`).
 *
 * The text exposition format (version 0.0.4) is written here by hand: prom-client is not a
 * dependency, and every value is read from the member when scraped (gauges of its state, and one
 * counter kept from `onSoftState`), so a registry would add nothing but a dependency. This is the
 * one place metrics are registered; nothing is computed until a scrape asks.
 */

import { exponentialBuckets, type Histogram } from '../../base/index.js';
import type { SoftState, Status } from '../../raft/index.js';
import type { KvStateMachine } from '../../kv/index.js';

/** The Content-Type of the text exposition format. */
export const metricsContentType = 'text/plain; version=0.0.4; charset=utf-8';

/** What the metrics read from the Raft driver (`RaftNode` has this shape). */
export interface MetricsNode {
  readonly leaderId: number;
  readonly isLeader: boolean;
  readonly appliedIndex: number;
  readonly stateMachine: KvStateMachine;
  raftStatus(): Status;
  onSoftState(listener: (softState: SoftState) => void): () => void;
}

/** Options of `MemberMetrics`. */
export interface MemberMetricsOptions {
  readonly node: MetricsNode;
  /** The MVCC backend's bytes on disk (Maintenance.Status's dbSize). */
  readonly dbSizeBytes: () => Promise<number>;
  /** This member's etcd id, for `etcd_server_id`. */
  readonly memberId: bigint;
  /** The etcd server version reported, for `etcd_server_version`. */
  readonly etcdVersion: string;
  /** Proposals waiting for their outcome; the series is left out without it. */
  readonly proposalsPending?: () => number;
  /** Disk latencies the node observes (`RaftNode`'s timings); left out without them. */
  readonly disk?: { readonly walFsync: Histogram; readonly backendCommit: Histogram };
  /** The watch hub's counts; left out without it. */
  readonly watches?: { readonly streamCount: number; readonly watcherCount: number };
}

/**
 * etcd's bounds for both disk histograms: 1 ms doubling to 8.192 s (ExponentialBuckets(0.001, 2,
 * 14)), so alerts such as "p99 WAL fsync above 10 ms" read the same buckets.
 */
export const diskBucketBoundsSeconds: readonly number[] = Object.freeze(exponentialBuckets(0.001, 2, 14));

/** One sample of a family: its labels (none if unset) and value. */
export interface Sample {
  /** Appended to the family name: a histogram's `_bucket`, `_sum` and `_count`. */
  readonly suffix?: string;
  readonly labels?: Readonly<Record<string, string>>;
  readonly value: number;
}

/** A metric family: every sample of one name, with its HELP text and TYPE. */
export interface Family {
  readonly name: string;
  readonly help: string;
  readonly type: 'gauge' | 'counter' | 'histogram';
  readonly samples: readonly Sample[];
}

/** The metrics of one member; `render` is what /metrics answers. */
export class MemberMetrics {
  /** What `render` writes. */
  readonly contentType = metricsContentType;
  readonly #options: MemberMetricsOptions;
  readonly #unsubscribe: () => void;
  #leader: number;
  #leaderChangesSeen: number;

  constructor(options: MemberMetricsOptions) {
    this.#options = options;
    // A leader already known when the metrics start was seen; etcd counts its first one too.
    this.#leader = options.node.leaderId;
    this.#leaderChangesSeen = this.#leader === 0 ? 0 : 1;
    this.#unsubscribe = options.node.onSoftState((softState) => this.#onSoftState(softState));
  }

  /** Stops following the node. */
  dispose(): void {
    this.#unsubscribe();
  }

  /** The exposition text of every family, read now. */
  async render(): Promise<string> {
    const families = [
      ...this.#serverFamilies(),
      ...this.#diskFamilies(),
      ...(await this.#mvccFamilies()),
      ...this.#watchFamilies(),
      ...processFamilies(),
    ];
    return families.map(formatFamily).join('');
  }

  /** etcd counts a change whenever a Ready names a leader other than the last one it knew. */
  #onSoftState(softState: SoftState): void {
    if (softState.leader !== 0 && softState.leader !== this.#leader) this.#leaderChangesSeen += 1;
    this.#leader = softState.leader;
  }

  #serverFamilies(): Family[] {
    const { node } = this.#options;
    const status = node.raftStatus();
    const families: Family[] = [
      gauge('etcd_server_has_leader', 'Whether or not a leader exists. 1 is existence, 0 is not.',
        node.leaderId === 0 ? 0 : 1),
      gauge('etcd_server_is_leader',
        'Whether or not this member is a leader. 1 if is, 0 otherwise.', node.isLeader ? 1 : 0),
      gauge('etcd_server_is_learner',
        'Whether or not this member is a learner. 1 if is, 0 otherwise.',
        status.confState.learners.includes(status.id) ? 1 : 0),
      counter('etcd_server_leader_changes_seen_total', 'The number of leader changes seen.',
        this.#leaderChangesSeen),
      // etcd exports these two as gauges despite the suffix: the commit and applied indexes.
      gauge('etcd_server_proposals_committed_total',
        'The total number of consensus proposals committed.', status.commit),
      gauge('etcd_server_proposals_applied_total',
        'The total number of consensus proposals applied.', node.appliedIndex),
      gauge('etcd_server_id',
        'Server or member ID in hexadecimal format. 1 for \'server_id\' label with current ID.',
        1, { server_id: this.#options.memberId.toString(16) }),
      gauge('etcd_server_version',
        'Which version is running. 1 for \'server_version\' label with current version.',
        1, { server_version: this.#options.etcdVersion }),
    ];
    const pending = this.#options.proposalsPending;
    if (pending !== undefined) {
      families.push(gauge('etcd_server_proposals_pending',
        'The current number of pending proposals to commit.', pending()));
    }
    return families;
  }

  #diskFamilies(): Family[] {
    const disk = this.#options.disk;
    if (disk === undefined) return [];
    return [
      histogram('etcd_disk_wal_fsync_duration_seconds',
        'The latency distributions of fsync called by WAL.', disk.walFsync),
      // etcd times the backend's commit alone; Synod applies and commits a Ready's entries in one
      // synchronous LMDB transaction, so this is the whole apply batch, commit included.
      histogram('etcd_disk_backend_commit_duration_seconds',
        'The latency distributions of commit called by backend.', disk.backendCommit),
    ];
  }

  #watchFamilies(): Family[] {
    const watches = this.#options.watches;
    if (watches === undefined) return [];
    return [
      gauge('etcd_debugging_mvcc_watch_stream_total', 'Total number of watch streams.',
        watches.streamCount),
      gauge('etcd_debugging_mvcc_watcher_total', 'Total number of watchers.', watches.watcherCount),
    ];
  }

  async #mvccFamilies(): Promise<Family[]> {
    const { node } = this.#options;
    const store = node.stateMachine.store;
    const dbBytes = await this.#options.dbSizeBytes();
    // A count-only range over the whole keyspace: the keys that exist now, as etcd's keys gauge.
    // Its cost is the store's count_only Range, which today reads every live value (O(keys)).
    const everything = { key: Uint8Array.of(0), rangeEnd: Uint8Array.of(0), countOnly: true };
    const keys = store.range(everything);
    return [
      gauge('etcd_mvcc_db_total_size_in_bytes',
        'Total size of the underlying database physically allocated in bytes.', dbBytes),
      gauge('etcd_mvcc_db_total_size_in_use_in_bytes',
        'Total size of the underlying database logically in use in bytes.', dbBytes),
      gauge('etcd_debugging_mvcc_keys_total', 'Total number of keys.', keys.count),
      gauge('etcd_debugging_mvcc_current_revision', 'The current revision of store.',
        store.currentRevision),
      gauge('etcd_debugging_mvcc_compact_revision', 'The revision of the last compaction in store.',
        store.compactRevision),
    ];
  }
}

function processFamilies(): Family[] {
  const cpu = process.cpuUsage();
  const memory = process.memoryUsage();
  return [
    gauge('process_resident_memory_bytes', 'Resident memory size in bytes.', memory.rss),
    counter('process_cpu_seconds_total', 'Total user and system CPU time spent in seconds.',
      (cpu.user + cpu.system) / 1e6),
    gauge('process_start_time_seconds', 'Start time of the process since unix epoch in seconds.',
      Math.floor(performance.timeOrigin / 1000)),
    gauge('nodejs_heap_size_used_bytes', 'Process heap size used from Node.js in bytes.',
      memory.heapUsed),
  ];
}

function gauge(name: string, help: string, value: number, labels?: Record<string, string>): Family {
  return { name, help, type: 'gauge', samples: [{ value, labels }] };
}

function counter(name: string, help: string, value: number): Family {
  return { name, help, type: 'counter', samples: [{ value }] };
}

function histogram(name: string, help: string, source: Histogram): Family {
  const { bounds, cumulativeCounts, sum, count } = source.snapshot();
  const buckets = bounds.map((bound, index) => ({
    suffix: '_bucket', labels: { le: String(bound) }, value: cumulativeCounts[index]!,
  }));
  return {
    name, help, type: 'histogram',
    samples: [
      ...buckets,
      { suffix: '_bucket', labels: { le: '+Inf' }, value: count },
      { suffix: '_sum', value: sum },
      { suffix: '_count', value: count },
    ],
  };
}

/** One family in the text format: HELP, TYPE, then a line per sample. */
export function formatFamily(family: Family): string {
  const lines = [
    `# HELP ${family.name} ${family.help.replace(/\\/g, '\\\\').replace(/\n/g, '\\n')}`,
    `# TYPE ${family.name} ${family.type}`,
  ];
  for (const sample of family.samples) {
    const name = `${family.name}${sample.suffix ?? ''}`;
    lines.push(`${name}${formatLabels(sample.labels)} ${formatValue(sample.value)}`);
  }
  return `${lines.join('\n')}\n`;
}

function formatLabels(labels: Readonly<Record<string, string>> | undefined): string {
  if (labels === undefined) return '';
  const pairs = Object.entries(labels).map(([name, value]) => {
    const escaped = value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
    return `${name}="${escaped}"`;
  });
  return `{${pairs.join(',')}}`;
}

function formatValue(value: number): string {
  if (Number.isNaN(value)) return 'NaN';
  if (value === Infinity) return '+Inf';
  if (value === -Infinity) return '-Inf';
  return String(value);
}
