/**
 * A cumulative histogram of durations with fixed bucket bounds, as Prometheus histograms are
 * exported: a count per upper bound (`le`), the sum and the count. Fixed memory (one counter per
 * bucket) however many observations arrive; observing is a short loop over the bounds.
 */

import { assert } from './assert.js';

/** `count` bounds from `start`, each `factor` times the last (Prometheus' ExponentialBuckets). */
export function exponentialBuckets(start: number, factor: number, count: number): number[] {
  assert(start > 0 && factor > 1 && Number.isInteger(count) && count > 0, 'exponential buckets');
  return Array.from({ length: count }, (_, index) => start * factor ** index);
}

/** What a histogram holds at one moment. */
export interface HistogramSnapshot {
  /** Upper bounds, increasing; an implicit +Inf bucket follows. */
  readonly bounds: readonly number[];
  /** Observations ≤ each bound (cumulative), one per bound. */
  readonly cumulativeCounts: readonly number[];
  readonly sum: number;
  readonly count: number;
}

/** Durations in seconds, bucketed under fixed upper bounds. */
export class Histogram {
  readonly #bounds: readonly number[];
  /** Per-bucket (not cumulative) counts; the last is the +Inf bucket. */
  readonly #counts: number[];
  #sum = 0;
  #count = 0;

  constructor(bounds: readonly number[]) {
    assert(bounds.length > 0 && bounds.every((bound, i) => i === 0 || bound > bounds[i - 1]!),
      'histogram bounds increase');
    this.#bounds = [...bounds];
    this.#counts = new Array<number>(bounds.length + 1).fill(0);
  }

  /** Records one value (seconds). */
  observe(value: number): void {
    let bucket = 0;
    while (bucket < this.#bounds.length && value > this.#bounds[bucket]!) bucket++;
    this.#counts[bucket]! += 1;
    this.#sum += value;
    this.#count += 1;
  }

  snapshot(): HistogramSnapshot {
    let running = 0;
    const cumulativeCounts = this.#bounds.map((_, bucket) => (running += this.#counts[bucket]!));
    return { bounds: this.#bounds, cumulativeCounts, sum: this.#sum, count: this.#count };
  }
}
