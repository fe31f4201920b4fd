// RedisIncrGenerator against an in-memory stand-in for ioredis's INCR and INCRBY (the real server
// runs in test/interop/ids-backends.interop.test.ts): one id per INCR, batch ranges, blocks of
// `step` handed out locally, the tripwire for a counter that went back, errors, bounds.
import type { Redis } from 'ioredis';
import { afterEach, describe, expect, it } from 'vitest';
import { isSynodError } from '../../base/index.js';
import { RedisIncrGenerator, type RedisIncrGeneratorOptions } from './redis-incr.js';

/** The commands the generator uses, over a map; `failWith` makes the next command fail. */
class FakeRedis {
  readonly counters = new Map<string, bigint>();
  readonly commands: string[] = [];
  failWith: Error | null = null;
  /** Answer integers as numbers, like ioredis without `stringNumbers`. */
  numbers = false;

  async incr(key: string): Promise<string | number> {
    return this.incrby(key, 1, 'INCR');
  }

  async incrby(key: string, count: number, name = 'INCRBY'): Promise<string | number> {
    this.commands.push(`${name} ${key}${name === 'INCR' ? '' : ` ${count}`}`);
    const failure = this.failWith;
    if (failure !== null) {
      this.failWith = null;
      throw failure;
    }
    const value = (this.counters.get(key) ?? 0n) + BigInt(count);
    if (value > 2n ** 63n - 1n) throw new Error('ERR increment or decrement would overflow');
    this.counters.set(key, value);
    return this.numbers ? Number(value) : value.toString();
  }
}

const opened: RedisIncrGenerator[] = [];
afterEach(async () => {
  await Promise.allSettled(opened.splice(0).map((generator) => generator.close()));
});

async function generatorOf(
  fake: FakeRedis, options: Partial<RedisIncrGeneratorOptions> = {},
): Promise<RedisIncrGenerator> {
  const generator = await RedisIncrGenerator.connect({
    target: { redis: fake as unknown as Redis }, tag: 'orders', ...options,
  });
  opened.push(generator);
  return generator;
}

/** The error `promise` rejects with; throws if it resolves. */
async function rejectionOf(promise: unknown): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error('expected a rejection');
}

describe('RedisIncrGenerator, one INCR per id', () => {
  it('takes one id per INCR and a batch per INCRBY, from 1 under synod:ids:<tag>', async () => {
    const fake = new FakeRedis();
    const generator = await generatorOf(fake);
    expect(generator.next()).toBeInstanceOf(Promise);
    expect(await generator.next()).toBe(2n);
    expect(await generator.nextBatch(3)).toEqual([3n, 4n, 5n]);
    expect(await generator.nextBatch(0)).toEqual([]);
    expect(fake.commands).toEqual([
      'INCR synod:ids:orders', 'INCR synod:ids:orders', 'INCRBY synod:ids:orders 3',
    ]);
  });

  it('never shares an id between generators on one key', async () => {
    const fake = new FakeRedis();
    const generators = await Promise.all([1, 2, 3].map(() => generatorOf(fake)));
    const ids = (await Promise.all(generators.flatMap((generator) => [
      generator.next(), generator.nextBatch(4), generator.next(),
    ]))).flat();
    expect(new Set(ids).size).toBe(18);
    expect(fake.counters.get('synod:ids:orders')).toBe(18n);
  });

  it('refuses an answer at or below an id it handed out: the counter went back', async () => {
    const fake = new FakeRedis();
    const generator = await generatorOf(fake, { keyPrefix: 'app:' });
    await generator.nextBatch(10);
    // A restart without persistence: the counter is gone and INCR starts over.
    fake.counters.delete('app:orders');
    const error = await rejectionOf(generator.next());
    expect(isSynodError(error, 'SYNOD_STORAGE_CORRUPT')).toBe(true);
    expect((error as Error).message).toMatch(/went back to 1 after 10/);
    // Once past the highest id it handed out, the counter is trusted again.
    fake.counters.set('app:orders', 10n);
    expect(await generator.next()).toBe(11n);
  });

  it('maps failures to typed errors with the driver error as cause', async () => {
    const fake = new FakeRedis();
    const generator = await generatorOf(fake);
    const cause = new Error('Connection is closed.');
    fake.failWith = cause;
    const error = await rejectionOf(generator.next());
    expect(isSynodError(error, 'SYNOD_ID_STORE_UNAVAILABLE')).toBe(true);
    expect((error as Error).cause).toBe(cause);
    fake.counters.set('synod:ids:orders', 2n ** 63n - 2n);
    expect(await generator.next()).toBe(2n ** 63n - 1n);
    const full = await rejectionOf(generator.next());
    expect(isSynodError(full, 'SYNOD_ID_SPACE_EXHAUSTED')).toBe(true);
  });

  it('refuses inexact numbers from a client without stringNumbers', async () => {
    const fake = new FakeRedis();
    fake.numbers = true;
    const generator = await generatorOf(fake);
    expect(await generator.next()).toBe(1n);
    fake.counters.set('synod:ids:orders', 2n ** 53n);
    const inexact = await rejectionOf(generator.next());
    expect(isSynodError(inexact, 'SYNOD_ID_SPACE_EXHAUSTED')).toBe(true);
  });

  it('bounds the calls waiting for Redis, and refuses calls once closed', async () => {
    const fake = new FakeRedis();
    const generator = await generatorOf(fake, { waitersMax: 2 });
    const waiting = [generator.next(), generator.next()];
    const refused = await rejectionOf(generator.next());
    expect(isSynodError(refused, 'SYNOD_ID_WAITERS_EXHAUSTED')).toBe(true);
    expect(await Promise.all(waiting)).toEqual([1n, 2n]);
    await generator.close();
    const closed = await rejectionOf(generator.next());
    expect(isSynodError(closed, 'SYNOD_ID_GENERATOR_CLOSED')).toBe(true);
  });
});

