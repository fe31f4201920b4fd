/**
 * Locks in one Redis server, kept the way Redisson keeps them.
 *
 * A grant is `SET key token NX PX ttl` with a random 128-bit token, so only the holder knows the
 * value its key carries. Release and extension are Lua scripts that compare the token before they
 * act (DEL, PEXPIRE): a holder whose TTL ran out can never delete or extend the key of the holder
 * after it (antirez, "Distributed Locks with Redis", "Correct Implementation with a Single
 * Instance"). While held, a RenewalWatchdog pushes the TTL forward (Redisson's lock watchdog), so
 * a crashed holder's lock frees itself one TTL after its last renewal.
 *
 * A waiter polls with jittered exponential backoff, bounded by `retryDelayMaxMs`, and also listens
 * on the lock's release channel (the release script PUBLISHes on it, as Redisson's unlock does) so
 * that a release wakes it at once. The message is only a hint: a waiter that misses it (not yet
 * subscribed, subscriber reconnecting, channel bound reached) still finds the lock free at its
 * next poll. A holder that crashed publishes nothing, and its key expires unannounced; the poll
 * finds that too.
 *
 * With `reentrant: true` the key is a hash from the grant's owner token to a hold count (Redisson's
 * RLock): the same backend acquiring a name it holds increments the count instead of waiting, and
 * the key is deleted when the count falls back to zero. Reentrancy is per backend instance, so
 * callers sharing a reentrant backend do not exclude each other.
 *
 * `fencingToken` is null. Redis has no consensus: a counter kept in the same server (INCR) can go
 * backwards after a restart without fsync, or after a failover to a replica that had not yet
 * received the last increments, so it cannot promise to grow strictly across grants. The lock is
 * as safe as the one server is durable; the interop tests show a restart handing out a second
 * grant while the first holder still believes it holds the lock.
 *
 * What this backend shares with Redlock (timing, scripts, the wait loop) is in redis-common.ts.
 */

import type { Redis } from 'ioredis';
import { SynodError, assert } from '../../base/index.js';
import { invalidArgument } from '../errors.js';
import type { AcquireOptions, HeldLock, LockBackend } from './lock.js';
import {
  LuaScript, TokenGrant, checkLockName, closeRedis, createRedis, driverError, extendTokenScript,
  lockTiming, newLockToken, releaseAllBounded, releaseTokenScript, waitForGrant,
  type LockTiming, type LockTimingOptions,
} from './redis-common.js';
import { RenewalWatchdog } from './renewal-watchdog.js';

/** Release channels one backend subscribes to at most; waiters on further names only poll. */
export const redisReleaseChannelsMax = 1024;

/** KEYS[1] lock; ARGV TTL ms, owner. The new hold count if free or ours, else 0 (Redisson). */
const reentrantAcquireScript = new LuaScript(`
local kind = redis.call('type', KEYS[1]).ok
if kind == 'none' or (kind == 'hash' and redis.call('hexists', KEYS[1], ARGV[2]) == 1) then
  local holds = redis.call('hincrby', KEYS[1], ARGV[2], 1)
  redis.call('pexpire', KEYS[1], ARGV[1])
  return holds
end
return 0`);

/** KEYS[1] lock; ARGV owner, TTL ms, channel. Holds left (0: deleted), or -1 if not ours. */
const reentrantReleaseScript = new LuaScript(`
if redis.call('type', KEYS[1]).ok ~= 'hash' or redis.call('hexists', KEYS[1], ARGV[1]) == 0 then
  return -1
end
local holds = redis.call('hincrby', KEYS[1], ARGV[1], -1)
if holds > 0 then
  redis.call('pexpire', KEYS[1], ARGV[2])
  return holds
end
redis.call('del', KEYS[1])
redis.call('publish', ARGV[3], 'released')
return 0`);

/** KEYS[1] lock; ARGV owner, TTL ms. 1 if ours and its TTL is reset, else 0. */
const reentrantExtendScript = new LuaScript(`
if redis.call('type', KEYS[1]).ok == 'hash' and redis.call('hexists', KEYS[1], ARGV[1]) == 1 then
  return redis.call('pexpire', KEYS[1], ARGV[2])
end
return 0`);

/**
 * One subscriber connection per backend for release messages. Subscribing happens in the
 * background and may fail: the waiters' polls are what make waiting correct, the messages only
 * make it fast.
 */
class ReleaseSubscriber {
  readonly #source: Redis;
  readonly #waiters = new Map<string, Set<() => void>>();
  #connection: Redis | null = null;
  #closed = false;

  constructor(source: Redis) {
    this.#source = source;
  }

