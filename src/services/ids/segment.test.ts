// SegmentGenerator's double buffer against a store the test controls: ids keep coming
// synchronously while the next segment loads, callers wait only when both segments are empty,
// the step adapts, ids strictly increase, and store failures reach waiters as typed errors.
import { describe, expect, it } from 'vitest';
import { SeededRandom, SynodError, isSynodError } from '../../base/index.js';
import { SegmentGenerator, adaptStep, type SegmentGeneratorOptions } from './segment.js';
import { MemorySegmentStore, type Segment, type SegmentStore } from './segment-store.js';

/** An allocation the test has not answered yet. */
interface Pending {
  readonly tag: string;
  readonly step: number;
  release(): void;
  /** Answers `[start, start + step)` instead of the next range: a store breaking its contract. */
  releaseAt(start: bigint): void;
  fail(error: unknown): void;
}

/** A store whose every allocation waits for the test to release or fail it. */
class GatedStore implements SegmentStore {
  readonly memory = new MemorySegmentStore();
  readonly pending: Pending[] = [];
  readonly steps: number[] = [];
  #arrived: (() => void) | null = null;

  allocate(tag: string, step: number): Promise<Segment> {
    this.steps.push(step);
    return new Promise<Segment>((resolve, reject) => {
      this.pending.push({
        tag, step,
        release: () => resolve(this.memory.allocate(tag, step)),
        releaseAt: (start) => resolve({ start, end: start + BigInt(step) }),
        fail: reject,
      });
      this.#arrived?.();
    });
  }

