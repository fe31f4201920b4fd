/**
 * etcdserverpb.Maintenance (etcd server/etcdserver/api/v3rpc/maintenance.go, v3_server.go).
 *
 * - Status: `version` is the etcd version Synod reports elsewhere (http-endpoints.ts); `dbSize` and
 *   `dbSizeInUse` are both the bytes of the MVCC backend's files as measured by `dbSizeBytes`
 *   (LMDB reuses freed pages in place and exposes no separate "in use" figure here); `raftIndex`
 *   is the commit index and `raftAppliedIndex` the applied index, as in etcd; `leader` is the
 *   known leader's member id (0 when none). `errors` lists "no leader" and every raised alarm in
 *   etcd 3.4's text form, trailing space included.
 * - Alarm: ACTIVATE and DEACTIVATE are proposed through Raft (an alarm is replicated state; see
 *   state-machine.ts for what NOSPACE and CORRUPT refuse) and answer as etcd 3.4 does: ACTIVATE the
 *   alarm even if already raised, DEACTIVATE the alarm only if it was raised. GET waits for a
 *   linearizable read, then lists (NONE: every type). Unlike etcd 3.4, which records an alarm of
 *   type NONE, activating or deactivating NONE is a no-op answering no alarms.
 * - Snapshot: a point-in-time copy of the state machine in Synod's own file format, streamed as
 *   etcd streams bbolt; see snapshot-stream.ts. It is taken after a linearizable read, so it holds
 *   every write acknowledged before the request, also when served by a follower.
 * - MoveLeader: only on the leader; waits until the target leads (`onSoftState`) or
 *   `leaderTransferTimeoutMs` passes, as etcd's MoveLeader polls its leader until its deadline.
 * - HashKV: crc32 over the MVCC `key` bucket up to a revision; see `hashKeyBucket`.
 * - Defragment: rewrites the MVCC backend with only its live pages (LMDB reuses freed pages but
 *   never returns them to the file system) while the node holds applies, so writes wait and
 *   reads of applied state go on (etcd blocks both for the whole defragmentation). One at a
 *   time: a second request waits for the first. Without a `defragment` option, a no-op.
 * - Hash and Downgrade are UNIMPLEMENTED with a message saying why.
 */

import { crc32 } from 'node:zlib';
import type { ServerWritableStream, UntypedServiceImplementation } from '@grpc/grpc-js';
import { AssertionFailure, assert, SynodError } from '../../base/index.js';
import { encodeRevision, utf8, type Backend } from '../../kv/index.js';
// Deep import: src/kv/index.ts is outside this change; re-export from there when integrating.
import type { AlarmMember, AlarmType } from '../../kv/mvcc-store.js';
import type { KvDefragReport } from '../../storage/index.js';
import { etcdVersionReported } from '../http-endpoints.js';
import { requestTimeoutMsDefault, type RaftNode } from '../node/raft-node.js';
import { safeIntegerOf } from './kv-decode.js';
import { encodeHeader, type HeaderSource } from './kv-encode.js';
import { writeSnapshot, type SnapshotMessage } from './snapshot-stream.js';
import {
  ApiStatusError, internalStatus, invalidArgument, serviceErrorOf, tooManyRequestsStatus,
} from './status.js';
import { rethrowLater, unaryHandler, unimplemented, type FatalHandler } from './unary.js';

/**
 * Snapshot streams served at once; each holds a copy of the whole state in memory. Beyond it a
 * request gets etcd's "too many requests".
 */
export const snapshotStreamsMax = 2;

