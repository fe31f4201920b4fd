/**
 * Runtime membership on real processes: a single member grows to 3 and then 5 members through
 * MemberAdd and members started with `--initial-cluster-state existing`, each joining as a
 * learner and promoted by the leader once caught up, then shrinks back to 1 with MemberRemove —
 * the leader included — while a writer keeps putting. No acknowledged write may be lost, every
 * removed member stops by itself, and a removed member's id is never reused.
 */

import type { Etcd3 } from 'etcd3';
import { afterEach, describe, expect, it } from 'vitest';
import { eventually, startWriter } from './support/cluster-load.js';
import { ProcessCluster } from './support/synod-processes.js';

const timing = { heartbeatIntervalMs: 100, electionTimeoutMs: 1000, extraFlags: ['--snapshot-count', '300'] };
/** A join (start, catch up, promotion) or a removal may take this long on a loaded machine. */
const changeDeadlineMs = 60_000;

interface ListedMember {
  readonly ID: string;
  readonly name: string;
  readonly peerURLs: string[];
  readonly isLearner: boolean;
}

async function memberList(client: Etcd3): Promise<ListedMember[]> {
  const response = await client.cluster.memberList({});
  return response.members as unknown as ListedMember[];
}

describe('runtime membership on processes', () => {
  let cluster: ProcessCluster | null = null;
  const clients: Etcd3[] = [];
  afterEach(async () => {
    for (const client of clients) client.close();
    clients.length = 0;
    await cluster?.destroy();
    cluster = null;
  });

  it('grows 1 → 3 → 5 and shrinks back to 1 under writes, losing nothing', async () => {
    const current = (cluster = await ProcessCluster.create(5, timing));
    const names = current.members.map((member) => member.name);
    await current.start('m1', { members: ['m1'] });
    const first = current.client('m1');
    clients.push(first);
    const writer = startWriter('w', first);

    for (let count = 2; count <= 5; count++) {
      const name = names[count - 1]!;
      const added = await first.cluster.memberAdd({ peerURLs: [current.peerUrl(name)] });
      expect(added.member?.isLearner, 'a member always joins as a learner').toBe(true);
      await current.start(name, { members: names.slice(0, count), state: 'existing' });
      await eventually(`${name} promoted`, changeDeadlineMs, async () => {
        const members = await memberList(first);
        const joined = members.find((member) => member.peerURLs.includes(current.peerUrl(name)));
        return joined !== undefined && !joined.isLearner && joined.name === name ? true : undefined;
      });
    }
    const grown = await memberList(first);
    expect(grown.map((member) => member.name).sort()).toEqual(names);
    expect(grown.every((member) => !member.isLearner)).toBe(true);

    for (const name of [...names].reverse().slice(0, 4)) {
      const members = await memberList(first);
      const leaving = members.find((member) => member.name === name)!;
      await eventually(`${name} removed`, changeDeadlineMs, async () => {
        await first.cluster.memberRemove({ ID: leaving.ID });
        return true;
      });
      expect(await current.exited(name), `${name} exits once removed`).toBe(0);
      const after = await memberList(first);
      expect(after.map((member) => member.name)).not.toContain(name);
    }

    await writer.stop();
    expect(writer.acknowledged.size, 'the writer made progress').toBeGreaterThan(50);
    for (const [key, value] of writer.acknowledged) {
      expect(await first.get(key).string(), key).toBe(value);
    }
    const left = await memberList(first);
    expect(left.map((member) => member.name)).toEqual(['m1']);
    // A removed member may not come back under its old id.
    const removedId = grown.find((member) => member.name === 'm2')!.ID;
    await expect(first.cluster.memberPromote({ ID: removedId })).rejects.toThrow(/member not found|ID removed/);
    // And the cluster still takes writes alone.
    await first.put('after').value('shrink');
    expect(await first.get('after').string()).toBe('shrink');
  });
});
