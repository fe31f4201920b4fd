/**
 * Ids from a Redis counter: one key per tag (`synod:ids:<tag>` by default), `INCR` for one id,
 * `INCRBY n` for a batch of `n` (the `n` ids up to the answer). INCR is atomic on the server, so
 * any number of generators on one key never share an id — while the counter survives.
 *
 * `next()` is one round trip per id (always a promise). With `step` > 1 the generator takes
 * blocks of `step` ids with INCRBY and hands them out locally, segment-style: it runs the
 * SegmentGenerator (segment.ts) over a Redis SegmentStore, so next() answers synchronously
 * within a block and the next block is fetched in the background. A crash then wastes the unused
 * rest of the current block and of the preloaded one, together fewer than 2 × step ids.
 *
 * The durability caveat, which decides whether this generator is safe: the counter is only as
 * durable as Redis keeps its writes, and by default Redis acknowledges before it persists.
 * - Snapshots (RDB, the default `save` points): a restart comes back with the counter of the
 *   last snapshot, and every id counted since is handed out again.
 * - AOF with `appendfsync everysec` (the default once `appendonly yes`): a Redis crash with the
 *   OS alive keeps the writes, but a power loss or kernel crash loses about the last second.
 * - Replication is asynchronous: a replica promoted by Sentinel or Cluster failover may lack the
 *   last acknowledged INCRs, and `WAIT` narrows that window without closing it.
 * - Eviction: under an `allkeys-*` `maxmemory-policy` the key can be evicted and start at 1.
 * Ids never repeat only with: one primary, `appendonly yes` with `appendfsync always` (the AOF is
 * fsynced before the reply is sent), `maxmemory-policy noeviction`, no automatic failover, and,
 * after any manual failover or restore, the counter raised past every id handed out (INCRBY a
 * margin) before clients resume. test/interop/ids-backends.interop.test.ts shows the repeat after
 * a restart without persistence.
 *
 * One generator notices a counter that moved back below an id it had handed out before it sent
 * the command, and refuses the answer with SYNOD_STORAGE_CORRUPT. It cannot see the ids other
 * processes handed out, so this is a tripwire, not a guarantee.
 *
 * ioredis is loaded on `connect` when the generator makes its own connection, so it stays an
 * optional peer dependency.
 */

import type { Redis } from 'ioredis';
import { AssertionFailure, SynodError, assert, isSynodError } from '../../base/index.js';
import { closeRedis } from '../../client/locks/redis-common.js';
import { idBatchMax, type IdGenerator } from './id-generator.js';
import { SegmentGenerator } from './segment.js';
import {
  segmentStepMax, validateAllocation, type Segment, type SegmentStore,
} from './segment-store.js';

/** Where the counter lives: a URL (the generator owns its connection) or a caller's client. */
export type RedisIncrTarget = { readonly url: string } | { readonly redis: Redis };

/** Options of `RedisIncrGenerator.connect`. */
export interface RedisIncrGeneratorOptions {
  readonly target: RedisIncrTarget;
  /** The counter's name; generators on the same key never share an id. */
  readonly tag: string;
  /** Keys are `<keyPrefix><tag>`; default `synod:ids:`. */
  readonly keyPrefix?: string;
  /** Ids taken per INCRBY and handed out locally; default 1 (one INCR per id). */
  readonly step?: number;
  /** Calls that may wait for Redis at once; more are refused. Default 10 000. */
  readonly waitersMax?: number;
}

/** The default key prefix. */
export const redisIdKeyPrefixDefault = 'synod:ids:';
export const redisIdWaitersMaxDefault = 10_000;

/** The ioredis options of a connection the generator opens. */
const ownedConnectionOptions = {
  lazyConnect: true,
  // A dead server fails a call after one reconnect, rather than ioredis's twenty.
  maxRetriesPerRequest: 1,
  retryStrategy: (times: number): number => Math.min(times * 20, 500),
  // Integer replies as decimal text: exact past 2^53.
  stringNumbers: true,
} as const;

function invalid(message: string): SynodError {
  return new SynodError('SYNOD_INVALID_ARGUMENT', message);
}

function storeError(message: string, cause?: unknown): SynodError {
  const error = new SynodError('SYNOD_ID_STORE_UNAVAILABLE', message);
  if (cause !== undefined) error.cause = cause;
  return error;
}

