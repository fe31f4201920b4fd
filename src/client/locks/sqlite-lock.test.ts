// SqliteLockBackend on a real database file: exclusion, fencing, expiry, renewal, waiting, and a
// second process on the same file.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startContender } from '../../../test/support/lock-contender-process.js';
import {
  abortedWithin, firstNonRisingIndex, rejectionCodeOf, rejectionOf, waitFor,
} from '../../../test/support/lock-waits.js';
import type { HeldLock } from './lock.js';
import { sqlLockNameBytesMax } from './sql-lock-schema.js';
import {
  SqliteLockBackend, type SqliteLockBackendOptions, type SqliteLockMode,
} from './sqlite-lock.js';

let directory: string;
let fileIndex = 0;
const opened: SqliteLockBackend[] = [];

beforeAll(async () => {
  directory = await mkdtemp(join(tmpdir(), 'synod-sqlite-lock-'));
});
afterEach(async () => {
  await Promise.allSettled(opened.splice(0).map((backend) => backend.close()));
});
afterAll(async () => {
  await rm(directory, { recursive: true, force: true });
});

function freshPath(): string {
  fileIndex += 1;
  return join(directory, `locks-${fileIndex}.db`);
}

async function open(options: SqliteLockBackendOptions): Promise<SqliteLockBackend> {
  const backend = await SqliteLockBackend.open({ retryDelayMs: 2, ...options });
  opened.push(backend);
  return backend;
}

/** `count` backends on one file. */
function openMany(count: number, options: SqliteLockBackendOptions): Promise<SqliteLockBackend[]> {
  return Promise.all(Array.from({ length: count }, () => open(options)));
}

/** Expires a lease row directly, as if its holder had paused past the TTL. */
function expireRow(path: string, name: string): void {
  const db = new Database(path, { timeout: 1000 });
  try {
    const expire = db.prepare('UPDATE synod_locks SET expires_at_ms = 1 WHERE name = ?');
    expect(expire.run(name).changes).toBe(1);
  } finally {
    db.close();
  }
}

const modes: readonly SqliteLockMode[] = ['lease-row', 'optimistic'];

