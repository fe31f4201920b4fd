/**
 * etcdserverpb.Cluster (etcd server/etcdserver/api/v3rpc/member.go).
 *
 * MemberList answers with the members bootstrapped from `--initial-cluster` (member-directory.ts).
 * Runtime membership changes (MemberAdd, MemberRemove, MemberUpdate, MemberPromote) need Raft
 * configuration changes wired through the server, which this build does not have yet, so they
 * answer UNIMPLEMENTED with a message saying so rather than pretend to succeed.
 *
 * Like etcd's cluster server, headers carry the ids and the raft term but no revision.
 */

import type { UntypedServiceImplementation } from '@grpc/grpc-js';
import type { RaftNode } from '../node/raft-node.js';
import { rethrowLater, unaryHandler, unimplemented, type FatalHandler } from './unary.js';

/** A member as MemberList describes it. */
export interface ClusterMemberDescription {
  readonly memberId: bigint;
  /** etcd's --name. */
  readonly name: string;
  /** etcd's --initial-advertise-peer-urls. */
  readonly peerUrls: readonly URL[];
  /** etcd's --advertise-client-urls; empty when not known (yet). */
  readonly clientUrls: readonly URL[];
}

/** Options of `createClusterService`. */
export interface ClusterServiceOptions {
  readonly node: RaftNode;
  /** Sent in every header; a stable non-zero uint64. */
  readonly clusterId: bigint;
  /** This member's id (in headers and as the member's ID); a stable non-zero uint64. */
  readonly memberId: bigint;
  /** Every member, this one included. */
  readonly members: () => Promise<readonly ClusterMemberDescription[]>;
  /** Receives an `AssertionFailure` met while serving. Default: rethrow asynchronously (crash). */
  readonly onFatal?: FatalHandler;
}

const membershipUnimplemented =
  'synod: runtime membership changes are not implemented yet; the members are those of ' +
  '--initial-cluster';

/**
 * A URL as etcd prints it: `scheme://host:port`, without the trailing slash WHATWG URLs add to
 * an empty path (etcd's types.URLs keep the flag's text, which has none).
 */
export function etcdUrlText(url: URL): string {
  return url.pathname === '/' && url.search === '' && url.hash === ''
    ? `${url.protocol}//${url.host}`
    : url.href;
}

/** The Cluster implementation for `server.addService(proto.services.Cluster, …)`. */
export function createClusterService(options: ClusterServiceOptions): UntypedServiceImplementation {
  const { node, clusterId, memberId } = options;
  const onFatal = options.onFatal ?? rethrowLater;
  const wireOf = (member: ClusterMemberDescription) => ({
    ID: member.memberId.toString(),
    name: member.name,
    peerURLs: member.peerUrls.map(etcdUrlText),
    clientURLs: member.clientUrls.map(etcdUrlText),
    isLearner: false,
  });
  const header = () => ({
    cluster_id: clusterId.toString(),
    member_id: memberId.toString(),
    raft_term: node.term.toString(),
  });
  const refuse = async (): Promise<object> => {
    throw unimplemented(membershipUnimplemented);
  };
  return {
    MemberList: unaryHandler(onFatal, async () => ({
      header: header(), members: (await options.members()).map(wireOf),
    })),
    MemberAdd: unaryHandler(onFatal, refuse),
    MemberRemove: unaryHandler(onFatal, refuse),
    MemberUpdate: unaryHandler(onFatal, refuse),
    MemberPromote: unaryHandler(onFatal, refuse),
  };
}
