/**
 * What the two Redis lock backends (redis-lock.ts, redlock.ts) share: validated timing and
 * jittered backoff, owner tokens, Lua scripts run by EVALSHA and the token-checked release and
 * extension scripts, the wait loop, the held-lock handle, and ioredis connection handling.
 *
 * The scripts compare the owner token before they act (DEL, PEXPIRE), so a holder whose TTL ran
 * out can never delete or extend the key of the holder after it (antirez, "Distributed Locks with
 * Redis", "Correct Implementation with a Single Instance").
 */

import { createHash, randomBytes } from 'node:crypto';
import type { Redis, RedisOptions } from 'ioredis';
import {
  AssertionFailure, SeededRandom, SynodError, assert, type Random,
} from '../../base/index.js';
import { LockBackendError, invalidArgument } from '../errors.js';
import { waitScope } from '../recipes/wait.js';
import type { AcquireOptions, HeldLock } from './lock.js';

/** Default TTL of a grant and of each renewal: Redisson's `lockWatchdogTimeout`. */
export const redisLockTtlMsDefault = 30_000;
/** First poll delay of a waiter; doubled per refused attempt up to `retryDelayMaxMs`, jittered. */
export const redisRetryDelayMsDefault = 25;
/** Default cap of a waiter's poll delay: its worst wake-up latency when a release goes unheard. */
export const redisRetryDelayMaxMsDefault = 250;
/** Lock names longer than this (UTF-8 bytes) are refused. */
export const redisLockNameBytesMax = 4096;
/** How long `close()` waits for its best-effort releases before closing the connection anyway. */
export const redisCloseReleaseTimeoutMs = 1_000;

/** Timing options both Redis backends take. */
export interface LockTimingOptions {
  /** How long a grant or renewal keeps the key, in milliseconds; an integer; default 30 000. */
  readonly ttlMs?: number;
  /** Time between watchdog renewals; default a third of the TTL. */
  readonly renewIntervalMs?: number;
  /** First poll delay of a waiter; default 25 ms. */
  readonly retryDelayMs?: number;
  /** Cap of a waiter's poll delay; default 250 ms; at least `retryDelayMs`. */
  readonly retryDelayMaxMs?: number;
  /** Jitter source; seeded from node:crypto by default. */
  readonly random?: Random;
  /** Milliseconds on a monotonic clock; `performance.now` by default. */
  readonly now?: () => number;
}

/** Validated timing, every default filled in. */
export type LockTiming = Readonly<Required<LockTimingOptions>>;

/** Validates `options` once and fills in the defaults; throws SYNOD_INVALID_ARGUMENT. */
export function lockTiming(options: LockTimingOptions): LockTiming {
  const ttlMs = options.ttlMs ?? redisLockTtlMsDefault;
  if (!Number.isInteger(ttlMs) || ttlMs < 2) {
    throw invalidArgument(`ttlMs must be an integer >= 2, not ${ttlMs}`);
  }
  const renewIntervalMs = options.renewIntervalMs ?? Math.max(1, Math.floor(ttlMs / 3));
  if (!(renewIntervalMs > 0 && renewIntervalMs < ttlMs)) {
    throw invalidArgument(`renewIntervalMs must be in (0, ttlMs), not ${renewIntervalMs}`);
  }
  const retryDelayMs = options.retryDelayMs ?? redisRetryDelayMsDefault;
  const retryDelayMaxMs =
    options.retryDelayMaxMs ?? Math.max(retryDelayMs, redisRetryDelayMaxMsDefault);
  if (!(retryDelayMs > 0 && Number.isFinite(retryDelayMaxMs) && retryDelayMaxMs >= retryDelayMs)) {
    throw invalidArgument(
      `need 0 < retryDelayMs <= retryDelayMaxMs, not ${retryDelayMs} and ${retryDelayMaxMs}`);
  }
  const random = options.random ?? new SeededRandom(randomBytes(4).readInt32LE(0));
  const now = options.now ?? ((): number => performance.now());
  return Object.freeze({ ttlMs, renewIntervalMs, retryDelayMs, retryDelayMaxMs, random, now });
}

/**
 * The delay before retry number `failedAttempts + 1`: `firstMs` doubled per failed attempt, capped
 * at `maxMs`, then drawn uniformly from the upper half (`unit` in [0, 1)) so that waiters refused
 * together do not retry together.
 */
export function backoffDelayMs(options: {
  readonly failedAttempts: number;
  readonly firstMs: number;
  readonly maxMs: number;
  readonly unit: number;
}): number {
  const { failedAttempts, firstMs, maxMs, unit } = options;
  assert(failedAttempts >= 0 && unit >= 0 && unit < 1, 'backoff: bad arguments');
  assert(firstMs > 0 && maxMs >= firstMs, 'backoff: bad bounds');
  // 2^16 already exceeds any sane cap; the exponent bound keeps the product finite.
  const ceilingMs = Math.min(maxMs, firstMs * 2 ** Math.min(failedAttempts, 16));
  const delayMs = ceilingMs / 2 + (unit * ceilingMs) / 2;
  assert(delayMs >= firstMs / 2 && delayMs <= maxMs, 'backoff: delay out of bounds');
  return delayMs;
}

