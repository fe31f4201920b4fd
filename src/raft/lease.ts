/**
 * Lease-based reads (thesis §6.4.1). A follower that acknowledges a heartbeat the leader sent at tick
 * s neither campaigns nor grants a vote for an election timeout after receiving it (check-quorum's
 * lease, and a start-up guard after restarts). So no other leader can exist before s + electionTicks
 * on that follower's clock. With quorum intersection, the leader is safe until the quorum-th newest
 * acknowledged send tick plus the election timeout, shortened by the clock-drift bound and one tick of
 * granularity. The lease ends for good in a term where this leader sent timeout-now.
 */

import { majorityIndex } from './quorum.js';
import type { Raft } from './raft.js';
import { noneId } from './types.js';

/** The first tick at which this leader may no longer serve reads from its lease. */
export function leaseExpiryTick(r: Raft): number {
  const start = majorityIndex(r.tracker.votersSorted(), (id) => (id === r.id ? r.tickCount : (r.leaseAcks.get(id) ?? -Infinity)));
  const length = Math.floor(r.config.electionTicks * (1 - r.config.leaseClockDriftBound)) - 1;
  return start + length;
}

/** Whether a read may be answered from the lease, without a heartbeat round. */
export function leaseValid(r: Raft): boolean {
  return (
    r.config.readOnlyOption === 'lease-based' &&
    r.role === 'leader' &&
    !r.leaseRevoked &&
    r.leadTransferee === noneId &&
    r.tickCount < leaseExpiryTick(r)
  );
}
