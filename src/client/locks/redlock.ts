/**
 * Redlock: one lock over N independent Redis servers, the algorithm of the Redis documentation
 * ("Distributed Locks with Redis", antirez, section "The Redlock Algorithm").
 *
 * An attempt takes the time, then sends `SET key token NX PX ttl` with one random token to every
 * server at once, each bounded by a short `serverTimeoutMs` so that a dead server costs little of
 * the TTL. The lock is granted if a majority (N/2+1) said OK and time is left: the validity
 * `ttl - elapsed - drift` (drift = ttl × clockDriftFactor + 2 ms, allowing for the servers'
 * clocks running fast, and for PX's millisecond granularity) must be positive. A refused attempt
 * releases on every server — also the ones that timed out, since their SET may have landed — and
 * retries after a random delay so that contenders that split the votes do not split them again.
 *
 * The watchdog extends on every server with the token-checked PEXPIRE script; an extension counts
 * when a majority extended within the validity. The holder believes in its lock for `ttl - drift`
 * from the start of the last good attempt or extension, never the full TTL.
 *
 * `fencingToken` is null, and Redlock is not safe without assumptions Redis does not keep
 * (Kleppmann, "How to do distributed locking"): the validity argument trusts bounded clock drift
 * and pauses, and a server restarted without fsync forgets the keys it held, so the majority that
 * granted a lock need not exist any more when a second contender counts votes. The interop tests
 * demonstrate the restart case.
 *
 * Availability: an attempt on which every server failed (down, timed out) is a LockBackendError;
 * one on which some answered but no majority granted is a refusal, retried until the timeout.
 */

import type { Redis } from 'ioredis';
import { SynodError, assert } from '../../base/index.js';
import { LockBackendError, invalidArgument } from '../errors.js';
import type { AcquireOptions, HeldLock, LockBackend } from './lock.js';
import {
  TokenGrant, checkLockName, closeRedis, createRedis, driverError, extendTokenScript, lockTiming,
  newLockToken, releaseAllBounded, releaseTokenScript, waitForGrant, withTimeout,
  type LockTiming, type LockTimingOptions,
} from './redis-common.js';
import { RenewalWatchdog } from './renewal-watchdog.js';

/** How fast a server's clock may run against ours, as a fraction of the TTL (the docs' 0.01). */
export const redlockClockDriftFactorDefault = 0.01;
/** Per-server bound on one command; small against the TTL, as the docs ask (5–50 ms for 10 s). */
export const redlockServerTimeoutMsDefault = 50;
/** Servers one Redlock spans at most. */
export const redlockServersMax = 15;

/** Votes that make a majority of `serverCount` servers: ⌊N/2⌋ + 1. */
export function redlockQuorum(serverCount: number): number {
  assert(Number.isInteger(serverCount) && serverCount > 0, 'redlock: server count must be > 0');
  const quorum = Math.floor(serverCount / 2) + 1;
  // Invariant: two quorums always share a server.
  assert(2 * quorum > serverCount && quorum <= serverCount, 'redlock: quorum is not a majority');
  return quorum;
}

/** Refuses a server count Redlock cannot use: N must be odd and in [3, redlockServersMax]. */
export function checkRedlockServerCount(serverCount: number): void {
  const usable = Number.isInteger(serverCount) && serverCount % 2 === 1 &&
    serverCount >= 3 && serverCount <= redlockServersMax;
  if (!usable) {
    throw invalidArgument(
      `Redlock needs an odd number of servers from 3 to ${redlockServersMax}, not ${serverCount}`);
  }
}

/** The drift allowance: ttl × clockDriftFactor, plus 2 ms for PX's millisecond granularity. */
export function redlockDriftMs(options: {
  readonly ttlMs: number;
  readonly clockDriftFactor: number;
}): number {
  assert(options.ttlMs > 0 && options.clockDriftFactor >= 0, 'redlock: bad drift arguments');
  return Math.floor(options.ttlMs * options.clockDriftFactor) + 2;
}

/** How long a lock granted (or extended) `elapsedMs` into its attempt stays ours; may be <= 0. */
export function redlockValidityMs(options: {
  readonly ttlMs: number;
  readonly elapsedMs: number;
  readonly clockDriftFactor: number;
}): number {
  assert(options.elapsedMs >= 0, 'redlock: elapsed time must not be negative');
  return options.ttlMs - options.elapsedMs - redlockDriftMs(options);
}

/** True if an attempt that got `acquiredCount` of `serverCount` votes holds the lock. */
export function redlockGranted(options: {
  readonly serverCount: number;
  readonly acquiredCount: number;
  readonly validityMs: number;
}): boolean {
  const { acquiredCount, serverCount } = options;
  assert(acquiredCount >= 0 && acquiredCount <= serverCount, 'redlock: bad vote count');
  return acquiredCount >= redlockQuorum(serverCount) && options.validityMs > 0;
}

/**
 * What an extension round means for the holder: 'extended' when a majority extended within the
 * validity; 'refused' when so many servers answered "not yours" that no majority can ever extend
 * (the lock is lost); else 'unknown' (timeouts, errors, too slow), retried while the lock is valid.
 */
