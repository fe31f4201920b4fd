// PostgresLockBackend in its three modes against a real PostgreSQL 15 (postgres-server.ts):
// exclusion, fencing, waiting, expiry and renewal, killed holders and connections, and server
// restarts while a lock is held.
import pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  PostgresLockBackend, type PostgresLockBackendOptions, type PostgresLockMode,
} from '../../src/client/locks/postgres-lock.js';
import { sqlLockNameBytesMax } from '../../src/client/locks/sql-lock-schema.js';
import { startContender } from '../support/lock-contender-process.js';
import {
  abortedWithin, firstNonRisingIndex, rejectionCodeOf, rejectionOf, waitFor,
} from '../support/lock-waits.js';
import { startPostgres, type PostgresServer } from '../support/postgres-server.js';

let server: PostgresServer;
let admin: pg.Pool;
const opened: PostgresLockBackend[] = [];

beforeAll(async () => {
  server = await startPostgres();
  admin = new pg.Pool({ connectionString: server.connectionString, max: 2 });
  admin.on('error', () => undefined);
});
afterEach(async () => {
  await Promise.allSettled(opened.splice(0).map((backend) => backend.close()));
});
afterAll(async () => {
  await admin?.end();
  await server?.stop();
});

/** One table per mode: backends sharing a table must share a mode. */
function tableOf(mode: PostgresLockMode): string {
  return `locks_${mode.replace('-', '_')}`;
}

type ConnectOptions = Partial<PostgresLockBackendOptions> & { readonly applicationName?: string };

async function connect(
  mode: PostgresLockMode, options: ConnectOptions = {},
): Promise<PostgresLockBackend> {
  const { applicationName, ...rest } = options;
  const url = new URL(server.connectionString);
  if (applicationName !== undefined) url.searchParams.set('application_name', applicationName);
  const backend = await PostgresLockBackend.connect({
    connectionString: url.toString(), mode, table: tableOf(mode), retryDelayMs: 2, ...rest,
  });
  opened.push(backend);
  return backend;
}

function connectMany(
  count: number, mode: PostgresLockMode, options: ConnectOptions = {},
): Promise<PostgresLockBackend[]> {
  return Promise.all(Array.from({ length: count }, () => connect(mode, options)));
}

/** Expires a lease row in the database, as if its holder had paused past the TTL. */
async function expireRow(mode: PostgresLockMode, name: string): Promise<void> {
  const result = await admin.query(
    `UPDATE ${tableOf(mode)} SET expires_at = now() - interval '1 second' WHERE name = $1`, [name]);
  expect(result.rowCount).toBe(1);
}

/** The version stored in `name`'s row. */
async function storedVersion(mode: PostgresLockMode, name: string): Promise<bigint> {
  const result = await admin.query(`SELECT version FROM ${tableOf(mode)} WHERE name = $1`, [name]);
  return BigInt(result.rows[0].version);
}

/** A lease row's expiry in microseconds since the epoch, by the database. */
async function expiryOf(mode: PostgresLockMode, name: string): Promise<bigint> {
  const result = await admin.query(`SELECT (extract(epoch FROM expires_at) * 1000000)::bigint ` +
    `AS micros FROM ${tableOf(mode)} WHERE name = $1`, [name]);
  return BigInt(result.rows[0].micros);
}

/** True once exactly one session waits on a row lock. */
async function oneSessionWaitsOnALock(): Promise<boolean> {
  const waiting = await admin.query(`SELECT 1 FROM pg_stat_activity ` +
    `WHERE wait_event_type = 'Lock' AND query LIKE '%FOR UPDATE%'`);
  return waiting.rowCount === 1;
}

const modes: readonly PostgresLockMode[] = ['lease-row', 'optimistic', 'for-update'];
const leaseModes: readonly PostgresLockMode[] = ['lease-row', 'optimistic'];

