/**
 * Lease requests only the leader can answer (etcd forwards LeaseRenew and LeaseTimeToLive from a
 * follower to the leader over the peer port: server/etcdserver/api/v3rpc and lease/leasehttp).
 * `LeaseLeaderClient` is what a follower's lease service calls; the peer layer implements it by
 * sending the request to the leader, where `serveForwardedLeaseRequests` answers it.
 */

import type { LeaseKeeper } from './lease-keeper.js';

/** The leader's answers a follower needs; the peer layer implements this over the peer wire. */
export interface LeaseLeaderClient {
  /** Renews lease `id` on the leader; resolves with the granted TTL, or 0 when it is lost. */
  keepAlive(id: bigint): Promise<number>;
  /** Lease `id`'s remaining whole seconds on the leader, or -1 when unknown. */
  timeToLive(id: bigint): Promise<number>;
}

/**
 * The leader side of forwarding: answers from `keeper`. Rejects with SYNOD_NOT_LEADER when this
 * member does not lead (any more), which the peer layer carries back to the follower as is.
 */
export function serveForwardedLeaseRequests(keeper: LeaseKeeper): LeaseLeaderClient {
  return Object.freeze({
    keepAlive: (id: bigint): Promise<number> => keeper.renew(id),
    timeToLive: async (id: bigint): Promise<number> => keeper.remainingTtlSeconds(id),
  });
}