/** The typed error for a failed command; bugs and typed errors pass unchanged. */
function commandError(key: string, error: unknown): Error {
  if (isSynodError(error) || error instanceof AssertionFailure) return error;
  const message = error instanceof Error ? error.message : String(error);
  if (message.includes('would overflow')) {
    return new SynodError('SYNOD_ID_SPACE_EXHAUSTED', `redis ${key}: the counter is at 2^63 - 1`);
  }
  return storeError(`redis ${key}: ${message}`, error);
}

/** An integer reply: decimal text (stringNumbers) or a number, which must be exact. */
function counterOf(key: string, reply: unknown): bigint {
  if (typeof reply === 'string' && /^-?\d+$/.test(reply)) return BigInt(reply);
  if (typeof reply === 'number' && Number.isSafeInteger(reply)) return BigInt(reply);
  if (typeof reply === 'number') {
    // A caller's client without `stringNumbers` rounds past 2^53: its id space ends there.
    const message = `redis ${key}: the counter passed 2^53; use a client with stringNumbers: true`;
    throw new SynodError('SYNOD_ID_SPACE_EXHAUSTED', message);
  }
  throw storeError(`redis ${key}: INCRBY answered ${String(reply)}, not an integer`);
}

/** The host and port of a Redis URL, never its password; errors and logs carry this. */
function hostOf(url: string): string {
  try {
    return new URL(url).host;
  } catch {
    return 'the configured URL';
  }
}

/** The client of `target`: a new connection (connected, or a typed error) or the caller's. */
async function clientOf(target: RedisIncrTarget): Promise<{ redis: Redis; owned: boolean }> {
  if ('redis' in target) return { redis: target.redis, owned: false };
  let RedisClient: typeof import('ioredis').Redis;
  try {
    ({ Redis: RedisClient } = await import('ioredis'));
  } catch (cause) {
    throw storeError('the Redis id generator needs the peer dependency ioredis', cause);
  }
  const redis = new RedisClient(target.url, ownedConnectionOptions);
  // Failures reach callers through the commands that fail; without a listener ioredis would
  // print every failed reconnect.
  redis.on('error', () => undefined);
  try {
    await redis.connect();
  } catch (cause) {
    redis.disconnect();
    throw storeError(`cannot connect to redis at ${hostOf(target.url)}`, cause);
  }
  return { redis, owned: true };
}

/**
 * Segments from Redis counters: `allocate(tag, step)` is one INCRBY, the `step` ids up to its
 * answer. Ids start at 1, like INCR's, so it shares keys with one-id-per-INCR generators.
 * The durability of the ranges is the caveat in the file comment.
 */
export class RedisSegmentStore implements SegmentStore {
  readonly keyPrefix: string;
  readonly #redis: Redis;
  readonly #owned: boolean;

  constructor(options: {
    readonly redis: Redis; readonly owned: boolean; readonly keyPrefix: string;
  }) {
    this.#redis = options.redis;
    this.#owned = options.owned;
    this.keyPrefix = options.keyPrefix;
  }

  async allocate(tag: string, step: number): Promise<Segment> {
    validateAllocation(tag, step);
    const key = this.keyPrefix + tag;
    let reply: unknown;
    try {
      reply = await this.#redis.incrby(key, step);
    } catch (error) {
      throw commandError(key, error);
    }
    const end = counterOf(key, reply) + 1n;
    const start = end - BigInt(step);
    // A key set by hand to zero or below would hand out ids below 1.
    if (start < 1n) throw new SynodError('SYNOD_STORAGE_CORRUPT', `redis ${key}: counter below 1`);
    return { start, end };
  }

  /** Closes the connection if this store opened it. */
  async close(): Promise<void> {
    if (this.#owned) await closeRedis(this.#redis);
  }
}

/** Ids from a Redis counter; see the file comment for the durability caveat. */
export class RedisIncrGenerator implements IdGenerator<bigint> {
  readonly kind = 'redis' as const;
  readonly tag: string;
  /** The counter key. */
  readonly key: string;
  readonly step: number;
  readonly #redis: Redis;
  readonly #store: RedisSegmentStore;
  /** Set when `step` > 1: blocks handed out locally. */
  readonly #segments: SegmentGenerator | null;
  readonly #waitersMax: number;
  #inFlight = 0;
  /** The largest id handed out by INCR so far; see `#increment` for how it is checked. */
  #highest = 0n;
  #closed = false;