/** Options of `createMaintenanceService`. */
export interface MaintenanceServiceOptions {
  readonly node: RaftNode;
  /** Sent in every header; a stable non-zero uint64. */
  readonly clusterId: bigint;
  /** This member's id in every header and as Status's leader; a stable non-zero uint64. */
  readonly memberId: bigint;
  /** The on-disk size of the MVCC backend, bytes. */
  readonly dbSizeBytes: () => Promise<number>;
  /**
   * The Raft id of the member with etcd member id `memberId`, or undefined if there is none.
   * Default: this member's own id maps to `node.id`, and nothing else is known.
   */
  readonly raftIdOf?: (memberId: bigint) => number | undefined;
  /**
   * The etcd member id of the member with Raft id `raftId` (Status's leader). Default: this
   * member's own Raft id maps to `memberId`, and nothing else is known.
   */
  readonly memberIdOf?: (raftId: number) => bigint | undefined;
  /**
   * Defragments the MVCC backend with applies held (`RaftNode.withAppliesHeld` around
   * `LmdbKvBackend.defragment`). Default: none, and Defragment answers at once.
   */
  readonly defragment?: () => Promise<KvDefragReport>;
  /** How long MoveLeader waits for the target to lead, ms (default: the request timeout). */
  readonly leaderTransferTimeoutMs?: number;
  /** Receives an `AssertionFailure` met while serving. Default: rethrow asynchronously (crash). */
  readonly onFatal?: FatalHandler;
}

interface AlarmRequestWire {
  readonly action: string;
  readonly memberID: string;
  readonly alarm: string;
}

interface AlarmMemberWire {
  readonly memberID: string;
  readonly alarm: AlarmType;
}

interface HashKvRequestWire {
  readonly revision: string;
}

interface MoveLeaderRequestWire {
  readonly targetID: string;
}

/** etcd's ErrNoLeader text, listed in Status.errors while no leader is known. */
const noLeaderError = 'etcdserver: no leader';
const uint64Max = (1n << 64n) - 1n;

/** The Maintenance implementation for `server.addService(proto.services.Maintenance, …)`. */
export function createMaintenanceService(
  options: MaintenanceServiceOptions,
): UntypedServiceImplementation {
  const { node } = options;
  const onFatal = options.onFatal ?? rethrowLater;
  const source = (): HeaderSource => ({
    clusterId: options.clusterId, memberId: options.memberId, raftTerm: node.term,
  });
  const header = () => encodeHeader(source(), node.stateMachine.store.currentRevision);
  const refuse = (message: string) => unaryHandler(onFatal, async (): Promise<object> => {
    throw unimplemented(message);
  });
  const moveLeader = leaderMover(options);
  let defragmenting: Promise<unknown> = Promise.resolve();
  const defragmentOneAtATime = async (): Promise<void> => {
    const defragment = options.defragment;
    if (defragment === undefined) return;
    const run = defragmenting.catch(() => undefined).then(defragment);
    defragmenting = run;
    await run;
  };
  const memberIdOf = options.memberIdOf ??
    ((raftId: number) => (raftId === node.id ? options.memberId : undefined));
  return {
    Status: unaryHandler(onFatal, async () => {
      const dbSize = (await options.dbSizeBytes()).toString();
      const leaderKnown = node.leaderId !== 0;
      const alarms = node.stateMachine.store.alarms().map(alarmStatusText);
      return {
        header: header(),
        version: etcdVersionReported.etcdserver,
        dbSize,
        dbSizeInUse: dbSize,
        leader: (memberIdOf(node.leaderId) ?? 0n).toString(),
        raftIndex: node.raftStatus().commit.toString(),
        raftTerm: node.term.toString(),
        raftAppliedIndex: node.appliedIndex.toString(),
        errors: leaderKnown ? alarms : [noLeaderError, ...alarms],
        isLearner: false,
      };
    }),
    Alarm: unaryHandler(onFatal, async (request: AlarmRequestWire) => ({
      header: header(), alarms: (await alarm(node, request)).map(alarmWireOf),
    })),
    HashKV: unaryHandler(onFatal, async (request: HashKvRequestWire) => {
      const store = node.stateMachine.store;
      const revision = checkHashRevision(
        safeIntegerOf(request.revision, 'revision'),
        { current: store.currentRevision, compacted: store.compactRevision },
      );
      return {
        header: header(),
        hash: hashKeyBucket(store.backend, revision),
        compact_revision: store.compactRevision.toString(),
      };
    }),
    Defragment: unaryHandler(onFatal, async () => {
      await defragmentOneAtATime();
      return { header: header() };
    }),
    Hash: refuse('synod: Hash is not implemented: it hashes a bbolt file, which Synod does not ' +
      'have; use HashKV (etcdctl endpoint hashkv)'),
    MoveLeader: unaryHandler(onFatal, async (request: MoveLeaderRequestWire) => {
      await moveLeader(uint64Of(request.targetID, 'targetID'));
      return { header: header() };
    }),
    Snapshot: snapshotHandler({ node, header, onFatal }),
    Downgrade: refuse('synod: Downgrade is not implemented: there is no older Synod storage ' +
      'version to downgrade to'),
  };
}

