/**
 * /metrics on a 3-member cluster of processes: the series etcd dashboards read are present on
 * every member and move as the cluster does — writes raise the committed and applied indexes, the
 * revision, the key count and the disk histograms; a watch shows in the watcher gauges and leaves
 * them when cancelled; killing the leader is counted as a leader change on the survivors.
 */

import type { Etcd3 } from 'etcd3';
import { afterEach, describe, expect, it } from 'vitest';
import { eventually } from './support/cluster-load.js';
import { ProcessCluster } from './support/synod-processes.js';

const timing = { heartbeatIntervalMs: 100, electionTimeoutMs: 1000 };

/** One scrape: `name` or `name{labels}` → value, as the text format writes them. */
type Scrape = Map<string, number>;

async function scrape(cluster: ProcessCluster, name: string): Promise<Scrape> {
  const response = await fetch(`http://127.0.0.1:${cluster.member(name).clientPort}/metrics`);
  expect(response.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
  const samples: Scrape = new Map();
  for (const line of (await response.text()).split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const space = line.lastIndexOf(' ');
    samples.set(line.slice(0, space), Number(line.slice(space + 1)));
  }
  return samples;
}

function value(samples: Scrape, series: string): number {
  const found = samples.get(series);
  if (found === undefined) throw new Error(`${series} missing from /metrics`);
  return found;
}

/** A histogram's buckets are cumulative, end in +Inf, and +Inf equals the count. */
function expectWellFormedHistogram(samples: Scrape, name: string): void {
  const buckets = [...samples].filter(([series]) => series.startsWith(`${name}_bucket{`));
  expect(buckets.length).toBe(15);
  const counts = buckets.map(([, count]) => count);
  expect(counts).toEqual([...counts].sort((a, b) => a - b));
  expect(buckets.at(-1)![0]).toBe(`${name}_bucket{le="+Inf"}`);
  expect(counts.at(-1)).toBe(value(samples, `${name}_count`));
}

describe('/metrics of a 3-member cluster', () => {
  let cluster: ProcessCluster | null = null;
  const clients: Etcd3[] = [];
  afterEach(async () => {
    for (const client of clients.splice(0)) client.close();
    await cluster?.destroy();
    cluster = null;
  });

  it('are present on every member and change with writes, watches and a leader change', async () => {
    const current = (cluster = await ProcessCluster.create(3, timing));
    await current.startAll();
    const names = current.members.map((member) => member.name);
    const leader = await eventually('one leader every member sees', 10_000, async () => {
      const scrapes = await Promise.all(names.map((name) => scrape(current, name)));
      if (!scrapes.every((samples) => value(samples, 'etcd_server_has_leader') === 1)) return undefined;
      const leaders = names.filter((_, i) => value(scrapes[i]!, 'etcd_server_is_leader') === 1);
      return leaders.length === 1 ? leaders[0] : undefined;
    });
    const survivor = names.find((name) => name !== leader)!;
    const before = await scrape(current, survivor);
    expect(value(before, 'etcd_server_leader_changes_seen_total')).toBeGreaterThanOrEqual(1);
    expect(value(before, 'etcd_server_is_learner')).toBe(0);
    for (const name of ['etcd_disk_wal_fsync_duration_seconds', 'etcd_disk_backend_commit_duration_seconds']) {
      expectWellFormedHistogram(before, name);
    }

    const client = current.client(leader);
    clients.push(client);
    const writes = 50;
    for (let i = 0; i < writes; i++) await client.put(`metrics/${i}`).value('v');
    const after = await eventually('the survivor applied every write', 10_000, async () => {
      const samples = await scrape(current, survivor);
      const applied = value(samples, 'etcd_debugging_mvcc_current_revision') -
        value(before, 'etcd_debugging_mvcc_current_revision');
      return applied >= writes ? samples : undefined;
    });
    expect(value(after, 'etcd_debugging_mvcc_keys_total') - value(before, 'etcd_debugging_mvcc_keys_total')).toBe(writes);
    for (const series of ['etcd_server_proposals_committed_total', 'etcd_server_proposals_applied_total']) {
      expect(value(after, series) - value(before, series), series).toBeGreaterThanOrEqual(writes);
    }
    for (const name of ['etcd_disk_wal_fsync_duration_seconds', 'etcd_disk_backend_commit_duration_seconds']) {
      expect(value(after, `${name}_count`), name).toBeGreaterThan(value(before, `${name}_count`));
      expect(value(after, `${name}_sum`), name).toBeGreaterThan(value(before, `${name}_sum`));
      expectWellFormedHistogram(after, name);
    }
    expect(value(after, 'etcd_mvcc_db_total_size_in_bytes')).toBeGreaterThan(0);

    // A watch through the survivor is counted there, and no longer once it is cancelled.
    const watching = current.client(survivor);
    clients.push(watching);
    const watchers = value(after, 'etcd_debugging_mvcc_watcher_total');
    const watcher = await watching.watch().prefix('metrics/').create();
    await eventually('the watch counted', 5_000, async () =>
      value(await scrape(current, survivor), 'etcd_debugging_mvcc_watcher_total') === watchers + 1 ? true : undefined);
    expect(value(await scrape(current, survivor), 'etcd_debugging_mvcc_watch_stream_total')).toBeGreaterThanOrEqual(1);
    await watcher.cancel();
    await eventually('the cancelled watch no longer counted', 5_000, async () =>
      value(await scrape(current, survivor), 'etcd_debugging_mvcc_watcher_total') === watchers ? true : undefined);

    const changesBefore = value(await scrape(current, survivor), 'etcd_server_leader_changes_seen_total');
    await current.kill(leader);
    await eventually('a new leader counted on the survivor', 10_000, async () => {
      const samples = await scrape(current, survivor);
      return value(samples, 'etcd_server_has_leader') === 1 &&
        value(samples, 'etcd_server_leader_changes_seen_total') === changesBefore + 1 ? true : undefined;
    });
  });
});
