/**
 * `synod snapshot restore`: builds the data directory of one member of a NEW cluster from a
 * snapshot file, as etcdctl 3.4's `snapshot restore` does (etcd snapshot/v3_snapshot.go,
 * Restore). Run once per member with the same `--initial-cluster` and `--initial-cluster-token`;
 * each member then starts with `synod server` and the same flags, `--initial-cluster-state new`.
 *
 * What it writes under `--data-dir` (the layout `startServer` opens):
 * - `kv`: the MVCC backend holding the snapshot's state: every revision, lease record and alarm,
 *   and the applied Raft index the state was serialized at (call it A). Nothing is revoked, as in
 *   etcd; the new leader resets every lease's deadline to a full TTL. One part is replaced: the
 *   member table (src/kv/members.ts) of the old cluster, removed members included, gives way to
 *   the new cluster's members, as etcd's restore deletes its `members` and `members_removed`
 *   buckets and adds the members of --initial-cluster. The records are those a new cluster's
 *   bootstrap entries carry (membership.ts), so the member table and the transport agree.
 * - `raft`: a Raft log store whose snapshot is that same state at index max(A, 1), term 1, with
 *   the new cluster's voters as its ConfState, and hard state {term 1, no vote, commit there}.
 *
 * Why index A and not 1 (etcd re-bases its consistent index instead): the state carries A as its
 * applied index, and a member resumes applying after the index its backend holds. With the Raft
 * snapshot at A the two agree, so the first entry of the new cluster (A + 1) applies; a snapshot
 * at 1 would make the member skip entries 2…A as already applied. A state with no command
 * applied (A = 0) gets index 1, and the member installs the Raft snapshot at its first start.
 *
 * Every member restored from the same file gets identical state, raft snapshot and log position;
 * member and cluster ids derive from the peer URLs and the token (member-identity.ts), so a new
 * token or new peer URLs give the cluster new ids. The directory is built beside `--data-dir` and
 * renamed into place once complete and synced, so a failed restore leaves nothing behind.
 */

import { constants } from 'node:fs';
import { mkdir, mkdtemp, open, readdir, readFile, rename, rm } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { assert, SynodError } from '../base/index.js';
import {
  KvStateMachine, MemoryBackend, memberTableKeyPrefixes, prefixEnd, type BackendWrite, type MemberRecord,
} from '../kv/index.js';
import { noneId, type ConfState, type Snapshot } from '../raft/index.js';
import { LmdbKvBackend, RaftLogStore, snapshotDataBytesMax } from '../storage/index.js';
import { clusterLayoutOf, type ClusterLayout } from './cluster-layout.js';
import type { ServerConfig } from './flags.js';
import { identityOf } from './member-identity.js';
import { urlText } from './membership.js';
import { decodeSnapshot } from './snapshot-file.js';

/** The term of the restored Raft snapshot and hard state (etcd's restore uses 1 too). */
export const restoredTerm = 1;

/** Options of `restoreMember`. */
export interface RestoreOptions {
  /** The snapshot file, as `etcdctl snapshot save` wrote it. */
  readonly snapshotPath: string;
  /**
   * The restored member's server configuration: `name`, `dataDir`, `initialCluster`,
   * `initialClusterToken` and `initialAdvertisePeerUrls` are used (and `maxTxnOps`).
   */
  readonly config: ServerConfig;
  /** Skip checking the file's SHA-256 trailer (etcdctl's --skip-hash-check). */
  readonly skipHashCheck: boolean;
}

/** What a restore wrote. */
export interface RestoreReport {
  /** The data directory, as given. */
  readonly dataDir: string;
  /** The restored member's etcd member id, and its new cluster's. */
  readonly memberId: bigint;
  readonly clusterId: bigint;
  /** Index of the Raft snapshot the member starts from. */
  readonly raftIndex: number;
  /** The MVCC revision the member serves when it starts. */
  readonly revision: number;
  /** The new cluster's voters (Raft ids). */
  readonly voters: readonly number[];
}

/**
 * Restores `options.snapshotPath` into `options.config.dataDir`. SYNOD_INVALID_CONFIG when the
 * cluster flags are inconsistent, the data directory exists and is not empty (etcd's check), or
 * the state is too large for the Raft store; SYNOD_STORAGE_CORRUPT when the file is damaged.
 */