/** A fresh owner token: 128 random bits in hex, unguessable by other holders. */
export function newLockToken(): string {
  return randomBytes(16).toString('hex');
}

/** Refuses an empty or oversized lock name. */
export function checkLockName(name: string): void {
  if (name.length === 0) throw invalidArgument('a lock name must not be empty');
  const bytes = Buffer.byteLength(name, 'utf8');
  if (bytes > redisLockNameBytesMax) {
    throw invalidArgument(`lock name is ${bytes} bytes, more than ${redisLockNameBytesMax}`);
  }
}

/**
 * A Lua script run by EVALSHA. The server forgets its script cache on restart and on SCRIPT FLUSH,
 * so a NOSCRIPT answer sends the source once with EVAL, which caches it again.
 */
export class LuaScript {
  readonly source: string;
  readonly sha1: string;

  constructor(source: string) {
    this.source = source;
    this.sha1 = createHash('sha1').update(source).digest('hex');
  }

  /** Runs the script on `redis` with `keys` (KEYS) and `args` (ARGV). */
  async run(redis: Redis, keys: readonly string[], args: readonly (string | number)[]):
  Promise<unknown> {
    try {
      return await redis.evalsha(this.sha1, keys.length, ...keys, ...args);
    } catch (error) {
      if (!(error instanceof Error && error.message.startsWith('NOSCRIPT'))) throw error;
      return await redis.eval(this.source, keys.length, ...keys, ...args);
    }
  }
}

// Every script checks the key's type first: a name held in the other mode (string versus hash)
// is simply someone else's lock, never a WRONGTYPE error.

/** KEYS[1] lock; ARGV token, release channel. 1 if it was ours and is deleted, else 0. */
export const releaseTokenScript = new LuaScript(`
if redis.call('type', KEYS[1]).ok == 'string' and redis.call('get', KEYS[1]) == ARGV[1] then
  redis.call('del', KEYS[1])
  redis.call('publish', ARGV[2], 'released')
  return 1
end
return 0`);

/** KEYS[1] lock; ARGV token, TTL ms. 1 if it was ours and its TTL is reset, else 0. */
export const extendTokenScript = new LuaScript(`
if redis.call('type', KEYS[1]).ok == 'string' and redis.call('get', KEYS[1]) == ARGV[1] then
  return redis.call('pexpire', KEYS[1], ARGV[2])
end
return 0`);

/** The error to throw for a driver failure: a LockBackendError with it as cause; bugs pass. */
export function driverError(what: string, error: unknown): Error {
  if (error instanceof SynodError || error instanceof AssertionFailure) return error;
  const detail = error instanceof Error ? error.message : String(error);
  return new LockBackendError(`redis ${what} failed: ${detail}`, { cause: error });
}

/** `promise`, or a rejection with `onTimeout()` once `timeoutMs` passes first. */
export function withTimeout<T>(
  promise: Promise<T>, timeoutMs: number, onTimeout: () => Error,
): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(onTimeout()), timeoutMs);
    promise.then(
      (value) => { clearTimeout(timer); resolve(value); },
      (error: unknown) => { clearTimeout(timer); reject(error); },
    );
  });
}

/**
 * A new ioredis client for `url`, loaded on demand because ioredis is an optional peer dependency.
 * Commands fail after one reconnect instead of ioredis's twenty, so a dead server surfaces as a
 * LockBackendError rather than a wait that only the timeout ends.
 */
export async function createRedis(url: string, overrides: RedisOptions = {}): Promise<Redis> {
  let RedisClient: typeof import('ioredis').Redis;
  try {
    ({ Redis: RedisClient } = await import('ioredis'));
  } catch (cause) {
    const message = 'the Redis lock backends need the peer dependency ioredis';
    throw new LockBackendError(message, { cause });
  }
  const redis = new RedisClient(url, {
    lazyConnect: true, maxRetriesPerRequest: 1,
    retryStrategy: (times: number) => Math.min(times * 20, 500), ...overrides,
  });
  // Failures reach callers through the commands that fail; without a listener ioredis would print
  // every failed reconnect.
  redis.on('error', () => undefined);
  return redis;
}

/** Closes a connection this package created: QUIT when it is up, then drop the socket. */
export async function closeRedis(redis: Redis): Promise<void> {
  if (redis.status === 'ready') {
    const timeout = (): Error => new Error('quit timeout');
    await withTimeout(redis.quit(), redisCloseReleaseTimeoutMs, timeout).catch(() => undefined);
  }
  redis.disconnect();
}

