/**
 * Member and cluster ids. etcd derives a member's id from its peer URLs and the cluster token, and
 * the cluster id from its members' ids, so every member computes the same ids from the same flags
 * and clients see stable, non-zero values in every response header. Synod does the same with
 * SHA-256 (etcd uses SHA-1; the values differ from etcd's, their properties do not).
 */

import { createHash } from 'node:crypto';
import type { ServerConfig } from './flags.js';

/** Ids as unsigned 64-bit integers. */
export interface MemberIdentity {
  readonly memberId: bigint;
  readonly clusterId: bigint;
}

function uint64Of(text: string): bigint {
  const digest = createHash('sha256').update(text).digest();
  const value = digest.readBigUInt64BE(0);
  return value === 0n ? 1n : value; // Zero means "none" in etcd's API.
}

/** The id of a member with `peerUrls` in a cluster started with `token`. */
export function memberIdOf(peerUrls: readonly URL[], token: string): bigint {
  const urls = peerUrls.map((url) => url.href).sort();
  return uint64Of(`member\n${urls.join('\n')}\n${token}`);
}

/** This member's id and its cluster's, from the bootstrap flags. */
export function identityOf(config: ServerConfig): MemberIdentity {
  const memberIds = config.initialCluster.map((member) => memberIdOf(member.peerUrls, config.initialClusterToken));
  const self = config.initialCluster.find((member) => member.name === config.name);
  const memberId = self === undefined ? memberIdOf(config.initialAdvertisePeerUrls, config.initialClusterToken) : memberIdOf(self.peerUrls, config.initialClusterToken);
  const clusterId = uint64Of(`cluster\n${[...memberIds].sort().join('\n')}\n${config.initialClusterToken}`);
  return { memberId, clusterId };
}
