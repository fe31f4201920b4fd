import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SeededRandom } from '../base/index.js';
import { KvStateMachine, utf8, utf8Text, type BucketName } from '../kv/index.js';
import { LmdbKvBackend, RaftLogStore } from '../storage/index.js';
import { parseServerFlags } from './flags.js';
import { memberIdOf } from './member-identity.js';
import { RaftNode } from './node/raft-node.js';
import { restoreMember, type RestoreReport } from './restore.js';
import { sampleState, snapshotFileOf } from './snapshot-test-kit.js';

const peers = {
  n1: 'http://127.0.0.1:12380', n2: 'http://127.0.0.1:22380', n3: 'http://127.0.0.1:32380',
};
const threeMembers = Object.entries(peers).map(([name, url]) => `${name}=${url}`).join(',');

/** A bucket's records as [key text, value hex] pairs. */
function records(machine: KvStateMachine, bucket: BucketName): [string, string][] {
  return [...machine.store.backend.scan(bucket, { start: new Uint8Array(0) })]
    .map(({ key, value }) => [
      Buffer.from(key).toString('latin1'), Buffer.from(value).toString('hex'),
    ]);
}

describe('snapshot restore', () => {
  let root: string;
  let snapshotPath: string;
  const state = sampleState();
  const payload = state.serialize();

  beforeEach(async () => {
    root = await mkdtemp(join(tmpdir(), 'synod-restore-'));
    snapshotPath = join(root, 'snapshot.db');
    await writeFile(snapshotPath, snapshotFileOf(payload));
  });
  afterEach(async () => {
    await rm(root, { recursive: true, force: true });
  });

  interface Variation {
    readonly dataDir?: string;
    readonly file?: string;
    readonly token?: string;
  }

  function restore(name: keyof typeof peers, options: Variation = {}): Promise<RestoreReport> {
    const config = parseServerFlags([
      '--name', name, '--initial-cluster', threeMembers,
      '--initial-cluster-token', options.token ?? 'restored',
      '--initial-advertise-peer-urls', peers[name],
      '--data-dir', options.dataDir ?? join(root, name),
    ], {});
    const file = options.file ?? snapshotPath;
    return restoreMember({ snapshotPath: file, config, skipHashCheck: false });
  }

  /** What a member would start from in `dataDir`: the Raft store's state and the backend's. */
  async function startingPoint(dataDir: string) {
    const store = await RaftLogStore.open({ path: join(dataDir, 'raft') });
    const backend = LmdbKvBackend.open({ path: join(dataDir, 'kv') });
    try {
      const machine = KvStateMachine.open({ backend });
      return {
        created: store.openReport.created,
        snapshot: store.snapshot(),
        initial: store.initialState(),
        log: { first: store.firstIndex(), last: store.lastIndex() },
        state: machine.serialize(),
        appliedIndex: machine.appliedIndex,
      };
    } finally {
      await store.close();
      await backend.close();
    }
  }

  it('writes the state, and a Raft snapshot of it at its applied index, term 1', async () => {
    const report = await restore('n2');
    const expectedIndex = state.appliedIndex;
    expect(expectedIndex).toBe(9);
    expect(report).toEqual<RestoreReport>({
      dataDir: join(root, 'n2'),
      memberId: memberIdOf([new URL(peers.n2)], 'restored'),
      clusterId: expect.any(BigInt) as bigint,
      raftIndex: expectedIndex,
      revision: state.store.currentRevision,
      voters: [1, 2, 3],
    });
    const start = await startingPoint(join(root, 'n2'));
    expect(start.created).toBe(false);
    expect(start.snapshot.metadata).toEqual({
      index: expectedIndex, term: 1, confState: { voters: [1, 2, 3], learners: [] },
    });
    expect(start.snapshot.data).toEqual(start.state);
    expect(start.initial.hardState).toEqual({ term: 1, vote: 0, commit: expectedIndex });
    expect(start.log).toEqual({ first: expectedIndex + 1, last: expectedIndex });
    expect(start.appliedIndex).toBe(expectedIndex);
    const restored = KvStateMachine.restore(start.state);
    // Leases and every revision are kept, byte for byte: nothing is revoked or rewritten.
    for (const bucket of ['key', 'lease'] as const) {
      expect(records(restored, bucket), bucket).toEqual(records(state, bucket));
    }
    expect(restored.store.currentRevision).toBe(state.store.currentRevision);
    // The old cluster's members, the removed one included, give way to the new cluster's.
    const names = ['n1', 'n2', 'n3'] as const;
    expect(restored.store.members()).toEqual(names.map((name, position) => ({
      raftId: position + 1, memberId: memberIdOf([new URL(peers[name])], 'restored'), name,
      peerUrls: [peers[name]], clientUrls: [], isLearner: false,
    })));
    expect(restored.store.isRemovedMember(2)).toBe(false);
    expect(state.store.isRemovedMember(2)).toBe(true);
    const metaWithoutMembers = (machine: KvStateMachine) => records(machine, 'meta')
      .filter(([key]) => !key.startsWith('member/') && !key.startsWith('member-removed/'));
    expect(metaWithoutMembers(restored)).toEqual(metaWithoutMembers(state));
  });

  it('gives every member of the new cluster the same state and log position, new ids', async () => {
    const reports = await Promise.all((['n1', 'n2', 'n3'] as const).map((name) => restore(name)));
    const starts = await Promise.all(reports.map((report) => startingPoint(report.dataDir)));
    for (const start of starts.slice(1)) {
      expect(start.snapshot).toEqual(starts[0]!.snapshot);
      expect(start.initial).toEqual(starts[0]!.initial);
      expect(start.state).toEqual(starts[0]!.state);
    }
    expect(new Set(reports.map((report) => report.clusterId)).size).toBe(1);
    expect(new Set(reports.map((report) => report.memberId)).size).toBe(3);
    const otherToken = await restore('n1', { dataDir: join(root, 'other'), token: 'another' });
    expect(otherToken.clusterId).not.toBe(reports[0]!.clusterId);
    expect(otherToken.memberId).not.toBe(reports[0]!.memberId);
  });

  it('refuses a data directory that exists and is not empty, touching nothing', async () => {
    const dataDir = join(root, 'busy');
    await mkdir(dataDir);
    await writeFile(join(dataDir, 'keep'), 'mine');
    await expect(restore('n1', { dataDir })).rejects.toMatchObject({
      code: 'SYNOD_INVALID_CONFIG', message: `data-dir "${dataDir}" not empty or could not be read`,
    });
    expect(await readdir(dataDir)).toEqual(['keep']);
    expect((await readdir(root)).sort()).toEqual(['busy', 'snapshot.db']);
    // A file where the directory should be cannot be read as one: refused too.
    await expect(restore('n1', { dataDir: join(dataDir, 'keep') })).rejects
      .toMatchObject({ code: 'SYNOD_INVALID_CONFIG' });
  });

  it('accepts an existing empty data directory', async () => {
    const dataDir = join(root, 'empty');
    await mkdir(dataDir);
    await restore('n1', { dataDir });
    expect((await readdir(dataDir)).sort()).toEqual(['kv', 'raft']);
  });

  it('refuses a corrupt file and leaves no data directory behind', async () => {
    const file = snapshotFileOf(payload);
    file[30]! ^= 0x10;
    const corrupt = join(root, 'corrupt.db');
    await writeFile(corrupt, file);
    await expect(restore('n1', { file: corrupt })).rejects.toMatchObject({
      code: 'SYNOD_STORAGE_CORRUPT', message: 'snapshot file: SHA-256 mismatch',
    });
    const notState = join(root, 'not-state.db');
    await writeFile(notState, snapshotFileOf(utf8('no state here')));
    await expect(restore('n1', { file: notState })).rejects
      .toMatchObject({ code: 'SYNOD_STORAGE_CORRUPT' });
    expect((await readdir(root)).sort()).toEqual(['corrupt.db', 'not-state.db', 'snapshot.db']);
  });

  it('refuses flags that name a member not in --initial-cluster', async () => {
    const config = parseServerFlags([
      '--name', 'n1', '--initial-cluster', threeMembers,
      '--initial-advertise-peer-urls', 'http://127.0.0.1:9', '--data-dir', join(root, 'n1'),
    ], {});
    await expect(restoreMember({ snapshotPath, config, skipHashCheck: false })).rejects
      .toMatchObject({
        code: 'SYNOD_INVALID_CONFIG', message: expect.stringMatching(/initial-advertise-peer-urls/),
      });
  });
});

