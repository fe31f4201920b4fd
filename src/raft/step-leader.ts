/** The leader's message handler (paper figure 2, "Leaders"; etcd's stepLeader). */

import { assert, mark, type ErrorCode } from '../base/index.js';
import { leaseValid } from './lease.js';
import { bcastAppend, bcastHeartbeat, maybeSendAppend, sendTimeoutNow } from './replication.js';
import type { Raft } from './raft.js';
import type { Message } from './types.js';
import { noneId } from './types.js';

/** Handles `m` as leader. Returns an error code when a proposal was dropped. */
export function stepLeader(r: Raft, m: Message): ErrorCode | null {
  switch (m.type) {
    case 'beat':
      bcastHeartbeat(r, null);
      return null;
    case 'check-quorum':
      onCheckQuorum(r);
      return null;
    case 'prop':
      return onProposal(r, m);
    case 'read-index':
      return onReadIndex(r, m);
    default:
      break;
  }
  const progress = r.tracker.progress.get(m.from);
  if (progress === undefined) {
    mark('leader ignored message: sender not a member');
    return null;
  }
  switch (m.type) {
    case 'app-resp':
      onAppendResponse(r, m);
      break;
    case 'heartbeat-resp':
      onHeartbeatResponse(r, m);
      break;
    case 'snapshot-status':
      onSnapshotStatus(r, m);
      break;
    case 'unreachable':
      // The transport could not deliver: stop streaming optimistically and probe again.
      if (progress.state === 'replicate') progress.becomeProbe();
      break;
    case 'transfer-leader':
      onTransferLeader(r, m);
      break;
    default:
      break;
  }
  return null;
}

function onCheckQuorum(r: Raft): void {
  if (!r.tracker.quorumActive(r.id)) {
    // Partitioned from a majority: stop accepting writes a new leader may already be overriding.
    mark('leader stepped down: quorum inactive');
    r.becomeFollower(r.term, noneId);
    return;
  }
  for (const [id, progress] of r.tracker.progress) if (id !== r.id) progress.recentActive = false;
}

function onProposal(r: Raft, m: Message): ErrorCode | null {
  assert(m.entries.length > 0, 'empty proposal');
  if (!r.tracker.progress.has(r.id)) {
    mark('proposal dropped: leader removed from configuration');
    return 'SYNOD_PROPOSAL_DROPPED';
  }
  if (r.leadTransferee !== noneId) {
    mark('proposal dropped: leadership transfer in progress');
    return 'SYNOD_PROPOSAL_DROPPED';
  }
  const lastIndex = r.log.lastIndex();
  for (let i = 0; i < m.entries.length; i++) {
    if (m.entries[i]!.type !== 'conf-change') continue;
    if (r.pendingConfIndex > r.log.applied) {
      mark('conf change dropped: another is pending');
      return 'SYNOD_PROPOSAL_DROPPED';
    }
    r.pendingConfIndex = lastIndex + i + 1;
  }
  if (!r.appendEntries(m.entries)) return 'SYNOD_PROPOSAL_DROPPED';
  // Batching: proposals that arrive before the next Ready travel in one append per follower,
  // sent by RawNode.ready().
  r.appendBroadcastPending = true;
  return null;
}

function onReadIndex(r: Raft, m: Message): ErrorCode | null {
  if (r.tracker.isSingleton(r.id)) {
    r.respondToReadIndex(m, r.log.committed);
    return null;
  }
  if (!r.committedEntryInCurrentTerm()) {
    // Our commit index may lag the true one until our own empty entry commits (thesis §6.4 step 1).
    if (r.pendingReadIndexMessages.length >= r.readOnly.pendingMax) return 'SYNOD_READ_INDEX_BUSY';
    mark('read index deferred: no commit in current term');
    r.pendingReadIndexMessages.push(m);
    return null;
  }
  return answerReadIndex(r, m);
}

/** Answers a read from the lease, or queues it behind a heartbeat round to a quorum. */
export function answerReadIndex(r: Raft, m: Message): ErrorCode | null {
  if (leaseValid(r)) {
    mark('read index served from lease');
    r.respondToReadIndex(m, r.log.committed);
    return null;
  }
  if (r.readOnly.full()) return 'SYNOD_READ_INDEX_BUSY';
  if (!r.readOnly.add(r.log.committed, m)) return null; // A duplicate context: already queued.
  r.readOnly.recordAck(r.id, m.context);
  // Batching: every read that arrives before the next Ready shares one heartbeat round, sent by
  // RawNode.ready() with the newest context (an ack for it confirms all earlier ones).
  r.readIndexRoundPending = true;
  return null;
}