export function redlockExtensionVerdict(options: {
  readonly serverCount: number;
  readonly extendedCount: number;
  readonly refusedCount: number;
  readonly validityMs: number;
}): 'extended' | 'refused' | 'unknown' {
  const { serverCount, extendedCount, refusedCount } = options;
  assert(extendedCount >= 0 && refusedCount >= 0, 'redlock: negative counts');
  assert(extendedCount + refusedCount <= serverCount, 'redlock: more answers than servers');
  const quorum = redlockQuorum(serverCount);
  if (refusedCount > serverCount - quorum) return 'refused';
  if (extendedCount >= quorum && options.validityMs > 0) return 'extended';
  return 'unknown';
}

/** Options of `RedlockBackend.connect`. */
export interface RedlockOptions extends LockTimingOptions {
  /** Prepended to every lock name to form its key; default `'synod:lock:'`. */
  readonly keyPrefix?: string;
  /** Clock drift allowance as a fraction of the TTL, in [0, 0.5); default 0.01. */
  readonly clockDriftFactor?: number;
  /** Bound on one command to one server; default 50 ms. */
  readonly serverTimeoutMs?: number;
}

/** The servers: URLs (the backend connects and later quits) or clients (left open by `close`). */
export type RedlockConnectOptions = RedlockOptions & (
  | { readonly urls: readonly string[]; readonly redis?: undefined }
  | { readonly redis: readonly Redis[]; readonly urls?: undefined }
);

interface RedlockConfig extends LockTiming {
  readonly keyPrefix: string;
  readonly clockDriftFactor: number;
  readonly serverTimeoutMs: number;
  /** The holder's belief in a grant: the TTL less the drift allowance. */
  readonly believedTtlMs: number;
}

function redlockConfig(options: RedlockOptions, serverCount: number): RedlockConfig {
  checkRedlockServerCount(serverCount);
  const timing = lockTiming(options);
  const clockDriftFactor = options.clockDriftFactor ?? redlockClockDriftFactorDefault;
  if (!(clockDriftFactor >= 0 && clockDriftFactor < 0.5)) {
    throw invalidArgument(`clockDriftFactor must be in [0, 0.5), not ${clockDriftFactor}`);
  }
  const serverTimeoutMs = options.serverTimeoutMs ?? redlockServerTimeoutMsDefault;
  const believedTtlMs = timing.ttlMs - redlockDriftMs({ ttlMs: timing.ttlMs, clockDriftFactor });
  if (!(serverTimeoutMs > 0 && serverTimeoutMs < believedTtlMs)) {
    throw invalidArgument(
      `serverTimeoutMs must be in (0, ttl - drift = ${believedTtlMs}), not ${serverTimeoutMs}`);
  }
  if (timing.renewIntervalMs >= believedTtlMs) {
    throw invalidArgument(`renewIntervalMs must be below ttl - drift = ${believedTtlMs} ms`);
  }
  const keyPrefix = options.keyPrefix ?? 'synod:lock:';
  return Object.freeze({ ...timing, keyPrefix, clockDriftFactor, serverTimeoutMs, believedTtlMs });
}

/** One Redis server's answer, or why there was none. */
type Reply<T> =
  | { readonly ok: true; readonly value: T }
  | { readonly ok: false; readonly error: unknown };

/** Locks held by a majority of independent Redis servers (see the module comment). */
export class RedlockBackend implements LockBackend {
  readonly kind = 'redlock' as const;
  readonly #servers: readonly Redis[];
  readonly #ownsConnections: boolean;
  readonly #config: RedlockConfig;
  readonly #held = new Set<TokenGrant>();
  readonly #closing = new AbortController();

  private constructor(servers: readonly Redis[], ownsConnections: boolean, config: RedlockConfig) {
    this.#servers = servers;
    this.#ownsConnections = ownsConnections;
    this.#config = config;
  }

  /** A backend over `options.redis`, or new connections to `urls` (a majority must connect). */
  static async connect(options: RedlockConnectOptions): Promise<RedlockBackend> {
    if (options.redis !== undefined) {
      const config = redlockConfig(options, options.redis.length);
      return new RedlockBackend([...options.redis], false, config);
    }
    if (options.urls === undefined) {
      throw invalidArgument('RedlockBackend.connect needs urls or redis');
    }
    const config = redlockConfig(options, options.urls.length);
    // Fail fast on a dead server instead of queueing: its vote is simply missing.
    const servers = await Promise.all(options.urls.map((url) =>
      createRedis(url, { enableOfflineQueue: false, maxRetriesPerRequest: 0 })));
    const connected = await Promise.allSettled(servers.map((redis) => redis.connect()));
    const failures = connected.filter((outcome) => outcome.status === 'rejected');
    if (servers.length - failures.length < redlockQuorum(servers.length)) {
      servers.forEach((redis) => redis.disconnect());
      throw driverError('connect to a majority of the Redlock servers', failures[0]?.reason);
    }
    return new RedlockBackend(servers, true, config);
  }