/** etcd 3.4's AlarmMember.String() as Status lists it: proto compact text, trailing space kept. */
export function alarmStatusText(member: AlarmMember): string {
  return `memberID:${member.memberId} alarm:${member.alarm} `;
}

function alarmWireOf(member: AlarmMember): AlarmMemberWire {
  return { memberID: member.memberId.toString(), alarm: member.alarm };
}

/** Serves one Alarm request; returns the alarms to answer. */
async function alarm(node: RaftNode, request: AlarmRequestWire): Promise<AlarmMember[]> {
  const type = alarmTypeOf(request.alarm);
  if (request.action === 'GET') {
    await node.linearizableRead();
    return node.stateMachine.store.alarms(type ?? undefined);
  }
  if (request.action !== 'ACTIVATE' && request.action !== 'DEACTIVATE') {
    throw invalidArgument(`unknown alarm action ${request.action}`);
  }
  if (type === null) return [];
  const member = { memberId: uint64Of(request.memberID, 'memberID'), alarm: type };
  const action = request.action === 'ACTIVATE' ? 'activate' : 'deactivate';
  const outcome = await node.propose({ type: 'alarm', action, member });
  if (!outcome.ok) throw outcome.error;
  assert(outcome.result.type === 'alarm', 'apply answered another command type');
  return outcome.result.response.alarms;
}

/** A raisable alarm type, or null for NONE (GET: every type; ACTIVATE/DEACTIVATE: no-op). */
function alarmTypeOf(wire: string): AlarmType | null {
  if (wire === 'NOSPACE' || wire === 'CORRUPT') return wire;
  if (wire === 'NONE' || wire === '') return null;
  throw invalidArgument(`unknown alarm type ${wire}`);
}

function uint64Of(wire: string, field: string): bigint {
  if (!/^\d{1,20}$/.test(wire ?? '')) throw invalidArgument(`${field} must be a uint64`);
  const value = BigInt(wire);
  if (value > uint64Max) throw invalidArgument(`${field} must be a uint64`);
  return value;
}

/**
 * etcd's MoveLeader: only the leader transfers (else SYNOD_NOT_LEADER); the target must be a
 * voter (else SYNOD_BAD_LEADER_TRANSFEREE); resolves once the target leads, or fails with
 * SYNOD_LEADER_TRANSFER_TIMEOUT. A target that already leads (this member) succeeds at once.
 */
