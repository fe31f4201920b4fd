/**
 * etcdserverpb.Lease on a `RaftNode` and its `LeaseKeeper` (etcd server/etcdserver/api/v3rpc/
 * lease.go and v3_server.go).
 *
 * - LeaseGrant and LeaseRevoke are proposed through Raft. ID 0 lets the state machine pick the
 *   next ID from a counter it persists and replicates (mvcc-store.ts), where etcd picks a random
 *   positive int64: the pick is deterministic on every replica, and the counter only moves
 *   forward, so an ID the server picked is never handed out again after its lease is revoked.
 *   A grant is checked against the backend quota first (etcd's quotaLeaseServer).
 * - LeaseKeepAlive and LeaseTimeToLive need the lease clock, which only the leader keeps. A
 *   follower asks the leader through `forwardToLeader`. With no leader known it answers etcd's
 *   ErrNoLeader (Unavailable "etcdserver: no leader"), as etcd's waitLeader does; a forward that
 *   fails is answered the same way, since to this member the leader is unreachable and a client
 *   should retry (Unavailable is the code clients retry). Without a forwarder at all the member
 *   cannot serve the request anywhere and answers ErrNotLeader (FailedPrecondition).
 * - LeaseLeases reads this member's state machine, as etcd reads its local lessor.
 * - Errors leave as etcd's status and exact message (status.ts); an `AssertionFailure` answers
 *   INTERNAL and then goes to `onFatal`.
 */

import type { ServerDuplexStream, UntypedServiceImplementation } from '@grpc/grpc-js';
import { AssertionFailure, assert, isSynodError, SynodError } from '../../base/index.js';
import type { Command, CommandResponse } from '../../kv/index.js';
import type { LeaseKeeper, LeaseLeaderClient } from '../lease/index.js';
import type { RaftNode } from '../node/raft-node.js';
import { leaseIdOf } from './kv-decode.js';
import { encodeHeader, type HeaderSource, type WireResponseHeader } from './kv-encode.js';
import { internalStatus, serviceErrorOf } from './status.js';
import { rethrowLater, unaryHandler } from './unary.js';

/**
 * Keep-alive requests one stream may have read but not answered. Beyond it the stream stops
 * reading (back-pressure through gRPC flow control) until answers drain.
 */
export const keepAliveRequestsInFlightMax = 16;
/** What a grant costs against the backend quota: etcd's leaseOverhead (quota.go). */
export const leaseGrantQuotaBytes = 64;

const uint64Max = (1n << 64n) - 1n;

/** Options of `createLeaseService`. */
export interface LeaseServiceOptions {
  /** Grants and revokes are proposed through it; reads go to its state machine. */
  readonly node: RaftNode;
  /** This member's lease clock: answers keep-alives and remaining TTLs while this member leads. */
  readonly keeper: LeaseKeeper;
  /** Sent in every header; a stable non-zero uint64. */
  readonly clusterId: bigint;
  /** This member's id in every header; a stable non-zero uint64. */
  readonly memberId: bigint;
  /**
   * How a follower reaches the leader's keeper (the peer layer). Absent: ErrNotLeader. Its calls
   * must settle within a bounded time (the peer layer's request timeout): a keep-alive stream
   * answers in order and waits on each.
   */
  readonly forwardToLeader?: LeaseLeaderClient;
  /**
   * The backend quota LeaseGrant is checked against before it is proposed (etcd's
   * quotaLeaseServer; `createQuota` in quota.ts). Default: no quota.
   */
  readonly quota?: { check(requestBytes: number): Promise<void> };
  /** Receives an `AssertionFailure` met while serving. Default: rethrow asynchronously (crash). */
  readonly onFatal?: (error: unknown) => void;
}

interface LeaseServiceConfig {
  readonly node: RaftNode;
  readonly keeper: LeaseKeeper;
  readonly header: () => HeaderSource;
  readonly forwardToLeader: LeaseLeaderClient | null;
  readonly quota: { check(requestBytes: number): Promise<void> } | undefined;
  readonly onFatal: (error: unknown) => void;
}

/** `LeaseGrantRequest` on the wire (int64 fields as decimal strings). */
interface WireLeaseGrantRequest {
  readonly TTL: string;
  readonly ID: string;
}

/** `LeaseRevokeRequest`, `LeaseKeepAliveRequest` and `LeaseTimeToLiveRequest` on the wire. */
interface WireLeaseIdRequest {
  readonly ID: string;
  readonly keys?: boolean;
}

