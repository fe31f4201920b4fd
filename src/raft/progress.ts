/**
 * The leader's view of one follower's log (paper's nextIndex/matchIndex, with etcd's three states).
 *
 * - probe: the leader does not know where the follower's log matches; it sends one append at a time
 *   and waits for the answer (or a heartbeat response) before sending again.
 * - replicate: the follower is known to match up to `match`; the leader streams appends optimistically
 *   (advancing `next` as it sends), bounded by `inflights`.
 * - snapshot: the follower needs entries the leader has compacted; the leader sent a snapshot and
 *   sends nothing else until it learns the outcome.
 */

import { assert, mark } from '../base/index.js';
import { Inflights } from './inflights.js';
import type { ProgressState, ProgressStatus } from './status.js';

/** Replication state for one peer. Invariant: `match < next`. */
export class Progress {
  match = 0;
  next: number;
  state: ProgressState = 'probe';
  /** In the snapshot state: the index of the snapshot sent. */
  pendingSnapshot = 0;
  /** Heard from in the current check-quorum window. */
  recentActive = false;
  /** In the probe state: a probe is out; wait for its answer before sending another. */
  probeSent = false;
  readonly inflights: Inflights;

  constructor(options: { next: number; inflightMessagesMax: number; isLearner: boolean }) {
    this.next = options.next;
    this.inflights = new Inflights(options.inflightMessagesMax);
    this.isLearner = options.isLearner;
  }

  isLearner: boolean;

  #resetState(state: ProgressState): void {
    this.probeSent = false;
    this.pendingSnapshot = 0;
    this.state = state;
    this.inflights.reset();
  }

  /** Back to probing, after a rejection, an unreachable report or a finished snapshot. */
  becomeProbe(): void {
    if (this.state === 'snapshot') {
      const pendingSnapshot = this.pendingSnapshot;
      this.#resetState('probe');
      this.next = Math.max(this.match + 1, pendingSnapshot + 1);
    } else {
      this.#resetState('probe');
      this.next = this.match + 1;
    }
  }

  /** Streams appends once the follower's log is known to match. */
  becomeReplicate(): void {
    this.#resetState('replicate');
    this.next = this.match + 1;
  }

  /** Waits for a snapshot at `snapshotIndex` to be installed. */
  becomeSnapshot(snapshotIndex: number): void {
    this.#resetState('snapshot');
    this.pendingSnapshot = snapshotIndex;
  }

  /** Records an acknowledgement up to `index`. Returns whether `match` advanced. */
  maybeUpdate(index: number): boolean {
    let updated = false;
    if (this.match < index) {
      this.match = index;
      updated = true;
      this.probeSent = false;
    }
    this.next = Math.max(this.next, index + 1);
    return updated;
  }

  /** Records that entries up to `lastIndex` were sent (before any acknowledgement). */
  sentEntries(lastIndex: number): void {
    if (this.state === 'replicate') {
      this.next = lastIndex + 1;
      this.inflights.add(lastIndex);
    } else if (this.state === 'probe') {
      this.probeSent = true;
    } else {
      assert(false, `sending entries in state ${this.state}`);
    }
  }

  /**
   * Handles a rejection of the append at `rejected`, with the follower's hint that its log could
   * match at `matchHint`. Returns false for a stale rejection (one not about `next - 1`).
   */
  maybeDecrTo(rejected: number, matchHint: number): boolean {
    if (this.state === 'replicate') {
      if (rejected <= this.match) {
        mark('append rejection stale: at or below match');
        return false;
      }
      this.next = this.match + 1;
      return true;
    }
    if (this.next - 1 !== rejected) {
      mark('append rejection stale: not the last probe');
      return false;
    }
    this.next = Math.max(Math.min(rejected, matchHint + 1), this.match + 1);
    this.probeSent = false;
    return true;
  }

  /** Whether the leader must hold off sending appends to this peer. */
  isPaused(): boolean {
    switch (this.state) {
      case 'probe':
        return this.probeSent;
      case 'replicate':
        return this.inflights.full();
      case 'snapshot':
        return true;
    }
  }

  /** A read-only copy for `status()`. */
  toStatus(): ProgressStatus {
    return {
      match: this.match,
      next: this.next,
      state: this.state,
      isLearner: this.isLearner,
      inflight: this.inflights.count,
      recentActive: this.recentActive,
    };
  }
}
