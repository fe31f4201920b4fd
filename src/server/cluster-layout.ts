/**
 * The static layout of a cluster bootstrapped from `--initial-cluster`: each member's Raft id,
 * etcd-style member id, name and peer address. Every member computes the same layout from the
 * same flags, in any order they were written: Raft ids are the members' positions when sorted by
 * name, plus one. (etcd uses its 64-bit member ids as Raft ids; the consensus core here takes
 * small integers, and the mapping is fixed for the life of the cluster until runtime membership
 * changes land.)
 */

import { SynodError } from '../base/index.js';
import type { NodeId } from '../raft/index.js';
import type { ServerConfig } from './flags.js';
import { memberIdOf } from './member-identity.js';

/** Most members a bootstrap may name (Raft quorums beyond 7 only add latency). */
export const initialMembersMax = 7;

/** One member of the layout. */
export interface ClusterMember {
  readonly raftId: NodeId;
  /** etcd's member id: derived from the peer URLs and the cluster token. */
  readonly memberId: bigint;
  readonly name: string;
  readonly peerUrls: readonly URL[];
}

/** The whole layout and this member's place in it. */
export interface ClusterLayout {
  readonly members: readonly ClusterMember[];
  readonly self: ClusterMember;
}

/** Builds the layout; an inconsistent `--initial-cluster` is SYNOD_INVALID_CONFIG. */
export function clusterLayoutOf(config: ServerConfig): ClusterLayout {
  const invalid = (why: string): never => {
    throw new SynodError('SYNOD_INVALID_CONFIG', `--initial-cluster: ${why}`);
  };
  const initial = [...config.initialCluster].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  if (initial.length === 0) invalid('no members');
  if (initial.length > initialMembersMax) invalid(`more than ${initialMembersMax} members`);
  const members = initial.map((member, position): ClusterMember => ({
    raftId: position + 1,
    memberId: memberIdOf(member.peerUrls, config.initialClusterToken),
    name: member.name,
    peerUrls: member.peerUrls,
  }));
  for (let i = 1; i < members.length; i++) {
    if (members[i]!.name === members[i - 1]!.name) invalid(`member name ${members[i]!.name} appears twice`);
  }
  const self = members.find((member) => member.name === config.name);
  if (self === undefined) {
    return invalid(`this member's --name ${config.name} is not in it`);
  }
  const advertised = config.initialAdvertisePeerUrls.map((url) => url.href).sort().join(',');
  const listed = self.peerUrls.map((url) => url.href).sort().join(',');
  if (members.length > 1 && advertised !== listed) {
    invalid(`--initial-advertise-peer-urls ${advertised} differ from ${config.name}=${listed}`);
  }
  return { members, self };
}

/** `host` and `port` of a peer URL, as the transport dials them, and whether over TLS (https). */
export function peerAddressOf(url: URL): { host: string; port: number; tls: boolean } {
  const host = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
  return { host, port: Number(url.port || 2380), tls: url.protocol === 'https:' };
}
