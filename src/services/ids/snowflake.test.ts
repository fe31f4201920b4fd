// SnowflakeGenerator against a clock, a grant and sleeps the test drives: ids strictly increase,
// overflows move to the next millisecond, a short backward step is waited out and a long one
// refused until the clock passes the last id, the grant's bounds hold, and stops reject waiters.
import { describe, expect, it } from 'vitest';
import { isSynodError, type ErrorCode } from '../../base/index.js';
import { idBatchMax } from './id-generator.js';
import { SnowflakeLayout, snowflakeLayoutDefault } from './snowflake-layout.js';
import {
  SnowflakeGenerator, staticWorkerGrant, type SnowflakeClock, type SnowflakeGeneratorOptions,
  type WorkerGrant,
} from './snowflake.js';
import { codeOf } from '../../../test/support/error-codes.js';

/** 2023-11-14T22:13:20Z, a whole millisecond. */
const startMs = 1_700_000_000_000;

/** A wall clock the test sets. With `readsPerMs` > 0 it also runs: 1 ms per that many reads. */
class FakeClock implements SnowflakeClock {
  ms: number;
  readsPerMs: number;
  #reads = 0;

  constructor(ms = startMs, readsPerMs = 0) {
    this.ms = ms;
    this.readsPerMs = readsPerMs;
  }

  nowMs(): number {
    this.#reads += 1;
    if (this.readsPerMs > 0 && this.#reads % this.readsPerMs === 0) this.ms += 1;
    return this.ms;
  }
}

/** Sleeps that end only when the test wakes them (or the generator stops). */
class ManualSleeps {
  readonly pending: { readonly ms: number; wake(): void }[] = [];
  readonly sleep = (ms: number, signal: AbortSignal): Promise<void> => new Promise((resolve) => {
    this.pending.push({ ms, wake: resolve });
    signal.addEventListener('abort', () => resolve());
  });

  /** Wakes the oldest sleep. */
  wakeFirst(): number {
    const sleep = this.pending.shift();
    expect(sleep, 'a sleep is pending').toBeDefined();
    sleep!.wake();
    return sleep!.ms;
  }
}

/** An extension the test has not answered yet. */
interface PendingExtension {
  readonly untilMs: number;
  resolve(boundMs: number): void;
  reject(error: unknown): void;
}

/** A grant whose extensions wait for the test and whose loss the test triggers. */
class TestGrant implements WorkerGrant {
  readonly datacenterId = 1;
  readonly workerId = 2;
  readonly lastUsedMs: number;
  readonly reservedUntilMs: number;
  readonly controller = new AbortController();
  readonly extensions: PendingExtension[] = [];
  released = 0;

  constructor(bounds: { lastUsedMs: number; reservedUntilMs: number }) {
    this.lastUsedMs = bounds.lastUsedMs;
    this.reservedUntilMs = bounds.reservedUntilMs;
  }

  get lost(): AbortSignal {
    return this.controller.signal;
  }

  extend(untilMs: number): Promise<number> {
    return new Promise((resolve, reject) => this.extensions.push({ untilMs, resolve, reject }));
  }

