/**
 * Member and cluster ids. etcd derives a member's id from its peer URLs and the cluster token, and
 * the cluster id from its members' ids, so every member computes the same ids from the same flags
 * and clients see stable, non-zero values in every response header. Synod does the same with
 * SHA-256 (etcd uses SHA-1; the values differ from etcd's, their properties do not).
 */

import { createHash } from 'node:crypto';
import { closeSync, existsSync, fsyncSync, openSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { SynodError } from '../base/index.js';
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

/** This member's ids and its Raft node id, as recorded in its data directory. */
export interface StoredIdentity extends MemberIdentity {
  readonly raftId: number;
  /**
   * For a member that joined: the member that invited it and its peer URL, the one peer it can
   * answer before it has replayed the membership from the log (src/server/peer/invitation.ts).
   */
  readonly inviter?: { readonly raftId: number; readonly peerUrl: string };
}

const identityFileName = 'member.json';

/**
 * The identity recorded in `dataDir` by an earlier start, or null on a first start. A member keeps
 * the identity it was bootstrapped or invited with for life: after membership changes its flags
 * (--initial-cluster) no longer describe the cluster, so they are not consulted again.
 */
export function readStoredIdentity(dataDir: string): StoredIdentity | null {
  const path = join(dataDir, identityFileName);
  if (!existsSync(path)) return null;
  let value: { memberId?: unknown; clusterId?: unknown; raftId?: unknown; inviter?: unknown };
  try {
    value = JSON.parse(readFileSync(path, 'utf8')) as typeof value;
  } catch {
    throw new SynodError('SYNOD_STORAGE_CORRUPT', `${path} is not valid JSON`);
  }
  const { memberId, clusterId, raftId } = value;
  if (typeof memberId !== 'string' || typeof clusterId !== 'string' || typeof raftId !== 'number') {
    throw new SynodError('SYNOD_STORAGE_CORRUPT', `${path} lacks memberId, clusterId or raftId`);
  }
  const inviter = value.inviter as StoredIdentity['inviter'] | undefined;
  const validInviter = inviter !== undefined && typeof inviter.raftId === 'number' && typeof inviter.peerUrl === 'string';
  return {
    memberId: BigInt(memberId), clusterId: BigInt(clusterId), raftId,
    ...(validInviter ? { inviter: { raftId: inviter.raftId, peerUrl: inviter.peerUrl } } : {}),
  };
}

/** Records `identity` in `dataDir` (written to a temporary file, fsync'd, renamed). */
export function writeStoredIdentity(dataDir: string, identity: StoredIdentity): void {
  const path = join(dataDir, identityFileName);
  const text = JSON.stringify({
    memberId: identity.memberId.toString(), clusterId: identity.clusterId.toString(), raftId: identity.raftId,
    ...(identity.inviter === undefined ? {} : { inviter: identity.inviter }),
  });
  const descriptor = openSync(`${path}.tmp`, 'w');
  try {
    writeFileSync(descriptor, text);
    fsyncSync(descriptor);
  } finally {
    closeSync(descriptor);
  }
  renameSync(`${path}.tmp`, path);
}