/** After the first commit in a term: answers the reads that waited for it. */
export function releasePendingReadIndexMessages(r: Raft): void {
  if (r.pendingReadIndexMessages.length === 0 || !r.committedEntryInCurrentTerm()) return;
  const pending = r.pendingReadIndexMessages;
  r.pendingReadIndexMessages = [];
  for (const m of pending) answerReadIndex(r, m);
}

function onAppendResponse(r: Raft, m: Message): void {
  const progress = r.tracker.progress.get(m.from)!;
  progress.recentActive = true;
  if (m.reject) {
    mark('append rejected');
    // Skip every entry of a term the follower cannot match in one step (thesis §5.3 optimisation).
    const nextProbe = m.logTerm > 0 ? r.log.findConflictByTerm(m.rejectHint, m.logTerm).index : m.rejectHint;
    if (progress.maybeDecrTo(m.index, nextProbe)) {
      if (progress.state === 'replicate') progress.becomeProbe();
      maybeSendAppend(r, m.from, { sendIfEmpty: true });
    }
    return;
  }
  const wasPaused = progress.isPaused();
  if (!progress.maybeUpdate(m.index)) return;
  if (progress.state === 'probe') {
    progress.becomeReplicate();
  } else if (progress.state === 'snapshot' && progress.match >= progress.pendingSnapshot) {
    // The snapshot (or an append) got through. If we compacted past it meanwhile, probing sends
    // the next snapshot; otherwise stream entries again. Either way, never wait on the transport.
    mark('snapshot acknowledged');
    progress.becomeProbe();
    if (progress.match + 1 >= r.log.firstIndex()) progress.becomeReplicate();
  } else if (progress.state === 'replicate') {
    progress.inflights.freeLE(m.index);
  }
  if (r.maybeCommit()) {
    releasePendingReadIndexMessages(r);
    bcastAppend(r);
  } else if (wasPaused) {
    maybeSendAppend(r, m.from, { sendIfEmpty: true });
  }
  // Pipelining: fill the window while there is more to send.
  while (maybeSendAppend(r, m.from, { sendIfEmpty: false })) {
    // keep sending
  }
  if (m.from === r.leadTransferee && progress.match === r.log.lastIndex()) {
    mark('leader transfer: transferee caught up');
    sendTimeoutNow(r, m.from);
  }
}

function onHeartbeatResponse(r: Raft, m: Message): void {
  const progress = r.tracker.progress.get(m.from)!;
  progress.recentActive = true;
  progress.probeSent = false;
  if (progress.state === 'replicate' && progress.inflights.full()) {
    // Every append in the window (or every acknowledgement) may have been lost: without this the
    // window never drains and replication stops for good. The follower is alive, so send one more;
    // if it has a gap it rejects, and the rejection resets `next` (as etcd's FreeFirstOne).
    mark('inflight window freed by heartbeat response');
    progress.inflights.freeFirstOne();
  }
  if (m.leaseTick > (r.leaseAcks.get(m.from) ?? -1)) r.leaseAcks.set(m.from, m.leaseTick);
  if (progress.match < r.log.lastIndex()) maybeSendAppend(r, m.from, { sendIfEmpty: true });
  if (m.context.length === 0 || r.config.readOnlyOption === 'lease-based' && r.readOnly.size === 0) return;
  const acks = r.readOnly.recordAck(m.from, m.context);
  if (acks === null) return;
  const votes = new Map([...acks].map((id) => [id, true]));
  let quorum = 0;
  for (const id of r.tracker.votersSorted()) if (votes.has(id)) quorum++;
  if (quorum < Math.floor(r.tracker.voters.size / 2) + 1) return;
  for (const done of r.readOnly.advance(m.context)) r.respondToReadIndex(done.request, done.index);
}

function onSnapshotStatus(r: Raft, m: Message): void {
  const progress = r.tracker.progress.get(m.from)!;
  if (progress.state !== 'snapshot') return;
  if (m.reject) {
    mark('snapshot failed');
    progress.pendingSnapshot = 0;
  }
  // Wait for the follower's append response before streaming again.
  progress.becomeProbe();
  progress.probeSent = true;
}

function onTransferLeader(r: Raft, m: Message): void {
  const transferee = m.from;
  const progress = r.tracker.progress.get(transferee)!;
  if (progress.isLearner) {
    mark('leader transfer ignored: transferee is a learner');
    return;
  }
  if (transferee === r.id || transferee === r.leadTransferee) return;
  r.leadTransferee = transferee;
  // The transfer must finish within an election timeout or it is abandoned (tickHeartbeat).
  r.electionElapsed = 0;
  if (progress.match === r.log.lastIndex()) sendTimeoutNow(r, transferee);
  else maybeSendAppend(r, transferee, { sendIfEmpty: true });
}
