import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { majorityIndex, voteResult } from './quorum.js';

/** The dumb reference: the largest index that at least a majority has reached, by counting. */
function naiveMajorityIndex(matches: number[]): number {
  let best = 0;
  for (const candidate of matches) {
    const reached = matches.filter((m) => m >= candidate).length;
    if (reached * 2 > matches.length) best = Math.max(best, candidate);
  }
  return best;
}

describe('majorityIndex', () => {
  it('agrees with counting for any configuration of 1–9 voters', () => {
    fc.assert(
      fc.property(fc.array(fc.nat(50), { minLength: 1, maxLength: 9 }), (matches) => {
        const voters = matches.map((_, i) => i + 1);
        expect(majorityIndex(voters, (id) => matches[id - 1]!)).toBe(naiveMajorityIndex(matches));
      }),
    );
  });

  it('needs three of five', () => {
    expect(majorityIndex([1, 2, 3, 4, 5], (id) => [9, 9, 5, 1, 0][id - 1]!)).toBe(5);
  });
});

describe('voteResult', () => {
  it('agrees with counting granted, rejected and missing votes', () => {
    fc.assert(
      fc.property(fc.array(fc.constantFrom<boolean | undefined>(true, false, undefined), { minLength: 1, maxLength: 9 }), (votes) => {
        const voters = votes.map((_, i) => i + 1);
        const map = new Map<number, boolean>();
        votes.forEach((vote, i) => vote !== undefined && map.set(i + 1, vote));
        const granted = votes.filter((v) => v === true).length;
        const rejected = votes.filter((v) => v === false).length;
        const quorum = Math.floor(votes.length / 2) + 1;
        const expected = granted >= quorum ? 'won' : votes.length - rejected >= quorum ? 'pending' : 'lost';
        expect(voteResult(voters, map)).toBe(expected);
      }),
    );
  });
});
