/**
 * Where the segments of segment mode (Leaf-segment, Tinyid) come from. A store keeps, per business
 * tag, the end of the last range it handed out; `allocate` moves that end forward by `step` in one
 * atomic step and returns the range it moved over. The contract every store keeps:
 *
 * - A returned range `[start, end)` belongs to the caller alone: no other call, in this process
 *   or any other, before or after a crash of either, ever receives an id in it.
 * - Ranges of one tag only move up: a later allocation starts at or above the end of every
 *   earlier one, so a generator's ids increase across segments.
 * - A call that fails, or whose answer is lost, may have consumed a range nobody will use. That
 *   wastes ids and is the price of never repeating one: a store never returns a range unless it
 *   saw its own atomic update succeed.
 *
 * Ids start at `segmentFirstId` (1, so that 0 can mean "no id" to applications).
 */

import { randomInt } from 'node:crypto';
import { SeededRandom, SynodError, assert, type Random } from '../../base/index.js';

/** A half-open range `[start, end)` of ids owned by whoever allocated it. */
export interface Segment {
  /** The first id of the range. */
  readonly start: bigint;
  /** One past the last id of the range; `end > start`. */
  readonly end: bigint;
}

/** A source of segments; see the file comment for the contract. */
export interface SegmentStore {
  /** Takes the next `step` ids of `tag`: `[start, start + step)`, now owned by the caller. */
  allocate(tag: string, step: number): Promise<Segment>;
  /** Releases connections the store opened; ranges already returned stay owned. */
  close(): Promise<void>;
}

/** The first id of a new tag. */
export const segmentFirstId = 1n;
/** The largest step: Leaf's `step` column is a 32-bit `int`. */
export const segmentStepMax = 2_147_483_647;
/** The longest tag in UTF-8 bytes: Leaf's `biz_tag varchar(128)`. */
export const segmentTagBytesMax = 128;
/** Attempts an allocation makes against conflicting writers before giving up. */
export const segmentAllocateAttemptsMaxDefault = 32;
/** The first pause after a conflict; doubled per attempt up to the maximum, then jittered. */
export const segmentConflictDelayMsDefault = 1;
/** The longest pause between conflicting attempts. */
export const segmentConflictDelayMsMax = 100;

/**
 * Throws SYNOD_INVALID_ARGUMENT unless `tag` is a non-empty tag of at most `segmentTagBytesMax`
 * bytes without `/` (a tag is one key segment in Synod) and `step` a whole number in
 * [1, segmentStepMax].
 */
export function validateAllocation(tag: string, step: number): void {
  if (typeof tag !== 'string' || tag === '' || tag.includes('/')) {
    throw new SynodError('SYNOD_INVALID_ARGUMENT', 'a segment tag must be non-empty without "/"');
  }
  if (Buffer.byteLength(tag) > segmentTagBytesMax) {
    throw new SynodError('SYNOD_INVALID_ARGUMENT', `a segment tag is at most ${segmentTagBytesMax} bytes`);
  }
  if (!Number.isSafeInteger(step) || step < 1 || step > segmentStepMax) {
    throw new SynodError('SYNOD_INVALID_ARGUMENT', `a segment step must be a whole number in [1, ${segmentStepMax}]`);
  }
}

/**
 * The error of a store whose backend failed or could not be reached (a driver error is its
 * `cause`). The outcome of the allocation is unknown: a range may have been consumed.
 */
export class SegmentStoreError extends SynodError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('SYNOD_ID_STORE_UNAVAILABLE', message);
    this.name = 'SegmentStoreError';
    if (options?.cause !== undefined) this.cause = options.cause;
  }
}

/** The error of an allocation that met a conflicting writer on every one of its attempts. */
export function conflictsExhausted(tag: string, attempts: number): SynodError {
  return new SynodError(
    'SYNOD_STM_RETRIES_EXHAUSTED', `segment tag ${tag}: ${attempts} conflicting attempts`,
  );
}

/** A jitter source seeded from the OS, for backoff only (never for ids). */
export function newJitter(): Random {
  return new SeededRandom(randomInt(2 ** 31));
}

/**
 * The pause before retry `attempt` (0-based): exponential from `firstMs` up to `maxMs`, then a
 * uniform draw in [half, all] of it, so contenders that collided do not collide again in step.
 */
export function backoffDelayMs(
  attempt: number, bounds: { readonly firstMs: number; readonly maxMs: number }, random: Random,
): number {
  assert(attempt >= 0 && bounds.firstMs >= 0 && bounds.maxMs >= bounds.firstMs, 'backoff bounds');
  const ceilingMs = Math.min(bounds.maxMs, bounds.firstMs * 2 ** Math.min(attempt, 30));
  const delayMs = ceilingMs / 2 + random.float() * (ceilingMs / 2);
  assert(delayMs >= 0 && delayMs <= bounds.maxMs, 'backoff within bounds');
  return delayMs;
}

/** Resolves after `ms`. The timer keeps the process alive: someone awaits what follows it. */
export function pause(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * Segments from memory, for one process: the reference implementation and the test double.
 * `allocate` completes in a microtask; it never fails.
 */
export class MemorySegmentStore implements SegmentStore {
  /** The end of the last range of each tag. */
  readonly #ends = new Map<string, bigint>();
  /** Ranges handed out, for tests that check the store's log. */
  allocations = 0;

  async allocate(tag: string, step: number): Promise<Segment> {
    validateAllocation(tag, step);
    const start = this.#ends.get(tag) ?? segmentFirstId;
    const end = start + BigInt(step);
    this.#ends.set(tag, end);
    this.allocations += 1;
    return { start, end };
  }

  /** The end of the last range of `tag` (`segmentFirstId` before the first). */
  endOf(tag: string): bigint {
    return this.#ends.get(tag) ?? segmentFirstId;
  }

  async close(): Promise<void> {}
}