function leaderMover(options: MaintenanceServiceOptions): (target: bigint) => Promise<void> {
  const { node } = options;
  const raftIdOf = options.raftIdOf ??
    ((memberId: bigint) => (memberId === options.memberId ? node.id : undefined));
  const timeoutMs = options.leaderTransferTimeoutMs ?? requestTimeoutMsDefault;
  if (!Number.isSafeInteger(timeoutMs) || timeoutMs <= 0) {
    const why = 'leaderTransferTimeoutMs must be a positive integer';
    throw new SynodError('SYNOD_INVALID_CONFIG', why);
  }
  return async (target) => {
    if (!node.isLeader) throw new SynodError('SYNOD_NOT_LEADER');
    const raftId = raftIdOf(target);
    if (raftId === undefined || !node.raftStatus().confState.voters.includes(raftId)) {
      throw new SynodError('SYNOD_BAD_LEADER_TRANSFEREE');
    }
    if (node.leaderId === raftId) return;
    await new Promise<void>((resolve, reject) => {
      // A timer at the server edge, like the client's deadline etcd waits under.
      const timer = setTimeout(() => {
        unsubscribe();
        reject(new SynodError('SYNOD_LEADER_TRANSFER_TIMEOUT'));
      }, timeoutMs);
      const unsubscribe = node.onSoftState((softState) => {
        if (softState.leader !== raftId) return;
        clearTimeout(timer);
        unsubscribe();
        resolve();
      });
      node.transferLeadership(raftId);
    });
  };
}

/** The server-streaming Snapshot handler, bounded by `snapshotStreamsMax`. */
function snapshotHandler(context: {
  readonly node: RaftNode;
  readonly header: () => object;
  readonly onFatal: FatalHandler;
}): (call: ServerWritableStream<unknown, SnapshotMessage>) => void {
  const { node, header, onFatal } = context;
  let streams = 0;
  const serve = async (call: ServerWritableStream<unknown, SnapshotMessage>): Promise<void> => {
    if (streams >= snapshotStreamsMax) throw new ApiStatusError(tooManyRequestsStatus);
    streams += 1;
    try {
      await node.linearizableRead();
      if (call.cancelled) return;
      // serialize() reads the backend synchronously: nothing is applied while it runs.
      await writeSnapshot(call, { payload: node.stateMachine.serialize(), header });
    } finally {
      streams -= 1;
      assert(streams >= 0, 'snapshot stream count underflow');
    }
  };
  return (call) => {
    serve(call).catch((error: unknown) => {
      if (error instanceof AssertionFailure) {
        call.emit('error', serviceErrorOf(new ApiStatusError(internalStatus)));
        onFatal(error);
        return;
      }
      call.emit('error', serviceErrorOf(error));
    });
  };
}

/**
 * The revision HashKV hashes up to: 0 means the current one. As etcd's mvcc HashByRev, a revision
 * at or below the compaction point is compacted and one above the current revision is future.
 */
export function checkHashRevision(
  revision: number,
  bounds: { readonly current: number; readonly compacted: number },
): number {
  if (revision < 0) throw invalidArgument(`revision ${revision} is negative`);
  if (revision === 0) return bounds.current;
  if (revision <= bounds.compacted) throw new SynodError('SYNOD_COMPACTED');
  if (revision > bounds.current) throw new SynodError('SYNOD_FUTURE_REVISION');
  return revision;
}

/**
 * etcd's HashKV: a crc32 seeded with the bucket name, then over every record of the `key` bucket
 * (encoded revision, then stored record) at or below `revision`, in revision order. Compaction
 * already removed the records etcd would skip (superseded ones at or below the compaction point),
 * so what is stored is what etcd hashes. The value is stable for the same history on every Synod
 * member but differs from etcd's (IEEE rather than Castagnoli polynomial, Synod's record layout).
 *
 * The scan is synchronous: the store must not change under it, as `Backend.scan` requires.
 */
export function hashKeyBucket(backend: Backend, revision: number): number {
  assert(Number.isSafeInteger(revision) && revision >= 1, 'hash revision out of range');
  const end = encodeRevision({ main: revision + 1, sub: 0 });
  let hash = crc32(utf8('key'));
  for (const entry of backend.scan('key', { start: new Uint8Array(0), end })) {
    hash = crc32(entry.value, crc32(entry.key, hash));
  }
  assert(hash >= 0 && hash <= 0xffff_ffff, 'crc32 is a uint32');
  return hash;
}
