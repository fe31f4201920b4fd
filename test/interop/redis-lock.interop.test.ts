/**
 * The Redis and Redlock lock backends against real redis-server processes (no persistence):
 * mutual exclusion, safe release, the watchdog, loss detection, reentrancy, timeouts and aborts,
 * Redlock's majority — and, measured honestly, the unsafety both have when a server restarts
 * without its data while a lock is held.
 */

import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { HeldLock, LockBackend } from '../../src/client/locks/lock.js';
import { RedisLockBackend, type RedisLockOptions } from '../../src/client/locks/redis-lock.js';
import { RedlockBackend, type RedlockOptions } from '../../src/client/locks/redlock.js';
import { startRedisServer, startRedisServers, type RedisServer } from '../support/redis-servers.js';

/** Polls `condition` every few ms until it holds; fails after `deadlineMs`. */
async function waitUntil(
  what: string, condition: () => boolean | Promise<boolean>, deadlineMs = 5_000,
): Promise<void> {
  const start = performance.now();
  while (!(await condition())) {
    if (performance.now() - start > deadlineMs) {
      throw new Error(`not within ${deadlineMs} ms: ${what}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/** Resolves with the signal's reason when it aborts; fails after `deadlineMs`. */
function abortReason(signal: AbortSignal, deadlineMs = 5_000): Promise<unknown> {
  if (signal.aborted) return Promise.resolve(signal.reason);
  return new Promise((resolve, reject) => {
    const fail = (): void => reject(new Error(`signal not aborted within ${deadlineMs} ms`));
    const timer = setTimeout(fail, deadlineMs);
    signal.addEventListener('abort', () => {
      clearTimeout(timer);
      resolve(signal.reason);
    }, { once: true });
  });
}

/** The rejection of `promise` (fails the test if it resolves). */
async function rejectionOf(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error('expected a rejection');
}

let nameCounter = 0;
/** A lock name no other test uses. */
function freshName(label: string): string {
  nameCounter += 1;
  return `${label}-${nameCounter}`;
}
const keyOf = (name: string): string => `synod:lock:${name}`;

/** How many connections listen for `name`'s release messages. */
async function subscribersOf(admin: Redis, name: string): Promise<number> {
  const [, count] = await admin.pubsub('NUMSUB', `synod:lock:released:${name}`);
  return Number(count);
}

const opened: { close(): Promise<void> }[] = [];
const clients: Redis[] = [];

afterEach(async () => {
  await Promise.allSettled(opened.splice(0).map((backend) => backend.close()));
  for (const client of clients.splice(0)) client.disconnect();
});

/** A test-owned ioredis client (reconnecting quickly after a server restart). */
function client(server: RedisServer): Redis {
  const redis = new Redis(server.url, { retryStrategy: () => 20, maxRetriesPerRequest: 1 });
  redis.on('error', () => undefined);
  clients.push(redis);
  return redis;
}

describe('RedisLockBackend', () => {
  let server: RedisServer;
  let admin: Redis;

  async function backend(options: RedisLockOptions = {}): Promise<RedisLockBackend> {
    const created = await RedisLockBackend.connect({ url: server.url, ...options });
    opened.push(created);
    return created;
  }

  beforeAll(async () => {
    server = await startRedisServer();
  });

  beforeEach(async () => {
    if (!server.running) await server.restart();
    admin = client(server);
  });

  afterAll(async () => {
    await server.stop();
  });

  it('lets one contender at a time in: a racy read-modify-write loses no update', async () => {
    const name = freshName('exclusion');
    const counterKey = `counter:${name}`;
    const contenders = await Promise.all([1, 2, 3, 4, 5].map(() =>
      backend({ retryDelayMs: 5, retryDelayMaxMs: 40 })));
    const rounds = 6;
    let holders = 0;
    let holdersMax = 0;
    await Promise.all(contenders.map(async (contender) => {
      for (let round = 0; round < rounds; round++) {
        const held = await contender.acquire(name, { timeoutMs: 20_000 });
        holders += 1;
        holdersMax = Math.max(holdersMax, holders);
        // Read, yield to the other contenders, write back: without exclusion, increments are lost.
        const value = Number(await admin.get(counterKey) ?? '0');
        await new Promise((resolve) => setImmediate(resolve));
        await admin.set(counterKey, String(value + 1));
        holders -= 1;
        await held.release();
      }
    }));
    expect(holdersMax).toBe(1);
    expect(Number(await admin.get(counterKey))).toBe(contenders.length * rounds);
  });

  it('tryAcquire answers null while the lock is held, and the lock once released', async () => {
    const name = freshName('try');
    const [first, second] = [await backend(), await backend()];
    const held = await first.acquire(name);
    expect(held.fencingToken).toBeNull();
    expect(await second.tryAcquire(name)).toBeNull();
    // Not reentrant by default: the holder's own backend is refused too.
    expect(await first.tryAcquire(name)).toBeNull();
    await held.release();
    expect(await admin.exists(keyOf(name))).toBe(0);
    const next = await second.tryAcquire(name);
    expect(next).not.toBeNull();
    await next!.release();
  });

  it('wakes a waiter by the release message, long before its next poll', async () => {
    const name = freshName('wake');
    const holder = await backend();
    const waiter = await backend({ retryDelayMs: 10_000, retryDelayMaxMs: 10_000 });
    const held = await holder.acquire(name);
    const waiting = waiter.acquire(name, { timeoutMs: 20_000 });
    await waitUntil('the waiter subscribed', async () => (await subscribersOf(admin, name)) === 1);
    const releasedAtMs = performance.now();
    await held.release();
    const next = await waiting;
    expect(performance.now() - releasedAtMs).toBeLessThan(2_000);
    await next.release();
  });

  it('never deletes the next holder\'s key when a lock whose TTL ran out is released', async () => {
    const name = freshName('expired');
    const partitioned = client(server);
    const stale =
      await RedisLockBackend.connect({ redis: partitioned, ttlMs: 200, renewIntervalMs: 50 });
    opened.push(stale);
    const other = await backend({ retryDelayMs: 10, retryDelayMaxMs: 20 });
    const staleHeld = await stale.acquire(name);
    // The other contender waits; the stale holder never releases, so only a poll can find it free.
    const waiting = other.acquire(name, { timeoutMs: 10_000 });
    partitioned.disconnect(); // The holder is cut off: its renewals fail and the key expires.
    const reason = await abortReason(staleHeld.lost);
    expect((reason as Error).message).toMatch(/TTL passed/);
    const next = await waiting;
    const nextValue = await admin.get(keyOf(name));
    expect(nextValue).not.toBeNull();
    // The stale holder comes back and releases what it believes it holds.
    await partitioned.connect();
    await staleHeld.release();
    expect(await admin.get(keyOf(name))).toBe(nextValue);
    expect(next.lost.aborted).toBe(false);
    await next.release();
  });

  it('keeps a lock well past its TTL while the holder lives (the watchdog)', async () => {
    const name = freshName('watchdog');
    const holder = await backend({ ttlMs: 300, renewIntervalMs: 100 });
    const other = await backend();
    const held = await holder.acquire(name);
    const grantedAtMs = performance.now();
    await waitUntil('four TTLs have passed', async () => {
      expect(await admin.pttl(keyOf(name))).toBeGreaterThan(0);
      expect(held.lost.aborted).toBe(false);
      return performance.now() - grantedAtMs > 1_200;
    });
    expect(await other.tryAcquire(name)).toBeNull();
    await held.release();
    expect(await admin.exists(keyOf(name))).toBe(0);
  });

  it('fires lost when the key is deleted or overwritten, and spares the intruder', async () => {
    const holder = await backend({ ttlMs: 3_000, renewIntervalMs: 50 });
    const deleted = await holder.acquire(freshName('deleted'));
    await admin.del(keyOf(deleted.name));
    expect(((await abortReason(deleted.lost)) as Error).message).toMatch(/someone else or gone/);

    const overwritten = await holder.acquire(freshName('overwritten'));
    await admin.set(keyOf(overwritten.name), 'intruder', 'PX', 60_000);
    await abortReason(overwritten.lost);
    await overwritten.release();
    expect(await admin.get(keyOf(overwritten.name))).toBe('intruder');
  });

  it('counts reentrant holds in a hash and frees the lock when the count is zero', async () => {
    const name = freshName('reentrant');
    const reentrant = await backend({ reentrant: true });
    const otherReentrant = await backend({ reentrant: true });
    const plain = await backend();
    const outer = await reentrant.acquire(name);
    const inner = await reentrant.acquire(name, { timeoutMs: 1_000 });
    expect(await admin.type(keyOf(name))).toBe('hash');
    expect(await admin.hvals(keyOf(name))).toEqual(['2']);
    expect(await otherReentrant.tryAcquire(name)).toBeNull();
    expect(await plain.tryAcquire(name)).toBeNull();

    await inner.release();
    await inner.release(); // A second release of the same hold takes nothing more.
    expect(await admin.hvals(keyOf(name))).toEqual(['1']);
    expect(await plain.tryAcquire(name)).toBeNull();
    const waiting = otherReentrant.acquire(name, { timeoutMs: 10_000 });
    await outer.release();
    const next = await waiting;
    expect(await admin.hlen(keyOf(name))).toBe(1);
    expect(outer.lost.aborted).toBe(false);
    await next.release();
    expect(await admin.exists(keyOf(name))).toBe(0);
  });

  it('gives up after timeoutMs with SYNOD_LOCK_TIMEOUT and leaves the holder alone', async () => {
    const name = freshName('timeout');
    const [holder, waiter] = [await backend(), await backend()];
    const held = await holder.acquire(name);
    const holderValue = await admin.get(keyOf(name));
    const startedMs = performance.now();
    const error = await rejectionOf(waiter.acquire(name, { timeoutMs: 150 }));
    expect(performance.now() - startedMs).toBeGreaterThanOrEqual(145);
    expect(error).toMatchObject({ name: 'LockTimeoutError', code: 'SYNOD_LOCK_TIMEOUT' });
    expect(await admin.get(keyOf(name))).toBe(holderValue);
    await held.release();
  });

  it('rejects an aborted wait with the signal\'s reason and stops listening', async () => {
    const name = freshName('abort');
    const [holder, waiter] = [await backend(), await backend()];
    const held = await holder.acquire(name);
    const controller = new AbortController();
    const waiting = rejectionOf(waiter.acquire(name, { signal: controller.signal }));
    await waitUntil('the waiter subscribed', async () => (await subscribersOf(admin, name)) === 1);
    const reason = new Error('the caller went away');
    controller.abort(reason);
    expect(await waiting).toBe(reason);
    await waitUntil('the waiter left', async () => (await subscribersOf(admin, name)) === 0);
    const preAborted = AbortSignal.abort('already');
    expect(await rejectionOf(waiter.acquire(name, { signal: preAborted }))).toBe('already');
    await held.release();
  });

  it('close() releases its locks, refuses new work, leaves a passed-in client open', async () => {
    const name = freshName('close');
    const shared = client(server);
    const closing = await RedisLockBackend.connect({ redis: shared });
    await closing.acquire(name);
    expect(await admin.exists(keyOf(name))).toBe(1);
    await closing.close();
    expect(await admin.exists(keyOf(name))).toBe(0);
    expect(await rejectionOf(closing.acquire(name))).toMatchObject({ code: 'SYNOD_CLIENT_CLOSED' });
    expect(await shared.ping()).toBe('PONG');
  });

  it('reports a dead server as SYNOD_LOCK_BACKEND_UNAVAILABLE', async () => {
    const alone = await backend();
    await server.kill();
    const error = await rejectionOf(alone.tryAcquire(freshName('dead')));
    expect(error).toMatchObject({
      name: 'LockBackendError', code: 'SYNOD_LOCK_BACKEND_UNAVAILABLE',
    });
    expect((error as Error).cause).toBeInstanceOf(Error);
  });

  it('UNSAFE: after a restart without persistence a second holder is granted it', async () => {
    // Redis keeps locks in memory only: kill -9 and restart (or a failover to a replica that had
    // not received the SET) forgets the holder's key. Nothing tells the first holder until its next
    // renewal is refused, so for up to one renewal interval two holders both believe they hold it.
    const name = freshName('restart');
    const first = await backend({ ttlMs: 6_000, renewIntervalMs: 2_000 });
    const second = await backend();
    const firstHeld = await first.acquire(name);
    expect(await second.tryAcquire(name)).toBeNull();
    await server.restart();
    const secondHeld = await second.acquire(name, { timeoutMs: 5_000 });
    expect(secondHeld.lost.aborted).toBe(false);
    expect(firstHeld.lost.aborted).toBe(false); // Two holders at once.
    // The first holder finds out only when its renewal meets the second holder's key.
    expect(((await abortReason(firstHeld.lost, 10_000)) as Error).message).toMatch(/someone else/);
    await firstHeld.release();
    expect(secondHeld.lost.aborted).toBe(false);
    expect(await admin.exists(keyOf(name))).toBe(1);
    await secondHeld.release();
  });
});

describe('RedlockBackend over three servers', () => {
  let servers: RedisServer[];

  async function redlock(options: RedlockOptions = {}): Promise<RedlockBackend> {
    const urls = servers.map((server) => server.url);
    const created = await RedlockBackend.connect({ urls, ...options });
    opened.push(created);
    return created;
  }

  /** Each server's value of `name`'s key (null where absent or the server is down). */
  async function valuesOf(name: string): Promise<(string | null)[]> {
    return Promise.all(servers.map(async (server) =>
      server.running ? client(server).get(keyOf(name)) : null));
  }

  /** The lock, once the backend's clients have reconnected after restarts. */
  async function grantedEventually(backend: LockBackend, name: string): Promise<HeldLock> {
    return backend.acquire(name, { timeoutMs: 10_000 });
  }

  beforeAll(async () => {
    servers = await startRedisServers(3);
  });

  beforeEach(async () => {
    const stopped = servers.filter((server) => !server.running);
    await Promise.all(stopped.map((server) => server.restart()));
  });

  afterAll(async () => {
    await Promise.all(servers.map((server) => server.stop()));
  });

  it('sets one token on every server and releases it on every server', async () => {
    const name = freshName('redlock');
    const [backend, other] = [await redlock(), await redlock()];
    const held = await backend.acquire(name, { timeoutMs: 5_000 });
    const values = await valuesOf(name);
    expect(values[0]).toMatch(/^[0-9a-f]{32}$/);
    expect(new Set(values).size).toBe(1);
    expect(held.fencingToken).toBeNull();
    expect(await other.tryAcquire(name)).toBeNull();
    await held.release();
    expect(await valuesOf(name)).toEqual([null, null, null]);
  });

  it('extends on the servers through the watchdog while held', async () => {
    const name = freshName('redlock-watchdog');
    const backend = await redlock({ ttlMs: 300, renewIntervalMs: 80 });
    const held = await backend.acquire(name, { timeoutMs: 5_000 });
    const grantedAtMs = performance.now();
    await waitUntil('four TTLs have passed', async () => {
      expect((await valuesOf(name)).every((value) => value !== null)).toBe(true);
      expect(held.lost.aborted).toBe(false);
      return performance.now() - grantedAtMs > 1_200;
    });
    await held.release();
  });

  it('acquires with two of three servers, refuses with one and gives its vote back', async () => {
    const name = freshName('redlock-majority');
    const backend = await redlock({ retryDelayMs: 10, retryDelayMaxMs: 30 });
    await servers[2]!.kill();
    const held = await grantedEventually(backend, name);
    expect((await valuesOf(name)).slice(0, 2).every((value) => value !== null)).toBe(true);
    await held.release();

    await servers[1]!.kill();
    expect(await backend.tryAcquire(name)).toBeNull();
    const error = await rejectionOf(backend.acquire(name, { timeoutMs: 300 }));
    expect(error).toMatchObject({ code: 'SYNOD_LOCK_TIMEOUT' });
    // The one vote it did get was given back, so it blocks nobody.
    expect(await client(servers[0]!).exists(keyOf(name))).toBe(0);

    await servers[0]!.kill();
    expect(await rejectionOf(backend.tryAcquire(name)))
      .toMatchObject({ code: 'SYNOD_LOCK_BACKEND_UNAVAILABLE' });
  });

  it('UNSAFE: one restart without persistence lets a second client win a majority', async () => {
    // antirez's own counter-example: the first client wins servers 0 and 1 while 2 is down; 2
    // comes back empty and 1 restarts without its data; the second client then wins 1 and 2.
    const name = freshName('redlock-restart');
    const first = await redlock({ ttlMs: 6_000, renewIntervalMs: 2_000 });
    await servers[2]!.kill();
    const firstHeld = await grantedEventually(first, name);
    await servers[2]!.restart();
    await servers[1]!.restart();
    const second = await redlock();
    const secondHeld = await grantedEventually(second, name);
    expect(firstHeld.lost.aborted).toBe(false); // Two holders at once.
    const values = await valuesOf(name);
    expect(values[0]).not.toBe(values[1]);
    expect(values[1]).toBe(values[2]);
    // The first holder's next extension meets a majority of "not yours" and gives up.
    expect(((await abortReason(firstHeld.lost, 10_000)) as Error).message).toMatch(/someone else/);
    await firstHeld.release();
    expect((await valuesOf(name))[1]).toBe(values[1]);
    await secondHeld.release();
  });
});
