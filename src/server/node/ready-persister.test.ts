import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { SeededRandom } from '../../base/index.js';
import { KvStateMachine, utf8, utf8Text, type ApplyResult } from '../../kv/index.js';
import type { Entry, HardState, Ready } from '../../raft/index.js';
import { LmdbKvBackend, RaftLogStore } from '../../storage/index.js';
import { RaftNode } from './raft-node.js';
import { ReadyPersister } from './ready-persister.js';

const solo = { voters: [1], learners: [] };

function readyOf(fields: Partial<Ready>): Ready {
  return {
    softState: null, hardState: null, entries: [], snapshot: null, committedEntries: [],
    earlyMessages: [], messages: [], readStates: [], mustSync: false, ...fields,
  };
}

function entry(index: number): Entry {
  return { index, term: 1, type: 'normal', data: utf8(`e${index}`) };
}

function revisionOf(result: ApplyResult): number {
  if (!result.ok) throw result.error;
  return result.result.response.header.revision;
}

describe('ReadyPersister', () => {
  const cleanups: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  async function tempDirectory(): Promise<string> {
    const directory = await mkdtemp(join(tmpdir(), 'synod-ready-persister-'));
    cleanups.push(() => rm(directory, { recursive: true, force: true }));
    return directory;
  }

  const closed = new Set<RaftLogStore>();
  async function openStore(path: string): Promise<RaftLogStore> {
    const store = await RaftLogStore.open({ path, bootstrapConfState: solo });
    cleanups.push(async () => {
      if (!closed.has(store)) await store.close();
    });
    return store;
  }

  it('holds a commit-only hard state back until a write that must be durable carries it', async () => {
    const store = await openStore(await tempDirectory());
    const persisted: number[] = [];
    const persister = new ReadyPersister(store, { persisted: (s) => persisted.push(s), applied: () => {} });
    const elected: HardState = { term: 1, vote: 1, commit: 0 };
    await persister.persist(readyOf({ hardState: elected, entries: [entry(1), entry(2)], mustSync: true }));
    expect(store.initialState().hardState).toEqual(elected);

    await persister.persist(readyOf({ hardState: { ...elected, commit: 2 } }));
    expect(store.initialState().hardState.commit, 'a commit-only Ready writes nothing').toBe(0);
    expect(persisted).toHaveLength(1);

    // Entries without a hard state of their own carry the one held back.
    await persister.persist(readyOf({ entries: [entry(3)], mustSync: true }));
    expect(store.initialState().hardState).toEqual({ ...elected, commit: 2 });
    expect(store.lastIndex()).toBe(3);

    await persister.persist(readyOf({ hardState: { ...elected, commit: 3 } }));
    await persister.flush();
    expect(store.initialState().hardState.commit).toBe(3);
    await persister.flush();
    expect(persisted, 'a second flush has nothing to write').toHaveLength(3);
  });

  it('a member restarts after a crash lost its commit index below what it applied and snapshotted', async () => {
    const directory = await tempDirectory();
    const runMember = async () => {
      const store = await openStore(join(directory, 'raft'));
      const backend = LmdbKvBackend.open({ path: join(directory, 'kv') });
      const node = new RaftNode({
        id: 1, store, stateMachine: KvStateMachine.open({ backend }), transport: { send: () => {} },
        random: new SeededRandom(7), tickIntervalMs: 100, electionTicks: 10, ticker: 'manual',
        snapshotCount: 5, snapshotCatchUpEntries: 2,
        restoreStateMachine: (data) => {
          backend.clear();
          return KvStateMachine.restore(data, { backend });
        },
        flushStateMachine: () => backend.flush(),
      });
      node.start();
      node.campaign();
      await node.idle();
      expect(node.isLeader).toBe(true);
      return { store, backend, node };
    };

    const first = await runMember();
    const revisions: number[] = [];
    for (let i = 0; i < 12; i++) {
      revisions.push(revisionOf(await first.node.propose({
        type: 'put', request: { key: utf8(`k${i}`), value: utf8(`v${i}`) },
      })));
    }
    const applied = first.node.appliedIndex;
    await first.node.stop();
    await first.backend.flush();
    // What a crash right after the last applies leaves: the last commit index written is one
    // from before most of them, below the snapshot taken since.
    const { term, vote } = first.store.initialState().hardState;
    const snapshotIndex = first.store.snapshot().metadata.index;
    expect(snapshotIndex).toBeGreaterThan(3);
    await first.store.persist({ snapshot: null, entries: [], hardState: { term, vote, commit: 3 } });
    await first.store.close();
    closed.add(first.store);
    await first.backend.close();

    const second = await runMember();
    cleanups.push(async () => {
      await second.node.stop();
      await second.backend.close();
    });
    const next = revisionOf(await second.node.propose({
      type: 'put', request: { key: utf8('after'), value: utf8('crash') },
    }));
    expect(next, 'nothing applied twice, nothing skipped').toBe(revisions.at(-1)! + 1);
    expect(second.node.appliedIndex).toBeGreaterThan(applied);
    const values = Array.from({ length: 12 }, (_, i) => {
      const kv = second.node.stateMachine.store.range({ key: utf8(`k${i}`) }).kvs[0];
      return kv === undefined ? undefined : utf8Text(kv.value);
    });
    expect(values).toEqual(Array.from({ length: 12 }, (_, i) => `v${i}`));
  });
});
