/**
 * Segment mode (Meituan's Leaf-segment, Didi's Tinyid): a generator takes a whole range of ids of
 * one tag from a SegmentStore and hands them out locally, so the store sees one round trip per
 * `step` ids, not one per id.
 *
 * Double buffer (Leaf's SegmentBuffer): once `preloadConsumedFraction` (10%, Leaf's "idle below
 * 90% of the step") of the current segment is used, the next one is fetched in the background.
 * Callers keep drawing from the current one synchronously meanwhile, and switch to the next when
 * it runs out; they wait (a promise) only if both are empty, i.e. the store is slower than a whole
 * segment's worth of demand. Waiters are served in arrival order as soon as a segment lands.
 *
 * Adaptive step (Leaf's `updateSegmentFromDb`): the time between two fetches is about the time to
 * consume one segment. Shorter than `segmentTargetMs` doubles the step (up to `stepMax`); longer
 * than twice the target halves it (down to `step`, the minimum). Leaf's target is 15 minutes, the
 * default here: a store round trip per quarter hour per process at any rate up to `stepMax` ids
 * per target. The price is waste: a crash loses at most the unused rest of the current segment
 * and the preloaded one (together below 2 × stepMax ids); an id is never repeated.
 *
 * Ids from one generator strictly increase. A failing store rejects the callers waiting at that
 * moment with its typed error, and the generator tries again after a jittered, doubling pause.
 */

import { SynodError, assert, isSynodError, type Random } from '../../base/index.js';
import { idBatchMax, type IdGenerator } from './id-generator.js';
import {
  SegmentStoreError, backoffDelayMs, newJitter, segmentStepMax, validateAllocation,
  type Segment, type SegmentStore,
} from './segment-store.js';

/** A monotonic clock in milliseconds, injected so tests can drive the adaptive step. */
export interface SegmentClock {
  nowMs(): number;
}

/** Options of a SegmentGenerator. */
export interface SegmentGeneratorOptions {
  readonly store: SegmentStore;
  /** The business tag; generators sharing a store and tag never share an id. */
  readonly tag: string;
  /** The first and smallest step; default 1 000 (Leaf's sample table). */
  readonly step?: number;
  /** The largest step the adaptation may reach; default 1 000 000 (Leaf's MAX_STEP). */
  readonly stepMax?: number;
  /** How long a segment should last; default 15 minutes (Leaf's SEGMENT_DURATION). */
  readonly segmentTargetMs?: number;
  /** Fraction of a segment used before the next is preloaded, in (0, 1]; default 0.1. */
  readonly preloadConsumedFraction?: number;
  /** Calls that may wait for a segment at once; more are refused. Default 10 000. */
  readonly waitersMax?: number;
  /** The first pause after a failed fetch, doubling to `retryDelayMsMax`; default 10 ms. */
  readonly retryDelayMs?: number;
  /** The longest pause between failed fetches; default 5 000 ms. */
  readonly retryDelayMsMax?: number;
  /** Default `performance.now()`. */
  readonly clock?: SegmentClock;
  /** Jitter of the retry pauses; default seeded from the OS. */
  readonly random?: Random;
}

/** Defaults of the options above. */
export const segmentStepDefault = 1_000;
export const segmentStepMaxDefault = 1_000_000;
export const segmentTargetMsDefault = 15 * 60 * 1_000;
export const segmentPreloadConsumedFractionDefault = 0.1;
export const segmentWaitersMaxDefault = 10_000;
export const segmentRetryDelayMsDefault = 10;
export const segmentRetryDelayMsMaxDefault = 5_000;

/** The validated, defaulted, frozen configuration. */
interface Config {
  readonly step: number;
  readonly stepMax: number;
  readonly segmentTargetMs: number;
  readonly preloadConsumedFraction: number;
  readonly waitersMax: number;
  readonly retryDelayMs: number;
  readonly retryDelayMsMax: number;
}

/** The segment ids are drawn from; `next` is the next id to hand out. */
interface Current {
  next: bigint;
  readonly end: bigint;
  /** Once `next` reaches this, the next segment is preloaded. */
  readonly preloadAt: bigint;
}

