import { describe, expect, it } from 'vitest';
import { exponentialBuckets, Histogram } from './histogram.js';

describe('Histogram', () => {
  it('counts each value under the first bound it does not exceed, cumulatively', () => {
    const histogram = new Histogram([0.001, 0.01, 0.1]);
    for (const value of [0.0005, 0.001, 0.005, 0.05, 0.5, 2]) histogram.observe(value);
    const snapshot = histogram.snapshot();
    expect(snapshot).toMatchObject({ bounds: [0.001, 0.01, 0.1], cumulativeCounts: [2, 3, 4], count: 6 });
    expect(snapshot.sum).toBeCloseTo(2.5565, 10);
  });

  it('builds exponential bounds as Prometheus does, and refuses bounds that do not increase', () => {
    expect(exponentialBuckets(0.001, 2, 4)).toEqual([0.001, 0.002, 0.004, 0.008]);
    expect(() => new Histogram([0.1, 0.1])).toThrow(/increase/);
    expect(() => exponentialBuckets(0, 2, 3)).toThrow();
  });
});