describe.each(modes)('SqliteLockBackend (%s)', (mode) => {
  it('lets one contender at a time hold a name, tokens rising in grant order', async () => {
    const backends = await openMany(4, { path: freshPath(), mode });
    const grantsPerContender = 8;
    let holders = 0;
    let holdersMax = 0;
    const tokens: bigint[] = [];
    await Promise.all(backends.map(async (backend) => {
      for (let round = 0; round < grantsPerContender; round++) {
        const held = await backend.acquire('exclusive', { timeoutMs: 30_000 });
        holders += 1;
        holdersMax = Math.max(holdersMax, holders);
        tokens.push(held.fencingToken!);
        // Give the others a chance to (wrongly) get in while this one holds the lock.
        await new Promise((resolve) => setTimeout(resolve, 1));
        holders -= 1;
        await held.release();
      }
    }));
    expect(holdersMax).toBe(1);
    expect(tokens).toHaveLength(backends.length * grantsPerContender);
    expect(firstNonRisingIndex(tokens)).toBe(-1);
  });

  it('keeps tokens rising across reopening the file', async () => {
    const path = freshPath();
    const first = await open({ path, mode });
    const tokens: bigint[] = [];
    for (let round = 0; round < 3; round++) {
      const held = await first.acquire('durable');
      tokens.push(held.fencingToken!);
      await held.release();
    }
    await first.close();
    const second = await open({ path, mode });
    const held = await second.acquire('durable');
    tokens.push(held.fencingToken!);
    expect(tokens).toEqual([1n, 2n, 3n, 4n]);
  });

  it('answers tryAcquire with null while held, and with the lock once released', async () => {
    const [a, b] = await openMany(2, { path: freshPath(), mode });
    const held = await a!.acquire('try');
    expect(await b!.tryAcquire('try')).toBeNull();
    // A second grant on the same backend is a different owner, so it is refused too.
    expect(await a!.tryAcquire('try')).toBeNull();
    await held.release();
    await held.release();
    const next = await b!.tryAcquire('try');
    expect(next).not.toBeNull();
    expect(next!.fencingToken! > held.fencingToken!).toBe(true);
  });

  it('lets another take over an expired lock; the old holder cannot release it', async () => {
    const path = freshPath();
    const [a, b, c] = await openMany(3, { path, mode, ttlMs: 10_000, renewIntervalMs: 50 });
    const old = await a!.acquire('expiring');
    expireRow(path, 'expiring');
    const taken = await b!.acquire('expiring', { timeoutMs: 10_000 });
    expect(taken.fencingToken! > old.fencingToken!).toBe(true);
    expect(String(await abortedWithin(old.lost))).toMatch(/renewal/);
    await old.release();
    expect(await c!.tryAcquire('expiring')).toBeNull();
    expect(taken.lost.aborted).toBe(false);
    await taken.release();
    expect(await c!.tryAcquire('expiring')).not.toBeNull();
  });

  it('keeps a renewed lock past its TTL', async () => {
    const path = freshPath();
    // Long enough that a loaded test machine's pauses do not outlast it between renewals.
    const ttlMs = 800;
    const a = await open({ path, mode, ttlMs, renewIntervalMs: 100 });
    const b = await open({ path, mode, ttlMs });
    const held = await a.acquire('renewed');
    const startMs = performance.now();
    let checks = 0;
    await waitFor(async () => {
      expect(await b.tryAcquire('renewed')).toBeNull();
      expect(held.lost.aborted).toBe(false);
      checks += 1;
      return performance.now() - startMs > 3 * ttlMs;
    }, { intervalMs: 20 });
    expect(checks).toBeGreaterThan(10);
    await held.release();
    expect(held.lost.aborted).toBe(false);
  });

  it('times out a wait with SYNOD_LOCK_TIMEOUT', async () => {
    const [a, b] = await openMany(2, { path: freshPath(), mode });
    await a!.acquire('busy');
    const startMs = performance.now();
    const waiting = b!.acquire('busy', { timeoutMs: 150 });
    expect(await rejectionCodeOf(waiting)).toBe('SYNOD_LOCK_TIMEOUT');
    expect(performance.now() - startMs).toBeGreaterThanOrEqual(140);
  });

  it('rejects an aborted wait with the signal reason and takes nothing', async () => {
    const [a, b, c] = await openMany(3, { path: freshPath(), mode });
    const held = await a!.acquire('aborted');
    const controller = new AbortController();
    const waiting = b!.acquire('aborted', { signal: controller.signal });
    const reason = new Error('caller gave up');
    controller.abort(reason);
    expect(await rejectionOf(waiting)).toBe(reason);
    const early = new AbortController();
    early.abort('already');
    expect(await rejectionOf(b!.acquire('aborted', { signal: early.signal }))).toBe('already');
    await held.release();
    expect(await c!.tryAcquire('aborted')).not.toBeNull();
  });

  it('refuses invalid names and options with SYNOD_INVALID_ARGUMENT', async () => {
    const path = freshPath();
    const backend = await open({ path, mode });
    const tooLong = 'x'.repeat(sqlLockNameBytesMax + 1);
    const invalid: unknown[] = ['', tooLong, 'é'.repeat(129), 'a\0b', 42];
    for (const name of invalid) {
      const refused = 'SYNOD_INVALID_ARGUMENT';
      expect(await rejectionCodeOf(backend.acquire(name as string))).toBe(refused);
      expect(await rejectionCodeOf(backend.tryAcquire(name as string))).toBe(refused);
    }
    expect(await backend.tryAcquire('x'.repeat(sqlLockNameBytesMax))).not.toBeNull();
    const badTimeout = backend.acquire('fine', { timeoutMs: -1 });
    expect(await rejectionCodeOf(badTimeout)).toBe('SYNOD_INVALID_ARGUMENT');
    const badOptions: Partial<SqliteLockBackendOptions>[] = [
      { ttlMs: 0 }, { ttlMs: 1000, renewIntervalMs: 1000 }, { table: 'drop table' },
      { mode: 'for-update' as SqliteLockMode }, { busyTimeoutMs: 60_000 },
    ];
    for (const bad of badOptions) {
      const opening = SqliteLockBackend.open({ path, mode, ...bad });
      expect(await rejectionCodeOf(opening)).toBe('SYNOD_INVALID_ARGUMENT');
    }
  });

  it('releases its locks on close, ends its waits, and refuses calls afterwards', async () => {
    const [a, b, c] = await openMany(3, { path: freshPath(), mode });
    const held: HeldLock = await a!.acquire('closing');
    const waiting = c!.acquire('closing');
    await c!.close();
    expect(await rejectionCodeOf(waiting)).toBe('SYNOD_CLIENT_CLOSED');
    await a!.close();
    expect(await b!.tryAcquire('closing')).not.toBeNull();
    expect(await rejectionCodeOf(a!.acquire('closing'))).toBe('SYNOD_CLIENT_CLOSED');
    expect(await rejectionCodeOf(a!.tryAcquire('closing'))).toBe('SYNOD_CLIENT_CLOSED');
    await held.release();
  });
});

describe('SqliteLockBackend across processes', () => {
  it('excludes a second process, hands over on release, and expires a killed holder', async () => {
    const path = freshPath();
    const ttlMs = 2_000;
    const local = await open({ path, ttlMs });
    const other = await startContender({
      backend: 'sqlite', target: path, name: 'shared', mode: 'lease-row', ttlMs,
    });
    try {
      other.send('acquire');
      const first = await other.next();
      expect(first.type).toBe('held');
      expect(await local.tryAcquire('shared')).toBeNull();

      const waiting = local.acquire('shared', { timeoutMs: 20_000 });
      other.send('release');
      expect((await other.next()).type).toBe('released');
      const mine = await waiting;
      expect(mine.fencingToken! > BigInt(first.token!)).toBe(true);

      other.send('acquire');
      const handedOver = other.next();
      await mine.release();
      const second = await handedOver;
      expect(second.type).toBe('held');
      expect(BigInt(second.token!) > mine.fencingToken!).toBe(true);

      // A holder that dies without releasing keeps the lock only until its TTL runs out.
      await other.kill();
      expect(await local.tryAcquire('shared')).toBeNull();
      const afterCrash = await local.acquire('shared', { timeoutMs: 20_000 });
      expect(afterCrash.fencingToken! > BigInt(second.token!)).toBe(true);
    } finally {
      await other.kill();
    }
  });
});
