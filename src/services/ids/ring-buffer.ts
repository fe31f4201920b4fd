/**
 * A ring of pre-drawn ids in front of any numeric generator: the idea of Baidu UidGenerator's
 * CachedUidGenerator, whose RingBuffer holds ids made ahead of demand so `getUID()` is an array
 * read.
 *
 * `next()` reads the slot under the head cursor and moves it on: no lock, no allocation beyond
 * the bigint it returns. When the ids left fall below `paddingFactor` percent of the ring
 * (UidGenerator's `paddingFactor`, default 50), and optionally every `fillIntervalMs`
 * (UidGenerator's `scheduleInterval`), a background fill draws ids from the source with
 * `nextBatch` until the ring is full again. A caller that finds the ring empty gets a promise;
 * waiters are served in arrival order as the fill lands, and a synchronous caller never
 * overtakes them.
 *
 * What this buys, honestly: burst absorption. A burst of up to `size` ids is served at memory
 * speed whatever the source is (Snowflake's 4 096 ids per millisecond, a segment fetch, a network
 * round trip), and the fill overlaps the source's latency with the burst. It does not raise the
 * sustained ceiling: over time the ring hands out no more ids than the source makes. UidGenerator
 * goes further because its layout has second-granularity timestamps: its fill uses the whole
 * sequence space of the next seconds ahead of the clock ("borrowing future time"), so its
 * sustained rate is bounded by the fill loop rather than the clock. This ring wraps any
 * `IdGenerator<bigint>` and knows nothing of the source's layout, so it borrows nothing; a source
 * that may run ahead of its clock has to do that itself.
 *
 * Ids keep the source's order: the ring is FIFO and one fill runs at a time, so if the source's
 * ids strictly increase, so do the ring's. Ids pre-drawn and never handed out (the ring's content
 * at close or crash, a batch landing after close) are wasted, never repeated.
 *
 * Storage is one preallocated `BigInt64Array` of `size` slots with monotonically counted head and
 * tail cursors (slot = cursor & (size - 1)): eight bytes a slot, nothing for the collector to
 * trace. A source whose ids leave the signed 64-bit range moves the ring to a plain array once.
 */

import {
  AssertionFailure, SynodError, assert, isSynodError, mark, type Random,
} from '../../base/index.js';
import { idBatchMax, type IdGenerator } from './id-generator.js';
import { backoffDelayMs, newJitter } from './segment-store.js';

/** Options of a RingBufferGenerator. */
export interface RingBufferGeneratorOptions {
  /** Where ids come from; the ring owns it and closes it on close. */
  readonly source: IdGenerator<bigint>;
  /** Slots in the ring, a power of two; default 65 536 (UidGenerator's 8 192 << boostPower 3). */
  readonly size?: number;
  /** A fill starts when fewer than this percent of the slots hold ids; in [1, 99], default 50. */
  readonly paddingFactor?: number;
  /** Also start a fill this often, if not full; default none. */
  readonly fillIntervalMs?: number;
  /** Ids asked of the source per `nextBatch`; in [1, min(size, idBatchMax)], default 4 096. */
  readonly fillBatchMax?: number;
  /** Calls that may wait for ids at once; more are refused. Default 10 000. */
  readonly waitersMax?: number;
  /** The first pause after a failed fill, doubling to `retryDelayMsMax`; default 10 ms. */
  readonly retryDelayMs?: number;
  /** The longest pause between failed fills; default 5 000 ms. */
  readonly retryDelayMsMax?: number;
  /** Jitter of the retry pauses; default seeded from the OS. */
  readonly random?: Random;
}

/** Defaults and bounds of the options above. */
export const ringSizeDefault = 65_536;
/** 4 Mi slots, 32 MiB of BigInt64Array: far past any burst one process should absorb. */
export const ringSizeMax = 4 * 1024 * 1024;
export const ringPaddingFactorDefault = 50;
export const ringFillBatchMaxDefault = 4_096;
export const ringWaitersMaxDefault = 10_000;
export const ringRetryDelayMsDefault = 10;
export const ringRetryDelayMsMaxDefault = 5_000;

/** Cursors move back by whole rings past this, far below 2^31 even with a full ring ahead. */
const ringCursorRebaseAt = 2 ** 30;
const int64Min = -(2n ** 63n);
const int64Max = 2n ** 63n - 1n;

