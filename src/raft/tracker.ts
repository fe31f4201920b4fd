/**
 * The leader's bookkeeping over the configuration: who votes, who learns, each peer's progress, and
 * the votes of the current election. Quorum arithmetic is delegated to `quorum.ts`.
 */

import { assert } from '../base/index.js';
import { Progress } from './progress.js';
import { majorityIndex, voteResult, type VoteResult } from './quorum.js';
import type { ConfState, NodeId } from './types.js';

/** Voters, learners and their progress. Invariant: voters and learners are disjoint. */
export class ProgressTracker {
  readonly voters = new Set<NodeId>();
  readonly learners = new Set<NodeId>();
  readonly progress = new Map<NodeId, Progress>();
  readonly votes = new Map<NodeId, boolean>();
  #votersSorted: NodeId[] = [];

  constructor(readonly inflightMessagesMax: number) {}

  /** Replaces the configuration with `confState`; every peer starts probing at `next`. */
  reset(confState: ConfState, next: number): void {
    this.voters.clear();
    this.learners.clear();
    this.progress.clear();
    for (const id of confState.voters) this.addVoter(id, next);
    for (const id of confState.learners) this.addLearner(id, next);
  }

  /** Adds (or promotes to) a voter. */
  addVoter(id: NodeId, next: number): void {
    this.learners.delete(id);
    this.voters.add(id);
    this.#ensureProgress(id, next).isLearner = false;
    this.#votersChanged();
  }

  /** Adds a learner, or demotes a voter to one. */
  addLearner(id: NodeId, next: number): void {
    this.voters.delete(id);
    this.learners.add(id);
    this.#ensureProgress(id, next).isLearner = true;
    this.#votersChanged();
  }

  /** Removes a member entirely. */
  remove(id: NodeId): void {
    this.voters.delete(id);
    this.learners.delete(id);
    this.progress.delete(id);
    this.votes.delete(id);
    this.#votersChanged();
  }

  #ensureProgress(id: NodeId, next: number): Progress {
    let progress = this.progress.get(id);
    if (progress === undefined) {
      progress = new Progress({ next: Math.max(next, 1), inflightMessagesMax: this.inflightMessagesMax, isLearner: false });
      // A new peer counts as active so check-quorum does not depose the leader before it answers.
      progress.recentActive = true;
      this.progress.set(id, progress);
    }
    return progress;
  }

  #votersChanged(): void {
    this.#votersSorted = [...this.voters].sort((a, b) => a - b);
    for (const id of this.learners) assert(!this.voters.has(id), `node ${id} is both voter and learner`);
  }

  /** Voters in ascending id order (stable iteration keeps runs deterministic). */
  votersSorted(): readonly NodeId[] {
    return this.#votersSorted;
  }

  /** Everyone with progress (voters and learners) in ascending id order. */
  membersSorted(): NodeId[] {
    return [...this.progress.keys()].sort((a, b) => a - b);
  }

  /** The membership as plain data. */
  confState(): ConfState {
    return { voters: [...this.#votersSorted], learners: [...this.learners].sort((a, b) => a - b) };
  }

  /** True when the configuration has exactly one voter and it is `id`. */
  isSingleton(id: NodeId): boolean {
    return this.#votersSorted.length === 1 && this.#votersSorted[0] === id;
  }

  /** The highest index a majority of voters has durably replicated. */
  committed(): number {
    return majorityIndex(this.#votersSorted, (id) => this.progress.get(id)!.match);
  }

  /** Forgets the votes of the previous election. */
  resetVotes(): void {
    this.votes.clear();
  }

  /** Records `id`'s vote unless it already voted in this election. */
  recordVote(id: NodeId, granted: boolean): void {
    if (!this.votes.has(id)) this.votes.set(id, granted);
  }

  /** The election's outcome so far. */
  tallyVotes(): VoteResult {
    return voteResult(this.#votersSorted, this.votes);
  }

  /** Whether a majority of voters was heard from in the current window (`self` always counts). */
  quorumActive(self: NodeId): boolean {
    const active = new Map<NodeId, boolean>();
    for (const id of this.#votersSorted) active.set(id, id === self || this.progress.get(id)!.recentActive);
    return voteResult(this.#votersSorted, active) === 'won';
  }
}