  /** Calls `wake` on each release message on `channel` until the returned function is called. */
  listen(channel: string, wake: () => void): () => void {
    if (this.#closed) return () => undefined;
    let found = this.#waiters.get(channel);
    if (found === undefined) {
      if (this.#waiters.size >= redisReleaseChannelsMax) return () => undefined;
      found = new Set();
      this.#waiters.set(channel, found);
      this.#connect().subscribe(channel).catch(() => undefined);
    }
    const waiters = found;
    waiters.add(wake);
    return () => {
      waiters.delete(wake);
      if (waiters.size > 0 || this.#waiters.get(channel) !== waiters) return;
      this.#waiters.delete(channel);
      if (!this.#closed) this.#connect().unsubscribe(channel).catch(() => undefined);
    };
  }

  close(): void {
    this.#closed = true;
    this.#connection?.disconnect();
  }

  #connect(): Redis {
    if (this.#connection !== null) return this.#connection;
    // A connection in subscriber mode takes no other commands, hence a separate one.
    const connection = this.#source.duplicate();
    connection.on('error', () => undefined);
    connection.on('message', (channel: string) => {
      for (const wake of this.#waiters.get(channel) ?? []) wake();
    });
    this.#connection = connection;
    return connection;
  }
}

/** Options of `RedisLockBackend.connect`. */
export interface RedisLockOptions extends LockTimingOptions {
  /** Prepended to every lock name to form its key; default `'synod:lock:'`. */
  readonly keyPrefix?: string;
  /** Same-backend re-acquisition increments a hold count instead of waiting; default false. */
  readonly reentrant?: boolean;
}

/** Where the backend's locks live: a URL (the backend connects and later quits) or a client. */
export type RedisLockConnectOptions = RedisLockOptions & (
  | { readonly url: string; readonly redis?: undefined }
  | { readonly redis: Redis; readonly url?: undefined }
);

/** A reentrant grant's shared state: one owner token, one watchdog, many holds. */
interface ReentrantChain {
  readonly token: string;
  readonly watchdog: RenewalWatchdog;
  holds: number;
}

/** Locks in one Redis server (see the module comment). */
export class RedisLockBackend implements LockBackend {
  readonly kind = 'redis' as const;
  readonly #redis: Redis;
  readonly #ownsConnection: boolean;
  readonly #timing: LockTiming;
  readonly #keyPrefix: string;
  readonly #reentrant: boolean;
  readonly #subscriber: ReleaseSubscriber;
  readonly #held = new Set<TokenGrant>();
  readonly #chains = new Map<string, ReentrantChain>();
  /** Per name, the tail of its reentrant operations, which run one at a time (see #serially). */
  readonly #turns = new Map<string, Promise<void>>();
  readonly #closing = new AbortController();

  private constructor(redis: Redis, ownsConnection: boolean, options: RedisLockOptions) {
    this.#redis = redis;
    this.#ownsConnection = ownsConnection;
    this.#timing = lockTiming(options);
    this.#keyPrefix = options.keyPrefix ?? 'synod:lock:';
    this.#reentrant = options.reentrant ?? false;
    this.#subscriber = new ReleaseSubscriber(redis);
  }

  /** A backend on `options.redis` (left open by `close`), or on a new connection to `url`. */
  static async connect(options: RedisLockConnectOptions): Promise<RedisLockBackend> {
    if (options.redis !== undefined) return new RedisLockBackend(options.redis, false, options);
    if (typeof options.url !== 'string') {
      throw invalidArgument('RedisLockBackend.connect needs url or redis');
    }
    lockTiming(options); // Refuse bad options before opening a connection.
    const redis = await createRedis(options.url);
    try {
      await redis.connect();
    } catch (error) {
      redis.disconnect();
      throw driverError(`connect to ${options.url}`, error);
    }
    return new RedisLockBackend(redis, true, options);
  }

  async acquire(name: string, options: AcquireOptions = {}): Promise<HeldLock> {
    this.#checkUsable(name);
    return waitForGrant({
      name, options, closing: this.#closing.signal, timing: this.#timing,
      attempt: () => this.#attempt(name),
      listen: (wake) => this.#subscriber.listen(this.#channelOf(name), wake),
    });
  }

  async tryAcquire(name: string): Promise<HeldLock | null> {
    this.#checkUsable(name);
    return this.#attempt(name);
  }

  /** Releases held locks (best effort, bounded in time), then quits a connection it opened. */
  async close(): Promise<void> {
    if (this.#closing.signal.aborted) return;
    this.#closing.abort(new SynodError('SYNOD_CLIENT_CLOSED', 'the Redis lock backend is closed'));
    await releaseAllBounded(this.#held);
    this.#subscriber.close();
    if (this.#ownsConnection) await closeRedis(this.#redis);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  #checkUsable(name: string): void {
    checkLockName(name);
    if (this.#closing.signal.aborted) throw this.#closing.signal.reason;
  }

  #keyOf(name: string): string {
    return this.#keyPrefix + name;
  }

  #channelOf(name: string): string {
    return `${this.#keyPrefix}released:${name}`;
  }

  async #attempt(name: string): Promise<TokenGrant | null> {
    try {
      if (!this.#reentrant) return await this.#attemptToken(name);
      return await this.#serially(name, () => this.#attemptReentrant(name));
    } catch (error) {
      throw driverError(`acquire of lock ${JSON.stringify(name)}`, error);
    }
  }

  async #attemptToken(name: string): Promise<TokenGrant | null> {
    const key = this.#keyOf(name);
    const token = newLockToken();
    const { ttlMs, renewIntervalMs, now } = this.#timing;
    const grantedAtMs = now();
    const reply = await this.#redis.set(key, token, 'PX', ttlMs, 'NX');
    if (reply !== 'OK') return null;
    const watchdog = new RenewalWatchdog({
      ttlMs, renewIntervalMs, now,
      renew: async () => (await extendTokenScript.run(this.#redis, [key], [token, ttlMs])) === 1,
    }, grantedAtMs);
    return new TokenGrant({
      name, lost: watchdog.lost, held: this.#held,
      release: async () => {
        watchdog.stop();
        await this.#runRelease(name, watchdog.lost, () =>
          releaseTokenScript.run(this.#redis, [key], [token, this.#channelOf(name)]));
      },
    });
  }

  async #attemptReentrant(name: string): Promise<TokenGrant | null> {
    const key = this.#keyOf(name);
    const { ttlMs, renewIntervalMs, now } = this.#timing;
    const chain = this.#chains.get(name);
    if (chain !== undefined && !chain.watchdog.lost.aborted) {
      const holds = await reentrantAcquireScript.run(this.#redis, [key], [ttlMs, chain.token]);
      if (Number(holds) > 0) return this.#holdOf(name, chain);
      // Our owner entry is gone from Redis: this chain is over; contend like anyone else.
      chain.watchdog.markLost('the reentrant hold count is gone from Redis');
    }
    const token = newLockToken();
    const grantedAtMs = now();
    const holds = Number(await reentrantAcquireScript.run(this.#redis, [key], [ttlMs, token]));
    if (holds === 0) return null;
    assert(holds === 1, 'reentrant acquire: a fresh owner token already had holds');
    const watchdog = new RenewalWatchdog({
      ttlMs, renewIntervalMs, now,
      renew: async () =>
        (await reentrantExtendScript.run(this.#redis, [key], [token, ttlMs])) === 1,
    }, grantedAtMs);
    const fresh: ReentrantChain = { token, watchdog, holds: 0 };
    this.#chains.set(name, fresh);
    watchdog.lost.addEventListener('abort', () => {
      if (this.#chains.get(name) === fresh) this.#chains.delete(name);
    }, { once: true });
    return this.#holdOf(name, fresh);
  }

  /** One more hold on `chain`; its release takes one hold back. */
  #holdOf(name: string, chain: ReentrantChain): TokenGrant {
    chain.holds += 1;
    const releaseHold = async (): Promise<void> => {
      assert(chain.holds > 0, 'reentrant release: more releases than holds');
      chain.holds -= 1;
      if (chain.holds === 0) {
        chain.watchdog.stop();
        if (this.#chains.get(name) === chain) this.#chains.delete(name);
      }
      const args = [chain.token, this.#timing.ttlMs, this.#channelOf(name)];
      await this.#runRelease(name, chain.watchdog.lost, () =>
        reentrantReleaseScript.run(this.#redis, [this.#keyOf(name)], args));
    };
    return new TokenGrant({
      name, lost: chain.watchdog.lost, held: this.#held,
      release: () => this.#serially(name, releaseHold),
    });
  }

  /**
   * Runs `operation` after every earlier reentrant operation on `name` has settled. A chain's
   * local hold count and its count in Redis only agree if they change in the same order: an
   * acquire that overtook the release of the last hold would add a hold to a chain whose watchdog
   * had already stopped.
   */
  #serially<T>(name: string, operation: () => Promise<T>): Promise<T> {
    const previous = this.#turns.get(name) ?? Promise.resolve();
    const result = previous.then(operation);
    const tail = result.then(() => undefined, () => undefined);
    this.#turns.set(name, tail);
    void tail.then(() => {
      if (this.#turns.get(name) === tail) this.#turns.delete(name);
    });
    return result;
  }

  /**
   * Runs a token-checked release script. After loss it still runs, since it may free a key that
   * is still ours, but its failure is ignored: releasing a lost lock is a no-op by contract.
   */
  async #runRelease(name: string, lost: AbortSignal, script: () => Promise<unknown>):
  Promise<void> {
    try {
      await script();
    } catch (error) {
      if (!lost.aborted) throw driverError(`release of lock ${JSON.stringify(name)}`, error);
    }
  }
}
