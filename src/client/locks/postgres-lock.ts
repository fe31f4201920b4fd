/**
 * Locks in PostgreSQL, in the three ways the source notes describe, behind one `LockBackend`:
 * - `'lease-row'` (default): one upsert takes the name's row if it is free or expired and bumps
 *   its version (sql-lock-schema.ts). Expiry is judged by the database's clock (`now()`), never a
 *   client's, so holders on machines with skewed clocks still agree. A RenewalWatchdog extends
 *   the row while the holder lives; a crashed holder's lock frees itself one TTL later.
 * - `'optimistic'`: the version column as a compare-and-set: read the row's version, then
 *   `UPDATE … WHERE version = <read> AND expires_at <= now()`; a changed row means someone else
 *   won. Same table, renewal and release as lease-row.
 * - `'for-update'`: a row lock held by an open transaction (postgres-for-update.ts).
 *
 * In every mode the fencing token is a counter PostgreSQL stores durably and never moves back:
 * release expires a row and keeps its version. Backends sharing a table must use the same mode.
 * `pg` is loaded on `connect`, so it stays an optional peer dependency.
 */

import type { Pool, PoolConfig } from 'pg';
import { assert, type Random } from '../../base/index.js';
import { LockBackendError, invalidArgument } from '../errors.js';
import type { AcquireOptions, HeldLock, LockBackend } from './lock.js';
import {
  ForUpdateLocks, backendError, fenceConnectionsMax, sqlState,
} from './postgres-for-update.js';
import { RenewalWatchdog } from './renewal-watchdog.js';
import {
  SqlLockRegistry, leaseStatements, newJitter, newOwner, pollUntilGranted, resolveSqlLockTiming,
  validateLockName, validateTableName, validateTimeoutMs, type LeaseStatements, type SqlDialect,
  type SqlGrant, type SqlLockMode, type SqlLockTiming,
} from './sql-lock-schema.js';

/** Options of `PostgresLockBackend.connect`: give exactly one of `connectionString` and `pool`. */
export interface PostgresLockBackendOptions {
  /** A libpq-style URL; the backend then owns a pool of `postgresPoolConnectionsMax`. */
  readonly connectionString?: string;
  /** A pool the caller owns; `close` does not end it. */
  readonly pool?: Pool;
  /** How long a grant or renewal keeps a lease row (and, for for-update, how long an unanswered
   * liveness probe is tolerated); default 30 000 ms. */
  readonly ttlMs?: number;
  /** Time between renewals or probes; default a third of the TTL. */
  readonly renewIntervalMs?: number;
  /** The first pause between polls of a waiting lease-row or optimistic acquire; default 25 ms. */
  readonly retryDelayMs?: number;
  /** The lease table; default `synod_locks`. for-update also uses `<table>_fences`. */
  readonly table?: string;
  /** How the mutex is made; default `'lease-row'`. */
  readonly mode?: PostgresLockMode;
}

/** The PostgreSQL modes: all three of the SQL backends' modes. */
export type PostgresLockMode = SqlLockMode;

/** Connections of the pool a backend opens from a connection string. */
export const postgresPoolConnectionsMax = 10;

/**
 * SQLSTATEs of a CREATE TABLE IF NOT EXISTS that lost a race with another one in the catalog: a
 * unique violation on pg_type or pg_class (23505), "relation already exists" (42P07), or "type
 * already exists" (42710: the other session created the table's row type first).
 */
const createRaceStates: ReadonlySet<string> = new Set(['23505', '42P07', '42710']);

const postgresDialect: SqlDialect = Object.freeze({
  param: (index: number) => `$${index}`,
  expiresAtColumn: 'expires_at',
  expiresAtType: 'timestamptz',
  now: 'now()',
  expiry: (ttlMsParam: string) =>
    `(now() + ${ttlMsParam}::double precision * interval '1 millisecond')`,
  released: `'-infinity'::timestamptz`,
});

/** The validated, defaulted options. */
interface Config {
  readonly mode: PostgresLockMode;
  readonly table: string;
  readonly timing: SqlLockTiming;
}