/** A call waiting for ids: it wants `wanted` of them and has `taken` so far. */
interface Waiter {
  readonly wanted: number;
  readonly taken: bigint[];
  resolve(ids: bigint[]): void;
  reject(error: unknown): void;
}

const performanceClock: SegmentClock = { nowMs: () => performance.now() };

function closedError(tag: string): SynodError {
  return new SynodError('SYNOD_ID_GENERATOR_CLOSED', `segment generator ${tag} is closed`);
}

function invalid(message: string): SynodError {
  return new SynodError('SYNOD_INVALID_ARGUMENT', message);
}

function resolveConfig(options: SegmentGeneratorOptions): Config {
  const config: Config = {
    step: options.step ?? segmentStepDefault,
    stepMax: options.stepMax ?? Math.max(segmentStepMaxDefault, options.step ?? 0),
    segmentTargetMs: options.segmentTargetMs ?? segmentTargetMsDefault,
    preloadConsumedFraction: options.preloadConsumedFraction ?? segmentPreloadConsumedFractionDefault,
    waitersMax: options.waitersMax ?? segmentWaitersMaxDefault,
    retryDelayMs: options.retryDelayMs ?? segmentRetryDelayMsDefault,
    retryDelayMsMax: options.retryDelayMsMax ?? segmentRetryDelayMsMaxDefault,
  };
  validateAllocation(options.tag, config.step);
  if (!Number.isSafeInteger(config.stepMax) || config.stepMax < config.step || config.stepMax > segmentStepMax) {
    throw invalid(`stepMax must be a whole number in [step, ${segmentStepMax}]`);
  }
  if (!(config.segmentTargetMs > 0)) throw invalid('segmentTargetMs must be positive');
  const fraction = config.preloadConsumedFraction;
  if (!(fraction > 0 && fraction <= 1)) throw invalid('preloadConsumedFraction must be in (0, 1]');
  if (!Number.isSafeInteger(config.waitersMax) || config.waitersMax < 1) {
    throw invalid('waitersMax must be a positive whole number');
  }
  if (!(config.retryDelayMs >= 0 && config.retryDelayMsMax >= config.retryDelayMs)) {
    throw invalid('retry delays must satisfy 0 <= retryDelayMs <= retryDelayMsMax');
  }
  return Object.freeze(config);
}

/**
 * The step after a fetch that came `elapsedMs` after the previous one (Leaf's rule): double when
 * a segment lasted under the target, halve when it lasted over twice the target, within bounds.
 */
export function adaptStep(
  step: number, elapsedMs: number,
  bounds: { readonly stepMin: number; readonly stepMax: number; readonly segmentTargetMs: number },
): number {
  assert(step >= bounds.stepMin && step <= bounds.stepMax, 'adaptStep: step within bounds');
  let next = step;
  if (elapsedMs < bounds.segmentTargetMs) next = Math.min(step * 2, bounds.stepMax);
  else if (elapsedMs >= bounds.segmentTargetMs * 2) next = Math.max(Math.floor(step / 2), bounds.stepMin);
  assert(next >= bounds.stepMin && next <= bounds.stepMax, 'adaptStep: result within bounds');
  return next;
}

/** Ids of one tag, handed out locally from segments of a SegmentStore. */
export class SegmentGenerator implements IdGenerator<bigint> {
  readonly kind = 'segment' as const;
  readonly tag: string;
  readonly #store: SegmentStore;
  readonly #config: Config;
  readonly #clock: SegmentClock;
  readonly #random: Random;
  #current: Current | null = null;
  #preloaded: Segment | null = null;
  #fetching = false;
  /** Consecutive failed fetches; sets the retry pause. */
  #failures = 0;
  #retryTimer: ReturnType<typeof setTimeout> | null = null;
  readonly #waiters: Waiter[] = [];
  #step: number;
  /** When the previous fetch started; null before the first. */
  #lastFetchMs: number | null = null;
  /** The last id handed out; every next one is larger. */
  #lastId = 0n;
  #closed = false;
  /** Counters for metrics and tests. */
  readonly stats = { segmentsFetched: 0, fetchFailures: 0, waits: 0 };

