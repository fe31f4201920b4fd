/** A read-only view of a node's state, for drivers, tests, the simulator's checks and operators. */

import type { ConfState, NodeId, Role } from './types.js';

/** How the leader is replicating to one follower (etcd's progress states). */
export type ProgressState = 'probe' | 'replicate' | 'snapshot';

/** The leader's view of one peer. */
export interface ProgressStatus {
  /** Highest index known to be replicated on the peer. */
  readonly match: number;
  /** Next index to send. Invariant: `match < next`. */
  readonly next: number;
  readonly state: ProgressState;
  readonly isLearner: boolean;
  /** Append messages sent and not yet acknowledged. */
  readonly inflight: number;
  /** Whether the peer answered within the current check-quorum window. */
  readonly recentActive: boolean;
}

/** The node's state at the moment `status()` was called. */
export interface Status {
  readonly id: NodeId;
  readonly term: number;
  readonly vote: NodeId;
  readonly commit: number;
  readonly applied: number;
  readonly lastIndex: number;
  readonly role: Role;
  readonly leader: NodeId;
  readonly leadTransferee: NodeId;
  readonly confState: ConfState;
  /** The leader's progress per peer (itself included); null on other roles. */
  readonly progress: ReadonlyMap<NodeId, ProgressStatus> | null;
}