/** The validated, defaulted, frozen configuration. */
interface Config {
  readonly size: number;
  /** A fill starts when fewer ids than this are left. */
  readonly fillBelowCount: number;
  readonly fillIntervalMs: number | null;
  readonly fillBatchMax: number;
  readonly waitersMax: number;
  readonly retryDelayMs: number;
  readonly retryDelayMsMax: number;
}

/** A call waiting for ids: it wants `wanted` of them and has `taken` so far. */
interface Waiter {
  readonly wanted: number;
  readonly taken: bigint[];
  resolve(ids: bigint[]): void;
  reject(error: unknown): void;
}

function invalid(message: string): SynodError {
  return new SynodError('SYNOD_INVALID_ARGUMENT', message);
}

function closedError(): SynodError {
  return new SynodError('SYNOD_ID_GENERATOR_CLOSED', 'ring buffer generator is closed');
}

function isPowerOfTwo(value: number): boolean {
  return Number.isSafeInteger(value) && value > 0 && (value & (value - 1)) === 0;
}

function resolveConfig(options: RingBufferGeneratorOptions): Config {
  const size = options.size ?? ringSizeDefault;
  if (!isPowerOfTwo(size) || size < 2 || size > ringSizeMax) {
    throw invalid(`ring size must be a power of two in [2, ${ringSizeMax}]`);
  }
  const paddingFactor = options.paddingFactor ?? ringPaddingFactorDefault;
  if (!Number.isInteger(paddingFactor) || paddingFactor < 1 || paddingFactor > 99) {
    throw invalid('paddingFactor must be a whole percent in [1, 99]');
  }
  const fillBatchMax = options.fillBatchMax ?? Math.min(size, ringFillBatchMaxDefault);
  if (!Number.isSafeInteger(fillBatchMax) || fillBatchMax < 1 ||
    fillBatchMax > Math.min(size, idBatchMax)) {
    throw invalid(`fillBatchMax must be a whole number in [1, min(size, ${idBatchMax})]`);
  }
  const fillIntervalMs = options.fillIntervalMs ?? null;
  if (fillIntervalMs !== null && !(Number.isFinite(fillIntervalMs) && fillIntervalMs > 0)) {
    throw invalid('fillIntervalMs must be a positive number of milliseconds');
  }
  const waitersMax = options.waitersMax ?? ringWaitersMaxDefault;
  if (!Number.isSafeInteger(waitersMax) || waitersMax < 1) {
    throw invalid('waitersMax must be a positive whole number');
  }
  const retryDelayMs = options.retryDelayMs ?? ringRetryDelayMsDefault;
  const retryDelayMsMax =
    options.retryDelayMsMax ?? Math.max(retryDelayMs, ringRetryDelayMsMaxDefault);
  if (!(retryDelayMs >= 0 && Number.isFinite(retryDelayMsMax) && retryDelayMsMax >= retryDelayMs)) {
    throw invalid('retry delays must satisfy 0 <= retryDelayMs <= retryDelayMsMax');
  }
  // At least one id is left below the threshold, and the threshold leaves room to fill.
  const fillBelowCount = Math.max(1, Math.floor((size * paddingFactor) / 100));
  assert(fillBelowCount >= 1 && fillBelowCount < size, 'ring: threshold inside the ring');
  return Object.freeze({
    size, fillBelowCount, fillIntervalMs, fillBatchMax, waitersMax, retryDelayMs, retryDelayMsMax,
  });
}

/** Ids of any numeric generator, pre-drawn into a ring; see the file comment. */
export class RingBufferGenerator implements IdGenerator<bigint> {
  readonly kind = 'ringbuffer' as const;
  readonly #source: IdGenerator<bigint>;
  readonly #config: Config;
  readonly #mask: number;
  readonly #random: Random;
  #slots: BigInt64Array | bigint[];
  /** The cursor of the next id to hand out; `#head <= #tail <= #head + size`. */
  #head = 0;
  /** The cursor of the next slot to fill. */
  #tail = 0;
  readonly #waiters: Waiter[] = [];
  #filling = false;
  /** Consecutive failed fills; sets the retry pause. */
  #failures = 0;
  #retryTimer: ReturnType<typeof setTimeout> | null = null;
  #intervalTimer: ReturnType<typeof setInterval> | null = null;
  /** Settles when the fill pass under way ends: full, or failed. Null when none runs. */
  #pass: { promise: Promise<void>; resolve(): void; reject(error: unknown): void } | null = null;
  #closed = false;
  /** Counters for metrics and tests. */
  readonly stats = { fillBatches: 0, fillFailures: 0, idsFilled: 0, waits: 0, widened: 0 };