  constructor(options: SegmentGeneratorOptions) {
    this.#config = resolveConfig(options);
    this.tag = options.tag;
    this.#store = options.store;
    this.#clock = options.clock ?? performanceClock;
    this.#random = options.random ?? newJitter();
    this.#step = this.#config.step;
  }

  /** The step the next fetch will ask for. */
  get step(): number {
    return this.#step;
  }

  /** Ids left in the current and the preloaded segment. */
  get remaining(): bigint {
    const current = this.#current === null ? 0n : this.#current.end - this.#current.next;
    const preloaded = this.#preloaded === null ? 0n : this.#preloaded.end - this.#preloaded.start;
    return current + preloaded;
  }

  /** Whether a fetch is in flight. */
  get fetching(): boolean {
    return this.#fetching;
  }

  /** Fetches the first segment now rather than on the first `next()`. */
  async warm(): Promise<void> {
    if (this.#current !== null || this.#preloaded !== null) return;
    const ids = await this.#waitFor(0);
    assert(ids.length === 0, 'warm takes no id');
  }

  next(): bigint | Promise<bigint> {
    const id = this.#take();
    if (id !== null) return id;
    return this.#waitFor(1).then((ids) => ids[0]!);
  }

  async nextBatch(count: number): Promise<bigint[]> {
    if (!Number.isSafeInteger(count) || count < 0 || count > idBatchMax) {
      throw invalid(`a batch is a whole number of ids in [0, ${idBatchMax}]`);
    }
    const ids: bigint[] = [];
    while (ids.length < count) {
      const id = this.#take();
      if (id === null) break;
      ids.push(id);
    }
    if (ids.length === count) return ids;
    const rest = await this.#waitFor(count - ids.length);
    for (const id of rest) ids.push(id);
    return ids;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    // A fetch in flight is not awaited: a hung store must not hang close. Its answer is dropped
    // (the range wasted), and its failure, once the caller closes the store, is ignored.
    this.#rejectWaiters(closedError(this.tag));
    if (this.#retryTimer !== null) clearTimeout(this.#retryTimer);
    this.#retryTimer = null;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  /** The next id if one is at hand, else null (and a fetch is under way or scheduled). */
  #take(): bigint | null {
    if (this.#closed) throw closedError(this.tag);
    // Waiters came first: a synchronous caller must not overtake them.
    if (this.#waiters.length > 0) return null;
    return this.#draw();
  }

  /** The next id of the current or preloaded segment, else null; starts fetches as needed. */
  #draw(): bigint | null {
    let current = this.#current;
    if (current === null || current.next >= current.end) {
      current = this.#advance();
      if (current === null) return null;
    }
    const id = current.next;
    current.next = id + 1n;
    if (id === current.preloadAt) this.#fetchIfNeeded();
    // Invariant: ids strictly increase per generator.
    assert(id > this.#lastId, 'segment: ids strictly increase');
    this.#lastId = id;
    return id;
  }

  /** Makes the preloaded segment current if there is one; otherwise starts a fetch. */
  #advance(): Current | null {
    const segment = this.#preloaded;
    if (segment === null) {
      this.#current = null;
      this.#fetchIfNeeded();
      return null;
    }
    this.#preloaded = null;
    const current = this.#currentOf(segment);
    this.#current = current;
    return current;
  }

  #currentOf(segment: Segment): Current {
    const size = segment.end - segment.start;
    const used = BigInt(Math.floor(Number(size) * this.#config.preloadConsumedFraction));
    // With a fraction of 1 (or a tiny segment) the preload starts on the last id.
    const preloadAt = segment.start + (used < size ? used : size - 1n);
    assert(preloadAt >= segment.start && preloadAt < segment.end, 'segment: preload point inside');
    return { next: segment.start, end: segment.end, preloadAt };
  }

  #waitFor(wanted: number): Promise<bigint[]> {
    if (this.#closed) {
      return Promise.reject(closedError(this.tag));
    }
    if (this.#waiters.length >= this.#config.waitersMax) {
      // No ids-specific code yet (SYNOD_ID_WAITERS_EXHAUSTED would be); the meaning matches.
      const message = `segment generator ${this.tag}: ${this.#config.waitersMax} calls already wait`;
      return Promise.reject(new SynodError('SYNOD_ID_WAITERS_EXHAUSTED', message));
    }
    this.stats.waits += 1;
    const waiting = new Promise<bigint[]>((resolve, reject) => {
      this.#waiters.push({ wanted, taken: [], resolve, reject });
    });
    this.#serveWaiters();
    this.#fetchIfNeeded();
    return waiting;
  }

  /** Starts a fetch when no segment is preloaded or in flight and the current one is past its
   * preload point or gone, unless a retry pause is pending. */
  #fetchIfNeeded(): void {
    if (this.#closed || this.#fetching || this.#retryTimer !== null || this.#preloaded !== null) return;
    const current = this.#current;
    if (current !== null && current.next <= current.preloadAt && this.#waiters.length === 0) return;
    this.#fetching = true;
    void this.#fetch();
  }

  async #fetch(): Promise<void> {
    const startedMs = this.#clock.nowMs();
    if (this.#lastFetchMs !== null) {
      const bounds = { stepMin: this.#config.step, stepMax: this.#config.stepMax, segmentTargetMs: this.#config.segmentTargetMs };
      this.#step = adaptStep(this.#step, startedMs - this.#lastFetchMs, bounds);
    }
    let segment: Segment;
    try {
      segment = await this.#store.allocate(this.tag, this.#step);
    } catch (error) {
      this.#fetching = false;
      this.#onFetchFailed(error);
      return;
    }
    this.#fetching = false;
    this.#lastFetchMs = startedMs;
    this.#onFetched(segment);
  }

  #onFetched(segment: Segment): void {
    assert(segment.end > segment.start, 'segment: the store returned a non-empty range');
    this.#failures = 0;
    this.stats.segmentsFetched += 1;
    if (this.#closed) return;
    const highest = this.#current?.end ?? this.#lastId + 1n;
    if (segment.start < highest) {
      // The store broke its contract (a key rewritten by hand, two stores on one tag with different
      // backends): refuse the range rather than risk a repeated id.
      const message = `segment ${this.tag}: range [${segment.start}, ${segment.end}) is not above ${highest - 1n}`;
      this.#onFetchFailed(new SynodError('SYNOD_STORAGE_CORRUPT', message));
      return;
    }
    const current = this.#current;
    if (current === null || current.next >= current.end) this.#current = this.#currentOf(segment);
    else this.#preloaded = segment;
    this.#serveWaiters();
    this.#fetchIfNeeded();
  }

  #onFetchFailed(error: unknown): void {
    this.#failures += 1;
    this.stats.fetchFailures += 1;
    if (this.#closed) return;
    this.#rejectWaiters(isSynodError(error) ? error : new SegmentStoreError(
      `segment ${this.tag}: the store failed`, { cause: error },
    ));
    const bounds = { firstMs: this.#config.retryDelayMs, maxMs: this.#config.retryDelayMsMax };
    const delayMs = backoffDelayMs(this.#failures - 1, bounds, this.#random);
    // A ref'd timer: a caller awaiting an id must keep the process alive; close clears it.
    this.#retryTimer = setTimeout(() => {
      this.#retryTimer = null;
      this.#fetchIfNeeded();
    }, delayMs);
  }

  /** Hands ids to waiters in arrival order while the segments last. */
  #serveWaiters(): void {
    while (this.#waiters.length > 0) {
      const waiter = this.#waiters[0]!;
      // A warm() waiter wants no id, only a segment at hand.
      if (waiter.wanted === 0 && this.#current === null && this.#preloaded === null) return;
      while (waiter.taken.length < waiter.wanted) {
        const id = this.#draw();
        if (id === null) return;
        waiter.taken.push(id);
      }
      this.#waiters.shift();
      waiter.resolve(waiter.taken);
    }
  }

  #rejectWaiters(error: unknown): void {
    for (const waiter of this.#waiters.splice(0)) waiter.reject(error);
  }
}
