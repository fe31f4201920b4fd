// RingBufferGenerator in front of sources the test controls: ids keep the source's order over
// many wraps, the fill starts at the padding threshold and on the schedule, waiting callers are
// served in arrival order, a failing source rejects them and the ring recovers, close, bounds.
import { describe, expect, it } from 'vitest';
import { SeededRandom, SynodError, isSynodError } from '../../base/index.js';
import type { IdGenerator } from './id-generator.js';
import { RingBufferGenerator, type RingBufferGeneratorOptions } from './ring-buffer.js';
import { SegmentGenerator } from './segment.js';
import { MemorySegmentStore } from './segment-store.js';

/** A batch the test has not answered yet. */
interface PendingBatch {
  readonly count: number;
  release(): void;
  fail(error: unknown): void;
}

/** Consecutive ids from `first`; batches answer at once unless `gated`, then when released. */
class TestSource implements IdGenerator<bigint> {
  readonly kind = 'segment' as const;
  readonly pending: PendingBatch[] = [];
  readonly batchSizes: number[] = [];
  gated = false;
  closed = false;
  #nextId: bigint;

  constructor(first = 1n) {
    this.#nextId = first;
  }

  next(): bigint {
    throw new Error('the ring only asks for batches');
  }

  nextBatch(count: number): Promise<bigint[]> {
    this.batchSizes.push(count);
    const draw = (): bigint[] => Array.from({ length: count }, () => this.#nextId++);
    if (!this.gated) return Promise.resolve(draw());
    return new Promise((resolve, reject) => {
      this.pending.push({ count, release: () => resolve(draw()), fail: reject });
    });
  }

  async close(): Promise<void> {
    this.closed = true;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}

function ringOf(source: IdGenerator<bigint>, options: Partial<RingBufferGeneratorOptions> = {}):
RingBufferGenerator {
  return new RingBufferGenerator({
    source, size: 16, retryDelayMs: 0, retryDelayMsMax: 1, random: new SeededRandom(3), ...options,
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

/** The error `promise` rejects with; throws if it resolves. */
async function rejectionOf(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error('expected a rejection');
}

/** Warms a gated ring by releasing every batch its first pass asks for. */
async function warmGated(source: TestSource, ring: RingBufferGenerator): Promise<void> {
  const warming = ring.warm();
  while (ring.available < ring.size) {
    await until(() => source.pending.length > 0);
    source.pending.shift()!.release();
    await until(() => source.pending.length > 0 || ring.available === ring.size);
  }
  await warming;
}

describe('RingBufferGenerator order', () => {
  it('hands out exactly the source ids, in order, over many wraps of the ring', async () => {
    const source = new TestSource();
    const ring = ringOf(source, { size: 64, fillBatchMax: 24 });
    await ring.warm();
    expect(ring.available).toBe(64);
    const ids: bigint[] = [];
    const random = new SeededRandom(11);
    while (ids.length < 64 * 40) {
      if (random.chance(0.3)) {
        ids.push(...await ring.nextBatch(1 + random.int(40)));
      } else {
        ids.push(await ring.next());
      }
    }
    // The source is consecutive and nothing is wasted while the ring runs: 1, 2, 3, ...
    expect(ids.every((id, index) => id === BigInt(index + 1))).toBe(true);
    expect(Math.max(...source.batchSizes)).toBeLessThanOrEqual(24);
    await ring.close();
    expect(source.closed).toBe(true);
  });

  it('answers synchronously while ids are at hand', async () => {
    const ring = ringOf(new TestSource());
    await ring.warm();
    for (let index = 0; index < ring.size; index++) expect(typeof ring.next()).toBe('bigint');
    const waiting = ring.next();
    expect(waiting).toBeInstanceOf(Promise);
    expect(await waiting).toBe(17n);
    await ring.close();
  });

  it('keeps a segment generator increasing through the ring', async () => {
    const source = new SegmentGenerator({ store: new MemorySegmentStore(), tag: 'ring', step: 50 });
    const ring = ringOf(source, { size: 128, fillBatchMax: 100 });
    const ids: bigint[] = [];
    for (let index = 0; index < 2_000; index++) ids.push(await ring.next());
    expect(ids.every((id, index) => index === 0 || id > ids[index - 1]!)).toBe(true);
    await ring.close();
  });

  it('moves to a plain array, once, for ids past 64 signed bits', async () => {
    const source = new TestSource(2n ** 63n - 4n);
    const ring = ringOf(source, { size: 8 });
    await ring.warm();
    const ids = [...await ring.nextBatch(8), ...await ring.nextBatch(8)];
    expect(ids).toEqual(Array.from({ length: 16 }, (_, index) => 2n ** 63n - 4n + BigInt(index)));
    expect(ring.stats.widened).toBe(1);
    await ring.close();
  });
});

describe('RingBufferGenerator fill', () => {
  it('starts a fill once fewer than paddingFactor percent of the slots hold ids', async () => {
    const source = new TestSource();
    source.gated = true;
    const ring = ringOf(source, { size: 16, paddingFactor: 25 });
    await warmGated(source, ring);
    // 25% of 16 is 4: taking down to 4 ids left starts nothing, the next id does.
    for (let index = 0; index < 12; index++) ring.next();
    expect(ring.filling).toBe(false);
    ring.next();
    expect(ring.filling).toBe(true);
    expect(source.pending).toHaveLength(1);
    expect(source.pending[0]!.count).toBe(13);
    source.pending.shift()!.release();
    await until(() => !ring.filling);
    expect(ring.available).toBe(16);
    await ring.close();
  });

  it('tops the ring up on its schedule even above the threshold', async () => {
    const ring = ringOf(new TestSource(), { fillIntervalMs: 5 });
    await ring.warm();
    ring.next();
    ring.next();
    expect(ring.available).toBe(14);
    expect(ring.filling).toBe(false);
    await until(() => ring.available === 16);
    await ring.close();
  });
});

describe('RingBufferGenerator waiting', () => {
  it('serves callers who found the ring empty in arrival order as the fill lands', async () => {
    const source = new TestSource();
    source.gated = true;
    const ring = ringOf(source, { size: 8, fillBatchMax: 4 });
    const order: string[] = [];
    const noted = (name: string, ids: Promise<bigint[]>): Promise<bigint[]> =>
      ids.then((taken) => { order.push(name); return taken; });
    const first = noted('first', (ring.next() as Promise<bigint>).then((id) => [id]));
    const batch = noted('batch', ring.nextBatch(6));
    const last = noted('last', (ring.next() as Promise<bigint>).then((id) => [id]));
    // A synchronous caller does not overtake them, even once ids are at hand.
    await until(() => source.pending.length === 1);
    source.pending.shift()!.release();
    await until(() => source.pending.length === 1);
    const extra = ring.next();
    expect(extra).toBeInstanceOf(Promise);
    source.pending.shift()!.release();
    await until(() => source.pending.length === 1);
    source.pending.shift()!.release();
    const answers = await Promise.all([first, batch, last]);
    expect(order).toEqual(['first', 'batch', 'last']);
    expect(answers.flat()).toEqual([1n, 2n, 3n, 4n, 5n, 6n, 7n, 8n]);
    expect(await extra).toBe(9n);
    expect(ring.stats.waits).toBe(4);
    await ring.close();
  });

  it('refuses callers beyond waitersMax with SYNOD_ID_WAITERS_EXHAUSTED', async () => {
    const source = new TestSource();
    source.gated = true;
    const ring = ringOf(source, { waitersMax: 2 });
    const waiting = [ring.next(), ring.next()];
    const error = await rejectionOf(ring.next() as Promise<bigint>);
    expect(isSynodError(error, 'SYNOD_ID_WAITERS_EXHAUSTED')).toBe(true);
    await until(() => source.pending.length === 1);
    source.pending.shift()!.release();
    expect(await Promise.all(waiting)).toEqual([1n, 2n]);
    await ring.close();
  });

  it('rejects waiters with the source error, then recovers on the next fill', async () => {
    const source = new TestSource();
    source.gated = true;
    const ring = ringOf(source);
    const typed = new SynodError('SYNOD_ID_STORE_UNAVAILABLE', 'segment store down');
    const waiters = [ring.next(), ring.nextBatch(3)];
    await until(() => source.pending.length === 1);
    source.pending.shift()!.fail(typed);
    for (const waiter of waiters) expect(await rejectionOf(Promise.resolve(waiter))).toBe(typed);
    expect(ring.stats.fillFailures).toBe(1);
    // An untyped failure reaches callers as SYNOD_ID_STORE_UNAVAILABLE with it as the cause.
    const cause = new Error('socket hang up');
    const second = ring.next();
    await until(() => source.pending.length === 1);
    source.pending.shift()!.fail(cause);
    const error = await rejectionOf(Promise.resolve(second));
    expect(isSynodError(error, 'SYNOD_ID_STORE_UNAVAILABLE')).toBe(true);
    expect((error as Error).cause).toBe(cause);
    // The retry pause passes and the next pass serves the waiter that came meanwhile.
    const third = ring.next();
    await until(() => source.pending.length === 1);
    source.pending.shift()!.release();
    expect(await third).toBe(1n);
    await ring.close();
  });
});

describe('RingBufferGenerator lifecycle', () => {
  it('rejects waiters and refuses calls once closed, and closes the source', async () => {
    const source = new TestSource();
    source.gated = true;
    const ring = ringOf(source);
    const waiting = ring.nextBatch(2);
    const warming = ring.warm();
    await ring.close();
    expect(isSynodError(await rejectionOf(waiting), 'SYNOD_ID_GENERATOR_CLOSED')).toBe(true);
    expect(isSynodError(await rejectionOf(warming), 'SYNOD_ID_GENERATOR_CLOSED')).toBe(true);
    expect(() => ring.next()).toThrowError(expect.objectContaining({
      code: 'SYNOD_ID_GENERATOR_CLOSED',
    }));
    await expect(ring.nextBatch(1)).rejects.toMatchObject({ code: 'SYNOD_ID_GENERATOR_CLOSED' });
    expect(source.closed).toBe(true);
    // The batch in flight lands after close and is dropped.
    source.pending.shift()!.release();
    await ring.close();
  });

  it('validates its bounds once, at construction', () => {
    const source = new TestSource();
    const invalid: Partial<RingBufferGeneratorOptions>[] = [
      { size: 0 }, { size: 1 }, { size: 24 }, { size: 2 ** 23 }, { size: 16.5 },
      { paddingFactor: 0 }, { paddingFactor: 100 }, { paddingFactor: 12.5 },
      { fillBatchMax: 0 }, { fillBatchMax: 17 },
      { fillIntervalMs: 0 }, { fillIntervalMs: Infinity },
      { waitersMax: 0 }, { retryDelayMs: 10, retryDelayMsMax: 5 },
    ];
    for (const options of invalid) {
      let error: unknown;
      try {
        ringOf(source, options);
      } catch (caught) {
        error = caught;
      }
      expect(isSynodError(error, 'SYNOD_INVALID_ARGUMENT'), JSON.stringify(options)).toBe(true);
    }
    expect(ringOf(source, { size: 2, paddingFactor: 99 }).size).toBe(2);
  });

  it('refuses batches out of bounds', async () => {
    const ring = ringOf(new TestSource());
    for (const count of [-1, 1.5, 100_001]) {
      await expect(ring.nextBatch(count)).rejects.toMatchObject({ code: 'SYNOD_INVALID_ARGUMENT' });
    }
    await ring.close();
  });
});