/** The Lease implementation for `server.addService(proto.services.Lease, …)`. */
export function createLeaseService(options: LeaseServiceOptions): UntypedServiceImplementation {
  const config = validateOptions(options);
  const handlers = leaseHandlers(config);
  const unary = <Request>(handle: (request: Request) => Promise<object>) =>
    unaryHandler<Request>(config.onFatal, handle);
  return {
    LeaseGrant: unary(handlers.grant),
    LeaseRevoke: unary(handlers.revoke),
    LeaseKeepAlive: (call: ServerDuplexStream<WireLeaseIdRequest, object>) =>
      serveKeepAliveStream(config, call),
    LeaseTimeToLive: unary(handlers.timeToLive),
    LeaseLeases: unary(handlers.leases),
  };
}

function validateOptions(options: LeaseServiceOptions): LeaseServiceConfig {
  for (const [name, id] of [['clusterId', options.clusterId], ['memberId', options.memberId]]) {
    if (typeof id !== 'bigint' || id <= 0n || id > uint64Max) {
      throw new SynodError('SYNOD_INVALID_CONFIG', `${name} must be a uint64 > 0`);
    }
  }
  const { node, clusterId, memberId } = options;
  return Object.freeze({
    node,
    keeper: options.keeper,
    header: (): HeaderSource => ({ clusterId, memberId, raftTerm: node.term }),
    forwardToLeader: options.forwardToLeader ?? null,
    quota: options.quota,
    onFatal: options.onFatal ?? rethrowLater,
  });
}

function leaseHandlers(config: LeaseServiceConfig) {
  const { node, keeper } = config;
  const store = () => node.stateMachine.store;
  const apply = async <T extends CommandResponse['type']>(
    command: Command & { type: T },
  ): Promise<Extract<CommandResponse, { type: T }>> => {
    const result = await node.propose(command);
    if (!result.ok) throw result.error;
    assert(result.result.type === command.type, 'apply answered another command type');
    return result.result as Extract<CommandResponse, { type: T }>;
  };

  return {
    async grant(wire: WireLeaseGrantRequest): Promise<object> {
      const ttlSeconds = grantTtlOf(wire.TTL);
      const id = leaseIdOf(wire.ID);
      await config.quota?.check(leaseGrantQuotaBytes);
      const { response } = await apply({ type: 'leaseGrant', id, ttlSeconds });
      assert(id === 0n || response.id === id, 'a chosen lease ID is granted as asked');
      keeper.noteGranted(response.id);
      return {
        header: encodeHeader(config.header(), response.header.revision),
        ID: response.id.toString(),
        TTL: response.ttlSeconds.toString(),
        error: '',
      };
    },
    async revoke(wire: WireLeaseIdRequest): Promise<object> {
      const { response } = await apply({ type: 'leaseRevoke', id: leaseIdOf(wire.ID) });
      return { header: encodeHeader(config.header(), response.header.revision) };
    },
    async timeToLive(wire: WireLeaseIdRequest): Promise<object> {
      const id = leaseIdOf(wire.ID);
      // A follower's state machine may lag the leader's; the read index makes the granted TTL and
      // keys it reports no older than the leader's answer.
      if (!node.isLeader) await node.linearizableRead();
      const found = store().leaseTimeToLive({ id, keys: wire.keys === true });
      const header = encodeHeader(config.header(), found.header.revision);
      const remaining = found.grantedTtlSeconds < 0 ? -1 : await remainingTtlSeconds(config, id);
      // etcd answers an unknown lease with TTL -1 and nothing else, not with an error.
      if (remaining < 0) return { header, ID: id.toString(), TTL: '-1', grantedTTL: '0', keys: [] };
      return {
        header,
        ID: id.toString(),
        TTL: remaining.toString(),
        grantedTTL: found.grantedTtlSeconds.toString(),
        keys: found.keys.map((key) => Buffer.from(key.buffer, key.byteOffset, key.byteLength)),
      };
    },
    async leases(): Promise<object> {
      const { header, leases } = store().leaseLeases();
      return {
        header: encodeHeader(config.header(), header.revision),
        leases: leases.map((lease) => ({ ID: lease.id.toString() })),
      };
    },
  };
}

/**
 * A grant's TTL as the state machine takes it. etcd raises a TTL below the minimum (negative
 * ones too) and refuses one above the maximum; a TTL beyond 2^53 is above any maximum.
 */
function grantTtlOf(text: string): number {
  const ttl = BigInt(text);
  if (ttl > BigInt(Number.MAX_SAFE_INTEGER)) throw new SynodError('SYNOD_LEASE_TTL_TOO_LARGE');
  return ttl < 0n ? 0 : Number(ttl);
}

/** Renews lease `id` on the leader, here or through the forwarder; the granted TTL or 0. */
function renew(config: LeaseServiceConfig, id: bigint): Promise<number> {
  return askLeader(config, {
    local: (keeper) => keeper.renew(id),
    remote: (leader) => leader.keepAlive(id),
  });
}