  constructor(options: RingBufferGeneratorOptions) {
    this.#config = resolveConfig(options);
    this.#source = options.source;
    this.#mask = this.#config.size - 1;
    this.#random = options.random ?? newJitter();
    this.#slots = new BigInt64Array(this.#config.size);
    if (this.#config.fillIntervalMs !== null) {
      const fillIntervalMs = this.#config.fillIntervalMs;
      this.#intervalTimer = setInterval(() => this.#topUp(), fillIntervalMs);
      // The schedule only tops the ring up; a caller waiting for an id keeps the process alive.
      this.#intervalTimer.unref();
    }
  }

  /** Slots in the ring. */
  get size(): number {
    return this.#config.size;
  }

  /** Ids in the ring, ready to hand out. */
  get available(): number {
    return this.#tail - this.#head;
  }

  /** Whether a fill is under way. */
  get filling(): boolean {
    return this.#filling;
  }

  /**
   * Fills the ring now, cutting short a retry pause; resolves once it is full, rejects with the
   * source's error.
   */
  warm(): Promise<void> {
    if (this.#closed) return Promise.reject(closedError());
    if (this.#retryTimer !== null) clearTimeout(this.#retryTimer);
    this.#retryTimer = null;
    this.#topUp();
    return this.#pass?.promise ?? Promise.resolve();
  }

  next(): bigint | Promise<bigint> {
    if (this.#closed) throw closedError();
    // Waiters came first: a synchronous caller must not overtake them.
    if (this.#waiters.length === 0 && this.#tail > this.#head) return this.#take();
    return this.#waitFor(1).then((ids) => ids[0]!);
  }

  async nextBatch(count: number): Promise<bigint[]> {
    if (!Number.isSafeInteger(count) || count < 0 || count > idBatchMax) {
      throw invalid(`a batch is a whole number of ids in [0, ${idBatchMax}]`);
    }
    if (this.#closed) throw closedError();
    const ids: bigint[] = [];
    if (this.#waiters.length === 0) {
      while (ids.length < count && this.#tail > this.#head) ids.push(this.#take());
    }
    if (ids.length === count) return ids;
    const rest = await this.#waitFor(count - ids.length);
    for (const id of rest) ids.push(id);
    return ids;
  }

  /** Stops filling, refuses waiters, and closes the source. Ids left in the ring are wasted. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#intervalTimer !== null) clearInterval(this.#intervalTimer);
    if (this.#retryTimer !== null) clearTimeout(this.#retryTimer);
    this.#intervalTimer = null;
    this.#retryTimer = null;
    const error = closedError();
    for (const waiter of this.#waiters.splice(0)) waiter.reject(error);
    this.#endPass(error);
    // A fill in flight is not awaited: its batch is dropped when (if) it lands.
    await this.#source.close();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  /** The id under the head cursor; the ring must not be empty. */
  #take(): bigint {
    assert(this.#tail > this.#head, 'ring: take from a non-empty ring');
    const id = this.#slots[this.#head & this.#mask]!;
    this.#head += 1;
    if (this.#tail - this.#head < this.#config.fillBelowCount) this.#fillIfLow();
    return id;
  }

  #waitFor(wanted: number): Promise<bigint[]> {
    if (this.#waiters.length >= this.#config.waitersMax) {
      const message = `ring buffer: ${this.#config.waitersMax} calls already wait for ids`;
      return Promise.reject(new SynodError('SYNOD_ID_WAITERS_EXHAUSTED', message));
    }
    this.stats.waits += 1;
    const waiting = new Promise<bigint[]>((resolve, reject) => {
      this.#waiters.push({ wanted, taken: [], resolve, reject });
    });
    this.#serveWaiters();
    this.#fillIfLow();
    return waiting;
  }

  /** Starts a fill when fewer ids than the threshold are left or callers wait. */
  #fillIfLow(): void {
    const low = this.#tail - this.#head < this.#config.fillBelowCount;
    if (low || this.#waiters.length > 0) this.#topUp();
  }

  /** Starts a fill pass if a slot is free, unless one runs or a retry pause is pending. */
  #topUp(): void {
    if (this.#closed || this.#filling || this.#retryTimer !== null) return;
    if (this.#tail - this.#head === this.#config.size) return;
    this.#filling = true;
    let resolve!: () => void;
    let reject!: (error: unknown) => void;
    const promise = new Promise<void>((ok, fail) => { resolve = ok; reject = fail; });
    // Nobody may be awaiting the pass; its failure already reaches waiters directly.
    promise.catch(() => undefined);
    this.#pass = { promise, resolve, reject };
    // Not awaited; an assertion failure rejects it unhandled, which ends the process.
    void this.#fill();
  }

  /** Draws batches until the ring is full, serving waiters as each one lands. */
  async #fill(): Promise<void> {
    while (!this.#closed) {
      const free = this.#config.size - (this.#tail - this.#head);
      if (free === 0) break;
      const count = Math.min(free, this.#config.fillBatchMax);
      let ids: bigint[];
      try {
        ids = await this.#source.nextBatch(count);
      } catch (error) {
        // A bug in the source is not a failed fill: rethrown, it crashes the process.
        if (error instanceof AssertionFailure) throw error;
        this.#onFillFailed(error);
        return;
      }
      if (this.#closed) return;
      this.#store(ids, count);
      this.#rebase();
      this.#serveWaiters();
    }
    this.#filling = false;
    this.#failures = 0;
    this.#endPass(null);
  }

  /** Appends a landed batch behind the tail. */
  #store(ids: readonly bigint[], asked: number): void {
    assert(ids.length === asked, 'ring: the source returned the batch size asked for');
    // Only callers took ids since the batch was asked for, so it still fits.
    assert(this.#tail - this.#head + ids.length <= this.#config.size, 'ring: a batch fits');
    let slots = this.#slots;
    for (const id of ids) {
      if (slots instanceof BigInt64Array && (id < int64Min || id > int64Max)) slots = this.#widen();
      slots[this.#tail & this.#mask] = id;
      this.#tail += 1;
    }
    this.stats.fillBatches += 1;
    this.stats.idsFilled += ids.length;
  }

  /**
   * Keeps the cursors small integers (V8 Smis, exact under `&`): both move back by a whole number
   * of rings, which leaves every slot where it was.
   */
  #rebase(): void {
    if (this.#head < ringCursorRebaseAt) return;
    const shift = this.#head - (this.#head & this.#mask);
    this.#head -= shift;
    this.#tail -= shift;
    assert(this.#head >= 0 && this.#head <= this.#tail, 'ring: cursors stay ordered');
  }

  /** Moves the ring to a plain array, once, for ids beyond 64 signed bits. */
  #widen(): bigint[] {
    mark('ring: widened past 64-bit ids');
    this.stats.widened += 1;
    const wide = Array.from(this.#slots as BigInt64Array);
    this.#slots = wide;
    return wide;
  }

  #onFillFailed(error: unknown): void {
    this.#filling = false;
    this.#failures += 1;
    this.stats.fillFailures += 1;
    if (this.#closed) return;
    // The source's own typed error reaches the callers; anything else is a failing backend.
    let failure = error;
    if (!isSynodError(error)) {
      failure = new SynodError('SYNOD_ID_STORE_UNAVAILABLE', 'ring buffer: the source failed');
      (failure as Error).cause = error;
    }
    // A waiter served in part loses the ids it took: wasted, never handed out again.
    for (const waiter of this.#waiters.splice(0)) waiter.reject(failure);
    this.#endPass(failure);
    const bounds = { firstMs: this.#config.retryDelayMs, maxMs: this.#config.retryDelayMsMax };
    const delayMs = backoffDelayMs(this.#failures - 1, bounds, this.#random);
    // Not unref'd: a caller that retries after the rejection waits on this timer.
    this.#retryTimer = setTimeout(() => {
      this.#retryTimer = null;
      this.#fillIfLow();
    }, delayMs);
  }

  /** Settles the pass under way: resolved when `error` is null. */
  #endPass(error: unknown): void {
    const pass = this.#pass;
    this.#pass = null;
    if (pass === null) return;
    if (error === null) pass.resolve();
    else pass.reject(error);
  }

  /** Hands ids to waiters in arrival order while the ring lasts. */
  #serveWaiters(): void {
    while (this.#waiters.length > 0) {
      const waiter = this.#waiters[0]!;
      while (waiter.taken.length < waiter.wanted) {
        if (this.#tail === this.#head) return;
        waiter.taken.push(this.#take());
      }
      this.#waiters.shift();
      waiter.resolve(waiter.taken);
    }
  }
}