describe.each(modes)('PostgresLockBackend (%s)', (mode) => {
  it('lets one contender at a time hold a name, tokens rising in grant order', async () => {
    const backends = await connectMany(4, mode);
    const grantsPerContender = 6;
    let holders = 0;
    let holdersMax = 0;
    const tokens: bigint[] = [];
    await Promise.all(backends.map(async (backend) => {
      for (let round = 0; round < grantsPerContender; round++) {
        const held = await backend.acquire('exclusive', { timeoutMs: 60_000 });
        holders += 1;
        holdersMax = Math.max(holdersMax, holders);
        tokens.push(held.fencingToken!);
        // Give the others a chance to (wrongly) get in while this one holds the lock.
        await new Promise((resolve) => setTimeout(resolve, 2));
        holders -= 1;
        await held.release();
      }
    }));
    expect(holdersMax).toBe(1);
    expect(tokens).toHaveLength(backends.length * grantsPerContender);
    expect(firstNonRisingIndex(tokens)).toBe(-1);
  });

  it('answers tryAcquire with null while held, and with the lock once released', async () => {
    const [a, b] = await connectMany(2, mode);
    const held = await a!.acquire('try');
    expect(await b!.tryAcquire('try')).toBeNull();
    expect(await a!.tryAcquire('try')).toBeNull();
    await held.release();
    await held.release();
    const next = await b!.tryAcquire('try');
    expect(next).not.toBeNull();
    expect(next!.fencingToken! > held.fencingToken!).toBe(true);
  });

  it('keeps a lock past its TTL while the watchdog renews (or probes) it', async () => {
    const ttlMs = 800;
    const a = await connect(mode, { ttlMs, renewIntervalMs: 100 });
    const b = await connect(mode, { ttlMs });
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
    const [a, b] = await connectMany(2, mode);
    await a!.acquire('busy');
    const startMs = performance.now();
    const waiting = b!.acquire('busy', { timeoutMs: 200 });
    expect(await rejectionCodeOf(waiting)).toBe('SYNOD_LOCK_TIMEOUT');
    expect(performance.now() - startMs).toBeGreaterThanOrEqual(190);
  });

  it('rejects an aborted wait with the signal reason and takes nothing', async () => {
    const [a, b, c] = await connectMany(3, mode);
    const held = await a!.acquire('aborted');
    const controller = new AbortController();
    const waiting = b!.acquire('aborted', { signal: controller.signal });
    const reason = new Error('caller gave up');
    // for-update: abort while the waiter is queued on the row lock inside PostgreSQL.
    if (mode === 'for-update') await waitFor(oneSessionWaitsOnALock);
    controller.abort(reason);
    expect(await rejectionOf(waiting)).toBe(reason);
    const early = new AbortController();
    early.abort('already');
    expect(await rejectionOf(b!.acquire('aborted', { signal: early.signal }))).toBe('already');
    await held.release();
    expect(await c!.tryAcquire('aborted')).not.toBeNull();
  });

  it('refuses invalid names and options with SYNOD_INVALID_ARGUMENT', async () => {
    const backend = await connect(mode);
    const tooLong = 'x'.repeat(sqlLockNameBytesMax + 1);
    const invalid: unknown[] = ['', tooLong, 'é'.repeat(129), 'a\0b', null];
    for (const name of invalid) {
      const refused = 'SYNOD_INVALID_ARGUMENT';
      expect(await rejectionCodeOf(backend.acquire(name as string))).toBe(refused);
      expect(await rejectionCodeOf(backend.tryAcquire(name as string))).toBe(refused);
    }
    expect(await backend.tryAcquire('x'.repeat(sqlLockNameBytesMax))).not.toBeNull();
    const badOptions: Partial<PostgresLockBackendOptions>[] = [
      { ttlMs: 10 }, { ttlMs: 1000, renewIntervalMs: 2000 }, { table: 'locks; drop table x' },
      { mode: 'advisory' as PostgresLockMode }, { pool: admin },
    ];
    for (const bad of badOptions) {
      const connecting = PostgresLockBackend.connect({
        connectionString: server.connectionString, mode, ...bad,
      });
      expect(await rejectionCodeOf(connecting)).toBe('SYNOD_INVALID_ARGUMENT');
    }
  });

  it('uses a pool the caller owns, releasing its locks on close but not the pool', async () => {
    const pool = new pg.Pool({ connectionString: server.connectionString, max: 4 });
    try {
      const a = await PostgresLockBackend.connect({ pool, mode, table: tableOf(mode) });
      const b = await connect(mode);
      await a.acquire('closing');
      expect(await b.tryAcquire('closing')).toBeNull();
      await a.close();
      expect(await b.tryAcquire('closing')).not.toBeNull();
      expect(await rejectionCodeOf(a.acquire('closing'))).toBe('SYNOD_CLIENT_CLOSED');
      expect((await pool.query('SELECT 1 AS one')).rows[0]).toEqual({ one: 1 });
    } finally {
      await pool.end();
    }
  });

  it('ends a waiting acquire with SYNOD_CLIENT_CLOSED when its backend closes', async () => {
    const [a, b, c] = await connectMany(3, mode);
    await a!.acquire('close-waiting');
    const waiting = b!.acquire('close-waiting');
    if (mode === 'for-update') await waitFor(oneSessionWaitsOnALock);
    await b!.close();
    expect(await rejectionCodeOf(waiting)).toBe('SYNOD_CLIENT_CLOSED');
    await a!.close();
    // Neither the waiter nor the closed holder left the lock taken.
    expect(await c!.tryAcquire('close-waiting')).not.toBeNull();
  });

  it('frees a killed holder process: lease rows after the TTL, row locks at once', async () => {
    const ttlMs = mode === 'for-update' ? 30_000 : 3_000;
    const local = await connect(mode, { ttlMs });
    const other = await startContender({
      backend: 'postgres', target: server.connectionString, name: 'crashed', mode, ttlMs,
    });
    try {
      other.send('acquire');
      const held = await other.next();
      expect(held.type).toBe('held');
      expect(await local.tryAcquire('crashed')).toBeNull();
      const killedAtMs = performance.now();
      await other.kill();
      if (mode !== 'for-update') expect(await local.tryAcquire('crashed')).toBeNull();
      const next = await local.acquire('crashed', { timeoutMs: 20_000 });
      expect(next.fencingToken! > BigInt(held.token!)).toBe(true);
      // A row lock dies with its connection; it never waits out the (30 s) probe TTL.
      if (mode === 'for-update') expect(performance.now() - killedAtMs).toBeLessThan(ttlMs / 2);
    } finally {
      await other.kill();
    }
  });
});

