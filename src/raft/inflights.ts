/**
 * The window of append messages in flight to one follower (flow control, as etcd's
 * tracker/inflights.go). Each slot holds the last index an in-flight message carried; an
 * acknowledgement up to index i frees every slot ≤ i. A ring buffer, so the hot path allocates nothing.
 */

import { assert } from '../base/index.js';

/** A bounded FIFO of in-flight message end indexes. */
export class Inflights {
  readonly #buffer: Float64Array;
  #start = 0;
  #count = 0;

  constructor(readonly capacity: number) {
    assert(capacity > 0, 'inflight capacity must be positive');
    this.#buffer = new Float64Array(capacity);
  }

  /** Messages in flight. */
  get count(): number {
    return this.#count;
  }

  /** True when no more messages may be sent until some are acknowledged. */
  full(): boolean {
    return this.#count === this.capacity;
  }

  /** Records a message whose last entry is `index`. Indexes must increase. */
  add(index: number): void {
    assert(!this.full(), 'inflights overflow');
    if (this.#count > 0) {
      const last = this.#buffer[(this.#start + this.#count - 1) % this.capacity]!;
      assert(index > last, `inflight index ${index} not after ${last}`);
    }
    this.#buffer[(this.#start + this.#count) % this.capacity] = index;
    this.#count++;
  }

  /** Frees every message whose last index is ≤ `index`. */
  freeLE(index: number): void {
    while (this.#count > 0 && this.#buffer[this.#start]! <= index) {
      this.#start = (this.#start + 1) % this.capacity;
      this.#count--;
    }
  }

  /** Frees the oldest message: a heartbeat answered, so the follower is alive and can take more. */
  freeFirstOne(): void {
    if (this.#count === 0) return;
    this.#start = (this.#start + 1) % this.capacity;
    this.#count--;
  }

  /** Frees everything (on a state change of the progress). */
  reset(): void {
    this.#start = 0;
    this.#count = 0;
  }
}
