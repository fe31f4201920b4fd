/**
 * The output of the consensus core. A driver (the server's loop, the simulator) handles a `Ready` in
 * exactly this order, then calls `advance(ready)`:
 *
 * 1. Send `earlyMessages` now. They are a leader's appends and heartbeats in a term whose hard state
 *    is already durable; the leader counts its own log toward commit only after `advance`, so these
 *    may race with its own disk write (thesis §10.2.1).
 * 2. Persist, atomically and durably: `snapshot` (if any) first, then `entries` (appending after
 *    truncating any conflicting suffix), then `hardState` (if any). One fsync covers them all (group
 *    commit). If the disk write fails the node must stop: it must not send `messages`.
 * 3. Send `messages`. Every one of them may promise something about the persisted state (a vote, an
 *    acknowledgement of entries), so none may leave before step 2 completes.
 * 4. Install `snapshot` into the state machine (if any), then apply `committedEntries` in order.
 *    They are always durable by now, and applying them before step 2 would be a bug.
 * 5. Serve reads for each of `readStates` once the state machine has applied `readState.index`.
 * 6. Call `advance(ready)`.
 */

import type { Entry, HardState, Message, ReadState, Snapshot, SoftState } from './types.js';

/** One batch of work for the driver. See the module comment for the order of handling. */
export interface Ready {
  /** The role and known leader, when they changed since the previous Ready; otherwise null. */
  readonly softState: SoftState | null;
  /** The hard state to persist, when it changed since the previous Ready; otherwise null. */
  readonly hardState: HardState | null;
  /** Entries to append to stable storage. Their indexes are contiguous. */
  readonly entries: readonly Entry[];
  /** A snapshot to persist and install, or null. */
  readonly snapshot: Snapshot | null;
  /** Committed entries to apply to the state machine, contiguous and after the last applied. */
  readonly committedEntries: readonly Entry[];
  /** Messages that may be sent before step 2 (persist) completes. */
  readonly earlyMessages: readonly Message[];
  /** Messages that must wait until step 2 (persist) is durable. */
  readonly messages: readonly Message[];
  /** Completed linearizable read requests. */
  readonly readStates: readonly ReadState[];
  /** True when step 2 must fsync (new entries, or a changed term or vote). */
  readonly mustSync: boolean;
}