describe('RedisIncrGenerator with step > 1', () => {
  it('takes blocks of step ids with INCRBY and answers synchronously within one', async () => {
    const fake = new FakeRedis();
    const generator = await generatorOf(fake, { step: 100 });
    expect(await generator.next()).toBe(1n);
    // The first id fetched one block; the preload fetches the next in the background.
    const ids = [];
    for (let index = 0; index < 99; index++) ids.push(generator.next());
    expect(ids.every((id) => typeof id === 'bigint')).toBe(true);
    expect(ids.at(-1)).toBe(100n);
    expect(await generator.next()).toBe(101n);
    expect(fake.commands.every((command) => command === 'INCRBY synod:ids:orders 100')).toBe(true);
    expect(await generator.nextBatch(150)).toHaveLength(150);
  });

  it('shares the key with one-id generators without overlap', async () => {
    const fake = new FakeRedis();
    const blocks = await generatorOf(fake, { step: 10 });
    const single = await generatorOf(fake);
    const ids: bigint[] = [];
    for (let round = 0; round < 30; round++) {
      ids.push(await blocks.next(), await single.next());
    }
    expect(new Set(ids).size).toBe(ids.length);
  });
});

describe('RedisIncrGenerator options', () => {
  it('validates tag, step and waitersMax', async () => {
    const fake = new FakeRedis();
    const invalid: Partial<RedisIncrGeneratorOptions>[] = [
      { tag: '' }, { tag: 'a/b' }, { step: 0 }, { step: 1.5 }, { step: 2 ** 31 }, { waitersMax: 0 },
    ];
    for (const options of invalid) {
      const error = await rejectionOf(generatorOf(fake, options));
      expect(isSynodError(error, 'SYNOD_INVALID_ARGUMENT'), JSON.stringify(options)).toBe(true);
    }
  });

  it('fails to connect with SYNOD_ID_STORE_UNAVAILABLE when nothing listens', async () => {
    const error = await rejectionOf(RedisIncrGenerator.connect({
      target: { url: 'redis://127.0.0.1:1' }, tag: 'orders',
    }));
    expect(isSynodError(error, 'SYNOD_ID_STORE_UNAVAILABLE')).toBe(true);
    expect((error as Error).cause).toBeInstanceOf(Error);
  });
});
