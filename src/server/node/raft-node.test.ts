import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { isSynodError, SeededRandom } from '../../base/index.js';
import { KvStateMachine, utf8, utf8Text, type ApplyResult, type Command } from '../../kv/index.js';
import { RaftLogStore } from '../../storage/index.js';
import { pendingProposalsMax, RaftNode } from './raft-node.js';
import { TestCluster } from './test-cluster.js';

function put(key: string, value: string): Command {
  return { type: 'put', request: { key: utf8(key), value: utf8(value) } };
}

function revisionOf(result: ApplyResult): number {
  expect(result.ok).toBe(true);
  if (!result.ok) throw result.error;
  return result.result.response.header.revision;
}

function stopped(error: unknown): boolean {
  return isSynodError(error, 'SYNOD_NODE_STOPPED');
}

function timedOut(error: unknown): boolean {
  return isSynodError(error, 'SYNOD_REQUEST_TIMEOUT');
}

function read(machine: KvStateMachine, key: string): string | undefined {
  const kv = machine.store.range({ key: utf8(key) }).kvs[0];
  return kv === undefined ? undefined : utf8Text(kv.value);
}

describe('RaftNode, single member', () => {
  const cleanups: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  async function open(directory: string): Promise<{ node: RaftNode; store: RaftLogStore }> {
    const bootstrapConfState = { voters: [1], learners: [] };
    const store = await RaftLogStore.open({ path: directory, bootstrapConfState });
    const node = new RaftNode({
      id: 1, store, stateMachine: KvStateMachine.open(), transport: { send: () => {} },
      random: new SeededRandom(cleanups.length + 1), tickIntervalMs: 100, electionTicks: 10,
      ticker: 'manual',
    });
    cleanups.push(async () => {
      await node.stop();
      await store.close();
    });
    node.start();
    return { node, store };
  }

  async function tempDirectory(): Promise<string> {
    const directory = await mkdtemp(join(tmpdir(), 'synod-raft-node-'));
    cleanups.push(() => rm(directory, { recursive: true, force: true }));
    return directory;
  }

  it('commits puts and a txn, reads linearizably, replays the log on restart', async () => {
    const directory = await tempDirectory();
    const { node } = await open(directory);
    node.campaign();
    await node.idle();
    expect(node.isLeader).toBe(true);
    expect(node.leaderId).toBe(1);
    expect(node.term).toBe(1);

    const first = revisionOf(await node.propose(put('a', '1')));
    const second = revisionOf(await node.propose(put('b', '2')));
    const txn = await node.propose({
      type: 'txn',
      request: {
        compare: [{ key: utf8('a'), target: 'VALUE', result: 'EQUAL', value: utf8('1') }],
        success: [{ requestPut: { key: utf8('c'), value: utf8('3') } }],
        failure: [],
      },
    });
    const third = revisionOf(txn);
    expect(first).toBeLessThan(second);
    expect(second).toBeLessThan(third);
    expect(txn.ok && txn.result.type === 'txn' && txn.result.response.succeeded).toBe(true);

    const readIndex = await node.linearizableRead();
    expect(node.appliedIndex).toBeGreaterThanOrEqual(readIndex);
    expect(['a', 'b', 'c'].map((key) => read(node.stateMachine, key))).toEqual(['1', '2', '3']);
    const appliedBefore = node.appliedIndex;

    // Restart on the same directory with an empty in-memory state machine: the log replays.
    const closeFirstRun = cleanups.splice(cleanups.length - 1, 1)[0]!;
    await closeFirstRun();
    const reopened = await open(directory);
    await reopened.node.idle();
    expect(reopened.node.appliedIndex).toBe(appliedBefore);
    const replayed = ['a', 'b', 'c'].map((key) => read(reopened.node.stateMachine, key));
    expect(replayed).toEqual(['1', '2', '3']);
    reopened.node.campaign();
    await reopened.node.idle();
    const after = revisionOf(await reopened.node.propose(put('d', '4')));
    expect(after).toBe(third + 1);
    await reopened.node.linearizableRead();
    expect(read(reopened.node.stateMachine, 'd')).toBe('4');
  });

  it('holds applies for withAppliesHeld: commits go on, the state machine waits, reads of applied state are served', async () => {
    const { node } = await open(await tempDirectory());
    node.campaign();
    await node.idle();
    revisionOf(await node.propose(put('a', '1')));
    let written: Promise<ApplyResult> | undefined;
    const held = node.withAppliesHeld(async () => {
      // Nothing committed since the hold began: a linearizable read is served under it.
      expect(await node.linearizableRead()).toBe(node.appliedIndex);
      written = node.propose(put('b', '2'));
      await node.idle();
      // Committed (the log holds it), not applied: the store is as the hold found it.
      expect(node.raftStatus().commit).toBeGreaterThan(node.appliedIndex);
      expect(read(node.stateMachine, 'b')).toBeUndefined();
      return 'done';
    });
    expect(await held).toBe('done');
    revisionOf(await written!);
    expect(read(node.stateMachine, 'b')).toBe('2');
    expect(node.appliedIndex).toBe(node.raftStatus().commit);
  });

  it('picks up a proposal made while the loop winds down (no lost wake-up)', async () => {
    const directory = await tempDirectory();
    const { node } = await open(directory);
    node.campaign();
    await node.idle();
    // Each second proposal is made k microtasks after the first one's resolution, so for some k
    // it lands after the loop found no more work but before it marked itself idle. Nothing
    // ticks, so only the loop can pick it up; a lost one never settles.
    for (let delay = 0; delay < 12; delay++) {
      let settled = false;
      await node.propose(put('a', `${delay}`)).then(async () => {
        for (let i = 0; i < delay; i++) await Promise.resolve();
        void node.propose(put('b', `${delay}`)).then(() => {
          settled = true;
        });
      });
      await node.idle();
      expect(settled, `proposal made ${delay} microtasks after`).toBe(true);
    }
    expect(read(node.stateMachine, 'b')).toBe('11');
  });

  it('batches reads that arrive together into one read index', async () => {
    const { node } = await open(await tempDirectory());
    node.campaign();
    await node.idle();
    await node.propose(put('a', '1'));
    const indexes = await Promise.all([node.linearizableRead(), node.linearizableRead()]);
    expect(indexes[0]).toBe(indexes[1]);
    expect(indexes[0]).toBe(node.appliedIndex);
  });

  it('rejects beyond pendingProposalsMax, and everything on stop, with coded errors', async () => {
    const { node } = await open(await tempDirectory());
    node.campaign();
    await node.idle();
    const pending: Promise<ApplyResult>[] = [];
    for (let i = 0; i < pendingProposalsMax; i++) pending.push(node.propose(put(`k${i}`, 'v')));
    await expect(node.propose(put('over', 'v'))).rejects.toSatisfy(
      (error) => isSynodError(error, 'SYNOD_PROPOSAL_DROPPED'),
    );
    const results = await Promise.all(pending);
    expect(results.every((result) => result.ok)).toBe(true);

    // The rejection is expected before stop() resolves (stop writes the held-back commit index
    // after rejecting waiters), so it is handled from the start.
    const waiting = expect(node.propose(put('late', 'v'))).rejects.toSatisfy(stopped);
    await node.stop();
    await waiting;
    await expect(node.linearizableRead()).rejects.toSatisfy(stopped);
  });

  it('times out a proposal that cannot commit, counted in ticks', async () => {
    const { node } = await open(await tempDirectory());
    node.campaign();
    await node.idle();
    // Ticks are synchronous and the loop runs on a later microtask, so the request timeout
    // (7000 ms / 100 ms = 70 ticks) passes before the entry can apply; it still applies later.
    const proposal = node.propose(put('a', '1'));
    for (let i = 0; i < 70; i++) node.tick();
    await expect(proposal).rejects.toSatisfy(timedOut);
    await node.linearizableRead();
    expect(read(node.stateMachine, 'a')).toBe('1');
  });
});