export async function restoreMember(options: RestoreOptions): Promise<RestoreReport> {
  const { config } = options;
  const layout = clusterLayoutOf(config);
  const identity = identityOf(config);
  const dataDir = resolve(config.dataDir);
  await refuseNonEmpty(dataDir, config.dataDir);
  const file = await readFile(options.snapshotPath);
  const saved = decodeSnapshot(file, { verifyHash: !options.skipHashCheck });
  const payload = withMembers(saved, membersOf(layout));
  if (payload.length > snapshotDataBytesMax) {
    throw new SynodError(
      'SYNOD_INVALID_CONFIG',
      `snapshot state of ${payload.length} bytes is beyond the Raft store's limit of ` +
      `${snapshotDataBytesMax}`,
    );
  }
  const voters = layout.members.map((member) => member.raftId);
  assert(voters.includes(layout.self.raftId), 'the restored member is one of the voters');
  await mkdir(dirname(dataDir), { recursive: true });
  const staging = await mkdtemp(join(dirname(dataDir), `.${basename(dataDir)}.restoring-`));
  try {
    const written = await writeDataDir(staging, {
      payload, confState: { voters, learners: [] }, txnOpsMax: config.maxTxnOps,
    });
    // rename(2) replaces an empty directory, and fails if another restore filled it meanwhile.
    await rename(staging, dataDir);
    await syncDirectory(dirname(dataDir));
    return { dataDir: config.dataDir, ...identity, ...written, voters };
  } finally {
    await rm(staging, { recursive: true, force: true });
  }
}

/** The new cluster's member records, as its bootstrap entries would carry them (membership.ts). */
function membersOf(layout: ClusterLayout): MemberRecord[] {
  return layout.members.map((member) => ({
    raftId: member.raftId, memberId: member.memberId, name: member.name,
    peerUrls: member.peerUrls.map(urlText), clientUrls: [], isLearner: false,
  }));
}

/**
 * `payload` (a serialized state) with its member table replaced by `members`; everything else is
 * kept as it was. Runs in memory; SYNOD_STORAGE_CORRUPT if `payload` is not a state.
 */
export function withMembers(payload: Uint8Array, members: readonly MemberRecord[]): Uint8Array {
  const backend = new MemoryBackend();
  KvStateMachine.restore(payload, { backend });
  const stale: BackendWrite[] = [];
  for (const prefix of memberTableKeyPrefixes) {
    for (const { key } of backend.scan('meta', { start: prefix, end: prefixEnd(prefix) })) {
      stale.push({ bucket: 'meta', key });
    }
  }
  backend.commit(stale);
  const machine = KvStateMachine.open({ backend });
  assert(machine.store.members().length === 0, 'the old member table is gone');
  for (const member of members) machine.store.memberChange({ action: 'add', member });
  const installed = machine.store.members().map((member) => member.memberId);
  assert(installed.length === members.length, 'every new member is in the table');
  return machine.serialize();
}

/** etcd: `data-dir "…" not empty or could not be read`. A missing or empty directory passes. */
async function refuseNonEmpty(dataDir: string, given: string): Promise<void> {
  let entries: string[];
  try {
    entries = await readdir(dataDir);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
    entries = ['?'];
  }
  if (entries.length > 0) {
    const why = `data-dir "${given}" not empty or could not be read`;
    throw new SynodError('SYNOD_INVALID_CONFIG', why);
  }
}

interface RestoredState {
  /** `KvStateMachine.serialize()` output, from the snapshot file. */
  readonly payload: Uint8Array;
  /** The new cluster's membership. */
  readonly confState: ConfState;
  readonly txnOpsMax: number;
}

interface RestoredPosition {
  readonly raftIndex: number;
  readonly revision: number;
}

/**
 * Writes `kv` and `raft` under `directory` (new and empty) from the snapshot's `payload`, closing
 * both so that they are synced. Returns the Raft index and revision the member starts at.
 */
async function writeDataDir(directory: string, state: RestoredState): Promise<RestoredPosition> {
  const backend = LmdbKvBackend.open({ path: join(directory, 'kv') });
  let restored: { appliedIndex: number; revision: number };
  try {
    // Validates the payload as a whole before writing it (SYNOD_STORAGE_CORRUPT otherwise).
    const machine = KvStateMachine.restore(state.payload, { backend, txnOpsMax: state.txnOpsMax });
    restored = { appliedIndex: machine.appliedIndex, revision: machine.store.currentRevision };
  } finally {
    // close() flushes: the backend is on disk before the directory is renamed into place.
    await backend.close();
  }
  const raftIndex = Math.max(restored.appliedIndex, 1);
  const snapshot: Snapshot = {
    metadata: { index: raftIndex, term: restoredTerm, confState: state.confState },
    data: state.payload,
  };
  const store = await RaftLogStore.open({
    path: join(directory, 'raft'), bootstrapConfState: state.confState,
  });
  try {
    assert(store.openReport.created, 'the staging directory is new');
    await store.persist({
      snapshot, entries: [], hardState: { term: restoredTerm, vote: noneId, commit: raftIndex },
    });
    assert(store.firstIndex() === raftIndex + 1, 'the log starts after the restored snapshot');
    assert(store.lastIndex() === raftIndex, 'the restored log holds no entries');
  } finally {
    await store.close();
  }
  return { raftIndex, revision: restored.revision };
}

/** fsyncs a directory, so a rename inside it survives an OS crash. */
async function syncDirectory(path: string): Promise<void> {
  const handle = await open(path, constants.O_RDONLY | constants.O_DIRECTORY);
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