  async release(): Promise<void> {
    this.released += 1;
  }
}

interface Rig {
  readonly generator: SnowflakeGenerator;
  readonly clock: FakeClock;
  readonly sleeps: ManualSleeps;
}

function rig(options: Partial<SnowflakeGeneratorOptions> = {}, clock = new FakeClock()): Rig {
  const sleeps = new ManualSleeps();
  const generator = new SnowflakeGenerator({
    grant: staticWorkerGrant({ datacenterId: 3, workerId: 17 }), clock, sleep: sleeps.sleep,
    ...options,
  });
  return { generator, clock, sleeps };
}

/** The id if next() answered synchronously; fails the test if it returned a promise. */
function nextNow(generator: SnowflakeGenerator): bigint {
  const id = generator.next();
  expect(typeof id, 'next() answers synchronously').toBe('bigint');
  return id as bigint;
}


async function rejectionCodeOf(promise: Promise<unknown>): Promise<ErrorCode | 'none'> {
  try {
    await promise;
  } catch (error) {
    if (isSynodError(error)) return error.code;
    throw error;
  }
  return 'none';
}

/** Lets promise callbacks and immediates run. */
async function settle(): Promise<void> {
  for (let turn = 0; turn < 3; turn += 1) await new Promise((resolve) => setImmediate(resolve));
}

const layout = snowflakeLayoutDefault;

describe('SnowflakeGenerator: ids', () => {
  it('issues a million strictly increasing ids, each at its clock reading and sequence', () => {
    const { generator, clock } = rig({}, new FakeClock(startMs, 300));
    let previous = -1n;
    let previousMs = -1;
    let sequence = 0;
    for (let count = 0; count < 1_000_000; count += 1) {
      const id = generator.next();
      // Invariant of the stream: synchronous, strictly increasing, hence never repeated. (Plain
      // comparisons: an expect() per id would take most of the test's time.)
      if (typeof id !== 'bigint') expect.fail(`id ${count} came as a promise`);
      if (id <= previous) expect.fail(`id ${id} after ${previous}`);
      previous = id;
      // The naive model: the timestamp is the reading this call made; the sequence counts up
      // within a millisecond from 0. Decoding every id is slow, so every 97th is checked.
      sequence = clock.ms === previousMs ? sequence + 1 : 0;
      previousMs = clock.ms;
      if (count % 97 === 0) {
        expect(layout.decode(id)).toEqual({
          timestampMs: clock.ms, datacenterId: 3, workerId: 17, sequence,
        });
      }
    }
    expect(generator.stats.idsIssued).toBe(1_000_000);
    expect(generator.stats.sequenceOverflows).toBe(0);
  });

  it('moves to the next millisecond when a sequence runs out, by spinning, never backward', () => {
    // 10 000 reads per ms: more ids are asked for than a millisecond holds.
    const { generator } = rig({}, new FakeClock(startMs, 10_000));
    const perMs = new Map<number, number>();
    let previous = -1n;
    let previousMs = -1;
    for (let count = 0; count < 5 * 4096 + 7; count += 1) {
      const id = nextNow(generator);
      expect(id > previous).toBe(true);
      previous = id;
      const parts = layout.decode(id);
      expect(parts.timestampMs).toBeGreaterThanOrEqual(previousMs);
      previousMs = parts.timestampMs;
      perMs.set(parts.timestampMs, (perMs.get(parts.timestampMs) ?? 0) + 1);
    }
    expect([...perMs.values()]).toEqual([4096, 4096, 4096, 4096, 4096, 7]);
    expect([...perMs.keys()]).toEqual([0, 1, 2, 3, 4, 5].map((offset) => startMs + offset));
    expect(generator.stats.sequenceOverflows).toBe(5);
  });

  it('waits for the next unit with a timer when longer than a spin (10 ms units)', async () => {
    const coarse = new SnowflakeLayout({
      timestampBits: 40, sequenceBits: 2, timestampUnitMs: 10, epochMs: startMs - 1_000,
    });
    const { generator, clock, sleeps } = rig({ layout: coarse }, new FakeClock(startMs + 3));
    const ids = [0, 1, 2, 3].map(() => nextNow(generator));
    const waiting = generator.next();
    expect(waiting).toBeInstanceOf(Promise);
    expect(sleeps.pending.map((sleep) => sleep.ms)).toEqual([7]);
    clock.ms = startMs + 10;
    sleeps.wakeFirst();
    const id = await waiting;
    expect(id > ids[3]!).toBe(true);
    expect(coarse.decode(id)).toMatchObject({ timestampMs: startMs + 10, sequence: 0 });
  });

  it('gives nextString() the decimal form next() would have given, across units', async () => {
    // From its epoch on, worker 0/0 of this layout issues ids below 1 000 first.
    const small = {
      layout: new SnowflakeLayout({ epochMs: startMs }),
      grant: staticWorkerGrant({ datacenterId: 0, workerId: 0 }),
    };
    for (const options of [{}, small]) {
      const a = rig(options, new FakeClock(startMs, 700));
      const b = rig(options, new FakeClock(startMs, 700));
      for (let count = 0; count < 20_000; count += 1) {
        expect(b.generator.nextString()).toBe(nextNow(a.generator).toString());
      }
      // Through a wait too.
      a.clock.ms -= 5;
      b.clock.ms -= 5;
      const waitingId = a.generator.next();
      const waitingText = b.generator.nextString();
      expect(waitingText).toBeInstanceOf(Promise);
      a.clock.ms += 5;
      b.clock.ms += 5;
      a.sleeps.wakeFirst();
      b.sleeps.wakeFirst();
      expect(await waitingText).toBe((await waitingId).toString());
    }
    const first = rig(small).generator;
    expect([first.nextString(), first.nextString()]).toEqual(['0', '1']);
  });

  it('returns batches in order, within the bounds of a batch', async () => {
    const { generator } = rig({}, new FakeClock(startMs, 1_000));
    for (const count of [0, -1, 1.5, Number.NaN, idBatchMax + 1]) {
      expect(await rejectionCodeOf(generator.nextBatch(count)), String(count))
        .toBe('SYNOD_INVALID_ARGUMENT');
    }
    const before = nextNow(generator);
    const batch = await generator.nextBatch(idBatchMax);
    const after = await generator.next();
    expect(batch).toHaveLength(idBatchMax);
    const stream = [before, ...batch, after];
    for (let index = 1; index < stream.length; index += 1) {
      if (stream[index]! <= stream[index - 1]!) expect.fail(`batch out of order at ${index}`);
    }
    // 100 000 ids at 4 096 per ms span at least 25 ms.
    const spanMs = layout.decode(batch.at(-1)!).timestampMs - layout.decode(batch[0]!).timestampMs;
    expect(spanMs).toBeGreaterThanOrEqual(24);
    expect(await generator.nextBatch(1)).toHaveLength(1);
  });

  it('refuses ids past the layout’s last timestamp', () => {
    const short = new SnowflakeLayout({ timestampBits: 4, epochMs: startMs });
    const { generator, clock } = rig({ layout: short });
    clock.ms = startMs + 15;
    expect(short.decode(nextNow(generator)).timestampMs).toBe(startMs + 15);
    clock.ms = startMs + 16;
    expect(codeOf(() => generator.next())).toBe('SYNOD_ID_SPACE_EXHAUSTED');
  });

  it('refuses malformed options', () => {
    const grant = staticWorkerGrant({ datacenterId: 0, workerId: 0 });
    const cases: Partial<SnowflakeGeneratorOptions>[] = [
      { rollbackWaitMsMax: -1 }, { rollbackWaitMsMax: Number.POSITIVE_INFINITY },
      { reservationAheadMs: 0 }, { waitersMax: 0 }, { waitersMax: 1.5 },
      { extendRetryDelayMs: 10, extendRetryDelayMsMax: 5 },
      { grant: staticWorkerGrant({ datacenterId: 32, workerId: 0 }) },
      { grant: staticWorkerGrant({ datacenterId: 0, workerId: 32 }) },
      { grant: { ...grant, lastUsedMs: Number.NaN } },
      { grant: { ...grant, lastUsedMs: Number.POSITIVE_INFINITY } },
    ];
    for (const options of cases) {
      expect(codeOf(() => new SnowflakeGenerator({ grant, ...options })), JSON.stringify(options))
        .toBe('SYNOD_INVALID_ARGUMENT');
    }
    for (const pair of [{ datacenterId: -1, workerId: 0 }, { datacenterId: 0, workerId: 0.5 }]) {
      expect(codeOf(() => staticWorkerGrant(pair))).toBe('SYNOD_INVALID_ARGUMENT');
    }
    // The old positional call, from JavaScript: refused rather than a TypeError.
    expect(codeOf(() => staticWorkerGrant(0 as never))).toBe('SYNOD_INVALID_ARGUMENT');
  });
});

describe('SnowflakeGenerator: a clock that steps back', () => {
  it('waits out a 5 ms step back: ids continue, increasing, none repeated', async () => {
    const { generator, clock, sleeps } = rig();
    const ids = [nextNow(generator), nextNow(generator), nextNow(generator)];
    clock.ms = startMs - 5;
    const first = generator.next();
    const second = generator.next(); // queues behind the first
    expect(first).toBeInstanceOf(Promise);
    expect(second).toBeInstanceOf(Promise);
    expect(sleeps.pending.map((sleep) => sleep.ms)).toEqual([5]);
    // The clock has come back only part of the way when the timer fires: another wait.
    clock.ms = startMs - 2;
    sleeps.wakeFirst();
    await settle();
    expect(sleeps.pending.map((sleep) => sleep.ms)).toEqual([2]);
    clock.ms = startMs;
    sleeps.wakeFirst();
    ids.push(await first, await second);
    // The sequence of the last millisecond continues; nothing below it is issued.
    expect(ids.map((id) => layout.decode(id).sequence)).toEqual([0, 1, 2, 3, 4]);
    clock.ms = startMs + 1;
    ids.push(nextNow(generator), nextNow(generator));
    for (let index = 1; index < ids.length; index += 1) {
      expect(ids[index]! > ids[index - 1]!).toBe(true);
    }
    expect(new Set(ids).size).toBe(ids.length);
    expect(generator.stats).toMatchObject({ rollbackWaits: 2, rollbackRefusals: 0, idsIssued: 7 });
  });

  it('refuses a 10 s step back, then resumes once the clock passes the last id', async () => {
    const { generator, clock, sleeps } = rig();
    const last = nextNow(generator);
    clock.ms = startMs - 10_000;
    expect(codeOf(() => generator.next())).toBe('SYNOD_ID_CLOCK_BACKWARDS');
    expect(codeOf(() => generator.nextString())).toBe('SYNOD_ID_CLOCK_BACKWARDS');
    expect(await rejectionCodeOf(generator.nextBatch(3))).toBe('SYNOD_ID_CLOCK_BACKWARDS');
    expect(generator.stats).toMatchObject({ rollbackRefusals: 3, idsIssued: 1 });
    // Closer, but still more than rollbackWaitMsMax back: still refused.
    clock.ms = startMs - 11;
    expect(codeOf(() => generator.next())).toBe('SYNOD_ID_CLOCK_BACKWARDS');
    expect(sleeps.pending).toHaveLength(0);
    clock.ms = startMs + 1;
    const resumed = nextNow(generator);
    expect(resumed > last).toBe(true);
    expect(layout.decode(resumed).timestampMs).toBe(startMs + 1);
  });

  it('refuses a clock that stalls while a step back is waited out', async () => {
    const { generator, clock, sleeps } = rig();
    nextNow(generator);
    clock.ms = startMs - 8;
    const outcome = rejectionCodeOf(generator.next() as Promise<bigint>);
    // Each wake finds the clock where it was; past twice rollbackWaitMsMax waited, it is refused.
    for (let wakes = 0; wakes < 3; wakes += 1) {
      expect(sleeps.wakeFirst()).toBe(8);
      await settle();
    }
    expect(sleeps.pending, 'no further wait').toHaveLength(0);
    expect(await outcome).toBe('SYNOD_ID_CLOCK_BACKWARDS');
  });

  it('refuses a first id far below the grant’s lastUsedMs, and starts above it', async () => {
    const grant = new TestGrant({ lastUsedMs: startMs + 60_000, reservedUntilMs: Infinity });
    const { generator, clock } = rig({ grant });
    expect(codeOf(() => generator.next())).toBe('SYNOD_ID_CLOCK_BEHIND');
    expect(generator.stats.startRefusals).toBe(1);
    clock.ms = startMs + 60_000; // its own millisecond may have been used: a sub-ms wait, spun
    clock.readsPerMs = 50;
    const id = nextNow(generator);
    expect(layout.decode(id).timestampMs).toBe(startMs + 60_001);
  });

  it('waits a little for a first id just below the grant’s lastUsedMs', async () => {
    const grant = new TestGrant({ lastUsedMs: startMs + 3, reservedUntilMs: Infinity });
    const { generator, clock, sleeps } = rig({ grant });
    const waiting = generator.next();
    expect(sleeps.pending.map((sleep) => sleep.ms)).toEqual([4]);
    clock.ms = startMs + 4;
    sleeps.wakeFirst();
    expect(layout.decode(await waiting).timestampMs).toBe(startMs + 4);
  });

  it('waits out a predecessor’s reservation up to the grant’s startWaitMsMax, not beyond', async () => {
    // A leased successor starts above the previous holder's reservation, seconds ahead.
    const ahead = Object.assign(
      new TestGrant({ lastUsedMs: startMs + 3_000, reservedUntilMs: Infinity }),
      { startWaitMsMax: 9_000 },
    );
    const { generator, clock, sleeps } = rig({ grant: ahead });
    const waiting = generator.next();
    expect(sleeps.pending.map((sleep) => sleep.ms)).toEqual([3_001]);
    clock.ms = startMs + 3_001;
    sleeps.wakeFirst();
    expect(layout.decode(await waiting).timestampMs).toBe(startMs + 3_001);

    const tooFar = Object.assign(
      new TestGrant({ lastUsedMs: startMs + 10_000, reservedUntilMs: Infinity }),
      { startWaitMsMax: 9_000 },
    );
    expect(codeOf(() => rig({ grant: tooFar }).generator.next())).toBe('SYNOD_ID_CLOCK_BEHIND');
  });

  it('refuses a clock before the epoch', () => {
    const { generator } = rig({}, new FakeClock(layout.epochMs - 60_000));
    expect(codeOf(() => generator.next())).toBe('SYNOD_ID_CLOCK_BEHIND');
  });

  it('bounds the callers that may wait', async () => {
    const { generator, clock } = rig({ waitersMax: 2 });
    nextNow(generator);
    clock.ms = startMs - 5;
    const waiting = [generator.next(), generator.next()];
    expect(await rejectionCodeOf(generator.next() as Promise<bigint>))
      .toBe('SYNOD_ID_WAITERS_EXHAUSTED');
    await generator.close();
    for (const promise of waiting) {
      expect(await rejectionCodeOf(promise as Promise<bigint>)).toBe('SYNOD_ID_GENERATOR_CLOSED');
    }
  });
});

describe('SnowflakeGenerator: the grant', () => {
  function leased(bounds: { lastUsedMs: number; reservedUntilMs: number }) {
    const grant = new TestGrant(bounds);
    return { grant, ...rig({ grant }) };
  }

  it('extends the reservation ahead of the clock, so callers do not wait', async () => {
    const { grant, generator, clock } = leased({
      lastUsedMs: startMs - 100, reservedUntilMs: startMs + 1_000,
    });
    nextNow(generator);
    // Within half of reservationAheadMs (3 s) of the bound: extended in the background.
    expect(grant.extensions.map((extension) => extension.untilMs)).toEqual([startMs + 3_000]);
    grant.extensions.shift()!.resolve(startMs + 3_000);
    await settle();
    clock.ms = startMs + 2_000;
    nextNow(generator);
    expect(grant.extensions.map((extension) => extension.untilMs)).toEqual([startMs + 5_000]);
    expect(generator.stats.reservationWaits).toBe(0);
  });

  it('waits for the extension when the clock reaches the reservation', async () => {
    const { grant, generator, clock } = leased({
      lastUsedMs: startMs - 100, reservedUntilMs: startMs + 10,
    });
    const before = nextNow(generator);
    clock.ms = startMs + 10; // the bound itself may be used
    nextNow(generator);
    clock.ms = startMs + 11;
    const waiting = generator.next();
    expect(waiting).toBeInstanceOf(Promise);
    expect(grant.extensions).toHaveLength(1); // the one in the background, still pending
    grant.extensions.shift()!.resolve(startMs + 3_000);
    const id = await waiting;
    expect(id > before).toBe(true);
    expect(layout.decode(id).timestampMs).toBe(startMs + 11);
    expect(generator.stats.reservationWaits).toBe(1);
    expect(typeof generator.next()).toBe('bigint');
  });

  it('retries a failed extension after a backoff, the caller waiting throughout', async () => {
    const { grant, generator, clock, sleeps } = leased({
      lastUsedMs: startMs - 100, reservedUntilMs: startMs,
    });
    nextNow(generator);
    clock.ms = startMs + 1;
    const waiting = generator.next();
    grant.extensions.shift()!.reject(new Error('coordinator down'));
    await settle();
    expect(grant.extensions).toHaveLength(0);
    expect(sleeps.pending).toHaveLength(1);
    expect(sleeps.pending[0]!.ms).toBeGreaterThanOrEqual(5); // [half, all] of the first 10 ms
    expect(sleeps.pending[0]!.ms).toBeLessThanOrEqual(10);
    sleeps.wakeFirst();
    await settle();
    // A bound short of the request counts as a failure too.
    grant.extensions.shift()!.resolve(startMs);
    await settle();
    expect(generator.stats.extensionFailures).toBe(2);
    sleeps.wakeFirst();
    await settle();
    grant.extensions.shift()!.resolve(startMs + 3_001);
    expect(layout.decode(await waiting).timestampMs).toBe(startMs + 1);
  });

  it('stops on a lost grant: waiters reject, calls throw SYNOD_ID_WORKER_LEASE_LOST', async () => {
    const { grant, generator, clock } = leased({
      lastUsedMs: startMs - 100, reservedUntilMs: startMs,
    });
    nextNow(generator);
    clock.ms = startMs + 1;
    const waiting = generator.next() as Promise<bigint>;
    grant.controller.abort();
    expect(await rejectionCodeOf(waiting)).toBe('SYNOD_ID_WORKER_LEASE_LOST');
    clock.ms = startMs;
    expect(codeOf(() => generator.next())).toBe('SYNOD_ID_WORKER_LEASE_LOST');
    expect(await rejectionCodeOf(generator.nextBatch(2))).toBe('SYNOD_ID_WORKER_LEASE_LOST');
    // A grant lost before the generator starts issues nothing.
    const early = leased({ lastUsedMs: 0, reservedUntilMs: Infinity });
    early.grant.controller.abort();
    const late = new SnowflakeGenerator({ grant: early.grant, clock: early.clock });
    expect(codeOf(() => late.next())).toBe('SYNOD_ID_WORKER_LEASE_LOST');
  });

  it('close rejects waiters, releases the grant once, and refuses later calls', async () => {
    const { grant, generator, clock } = leased({
      lastUsedMs: startMs - 100, reservedUntilMs: startMs,
    });
    nextNow(generator);
    clock.ms = startMs + 1;
    const waiting = generator.nextBatch(5);
    const closing = generator.close();
    expect(await rejectionCodeOf(waiting)).toBe('SYNOD_ID_GENERATOR_CLOSED');
    await closing;
    await generator[Symbol.asyncDispose]();
    expect(grant.released).toBe(1);
    clock.ms = startMs;
    expect(codeOf(() => generator.next())).toBe('SYNOD_ID_GENERATOR_CLOSED');
    expect(await rejectionCodeOf(generator.nextBatch(1))).toBe('SYNOD_ID_GENERATOR_CLOSED');
    // A loss after close changes nothing: the generator reports it is closed.
    grant.controller.abort();
    expect(codeOf(() => generator.next())).toBe('SYNOD_ID_GENERATOR_CLOSED');
  });

  it('keeps the real timers working: a 3 ms step back waited out with setTimeout', async () => {
    // The default sleep, on a clock that follows real time from 2 ms behind the last id.
    const base = performance.now();
    let offsetMs = 0;
    const clock = { nowMs: () => startMs + offsetMs + Math.floor(performance.now() - base) };
    const grant = staticWorkerGrant({ datacenterId: 0, workerId: 0 });
    const generator = new SnowflakeGenerator({ grant, clock });
    const last = nextNow(generator);
    offsetMs = -3;
    const id = await generator.next();
    expect(id > last).toBe(true);
    expect(generator.stats.rollbackWaits).toBeGreaterThanOrEqual(1);
    await generator.close();
  });
});