describe('a member started on a restored data directory', () => {
  let root: string;
  const cleanups: (() => Promise<void>)[] = [];
  beforeEach(async () => {
    root = await mkdtemp(join(tmpdir(), 'synod-restore-start-'));
  });
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
    await rm(root, { recursive: true, force: true });
  });

  /** Restores `machine` for a single member, then opens it as startServer does and elects it. */
  async function restoreAndStart(machine: KvStateMachine): Promise<RaftNode> {
    const snapshotPath = join(root, 'snapshot.db');
    await writeFile(snapshotPath, snapshotFileOf(machine.serialize()));
    const dataDir = join(root, 'member');
    const config = parseServerFlags(['--name', 'solo', '--data-dir', dataDir], {});
    await restoreMember({ snapshotPath, config, skipHashCheck: false });
    const store = await RaftLogStore.open({
      path: join(dataDir, 'raft'), bootstrapConfState: { voters: [1], learners: [] },
    });
    const backend = LmdbKvBackend.open({ path: join(dataDir, 'kv') });
    const node = new RaftNode({
      id: 1, store, stateMachine: KvStateMachine.open({ backend }), transport: { send: () => {} },
      random: new SeededRandom(3), tickIntervalMs: 100, electionTicks: 10, ticker: 'manual',
      restoreStateMachine: (data) => {
        backend.clear();
        return KvStateMachine.restore(data, { backend });
      },
      flushStateMachine: () => backend.flush(),
    });
    cleanups.push(async () => {
      await node.stop();
      await store.close();
      await backend.close();
    });
    node.start();
    node.campaign();
    await node.idle();
    expect(node.isLeader).toBe(true);
    return node;
  }

  it('serves the snapshot at its revision, with its lease, and applies new writes', async () => {
    const original = sampleState();
    const node = await restoreAndStart(original);
    const store = node.stateMachine.store;
    expect(store.currentRevision).toBe(original.store.currentRevision);
    expect(utf8Text(store.range({ key: utf8('a') }).kvs[0]!.value)).toBe('2');
    expect(store.range({ key: utf8('b') }).kvs).toEqual([]);
    const lease = store.leaseTimeToLive({ id: 7n, keys: true });
    expect(lease.grantedTtlSeconds).toBe(600);
    expect(lease.keys.map(utf8Text)).toEqual(['leased']);
    const put = { key: utf8('new'), value: utf8('yes') };
    const result = await node.propose({ type: 'put', request: put });
    expect(result.ok).toBe(true);
    expect(node.stateMachine.store.currentRevision).toBe(original.store.currentRevision + 1);
    expect(node.stateMachine.appliedIndex).toBeGreaterThan(original.appliedIndex);
  });

  it('starts from a snapshot of a state that never applied a command (Raft index 1)', async () => {
    const node = await restoreAndStart(KvStateMachine.open());
    expect(node.stateMachine.store.currentRevision).toBe(1);
    const put = { key: utf8('first'), value: utf8('1') };
    const result = await node.propose({ type: 'put', request: put });
    expect(result.ok).toBe(true);
    expect(node.stateMachine.store.currentRevision).toBe(2);
  });
});