describe.each(leaseModes)('PostgresLockBackend (%s) expiry', (mode) => {
  it('lets another take over an expired lock; the old holder cannot release it', async () => {
    const [a, b, c] = await connectMany(3, mode, { ttlMs: 20_000, renewIntervalMs: 50 });
    const old = await a!.acquire('expiring');
    await expireRow(mode, 'expiring');
    const taken = await b!.acquire('expiring', { timeoutMs: 10_000 });
    expect(taken.fencingToken! > old.fencingToken!).toBe(true);
    expect(String(await abortedWithin(old.lost))).toMatch(/renewal/);
    await old.release();
    expect(await c!.tryAcquire('expiring')).toBeNull();
    expect(taken.lost.aborted).toBe(false);
    await taken.release();
    expect(await c!.tryAcquire('expiring')).not.toBeNull();
  });
});

describe('PostgresLockBackend (for-update) connection loss', () => {
  it('fires lost when the holding connection is terminated; a waiter takes over', async () => {
    const holder = await connect('for-update', { applicationName: 'synod-holder' });
    const waiter = await connect('for-update');
    const held = await holder.acquire('terminated');
    const waiting = waiter.acquire('terminated', { timeoutMs: 30_000 });
    await waitFor(oneSessionWaitsOnALock);
    const killed = await admin.query(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity ` +
      `WHERE application_name = 'synod-holder' AND state = 'idle in transaction'`);
    expect(killed.rowCount).toBe(1);
    expect(String(await abortedWithin(held.lost))).toMatch(/connection/);
    const next = await waiting;
    expect(next.fencingToken! > held.fencingToken!).toBe(true);
    await held.release();
    expect(next.lost.aborted).toBe(false);
    expect(await holder.tryAcquire('terminated')).toBeNull();
  });
});

describe('PostgresLockBackend across a server restart', () => {
  it('keeps a held lease row through a crash restart, and tokens keep rising', async () => {
    const a = await connect('lease-row', { ttlMs: 30_000, renewIntervalMs: 100 });
    const b = await connect('lease-row');
    const held = await a.acquire('restart-kept');
    const expiryBefore = await expiryOf('lease-row', 'restart-kept');
    await server.restart({ shutdown: 'immediate' });
    // The row is durable, and a renewal after the restart pushes its expiry on.
    expect(await storedVersion('lease-row', 'restart-kept')).toBe(held.fencingToken);
    const renewed = async (): Promise<boolean> =>
      (await expiryOf('lease-row', 'restart-kept')) > expiryBefore;
    await waitFor(renewed, { deadlineMs: 20_000 });
    expect(held.lost.aborted).toBe(false);
    expect(await b.tryAcquire('restart-kept')).toBeNull();
    await held.release();
    const next = await b.acquire('restart-kept', { timeoutMs: 10_000 });
    expect(next.fencingToken! > held.fencingToken!).toBe(true);
  });

  it('loses a lease whose TTL runs out while the server is down; tokens still rise', async () => {
    const a = await connect('optimistic', { ttlMs: 600, renewIntervalMs: 100 });
    const b = await connect('optimistic', { ttlMs: 600 });
    const held = await a.acquire('restart-lost');
    const whileDown = (): Promise<unknown> => abortedWithin(held.lost, 20_000);
    await server.restart({ shutdown: 'immediate', whileDown });
    expect(held.lost.aborted).toBe(true);
    expect(await storedVersion('optimistic', 'restart-lost')).toBe(held.fencingToken);
    const next = await b.acquire('restart-lost', { timeoutMs: 10_000 });
    expect(next.fencingToken! > held.fencingToken!).toBe(true);
    await held.release();
    expect(await a.tryAcquire('restart-lost')).toBeNull();
  });

  it('loses a for-update lock with its connection on restart; fences survive', async () => {
    const a = await connect('for-update');
    const b = await connect('for-update');
    const held = await a.acquire('restart-row-lock');
    await server.restart({ shutdown: 'immediate' });
    expect(String(await abortedWithin(held.lost))).toMatch(/connection/);
    const next = await b.acquire('restart-row-lock', { timeoutMs: 10_000 });
    expect(next.fencingToken! > held.fencingToken!).toBe(true);
  });
});