describe('RaftNode, three members over an in-memory transport', () => {
  let cluster: TestCluster | null = null;
  afterEach(async () => {
    await cluster?.close();
    cluster = null;
  });

  it('elects by ticking, replicates via leader and follower, catches up a restart', async () => {
    cluster = await TestCluster.start(3);
    await cluster.elect(1);
    const leader = cluster.member(1).node;
    expect(cluster.member(2).node.leaderId).toBe(1);

    const viaLeader = revisionOf(await leader.propose(put('a', '1')));
    const viaFollower = revisionOf(await cluster.member(2).node.propose(put('b', '2')));
    expect(viaFollower).toBe(viaLeader + 1);
    await cluster.settle();
    for (const id of [1, 2, 3]) {
      const node = cluster.member(id).node;
      expect(node.appliedIndex).toBe(leader.appliedIndex);
      expect([read(node.stateMachine, 'a'), read(node.stateMachine, 'b')]).toEqual(['1', '2']);
    }
    const readIndex = await cluster.member(3).node.linearizableRead();
    expect(readIndex).toBeLessThanOrEqual(cluster.member(3).node.appliedIndex);

    await cluster.stopMember(3);
    for (let i = 0; i < 5; i++) revisionOf(await leader.propose(put(`k${i}`, `${i}`)));
    const restarted = (await cluster.restart(3)).node;
    for (let ticks = 0; ticks < 50 && restarted.appliedIndex < leader.appliedIndex; ticks++) {
      leader.tick();
      await cluster.settle();
    }
    expect(restarted.appliedIndex).toBe(leader.appliedIndex);
    expect(read(restarted.stateMachine, 'k4')).toBe('4');
    expect(restarted.stateMachine.serialize()).toEqual(leader.stateMachine.serialize());
  });

  it('snapshots every snapshotCount entries, compacts the log, and catches a follower up by snapshot', async () => {
    cluster = await TestCluster.start(3, { snapshotCount: 10, snapshotCatchUpEntries: 2 });
    await cluster.elect(1);
    const leader = cluster.member(1).node;
    await cluster.stopMember(3);
    for (let i = 0; i < 40; i++) revisionOf(await leader.propose(put(`k${i}`, `${i}`)));
    await cluster.settle();
    const leaderStore = cluster.member(1).store;
    expect(leaderStore.snapshot().metadata.index).toBeGreaterThanOrEqual(30);
    expect(leaderStore.firstIndex()).toBeGreaterThan(20); // Entries member 3 missed are gone.

    // Member 3 restarts with an empty log tail it cannot fill from the leader's log.
    const restarted = (await cluster.restart(3)).node;
    for (let ticks = 0; ticks < 50 && restarted.appliedIndex < leader.appliedIndex; ticks++) {
      leader.tick();
      await cluster.settle();
    }
    expect(restarted.appliedIndex).toBe(leader.appliedIndex);
    expect(cluster.member(3).store.snapshot().metadata.index).toBeGreaterThan(0);
    expect(restarted.stateMachine.serialize()).toEqual(leader.stateMachine.serialize());

    // A restart with a fresh state machine recovers from the stored snapshot plus the log.
    const expected = leader.stateMachine.serialize();
    await cluster.stopMember(1);
    const recovered = (await cluster.restart(1)).node;
    expect(recovered.appliedIndex).toBeGreaterThanOrEqual(cluster.member(1).store.firstIndex() - 1);
    await cluster.elect(2);
    await cluster.settle();
    expect(recovered.stateMachine.serialize()).toEqual(expected);
  });
});