/** Locks as rows of one PostgreSQL table. */
export class PostgresLockBackend implements LockBackend {
  readonly kind = 'postgres' as const;
  readonly mode: PostgresLockMode;
  readonly #pool: Pool;
  readonly #ownedPools: readonly Pool[];
  readonly #statements: LeaseStatements;
  readonly #timing: SqlLockTiming;
  readonly #forUpdate: ForUpdateLocks | null;
  readonly #jitter: Random = newJitter();
  readonly #registry = new SqlLockRegistry('PostgreSQL');
  #closed: Promise<void> | null = null;

  private constructor(config: Config, pools: {
    pool: Pool; owned: readonly Pool[]; forUpdate: ForUpdateLocks | null;
  }) {
    this.mode = config.mode;
    this.#timing = config.timing;
    this.#statements = leaseStatements(config.table, postgresDialect);
    this.#pool = pools.pool;
    this.#ownedPools = pools.owned;
    this.#forUpdate = pools.forUpdate;
  }

  /** Validates the options, creates the tables if missing, and returns the backend. */
  static async connect(options: PostgresLockBackendOptions): Promise<PostgresLockBackend> {
    const config = resolveConfig(options);
    const { Pool: PoolClass } = await import('pg');
    const owned: Pool[] = [];
    const ownPool = (poolConfig: PoolConfig): Pool => {
      const pool = new PoolClass(poolConfig);
      // An idle connection that fails is dropped and replaced; the next query reconnects.
      pool.on('error', () => undefined);
      owned.push(pool);
      return pool;
    };
    const { connectionString } = options;
    const pool = options.pool ?? ownPool({ connectionString, max: postgresPoolConnectionsMax });
    // for-update's fences and cancels get their own connections: the main pool may be full of
    // waiters, and a fence bump that waited for one of them would wait forever.
    const forUpdate = config.mode !== 'for-update' ? null : new ForUpdateLocks({
      pool,
      control: ownPool({ ...callerPoolConfig(options), max: fenceConnectionsMax }),
      table: config.table,
      timing: config.timing,
    });
    const backend = new PostgresLockBackend(config, { pool, owned, forUpdate });
    try {
      await createIfMissing(() => pool.query(backend.#statements.createTable));
      if (forUpdate !== null) await createIfMissing(() => forUpdate.setUp());
    } catch (error) {
      await Promise.allSettled(owned.map((ownedPool) => ownedPool.end()));
      throw backendError(error, 'cannot create the PostgreSQL lock tables');
    }
    return backend;
  }

  async acquire(name: string, options: AcquireOptions = {}): Promise<HeldLock> {
    validateLockName(name);
    validateTimeoutMs(options.timeoutMs);
    const { timeoutMs, signal } = options;
    return await this.#registry.admit(async (closing) => {
      const signals = [signal, closing];
      if (this.#forUpdate !== null) {
        return this.#registry.track(await this.#forUpdate.grant(name, { timeoutMs, signals }));
      }
      return await pollUntilGranted(async () => {
        const grant = await this.#attemptLease(name);
        return grant === null ? null : this.#registry.track(grant);
      }, {
        name, timeoutMs, signals, jitter: this.#jitter, retryDelayMs: this.#timing.retryDelayMs,
        discard: (held) => held.release(),
      });
    });
  }

