/**
 * etcdserverpb.Cluster (etcd server/etcdserver/api/v3rpc/member.go).
 *
 * MemberList answers from the replicated member table (src/kv/members.ts) as this member has
 * applied it; the changes go through the leader (member-changes.ts) and answer once this member
 * has applied them, so a MemberList that follows on the same member sees the change.
 *
 * Like etcd's cluster server, headers carry the ids and the raft term but no revision.
 */

import type { UntypedServiceImplementation } from '@grpc/grpc-js';
import type { MemberRecord } from '../../kv/index.js';
import type { RaftNode } from '../node/raft-node.js';
import type { MemberChangeOutcome, MemberChangeRequest } from './member-changes.js';
import { invalidArgument } from './status.js';
import { rethrowLater, unaryHandler, type FatalHandler } from './unary.js';

/** Options of `createClusterService`. */
export interface ClusterServiceOptions {
  readonly node: RaftNode;
  /** Sent in every header; a stable non-zero uint64. */
  readonly clusterId: bigint;
  /** This member's id (in headers); a stable non-zero uint64. */
  readonly memberId: bigint;
  /** Every member, this one included, as applied here. */
  readonly members: () => readonly MemberRecord[];
  /** Runs a change through the leader. */
  readonly change: (request: MemberChangeRequest) => Promise<MemberChangeOutcome>;
  /** Receives an `AssertionFailure` met while serving. Default: rethrow asynchronously (crash). */
  readonly onFatal?: FatalHandler;
}

/**
 * A URL as etcd prints it: `scheme://host:port`, without the trailing slash WHATWG URLs add to
 * an empty path (etcd's types.URLs keep the flag's text, which has none).
 */
export function etcdUrlText(url: URL): string {
  return url.pathname === '/' && url.search === '' && url.hash === ''
    ? `${url.protocol}//${url.host}`
    : url.href;
}

/** A member as etcd's Member message carries it. */
function wireOf(member: MemberRecord): object {
  return {
    ID: member.memberId.toString(), name: member.name, peerURLs: [...member.peerUrls],
    clientURLs: [...member.clientUrls], isLearner: member.isLearner,
  };
}

/** Members in etcd's order: by member id (membership.MembersByID). */
function byMemberId(members: readonly MemberRecord[]): MemberRecord[] {
  return [...members].sort((a, b) => (a.memberId < b.memberId ? -1 : a.memberId > b.memberId ? 1 : 0));
}

/** A uint64 member id from a request (grpc-js gives decimal text). */
function memberIdOf(value: unknown): bigint {
  const text = String(value ?? '0');
  if (!/^\d{1,20}$/.test(text)) throw invalidArgument('member ID must be a uint64');
  return BigInt(text);
}

function peerUrlsOf(value: unknown): string[] {
  return Array.isArray(value) ? value.map(String) : [];
}

/** The Cluster implementation for `server.addService(proto.services.Cluster, …)`. */
export function createClusterService(options: ClusterServiceOptions): UntypedServiceImplementation {
  const { node, clusterId, memberId } = options;
  const onFatal = options.onFatal ?? rethrowLater;
  const header = () => ({
    cluster_id: clusterId.toString(),
    member_id: memberId.toString(),
    raft_term: node.term.toString(),
  });
  const changed = async (request: MemberChangeRequest) => {
    const outcome = await options.change(request);
    return { header: header(), members: byMemberId(outcome.members).map(wireOf), outcome };
  };
  return {
    MemberList: unaryHandler(onFatal, async () => ({
      header: header(), members: byMemberId(options.members()).map(wireOf),
    })),
    MemberAdd: unaryHandler<{ peerURLs?: unknown; isLearner?: boolean }>(onFatal, async (request) => {
      const { outcome, ...response } = await changed({
        kind: 'add', peerUrls: peerUrlsOf(request.peerURLs), isLearner: request.isLearner === true,
      });
      return { ...response, member: outcome.added === undefined ? undefined : wireOf(outcome.added) };
    }),
    MemberRemove: unaryHandler<{ ID?: unknown }>(onFatal, async (request) => {
      const { outcome: _outcome, ...response } = await changed({ kind: 'remove', memberId: memberIdOf(request.ID) });
      return response;
    }),
    MemberUpdate: unaryHandler<{ ID?: unknown; peerURLs?: unknown }>(onFatal, async (request) => {
      const { outcome: _outcome, ...response } = await changed({
        kind: 'update', memberId: memberIdOf(request.ID), peerUrls: peerUrlsOf(request.peerURLs),
      });
      return response;
    }),
    MemberPromote: unaryHandler<{ ID?: unknown }>(onFatal, async (request) => {
      const { outcome: _outcome, ...response } = await changed({ kind: 'promote', memberId: memberIdOf(request.ID) });
      return response;
    }),
  };
}
