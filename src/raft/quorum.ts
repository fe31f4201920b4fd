/**
 * Majority quorums (paper §5.2, §5.3): the highest index a majority of voters has, and the outcome
 * of a vote. Pure functions over plain data; `tracker.ts` feeds them.
 */

import { assert } from '../base/index.js';
import type { NodeId } from './types.js';

/** The outcome of an election so far. */
export type VoteResult = 'won' | 'lost' | 'pending';

/**
 * The largest index that a majority of `voters` has acknowledged, where `matchOf(id)` is the index
 * voter `id` has durably replicated. Invariant: the result is ≤ the match of at least a majority.
 */
export function majorityIndex(voters: readonly NodeId[], matchOf: (id: NodeId) => number): number {
  assert(voters.length > 0, 'majority of an empty configuration');
  const matches = voters.map(matchOf).sort((a, b) => b - a);
  const quorum = Math.floor(voters.length / 2) + 1;
  return matches[quorum - 1]!;
}

/** Whether `granted` votes out of `voters` win, lose, or leave the election open. */
export function voteResult(voters: readonly NodeId[], votes: ReadonlyMap<NodeId, boolean>): VoteResult {
  assert(voters.length > 0, 'vote in an empty configuration');
  const quorum = Math.floor(voters.length / 2) + 1;
  let granted = 0;
  let missing = 0;
  for (const id of voters) {
    const vote = votes.get(id);
    if (vote === undefined) missing++;
    else if (vote) granted++;
  }
  if (granted >= quorum) return 'won';
  if (granted + missing >= quorum) return 'pending';
  return 'lost';
}
