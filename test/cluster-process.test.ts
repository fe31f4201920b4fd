/**
 * A 3-member Synod cluster of real processes on loopback: the leader is killed with SIGKILL under
 * write load, a new leader must serve within 3 election timeouts, and no acknowledged write may
 * be lost; the killed member then rejoins and catches up, and a restart of every member keeps the
 * data.
 */

import type { Etcd3 } from 'etcd3';
import { afterEach, describe, expect, it } from 'vitest';
import { eventually, startWriter } from './support/cluster-load.js';
import { ProcessCluster } from './support/synod-processes.js';

const timing = { heartbeatIntervalMs: 100, electionTimeoutMs: 1000 };

/** The name of the member every running member agrees leads, if they agree. */
async function agreedLeader(cluster: ProcessCluster, clients: Map<string, Etcd3>): Promise<string | undefined> {
  const running = cluster.members.filter((member) => cluster.isRunning(member.name));
  const statuses = await Promise.all(running.map(async (member) => {
    const status = await clients.get(member.name)!.maintenance.status();
    return { name: member.name, memberId: status.header.member_id, leader: status.leader };
  }));
  const leaderIds = new Set(statuses.map((status) => status.leader));
  if (leaderIds.size !== 1 || leaderIds.has('0')) return undefined;
  return statuses.find((status) => status.memberId === statuses[0]!.leader)?.name;
}

describe('a 3-member cluster of processes', () => {
  let cluster: ProcessCluster | null = null;
  const clients = new Map<string, Etcd3>();
  afterEach(async () => {
    for (const client of clients.values()) client.close();
    clients.clear();
    await cluster?.destroy();
    cluster = null;
  });

  function connectAll(current: ProcessCluster): void {
    for (const client of clients.values()) client.close();
    clients.clear();
    for (const member of current.members) clients.set(member.name, current.client(member.name));
  }

  it('survives kill -9 of the leader under load: a new leader within 3 election timeouts, no acknowledged write lost', async () => {
    const current = (cluster = await ProcessCluster.create(3, timing));
    await current.startAll();
    connectAll(current);
    const leader = await eventually('a leader', 10_000, () => agreedLeader(current, clients));
    const followers = current.members.map((m) => m.name).filter((name) => name !== leader);

    const writers = current.members.flatMap((member) => [0, 1].map((i) =>
      startWriter(`${member.name}-${i}`, clients.get(member.name)!)));
    await eventually('load running', 5_000, async () =>
      writers.every((writer) => writer.acknowledged.size >= 20) ? true : undefined);

    const killedAt = performance.now();
    await current.kill(leader);
    // A write through a surviving member succeeds only once a new leader commits it.
    await eventually('a write after the kill', 3 * timing.electionTimeoutMs + 2_000, async () => {
      await clients.get(followers[0]!)!.put('probe').value('after-kill');
      return true;
    });
    const recoveryMs = performance.now() - killedAt;
    expect(recoveryMs, `new leader served after ${Math.round(recoveryMs)} ms`)
      .toBeLessThanOrEqual(3 * timing.electionTimeoutMs);

    const before = writers.map((writer) => writer.acknowledged.size);
    await eventually('load continuing on the new leader', 5_000, async () =>
      writers.some((writer, i) => writer.acknowledged.size >= before[i]! + 50) ? true : undefined);
    for (const writer of writers) await writer.stop();

    await current.start(leader);
    connectAll(current);
    const expected = new Map(writers.flatMap((writer) => [...writer.acknowledged]));
    expect(expected.size).toBeGreaterThan(100);
    const newLeader = await eventually('a leader after rejoin', 10_000, () => agreedLeader(current, clients));
    expect(newLeader).not.toBe(leader);
    const linearizable = await clients.get(newLeader)!.getAll().prefix('load/').strings();
    for (const [key, value] of expected) expect(linearizable[key], key).toBe(value);
    // The killed member catches up from the log and serves the same data locally.
    const revision = (await clients.get(newLeader)!.maintenance.status()).header.revision;
    const rejoined = clients.get(leader)!;
    await eventually('the killed member caught up', 10_000, async () => {
      const status = await rejoined.maintenance.status();
      return BigInt(status.header.revision) >= BigInt(revision) ? true : undefined;
    });
    const local = await rejoined.getAll().prefix('load/').strings();
    expect(local).toEqual(linearizable);
  });

  it('keeps every write across a restart of every member, and re-elects', async () => {
    const current = (cluster = await ProcessCluster.create(3, timing));
    await current.startAll();
    connectAll(current);
    await eventually('a leader', 10_000, () => agreedLeader(current, clients));
    for (let i = 0; i < 30; i++) await clients.get(`m${1 + (i % 3)}`)!.put(`k${i}`).value(`v${i}`);
    for (const member of current.members) expect(await current.stop(member.name)).toBe(0);

    await current.startAll();
    connectAll(current);
    const leader = await eventually('a leader after restart', 10_000, () => agreedLeader(current, clients));
    const all = await clients.get(leader)!.getAll().prefix('k').strings();
    expect(Object.keys(all)).toHaveLength(30);
    expect(all.k29).toBe('v29');
    await clients.get('m2')!.put('after').value('restart');
    expect(await clients.get('m3')!.get('after').string()).toBe('restart');
  });

  it('restarts a follower that fell behind a compacted log: it catches up by snapshot', async () => {
    const current = (cluster = await ProcessCluster.create(3, {
      ...timing,
      extraFlags: ['--snapshot-count', '50', '--experimental-snapshot-catchup-entries', '10'],
    }));
    await current.startAll();
    connectAll(current);
    const leader = await eventually('a leader', 10_000, () => agreedLeader(current, clients));
    const follower = current.members.map((m) => m.name).find((name) => name !== leader)!;
    expect(await current.stop(follower)).toBe(0);
    // Far more than snapshot-count + catch-up entries, so the entries it misses are compacted away.
    const writes = Array.from({ length: 200 }, (_, i) => clients.get(leader)!.put(`s${i}`).value(`${i}`));
    await Promise.all(writes);

    await current.start(follower);
    connectAll(current);
    const revision = (await clients.get(leader)!.maintenance.status()).header.revision;
    await eventually('the follower caught up', 15_000, async () => {
      const status = await clients.get(follower)!.maintenance.status();
      return BigInt(status.header.revision) >= BigInt(revision) ? true : undefined;
    });
    expect(current.logOf(leader)).toMatch(/"outcome":"finish"[^\n]*"msg":"snapshot sent"/);
    const local = await clients.get(follower)!.getAll().prefix('s').strings();
    expect(Object.keys(local)).toHaveLength(200);
    expect(local.s199).toBe('199');
    // It takes part in the cluster afterwards: a write through it commits.
    await clients.get(follower)!.put('after').value('snapshot');
    expect(await clients.get(leader)!.get('after').string()).toBe('snapshot');
  });
});