  async acquire(name: string, options: AcquireOptions = {}): Promise<HeldLock> {
    this.#checkUsable(name);
    return waitForGrant({
      name, options, closing: this.#closing.signal, timing: this.#config,
      attempt: () => this.#attempt(name),
    });
  }

  async tryAcquire(name: string): Promise<HeldLock | null> {
    this.#checkUsable(name);
    return this.#attempt(name);
  }

  /** Releases held locks (best effort, bounded in time), then quits the connections it opened. */
  async close(): Promise<void> {
    if (this.#closing.signal.aborted) return;
    this.#closing.abort(new SynodError('SYNOD_CLIENT_CLOSED', 'the Redlock backend is closed'));
    await releaseAllBounded(this.#held);
    if (this.#ownsConnections) await Promise.all(this.#servers.map(closeRedis));
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  #checkUsable(name: string): void {
    checkLockName(name);
    if (this.#closing.signal.aborted) throw this.#closing.signal.reason;
  }

  /** Runs `command` on every server at once, each bounded by the per-server timeout. */
  async #onEach<T>(command: (redis: Redis) => Promise<T>): Promise<Reply<T>[]> {
    const { serverTimeoutMs } = this.#config;
    return Promise.all(this.#servers.map(async (redis): Promise<Reply<T>> => {
      try {
        const timeout = (): Error =>
          new LockBackendError(`a Redlock server did not answer within ${serverTimeoutMs} ms`);
        const value = await withTimeout(command(redis), serverTimeoutMs, timeout);
        return { ok: true, value };
      } catch (error) {
        return { ok: false, error };
      }
    }));
  }

  async #attempt(name: string): Promise<TokenGrant | null> {
    const { ttlMs, now, clockDriftFactor } = this.#config;
    const key = this.#config.keyPrefix + name;
    const token = newLockToken();
    const startedMs = now();
    const replies = await this.#onEach((redis) => redis.set(key, token, 'PX', ttlMs, 'NX'));
    const elapsedMs = now() - startedMs;
    const validityMs = redlockValidityMs({ ttlMs, elapsedMs, clockDriftFactor });
    const acquiredCount = replies.filter((reply) => reply.ok && reply.value === 'OK').length;
    if (redlockGranted({ serverCount: this.#servers.length, acquiredCount, validityMs })) {
      return this.#grant(name, key, token, startedMs);
    }
    // Refused or too slow: give back every vote, including any a timed-out server may have cast.
    await this.#releaseEverywhere(name, token);
    const failure = replies.find((reply) => !reply.ok);
    if (failure !== undefined && replies.every((reply) => !reply.ok)) {
      throw driverError(`acquire of lock ${JSON.stringify(name)} on all servers`, failure.error);
    }
    return null;
  }

  #grant(name: string, key: string, token: string, startedMs: number): TokenGrant {
    const { believedTtlMs, renewIntervalMs, now } = this.#config;
    const watchdog = new RenewalWatchdog({
      ttlMs: believedTtlMs, renewIntervalMs, now, renew: () => this.#extend(key, token),
    }, startedMs);
    return new TokenGrant({
      name, lost: watchdog.lost, held: this.#held,
      release: async () => {
        watchdog.stop();
        const replies = await this.#releaseEverywhere(name, token);
        const failure = replies.find((reply) => !reply.ok);
        // Servers that did not answer drop the key at its TTL; only total silence is an error.
        const silent = failure !== undefined && replies.every((reply) => !reply.ok);
        if (silent && !watchdog.lost.aborted) {
          const what = `release of lock ${JSON.stringify(name)} on all servers`;
          throw driverError(what, failure.error);
        }
      },
    });
  }

  /** One extension round for the watchdog: true, false (lost), or a rejection (retry). */
  async #extend(key: string, token: string): Promise<boolean> {
    const { ttlMs, now, clockDriftFactor } = this.#config;
    const startedMs = now();
    const replies = await this.#onEach((redis) =>
      extendTokenScript.run(redis, [key], [token, ttlMs]));
    const elapsedMs = now() - startedMs;
    const verdict = redlockExtensionVerdict({
      serverCount: this.#servers.length,
      validityMs: redlockValidityMs({ ttlMs, elapsedMs, clockDriftFactor }),
      extendedCount: replies.filter((reply) => reply.ok && reply.value === 1).length,
      refusedCount: replies.filter((reply) => reply.ok && reply.value === 0).length,
    });
    if (verdict === 'unknown') {
      throw new LockBackendError('a Redlock extension reached no majority in time');
    }
    return verdict === 'extended';
  }

  #releaseEverywhere(name: string, token: string): Promise<Reply<unknown>[]> {
    const key = this.#config.keyPrefix + name;
    // RedisLockBackend's channel: a single-server waiter on one of these servers wakes too.
    const channel = `${this.#config.keyPrefix}released:${name}`;
    return this.#onEach((redis) => releaseTokenScript.run(redis, [key], [token, channel]));
  }
}
