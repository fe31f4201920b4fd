/** The follower's message handler (paper figure 2, "Followers" and the AppendEntries rules). */

import { mark, type ErrorCode } from '../base/index.js';
import type { Raft } from './raft.js';
import type { Message } from './types.js';
import { noneId } from './types.js';

/** Handles `m` as follower. */
export function stepFollower(r: Raft, m: Message): ErrorCode | null {
  switch (m.type) {
    case 'prop':
      return forwardToLeader(r, m, { dropWhenForwardingDisabled: true });
    case 'read-index':
      return forwardToLeader(r, m, { dropWhenForwardingDisabled: false });
    case 'transfer-leader':
      if (r.leader !== noneId) r.send({ ...m, to: r.leader });
      return null;
    case 'app':
      r.electionElapsed = 0;
      r.leader = m.from;
      handleAppendEntries(r, m);
      return null;
    case 'heartbeat':
      r.electionElapsed = 0;
      r.leader = m.from;
      handleHeartbeat(r, m);
      return null;
    case 'snap':
      r.electionElapsed = 0;
      r.leader = m.from;
      handleSnapshot(r, m);
      return null;
    case 'timeout-now':
      // The leader hands us leadership: campaign at once, past any lease (thesis §3.10).
      mark('timeout-now: campaigning');
      if (r.promotable()) r.campaign('transfer');
      return null;
    case 'read-index-resp':
      r.readStates.push({ index: m.index, context: m.context });
      return null;
    default:
      return null;
  }
}

function forwardToLeader(r: Raft, m: Message, options: { dropWhenForwardingDisabled: boolean }): ErrorCode | null {
  if (r.leader === noneId) {
    mark(`${m.type} dropped: no leader`);
    return 'SYNOD_NO_LEADER';
  }
  if (options.dropWhenForwardingDisabled && r.config.disableProposalForwarding) {
    mark('proposal dropped: forwarding disabled');
    return 'SYNOD_PROPOSAL_DROPPED';
  }
  r.send({ ...m, to: r.leader, from: m.from === noneId ? r.id : m.from });
  return null;
}

/** AppendEntries receiver (paper figure 2), with a conflict hint for fast backtracking. */
export function handleAppendEntries(r: Raft, m: Message): void {
  if (m.index < r.log.committed) {
    // Everything up to our commit index is settled; tell the leader where we are.
    r.send({ type: 'app-resp', to: m.from, index: r.log.committed });
    return;
  }
  const lastNew = r.log.maybeAppend(m.index, m.logTerm, m.commit, m.entries);
  if (lastNew !== null) {
    r.send({ type: 'app-resp', to: m.from, index: lastNew });
    return;
  }
  mark('append rejected: log mismatch');
  // Hint: the last index ≤ the probe whose term is ≤ the leader's term there. The leader skips
  // every index between that the two logs cannot share (thesis §5.3; etcd's findConflictByTerm).
  const hint = r.log.findConflictByTerm(Math.min(m.index, r.log.lastIndex()), m.logTerm);
  r.send({ type: 'app-resp', to: m.from, index: m.index, reject: true, rejectHint: hint.index, logTerm: hint.term });
}

/** Heartbeat receiver: learn the commit index (bounded by what the leader knows we hold). */
export function handleHeartbeat(r: Raft, m: Message): void {
  r.log.commitTo(m.commit);
  r.send({ type: 'heartbeat-resp', to: m.from, context: m.context, leaseTick: m.leaseTick });
}

/** InstallSnapshot receiver (paper §7). */
export function handleSnapshot(r: Raft, m: Message): void {
  const snapshot = m.snapshot;
  if (snapshot === null) return;
  const { index, term } = snapshot.metadata;
  if (index <= r.log.committed) {
    mark('snapshot ignored: not newer than commit');
    r.send({ type: 'app-resp', to: m.from, index: r.log.committed });
    return;
  }
  if (r.log.matchTerm(index, term)) {
    // We already hold the entry the snapshot ends at: just learn that it is committed.
    mark('snapshot ignored: log already matches');
    r.log.commitTo(index);
    r.send({ type: 'app-resp', to: m.from, index: r.log.committed });
    return;
  }
  mark('snapshot restored');
  r.log.restore(snapshot);
  r.tracker.reset(snapshot.metadata.confState, r.log.lastIndex() + 1);
  r.send({ type: 'app-resp', to: m.from, index: r.log.lastIndex() });
}