  /** The oldest unanswered allocation, waiting for one to arrive if none has. */
  async nextPending(): Promise<Pending> {
    while (this.pending.length === 0) {
      await new Promise<void>((resolve) => { this.#arrived = resolve; });
      this.#arrived = null;
    }
    return this.pending.shift()!;
  }

  async close(): Promise<void> {}
}

function generatorOf(store: SegmentStore, options: Partial<SegmentGeneratorOptions> = {}): SegmentGenerator {
  return new SegmentGenerator({
    store, tag: 'order', step: 100, stepMax: 100, retryDelayMs: 0, retryDelayMsMax: 1,
    random: new SeededRandom(7), ...options,
  });
}

/** Polls `condition` between turns of the event loop until it holds, or fails after a deadline. */
async function until(condition: () => boolean, deadlineMs = 5_000): Promise<void> {
  const startMs = performance.now();
  while (!condition()) {
    if (performance.now() - startMs > deadlineMs) throw new Error('condition not reached in time');
    await new Promise((resolve) => setImmediate(resolve));
  }
}

async function warmed(store: GatedStore, generator: SegmentGenerator): Promise<void> {
  const warming = generator.warm();
  (await store.nextPending()).release();
  await warming;
}

describe('SegmentGenerator double buffer', () => {
  it('keeps answering synchronously while the next segment loads', async () => {
    const store = new GatedStore();
    const generator = generatorOf(store);
    await warmed(store, generator);
    const ids: bigint[] = [];
    for (let i = 0; i < 10; i++) ids.push(generator.next() as bigint);
    // The 11th id crosses the 10% point: a preload is asked for and left hanging.
    expect(store.pending).toHaveLength(0);
    ids.push(generator.next() as bigint);
    expect(store.pending).toHaveLength(1);
    expect(generator.fetching).toBe(true);
    for (let i = 11; i < 100; i++) {
      const id = generator.next();
      expect(typeof id).toBe('bigint');
      ids.push(id as bigint);
    }
    expect(ids).toEqual(Array.from({ length: 100 }, (_, i) => BigInt(i + 1)));
    // Both segments empty: now, and only now, a caller waits.
    const waiting = generator.next();
    expect(waiting).toBeInstanceOf(Promise);
    store.pending.shift()!.release();
    expect(await waiting).toBe(101n);
    expect(generator.next()).toBe(102n);
    await generator.close();
  });

  it('switches to the preloaded segment without waiting', async () => {
    const store = new GatedStore();
    const generator = generatorOf(store);
    await warmed(store, generator);
    for (let i = 0; i < 11; i++) generator.next();
    (await store.nextPending()).release();
    await until(() => !generator.fetching);
    expect(generator.remaining).toBe(189n);
    for (let i = 11; i < 200; i++) expect(generator.next()).toBe(BigInt(i + 1));
    expect(store.steps).toEqual([100, 100, 100]);
    await generator.close();
  });

  it('serves waiters in arrival order and refuses more than waitersMax', async () => {
    const store = new GatedStore();
    const generator = generatorOf(store, { step: 2, stepMax: 2, waitersMax: 3 });
    const first = generator.next();
    const batch = generator.nextBatch(3);
    const third = generator.next();
    const refused = generator.next();
    await expect(refused).rejects.toSatisfy((error) => isSynodError(error, 'SYNOD_ID_WAITERS_EXHAUSTED'));
    (await store.nextPending()).release();
    expect(await first).toBe(1n);
    (await store.nextPending()).release();
    expect(await batch).toEqual([2n, 3n, 4n]);
    (await store.nextPending()).release();
    expect(await third).toBe(5n);
    await generator.close();
  });

  it('hands out strictly increasing ids across many segments and batches', async () => {
    const store = new MemorySegmentStore();
    const generator = generatorOf(store, { step: 7, stepMax: 7 });
    let previous = 0n;
    let drawn = 0;
    for (let round = 0; round < 500; round++) {
      const ids = round % 2 === 0 ? [await generator.next()] : await generator.nextBatch(round % 13);
      for (const id of ids) {
        expect(id).toBeGreaterThan(previous);
        previous = id;
        drawn += 1;
      }
    }
    // No id skipped while the generator lives: waste happens only at close or crash.
    expect(previous).toBe(BigInt(drawn));
    await generator.close();
  });

  it('surfaces store failures to waiters, typed, and retries the fetch', async () => {
    const store = new GatedStore();
    const generator = generatorOf(store);
    const waiting = generator.next();
    (await store.nextPending()).fail(new Error('connection reset'));
    const error = await Promise.resolve(waiting).catch((caught: unknown) => caught);
    expect(isSynodError(error, 'SYNOD_ID_STORE_UNAVAILABLE')).toBe(true);
    expect((error as SynodError).cause).toBeInstanceOf(Error);
    // The retry comes by itself after the backoff, without a caller asking.
    const retry = await store.nextPending();
    const again = generator.next();
    retry.release();
    expect(await again).toBe(1n);
    expect(generator.stats.fetchFailures).toBe(1);
    await generator.close();
  });

  it('passes a store SynodError through unchanged', async () => {
    const store = new GatedStore();
    const generator = generatorOf(store);
    const waiting = generator.next();
    const conflict = new SynodError('SYNOD_STM_RETRIES_EXHAUSTED', 'contended');
    (await store.nextPending()).fail(conflict);
    await expect(waiting).rejects.toBe(conflict);
    await generator.close();
  });

  it('refuses a range that is not above the ids already handed out', async () => {
    // Preloading on the last id leaves the generator empty while the bad range is fetched.
    const store = new GatedStore();
    const generator = generatorOf(store, { preloadConsumedFraction: 1 });
    const batch = generator.nextBatch(100);
    (await store.nextPending()).release();
    expect((await batch).at(-1)).toBe(100n);
    const refused = generator.next();
    (await store.nextPending()).releaseAt(50n);
    await expect(refused).rejects.toSatisfy((error) => isSynodError(error, 'SYNOD_STORAGE_CORRUPT'));
    const retried = generator.next();
    (await store.nextPending()).releaseAt(201n);
    expect(await retried).toBe(201n);
    await generator.close();
  });

  it('rejects waiters on close and refuses calls after it', async () => {
    const store = new GatedStore();
    const generator = generatorOf(store);
    const waiting = generator.next();
    const pending = await store.nextPending();
    const closing = generator.close();
    await expect(waiting).rejects.toSatisfy((error) => isSynodError(error, 'SYNOD_ID_GENERATOR_CLOSED'));
    pending.release();
    await closing;
    expect(() => generator.next()).toThrow(SynodError);
  });

  it('validates its options', () => {
    const store = new MemorySegmentStore();
    expect(() => generatorOf(store, { step: 0 })).toThrow(/step/);
    expect(() => generatorOf(store, { step: 100, stepMax: 50 })).toThrow(/stepMax/);
    expect(() => generatorOf(store, { tag: 'a/b' })).toThrow(/tag/);
    expect(() => generatorOf(store, { preloadConsumedFraction: 0 })).toThrow(/preload/);
  });
});

describe('adaptive step', () => {
  const bounds = { stepMin: 10, stepMax: 80, segmentTargetMs: 1_000 };

  it('follows Leaf: double under the target, keep within 2x, halve beyond', () => {
    expect(adaptStep(10, 999, bounds)).toBe(20);
    expect(adaptStep(80, 10, bounds)).toBe(80);
    expect(adaptStep(40, 1_000, bounds)).toBe(40);
    expect(adaptStep(40, 1_999, bounds)).toBe(40);
    expect(adaptStep(40, 2_000, bounds)).toBe(20);
    expect(adaptStep(10, 60_000, bounds)).toBe(10);
  });

  it('grows the step under fast consumption and shrinks it when consumption slows', async () => {
    let nowMs = 0;
    const store = new GatedStore();
    const generator = generatorOf(store, {
      step: 10, stepMax: 80, segmentTargetMs: 1_000, clock: { nowMs: () => nowMs },
    });
    const drain = async (gapMs: number): Promise<void> => {
      // Use the whole current segment, then let the preload land `gapMs` after the last fetch.
      nowMs += gapMs;
      const ids = generator.nextBatch(Number(generator.remaining) + 1);
      (await store.nextPending()).release();
      await ids;
    };
    await warmed(store, generator);
    for (let i = 0; i < 5; i++) await drain(10);
    for (let i = 0; i < 3; i++) await drain(5_000);
    expect(store.steps.slice(0, 6)).toEqual([10, 20, 40, 80, 80, 80]);
    expect(store.steps.slice(6)).toEqual([40, 20, 10]);
    await generator.close();
  });
});
