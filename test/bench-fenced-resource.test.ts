import { describe, expect, it } from 'vitest';
import { FencedResource } from '../bench/locks/fenced-resource.js';

function run(writes: [string, bigint | null][]): FencedResource {
  const resource = new FencedResource();
  for (const [holder, token] of writes) resource.write({ holder, token });
  return resource;
}

describe('the lock safety runs\' fenced resource', () => {
  it('holds for holders that follow each other', () => {
    const verdict = run([['a', 1n], ['a', 1n], ['b', 2n], ['b', 2n], ['c', 3n]]).verdict();
    expect(verdict).toEqual({ held: true, witness: null, accepted: 5, refused: 0 });
  });

  it('catches a stale holder without tokens writing inside another holder\'s section (planted)', () => {
    const verdict = run([['a', null], ['b', null], ['a', null], ['b', null]]).verdict();
    expect(verdict.held).toBe(false);
    expect(verdict.witness).toEqual(['a', 'b']);
  });

  it('refuses a stale token, so fencing keeps exclusion on the resource', () => {
    const resource = run([['a', 5n], ['b', 6n], ['a', 5n], ['b', 6n]]);
    expect(resource.verdict()).toEqual({ held: true, witness: null, accepted: 3, refused: 1 });
  });

  it('catches an overlap hidden behind a long section (a contains b, then c)', () => {
    const verdict = run([['a', null], ['b', null], ['b', null], ['c', null], ['a', null]]).verdict();
    expect(verdict.held).toBe(false);
  });
});
