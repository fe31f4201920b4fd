/**
 * How a leader sends its log: appends with flow control (probe/replicate/snapshot states, inflight
 * window, bytes per message), snapshots when a follower needs compacted entries, and heartbeats that
 * carry the commit index, a ReadIndex context and the lease clock.
 */

import { mark } from '../base/index.js';
import type { Raft } from './raft.js';
import type { NodeId } from './types.js';

/**
 * Sends `to` the entries it is missing, or a snapshot if they are compacted. With `sendIfEmpty`
 * false, an append with no entries is not sent. Returns whether a message was sent.
 */
export function maybeSendAppend(r: Raft, to: NodeId, options: { sendIfEmpty: boolean }): boolean {
  const progress = r.tracker.progress.get(to);
  if (progress === undefined || progress.isPaused()) return false;
  const prevIndex = progress.next - 1;
  const prevTerm = r.log.term(prevIndex);
  const entries = prevTerm === null ? null : r.log.entriesFrom(progress.next, r.config.messageBytesMax);
  if (prevTerm === null || entries === null) return sendSnapshot(r, to);
  if (entries.length === 0 && !options.sendIfEmpty) return false;
  r.send({ type: 'app', to, index: prevIndex, logTerm: prevTerm, entries, commit: r.log.committed });
  if (entries.length > 0) progress.sentEntries(entries[entries.length - 1]!.index);
  else if (progress.state === 'probe') progress.probeSent = true;
  return true;
}

function sendSnapshot(r: Raft, to: NodeId): boolean {
  const progress = r.tracker.progress.get(to)!;
  if (!progress.recentActive) {
    // Do not ship a (possibly large) snapshot to a peer that may be down.
    mark('snapshot withheld: peer not recently active');
    return false;
  }
  let snapshot;
  try {
    snapshot = r.log.snapshot();
  } catch {
    mark('snapshot withheld: temporarily unavailable');
    return false;
  }
  if (snapshot.metadata.index === 0) return false;
  mark('snapshot sent');
  progress.becomeSnapshot(snapshot.metadata.index);
  r.send({ type: 'snap', to, snapshot });
  return true;
}

/** Sends appends (or empty probes) to every member but ourselves. */
export function bcastAppend(r: Raft): void {
  for (const id of r.tracker.membersSorted()) {
    if (id !== r.id) maybeSendAppend(r, id, { sendIfEmpty: true });
  }
}

/** Sends a heartbeat to every member but ourselves, optionally carrying a ReadIndex context. */
export function bcastHeartbeat(r: Raft, context: Uint8Array | null): void {
  const ctx = context ?? r.readOnly.lastPendingContext() ?? new Uint8Array();
  for (const id of r.tracker.membersSorted()) {
    if (id === r.id) continue;
    const progress = r.tracker.progress.get(id)!;
    // Never tell a follower to commit past what it is known to hold: its log may be shorter.
    const commit = Math.min(progress.match, r.log.committed);
    r.send({ type: 'heartbeat', to: id, commit, context: ctx, leaseTick: r.tickCount });
  }
}

/** Hands leadership to `to` by asking it to campaign now (thesis §3.10). */
export function sendTimeoutNow(r: Raft, to: NodeId): void {
  // From now on another node may win without waiting out our lease: stop serving lease reads.
  r.leaseRevoked = true;
  r.send({ type: 'timeout-now', to });
}
