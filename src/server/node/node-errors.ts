/** The coded errors a `RaftNode` gives its callers, in one place. */

import { SynodError } from '../../base/index.js';

/**
 * A proposal or read waited longer than `requestTimeoutMs`. For a proposal the outcome is unknown:
 * the entry may still commit and apply later (as with etcd's ErrTimeout).
 */
export function requestTimedOut(what: 'proposal' | 'read'): SynodError {
  const detail = what === 'proposal' ? '; the proposal may still commit' : '';
  return new SynodError('SYNOD_REQUEST_TIMEOUT', `${what} timed out${detail}`);
}

/** The node was stopped (or failed) while the request waited, or before it was made. */
export function nodeStopped(): SynodError {
  return new SynodError('SYNOD_NODE_STOPPED');
}

/** Too many proposals wait on this node (`pendingProposalsMax`). */
export function tooManyProposals(): SynodError {
  return new SynodError('SYNOD_PROPOSAL_DROPPED', 'too many proposals pending on this node');
}

/** Too many linearizable reads wait on this node (`readWaitersMax`). */
export function tooManyReads(): SynodError {
  return new SynodError('SYNOD_READ_INDEX_BUSY');
}

/** The known leader changed while a read waited for its read index; the client retries. */
export function leaderChangedDuringRead(): SynodError {
  const why = 'the leader changed before the read index was confirmed';
  return new SynodError('SYNOD_NO_LEADER', why);
}