  private constructor(redis: Redis, owned: boolean, options: RedisIncrGeneratorOptions) {
    this.tag = options.tag;
    this.step = options.step ?? 1;
    this.#waitersMax = options.waitersMax ?? redisIdWaitersMaxDefault;
    const keyPrefix = options.keyPrefix ?? redisIdKeyPrefixDefault;
    this.key = keyPrefix + options.tag;
    this.#redis = redis;
    this.#store = new RedisSegmentStore({ redis, owned, keyPrefix });
    // stepMax = step: Leaf's adaptive step would change the crash waste the caller chose.
    this.#segments = this.step === 1 ? null : new SegmentGenerator({
      store: this.#store, tag: options.tag, step: this.step, stepMax: this.step,
      waitersMax: this.#waitersMax,
    });
  }

  /** Validates the options, connects (or adopts the caller's client) and returns the generator. */
  static async connect(options: RedisIncrGeneratorOptions): Promise<RedisIncrGenerator> {
    validateAllocation(options.tag, 1);
    const step = options.step ?? 1;
    if (!Number.isSafeInteger(step) || step < 1 || step > segmentStepMax) {
      throw invalid(`step must be a whole number in [1, ${segmentStepMax}]`);
    }
    const waitersMax = options.waitersMax ?? redisIdWaitersMaxDefault;
    if (!Number.isSafeInteger(waitersMax) || waitersMax < 1) {
      throw invalid('waitersMax must be a positive whole number');
    }
    if (typeof (options.keyPrefix ?? '') !== 'string') throw invalid('keyPrefix must be a string');
    const { redis, owned } = await clientOf(options.target);
    return new RedisIncrGenerator(redis, owned, options);
  }

  next(): bigint | Promise<bigint> {
    if (this.#segments !== null) return this.#segments.next();
    return this.#increment(1);
  }

  async nextBatch(count: number): Promise<bigint[]> {
    if (!Number.isSafeInteger(count) || count < 0 || count > idBatchMax) {
      throw invalid(`a batch is a whole number of ids in [0, ${idBatchMax}]`);
    }
    if (this.#segments !== null) return this.#segments.nextBatch(count);
    if (count === 0) return [];
    const end = await this.#increment(count);
    const ids = new Array<bigint>(count);
    for (let index = 0; index < count; index++) ids[index] = end - BigInt(count - 1 - index);
    return ids;
  }

  /** Refuses new calls and closes the connection if the generator opened it. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#segments?.close();
    await this.#store.close();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  /** INCRBY `count`; the counter after it, so the ids are `(answer - count, answer]`. */
  async #increment(count: number): Promise<bigint> {
    if (this.#closed) {
      throw new SynodError('SYNOD_ID_GENERATOR_CLOSED', `redis ${this.key} is closed`);
    }
    if (this.#inFlight >= this.#waitersMax) {
      const message = `redis ${this.key}: ${this.#waitersMax} calls already wait`;
      throw new SynodError('SYNOD_ID_WAITERS_EXHAUSTED', message);
    }
    this.#inFlight += 1;
    // Redis is linearizable while it keeps its writes: a command sent after an answer arrived is
    // answered above it. Concurrent commands may be answered in any order, so only the answers
    // seen before this command was sent bound it.
    const floor = this.#highest;
    let reply: unknown;
    try {
      reply = count === 1
        ? await this.#redis.incr(this.key)
        : await this.#redis.incrby(this.key, count);
    } catch (error) {
      throw commandError(this.key, error);
    } finally {
      this.#inFlight -= 1;
    }
    const end = counterOf(this.key, reply);
    const first = end - BigInt(count) + 1n;
    if (first < 1n) {
      throw new SynodError('SYNOD_STORAGE_CORRUPT', `redis ${this.key}: counter below 1`);
    }
    if (first <= floor) {
      const message = `redis ${this.key}: the counter went back to ${end} after ${floor} ` +
        'was handed out (lost writes: a restart without persistence, a failover); ids would repeat';
      throw new SynodError('SYNOD_STORAGE_CORRUPT', message);
    }
    if (end > this.#highest) this.#highest = end;
    assert(end >= first && first > 0n, 'redis: a non-empty range of positive ids');
    return end;
  }
}