/** Lease `id`'s remaining whole seconds on the leader, or -1 when unknown there. */
function remainingTtlSeconds(config: LeaseServiceConfig, id: bigint): Promise<number> {
  return askLeader(config, {
    local: (keeper) => keeper.remainingTtlSeconds(id),
    remote: (leader) => leader.timeToLive(id),
  });
}

/**
 * Asks this member's keeper while it leads, else the leader. The keeper learns of a role change
 * in the same Ready as `isLeader`, but if they ever disagree the request is forwarded instead.
 */
async function askLeader(
  config: LeaseServiceConfig,
  ask: {
    local: (keeper: LeaseKeeper) => number | Promise<number>;
    remote: (leader: LeaseLeaderClient) => Promise<number>;
  },
): Promise<number> {
  if (config.node.isLeader) {
    try {
      return await ask.local(config.keeper);
    } catch (error) {
      if (!isSynodError(error, 'SYNOD_NOT_LEADER')) throw error;
    }
  }
  return forward(config, ask.remote);
}

async function forward(
  config: LeaseServiceConfig,
  ask: (leader: LeaseLeaderClient) => Promise<number>,
): Promise<number> {
  const leaderId = config.node.leaderId;
  if (leaderId === 0) throw new SynodError('SYNOD_NO_LEADER');
  if (config.forwardToLeader === null) {
    throw new SynodError('SYNOD_NOT_LEADER', 'no way to forward lease requests to the leader');
  }
  try {
    const answer = await ask(config.forwardToLeader);
    assert(Number.isSafeInteger(answer), 'the leader answers a whole number of seconds');
    return answer;
  } catch (error) {
    if (error instanceof AssertionFailure) throw error;
    throw new SynodError('SYNOD_NO_LEADER', `leader ${leaderId} did not answer: ${String(error)}`);
  }
}

/**
 * One LeaseKeepAlive stream: each request `{ID}` is answered `{header, ID, TTL}` in order. The
 * header is taken before renewing (as etcd does) so its revision is no later than the renewal:
 * a client cannot see a keep-alive succeed at a revision after the lease's revoke. A renewal error
 * other than a lost lease (which is TTL 0) ends the stream with its status, as etcd's does.
 */
function serveKeepAliveStream(
  config: LeaseServiceConfig,
  call: ServerDuplexStream<WireLeaseIdRequest, object>,
): void {
  const queue: WireLeaseIdRequest[] = [];
  let serving = false;
  let ended = false;
  let closed = false;

  const finish = (error: unknown): void => {
    if (closed) return;
    closed = true;
    queue.length = 0;
    if (error instanceof AssertionFailure) {
      call.emit('error', { code: internalStatus.code, details: internalStatus.message });
      config.onFatal(error);
      return;
    }
    call.emit('error', serviceErrorOf(error));
  };

  const serve = async (): Promise<void> => {
    serving = true;
    while (queue.length > 0 && !closed) {
      const wire = queue.shift()!;
      if (queue.length < keepAliveRequestsInFlightMax) call.resume();
      const id = leaseIdOf(wire.ID);
      const header = encodeHeader(config.header(), config.node.stateMachine.store.currentRevision);
      const ttlSeconds = await renew(config, id);
      if (closed) break;
      const flowing = call.write(keepAliveResponse(header, id, ttlSeconds));
      if (!flowing) await drainedOrClosed(call);
    }
    serving = false;
    if (ended && !closed) {
      closed = true;
      call.end();
    }
  };

  call.on('data', (wire: WireLeaseIdRequest) => {
    if (closed) return;
    queue.push(wire);
    assert(queue.length <= keepAliveRequestsInFlightMax, 'keep-alive queue within its bound');
    if (queue.length === keepAliveRequestsInFlightMax) call.pause();
    if (!serving) serve().catch(finish);
  });
  call.on('end', () => {
    ended = true;
    if (!serving && !closed) {
      closed = true;
      call.end();
    }
  });
  call.on('cancelled', () => {
    closed = true;
    queue.length = 0;
  });
  call.on('error', () => {
    closed = true;
  });
}

/** Resolves when `call` can take writes again, or will never need to (it closed). */
function drainedOrClosed(call: ServerDuplexStream<WireLeaseIdRequest, object>): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      call.off('drain', done);
      call.off('close', done);
      resolve();
    };
    call.on('drain', done);
    call.on('close', done);
  });
}

function keepAliveResponse(header: WireResponseHeader, id: bigint, ttlSeconds: number): object {
  return { header, ID: id.toString(), TTL: ttlSeconds.toString() };
}
