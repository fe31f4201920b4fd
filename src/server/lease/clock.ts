/**
 * The time sources the lease keeper reads, injected so expiry is deterministic under test: a
 * monotonic clock (lease deadlines must not move when the wall clock is stepped by NTP or an
 * operator) and a scheduler for the periodic expiry check. `ManualClock` is both, for tests and the
 * simulator: time moves only when the test says so, and scheduled checks fire at their due times.
 */

import { performance } from 'node:perf_hooks';
import { assert } from '../../base/index.js';

/** A monotonic clock in milliseconds. Only differences between readings mean anything. */
export interface LeaseClock {
  /** Milliseconds since an arbitrary origin; never decreases. */
  nowMs(): number;
}

/** Calls `onCheck` every `intervalMs` until the returned function is called. */
export interface CheckScheduler {
  schedule(onCheck: () => void, intervalMs: number): () => void;
}

/** The process's monotonic clock (`performance.now()`), for production. */
export const monotonicClock: LeaseClock = Object.freeze({
  nowMs: (): number => performance.now(),
});

/** The runtime's `setInterval`, for production. The timer does not keep the process alive. */
export const intervalCheckScheduler: CheckScheduler = Object.freeze({
  schedule(onCheck: () => void, intervalMs: number): () => void {
    const handle = setInterval(onCheck, intervalMs);
    handle.unref();
    return () => clearInterval(handle);
  },
});

interface ScheduledCheck {
  readonly onCheck: () => void;
  readonly intervalMs: number;
  dueMs: number;
}

/**
 * A clock and scheduler that move only when told: `advanceMs(ms)` steps time forward and fires
 * every scheduled check at each of its due times on the way, in time order, as a real interval
 * timer would.
 */
export class ManualClock implements LeaseClock, CheckScheduler {
  #nowMs: number;
  readonly #checks = new Set<ScheduledCheck>();

  /** Starts at `startMs` (default 0). */
  constructor(startMs = 0) {
    this.#nowMs = startMs;
  }

  /** The current time in ms. */
  nowMs(): number {
    return this.#nowMs;
  }

  /** Registers `onCheck` to fire every `intervalMs` of manual time, first at now + interval. */
  schedule(onCheck: () => void, intervalMs: number): () => void {
    assert(intervalMs > 0, 'a check interval must be positive');
    const check: ScheduledCheck = { onCheck, intervalMs, dueMs: this.#nowMs + intervalMs };
    this.#checks.add(check);
    return () => this.#checks.delete(check);
  }

  /** Moves time forward by `ms`, firing due checks in order. */
  advanceMs(ms: number): void {
    assert(ms >= 0, 'time never goes back');
    const targetMs = this.#nowMs + ms;
    while (true) {
      const next = this.#nextDue();
      if (next === undefined || next.dueMs > targetMs) break;
      this.#nowMs = next.dueMs;
      next.dueMs += next.intervalMs;
      next.onCheck();
    }
    this.#nowMs = targetMs;
  }

  /** Jumps time forward by `ms` without firing anything, as a stalled process would see it. */
  jumpMs(ms: number): void {
    assert(ms >= 0, 'time never goes back');
    this.#nowMs += ms;
    for (const check of this.#checks) {
      // A stalled interval timer fires once when the process resumes, not once per missed period.
      if (check.dueMs < this.#nowMs) check.dueMs = this.#nowMs;
    }
  }

  #nextDue(): ScheduledCheck | undefined {
    let next: ScheduledCheck | undefined;
    for (const check of this.#checks) {
      if (next === undefined || check.dueMs < next.dueMs) next = check;
    }
    return next;
  }
}
