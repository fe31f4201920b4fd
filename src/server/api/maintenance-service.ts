/**
 * etcdserverpb.Maintenance for a single member (etcd server/etcdserver/api/v3rpc/maintenance.go).
 *
 * - Status: `version` is the etcd version Synod reports elsewhere (http-endpoints.ts); `dbSize` and
 *   `dbSizeInUse` are both the bytes of the MVCC backend's files as measured by `dbSizeBytes`
 *   (LMDB reuses freed pages in place and exposes no separate "in use" figure here); `raftIndex`
 *   and `raftAppliedIndex` are both the applied index (the driver does not expose the commit
 *   index; on a single member they differ only while a Ready is in flight).
 * - Alarm: Synod raises no alarms yet, so GET and DEACTIVATE answer an empty list (deactivating an
 *   alarm that is not raised is a no-op in etcd too). ACTIVATE is UNIMPLEMENTED: an alarm must be
 *   replicated through Raft and NOSPACE must block writes in the KV service, neither of which
 *   exists yet, and an alarm that is listed but enforces nothing would mislead operators.
 * - HashKV: crc32 over the MVCC `key` bucket up to a revision; see `hashKeyBucket`.
 * - Defragment: succeeds at once. LMDB reuses freed pages inside its file, so there is no
 *   fragmentation to compact away in bbolt's sense; the file never shrinks.
 * - Hash, MoveLeader, Snapshot and Downgrade are UNIMPLEMENTED with a message saying why.
 */

import { crc32 } from 'node:zlib';
import type { UntypedServiceImplementation } from '@grpc/grpc-js';
import { assert, SynodError } from '../../base/index.js';
import { encodeRevision, utf8, type Backend } from '../../kv/index.js';
import { etcdVersionReported } from '../http-endpoints.js';
import type { RaftNode } from '../node/raft-node.js';
import { safeIntegerOf } from './kv-decode.js';
import { encodeHeader, type HeaderSource } from './kv-encode.js';
import { invalidArgument } from './status.js';
import { rethrowLater, unaryHandler, unimplemented, type FatalHandler } from './unary.js';

/** Options of `createMaintenanceService`. */
export interface MaintenanceServiceOptions {
  readonly node: RaftNode;
  /** Sent in every header; a stable non-zero uint64. */
  readonly clusterId: bigint;
  /** This member's id in every header and as Status's leader; a stable non-zero uint64. */
  readonly memberId: bigint;
  /** The on-disk size of the MVCC backend, bytes. */
  readonly dbSizeBytes: () => Promise<number>;
  /** Receives an `AssertionFailure` met while serving. Default: rethrow asynchronously (crash). */
  readonly onFatal?: FatalHandler;
}

interface AlarmRequestWire {
  readonly action: string;
  readonly alarm: string;
}

interface HashKvRequestWire {
  readonly revision: string;
}

/** etcd's ErrNoLeader text, listed in Status.errors while no leader is known. */
const noLeaderError = 'etcdserver: no leader';
const alarmsUnimplemented =
  'synod: activating alarms is not implemented yet: alarms are not replicated and NOSPACE is ' +
  'not enforced; Synod raises no alarms';

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
  return {
    Status: unaryHandler(onFatal, async () => {
      const dbSize = (await options.dbSizeBytes()).toString();
      const leaderKnown = node.leaderId !== 0;
      return {
        header: header(),
        version: etcdVersionReported.etcdserver,
        dbSize,
        dbSizeInUse: dbSize,
        // A single member: the only leader it can know of is itself.
        leader: node.isLeader ? options.memberId.toString() : '0',
        raftIndex: node.appliedIndex.toString(),
        raftTerm: node.term.toString(),
        raftAppliedIndex: node.appliedIndex.toString(),
        errors: leaderKnown ? [] : [noLeaderError],
        isLearner: false,
      };
    }),
    Alarm: unaryHandler(onFatal, async (request: AlarmRequestWire) => {
      if (request.action === 'GET' || request.action === 'DEACTIVATE') {
        return { header: header(), alarms: [] };
      }
      if (request.action === 'ACTIVATE') throw unimplemented(alarmsUnimplemented);
      throw invalidArgument(`unknown alarm action ${request.action}`);
    }),
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
    Defragment: unaryHandler(onFatal, async () => ({ header: header() })),
    Hash: refuse('synod: Hash is not implemented: it hashes a bbolt file, which Synod does not ' +
      'have; use HashKV (etcdctl endpoint hashkv)'),
    MoveLeader: refuse('synod: MoveLeader is not implemented yet: a single member has no other ' +
      'member to hand leadership to'),
    Snapshot: refuse('synod: Snapshot is not implemented yet'),
    Downgrade: refuse('synod: Downgrade is not implemented: there is no older Synod storage ' +
      'version to downgrade to'),
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