/** Releases every grant in `held` at once, waiting at most `redisCloseReleaseTimeoutMs`. */
export async function releaseAllBounded(held: ReadonlySet<TokenGrant>): Promise<void> {
  const releases = Promise.allSettled([...held].map((grant) => grant.release()));
  const timeout = (): Error => new Error('release timeout');
  await withTimeout(releases, redisCloseReleaseTimeoutMs, timeout).catch(() => undefined);
}

/**
 * The HeldLock of both Redis backends: giving up is a callback, run once. It sits in its backend's
 * `held` set from grant to release, so that `close()` can release it.
 */
export class TokenGrant implements HeldLock {
  readonly name: string;
  /** Always null: see the module comment for why Redis cannot fence. */
  readonly fencingToken = null;
  readonly lost: AbortSignal;
  readonly #release: () => Promise<void>;
  readonly #held: Set<TokenGrant>;
  #released = false;

  constructor(options: {
    name: string; lost: AbortSignal; release: () => Promise<void>; held: Set<TokenGrant>;
  }) {
    this.name = options.name;
    this.lost = options.lost;
    this.#release = options.release;
    this.#held = options.held;
    this.#held.add(this);
  }

  async release(): Promise<void> {
    if (this.#released) return;
    this.#released = true;
    this.#held.delete(this);
    await this.#release();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.release();
  }
}

/** What `waitForGrant` needs from a backend. */
export interface GrantWait {
  readonly name: string;
  readonly options: AcquireOptions;
  /** Extra abort source: the backend closing. */
  readonly closing: AbortSignal;
  /** Paces the retries (`retryDelayMs`, `retryDelayMaxMs`, `random`). */
  readonly timing: LockTiming;
  /** One try: the grant, or null when someone else holds the lock. */
  readonly attempt: () => Promise<TokenGrant | null>;
  /** Registers an early wake-up (a release message); returns the unregistering function. */
  readonly listen?: (wake: () => void) => () => void;
}

/**
 * Tries until a grant, the timeout (LockTimeoutError), an abort (the signal's reason) or a driver
 * error. Between attempts it sleeps the backoff delay unless woken earlier.
 */
export async function waitForGrant(wait: GrantWait): Promise<TokenGrant> {
  const { options: { timeoutMs, signal }, timing } = wait;
  const scope = waitScope({ name: wait.name, signals: [signal, wait.closing], timeoutMs });
  let wakeSleeper: (() => void) | null = null;
  let woken = false;
  const unlisten = wait.listen?.(() => {
    woken = true;
    wakeSleeper?.();
  }) ?? ((): void => undefined);
  try {
    for (let failedAttempts = 0; ; failedAttempts++) {
      scope.signal.throwIfAborted();
      woken = false;
      const grant = await abandonable(wait.attempt(), scope.signal);
      if (grant !== null) return grant;
      // A release announced while the attempt was in flight: try again at once.
      if (woken) continue;
      const delayMs = backoffDelayMs({
        failedAttempts, firstMs: timing.retryDelayMs, maxMs: timing.retryDelayMaxMs,
        unit: timing.random.float(),
      });
      await pause(delayMs, scope.signal, (wake) => (wakeSleeper = wake));
      wakeSleeper = null;
    }
  } finally {
    unlisten();
    scope.dispose();
  }
}

/** The attempt's outcome, unless `signal` aborts first; a grant that arrives late is released. */
function abandonable(attempt: Promise<TokenGrant | null>, signal: AbortSignal):
Promise<TokenGrant | null> {
  return new Promise<TokenGrant | null>((resolve, reject) => {
    let abandoned = false;
    const onAbort = (): void => {
      abandoned = true;
      reject(signal.reason);
    };
    signal.addEventListener('abort', onAbort, { once: true });
    if (signal.aborted) onAbort();
    attempt.then(
      (grant) => {
        signal.removeEventListener('abort', onAbort);
        if (!abandoned) resolve(grant);
        else if (grant !== null) void grant.release().catch(() => undefined);
      },
      (error: unknown) => {
        signal.removeEventListener('abort', onAbort);
        if (!abandoned) reject(error);
      },
    );
  });
}

/** Sleeps `delayMs`, or until the function handed to `expose` is called, or rejects on abort. */
function pause(
  delayMs: number, signal: AbortSignal, expose: (wake: () => void) => void,
): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    if (signal.aborted) {
      reject(signal.reason);
      return;
    }
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(signal.reason);
    };
    const wake = (): void => {
      clearTimeout(timer);
      signal.removeEventListener('abort', onAbort);
      resolve();
    };
    const timer = setTimeout(wake, delayMs);
    signal.addEventListener('abort', onAbort, { once: true });
    expose(wake);
  });
}