  async tryAcquire(name: string): Promise<HeldLock | null> {
    validateLockName(name);
    return await this.#registry.admit(async () => {
      const grant = this.#forUpdate !== null
        ? await this.#forUpdate.tryGrant(name)
        : await this.#attemptLease(name);
      return grant === null ? null : this.#registry.track(grant);
    });
  }

  /** Stops waits, releases what this backend holds, and ends the pools it opened (only those). */
  close(): Promise<void> {
    this.#closed ??= (async () => {
      await this.#registry.close();
      await Promise.allSettled(this.#ownedPools.map((pool) => pool.end()));
    })();
    return this.#closed;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  /** One try at a lease-row or optimistic lock: the grant, or null when someone holds it. */
  async #attemptLease(name: string): Promise<SqlGrant | null> {
    const owner = newOwner();
    const ttlMs = this.#timing.ttlMs;
    // Taken before the request, so the holder's belief never outlasts the row's expiry.
    const grantedAtMs = performance.now();
    let version: bigint | null;
    try {
      if (this.mode === 'lease-row') {
        const grantStatement = this.#statements.grant;
        const granted = await this.#pool.query<VersionRow>(grantStatement, [name, owner, ttlMs]);
        version = versionOf(granted.rows[0]);
      } else {
        version = await this.#attemptOptimistic(name, owner);
      }
    } catch (error) {
      throw backendError(error, `a PostgreSQL lock statement for ${name} failed`);
    }
    return version === null ? null : this.#leaseGrant({ name, owner, version, grantedAtMs });
  }

  /** Read the version, then take the row only if it is still at that version and free. */
  async #attemptOptimistic(name: string, owner: string): Promise<bigint | null> {
    const ttlMs = this.#timing.ttlMs;
    const statements = this.#statements;
    type ReadRow = VersionRow & { free: boolean };
    const read = (await this.#pool.query<ReadRow>(statements.read, [name])).rows[0];
    if (read === undefined) {
      const insertFirst = statements.insertFirst;
      const created = await this.#pool.query<VersionRow>(insertFirst, [name, owner, ttlMs]);
      // Another contender created the row between our read and insert: it holds the lock.
      return versionOf(created.rows[0]);
    }
    if (!read.free) return null;
    const granted = await this.#pool.query<VersionRow>(
      statements.compareAndGrant, [name, owner, read.version, ttlMs]);
    const version = versionOf(granted.rows[0]);
    // The CAS matched version `read.version`, so it can only have written the next one.
    assert(version === null || version === BigInt(read.version) + 1n,
      'postgres lock: a grant bumps the version by one');
    return version;
  }

  /** A lease row this backend now holds, renewed by a watchdog until released or lost. */
  #leaseGrant(grant: {
    name: string; owner: string; version: bigint; grantedAtMs: number;
  }): SqlGrant {
    const { name, owner, version } = grant;
    const ttlMs = this.#timing.ttlMs;
    const key = [name, owner, version.toString()];
    const watchdog = new RenewalWatchdog({
      ttlMs,
      renewIntervalMs: this.#timing.renewIntervalMs,
      renew: async () => {
        const renewed = await this.#pool.query(this.#statements.renew, [...key, ttlMs]);
        return renewed.rowCount === 1;
      },
    }, grant.grantedAtMs);
    return {
      name,
      fencingToken: version,
      lost: watchdog.lost,
      release: async () => {
        watchdog.stop();
        try {
          await this.#pool.query(this.#statements.release, key);
        } catch (error) {
          const message = `releasing lock ${name} failed; it expires within the TTL`;
          throw new LockBackendError(message, { cause: error });
        }
      },
    };
  }
}

/** A row's version column: int8 arrives from pg as a decimal string. */
interface VersionRow {
  readonly version: string;
}

function versionOf(row: VersionRow | undefined): bigint | null {
  return row === undefined ? null : BigInt(row.version);
}

/** How to open more connections like the caller's: its pool's settings, or its URL. */
function callerPoolConfig(options: PostgresLockBackendOptions): PoolConfig {
  return options.pool?.options ?? { connectionString: options.connectionString };
}

function resolveConfig(options: PostgresLockBackendOptions): Config {
  if ((options.connectionString === undefined) === (options.pool === undefined)) {
    throw invalidArgument('give exactly one of connectionString and pool');
  }
  const mode = options.mode ?? 'lease-row';
  if (mode !== 'lease-row' && mode !== 'for-update' && mode !== 'optimistic') {
    throw invalidArgument(
      `postgres lock mode must be lease-row, for-update or optimistic, not ${String(mode)}`);
  }
  const table = options.table ?? 'synod_locks';
  validateTableName(table);
  return Object.freeze({ mode, table, timing: resolveSqlLockTiming(options) });
}

/** Runs a CREATE … IF NOT EXISTS, which PostgreSQL can fail when another session races it. */
async function createIfMissing(create: () => Promise<unknown>): Promise<void> {
  try {
    await create();
  } catch (error) {
    const state = sqlState(error);
    if (state === undefined || !createRaceStates.has(state)) throw error;
    // The other session's CREATE won; one retry confirms the table is there.
    await create();
  }
}
