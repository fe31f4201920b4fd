import { describe, expect, it } from 'vitest';
import { SeededRandom } from './random.js';

describe('SeededRandom', () => {
  it('replays the same sequence from the same seed, and a different one from another', () => {
    const a = new SeededRandom(7);
    const b = new SeededRandom(7);
    const c = new SeededRandom(8);
    const draw = (r: SeededRandom) => Array.from({ length: 20 }, () => r.nextUint32());
    const sequence = draw(a);
    expect(draw(b)).toEqual(sequence);
    expect(draw(c)).not.toEqual(sequence);
  });

  it('draws int(n) uniformly in [0, n)', () => {
    const random = new SeededRandom(1);
    const counts = new Array(10).fill(0);
    for (let i = 0; i < 100_000; i++) counts[random.int(10)]++;
    for (const count of counts) expect(Math.abs(count - 10_000)).toBeLessThan(500);
    expect(() => random.int(0)).toThrow(RangeError);
  });
});
