/**
 * Segments in a SQL table, Leaf's `leaf_alloc` with Tinyid's version column:
 *
 *   biz_tag varchar(128) primary key, max_id bigint, step int, version bigint, update_time
 *
 * `max_id` is the end of the last range handed out. Two ways to move it, chosen by `mode`:
 * - `'returning'` (default): one `UPDATE … SET max_id = max_id + step … RETURNING max_id`. The
 *   row lock (PostgreSQL) or the database write lock (SQLite) makes the read and the write one
 *   atomic step, so there is no conflict to retry.
 * - `'optimistic'` (Tinyid): read `max_id, version`, then `UPDATE … WHERE version = <read>`; zero
 *   rows changed means another allocator won, and the attempt repeats (bounded, jittered).
 * A tag's row is created on its first allocation (`INSERT … ON CONFLICT DO NOTHING`), starting at
 * `segmentFirstId`. A range is returned only after its own statement reported the change, so a
 * lost answer (a dropped connection) wastes a range and never repeats one: the retry runs a new
 * statement against the row as it is then.
 *
 * `pg` and `better-sqlite3` are loaded on `open`, so they stay optional peer dependencies.
 */

import type BetterSqlite3 from 'better-sqlite3';
import type { Pool } from 'pg';
import { assert, type Random } from '../../base/index.js';
import {
  SegmentStoreError, backoffDelayMs, conflictsExhausted, newJitter, pause, segmentAllocateAttemptsMaxDefault,
  segmentConflictDelayMsDefault, segmentConflictDelayMsMax, segmentFirstId, validateAllocation,
  type Segment, type SegmentStore,
} from './segment-store.js';

/** How `allocate` moves a tag's `max_id`. */
export type SqlSegmentMode = 'returning' | 'optimistic';

/** Where the table lives: a PostgreSQL pool or connection string, or a SQLite file. */
export type SqlSegmentTarget =
  | { readonly kind: 'postgres'; readonly connectionString: string }
  | { readonly kind: 'postgres'; readonly pool: Pool }
  | { readonly kind: 'sqlite'; readonly path: string };

/** Options of `SqlSegmentStore.open`. */
export interface SqlSegmentStoreOptions {
  readonly target: SqlSegmentTarget;
  /** The table; default `synod_id_segments`. Created if missing. */
  readonly table?: string;
  /** Default `'returning'`. */
  readonly mode?: SqlSegmentMode;
  /** Conflicting (or SQLite busy) attempts before giving up; default 32. */
  readonly attemptsMax?: number;
  /** Jitter for the pauses between attempts; default seeded from the OS. */
  readonly random?: Random;
}

/** The default table name. */
export const sqlSegmentTableDefault = 'synod_id_segments';
/** Connections of a pool the store opens from a connection string: allocations are rare. */
export const sqlSegmentPoolConnectionsMax = 4;
/** How long one SQLite statement may block the event loop on the file lock. */
export const sqliteSegmentBusyTimeoutMs = 50;

/** One row of an answer, column names to values; counts are how many rows a write changed. */
interface SqlAnswer {
  readonly rows: readonly Record<string, unknown>[];
  readonly changes: number;
}

/** The few things the store needs of a driver. */
interface SqlConnection {
  readonly param: (index: number) => string;
  readonly now: string;
  readonly timeType: string;
  run(sql: string, params: readonly (string | number | bigint)[]): Promise<SqlAnswer>;
  /** True for an error that means "try again" (SQLite busy); false for real failures. */
  isBusy(error: unknown): boolean;
  close(): Promise<void>;
}

/** The statements of one table. */
interface Statements {
  readonly create: string;
  readonly insert: string;
  readonly returning: string;
  readonly read: string;
  readonly compareAndSet: string;
}

function statementsOf(table: string, connection: SqlConnection): Statements {
  const p = connection.param;
  // The step feeds a bigint sum and an int column; PostgreSQL refuses to guess one type for both.
  const stepBig = `CAST(${p(2)} AS bigint)`;
  const stepInt = `CAST(${p(2)} AS int)`;
  return {
    create: `CREATE TABLE IF NOT EXISTS ${table} (biz_tag varchar(128) PRIMARY KEY, ` +
      `max_id bigint NOT NULL, step int NOT NULL, version bigint NOT NULL, ` +
      `update_time ${connection.timeType} NOT NULL)`,
    insert: `INSERT INTO ${table} (biz_tag, max_id, step, version, update_time) ` +
      `VALUES (${p(1)}, ${p(2)}, ${p(3)}, 0, ${connection.now}) ON CONFLICT (biz_tag) DO NOTHING`,
    returning: `UPDATE ${table} SET max_id = max_id + ${stepBig}, step = ${stepInt}, ` +
      `version = version + 1, update_time = ${connection.now} WHERE biz_tag = ${p(1)} RETURNING max_id`,
    read: `SELECT max_id, version FROM ${table} WHERE biz_tag = ${p(1)}`,
    compareAndSet: `UPDATE ${table} SET max_id = max_id + ${stepBig}, step = ${stepInt}, ` +
      `version = version + 1, update_time = ${connection.now} ` +
      `WHERE biz_tag = ${p(1)} AND version = ${p(3)}`,
  };
}

function bigintOf(value: unknown, column: string): bigint {
  // pg answers int8 as a decimal string; better-sqlite3 with safe integers as a bigint.
  if (typeof value === 'bigint') return value;
  if (typeof value === 'string' && /^-?\d+$/.test(value)) return BigInt(value);
  if (typeof value === 'number' && Number.isSafeInteger(value)) return BigInt(value);
  throw new SegmentStoreError(`segment table: ${column} is not a whole number`);
}

/** Segments in a Leaf-style SQL table on PostgreSQL or SQLite. */
export class SqlSegmentStore implements SegmentStore {
  readonly mode: SqlSegmentMode;
  readonly table: string;
  readonly attemptsMax: number;
  readonly #connection: SqlConnection;
  readonly #statements: Statements;
  readonly #random: Random;

  private constructor(connection: SqlConnection, config: {
    mode: SqlSegmentMode; table: string; attemptsMax: number; random: Random;
  }) {
    this.#connection = connection;
    this.mode = config.mode;
    this.table = config.table;
    this.attemptsMax = config.attemptsMax;
    this.#random = config.random;
    this.#statements = statementsOf(config.table, connection);
  }

  /** Connects (loading the driver), creates the table if missing, and returns the store. */
  static async open(options: SqlSegmentStoreOptions): Promise<SqlSegmentStore> {
    const table = options.table ?? sqlSegmentTableDefault;
    const mode = options.mode ?? 'returning';
    const attemptsMax = options.attemptsMax ?? segmentAllocateAttemptsMaxDefault;
    if (!/^[A-Za-z_][A-Za-z0-9_]{0,62}$/.test(table)) {
      throw new SegmentStoreError(`segment table name ${JSON.stringify(table)} is not a plain identifier`);
    }
    assert(mode === 'returning' || mode === 'optimistic', 'mode is returning or optimistic');
    assert(Number.isSafeInteger(attemptsMax) && attemptsMax >= 1, 'attemptsMax is a positive integer');
    const connection = options.target.kind === 'sqlite'
      ? await openSqlite(options.target.path)
      : await openPostgres(options.target);
    const store = new SqlSegmentStore(connection, {
      mode, table, attemptsMax, random: options.random ?? newJitter(),
    });
    try {
      await store.#run(store.#statements.create, []);
    } catch (error) {
      // Concurrent CREATE TABLE IF NOT EXISTS on PostgreSQL can race in the catalog; the table
      // then exists, which the first allocation proves or disproves.
      if (options.target.kind === 'sqlite') {
        await connection.close();
        throw error;
      }
    }
    return store;
  }

  async allocate(tag: string, step: number): Promise<Segment> {
    validateAllocation(tag, step);
    for (let attempt = 0; attempt < this.attemptsMax; attempt++) {
      const segment = this.mode === 'returning'
        ? await this.#tryReturning(tag, step)
        : await this.#tryCompareAndSet(tag, step);
      if (segment !== null) {
        assert(segment.end - segment.start === BigInt(step), 'segment: a range of exactly step ids');
        assert(segment.start >= segmentFirstId, 'segment: ids start at segmentFirstId');
        return segment;
      }
      const bounds = { firstMs: segmentConflictDelayMsDefault, maxMs: segmentConflictDelayMsMax };
      await pause(backoffDelayMs(attempt, bounds, this.#random));
    }
    throw conflictsExhausted(tag, this.attemptsMax);
  }

  async close(): Promise<void> {
    await this.#connection.close();
  }

  /** One `UPDATE … RETURNING`; null when SQLite was busy. */
  async #tryReturning(tag: string, step: number): Promise<Segment | null> {
    let answer = await this.#runOrBusy(this.#statements.returning, [tag, step]);
    if (answer === null) return null;
    if (answer.rows.length === 0) {
      if (await this.#runOrBusy(this.#statements.insert, [tag, segmentFirstId, step]) === null) return null;
      answer = await this.#runOrBusy(this.#statements.returning, [tag, step]);
      if (answer === null) return null;
    }
    assert(answer.rows.length === 1, 'segment: one row per tag');
    const end = bigintOf(answer.rows[0]!.max_id, 'max_id');
    return { start: end - BigInt(step), end };
  }

  /** Read, then compare-and-set on the version; null on a lost race or a busy SQLite. */
  async #tryCompareAndSet(tag: string, step: number): Promise<Segment | null> {
    let read = await this.#runOrBusy(this.#statements.read, [tag]);
    if (read === null) return null;
    if (read.rows.length === 0) {
      if (await this.#runOrBusy(this.#statements.insert, [tag, segmentFirstId, step]) === null) return null;
      read = await this.#runOrBusy(this.#statements.read, [tag]);
      if (read === null) return null;
    }
    assert(read.rows.length === 1, 'segment: one row per tag');
    const start = bigintOf(read.rows[0]!.max_id, 'max_id');
    const version = bigintOf(read.rows[0]!.version, 'version');
    const written = await this.#runOrBusy(this.#statements.compareAndSet, [tag, step, version]);
    if (written === null || written.changes === 0) return null;
    assert(written.changes === 1, 'segment: the compare-and-set changed one row');
    return { start, end: start + BigInt(step) };
  }

  async #runOrBusy(sql: string, params: readonly (string | number | bigint)[]): Promise<SqlAnswer | null> {
    try {
      return await this.#connection.run(sql, params);
    } catch (error) {
      if (this.#connection.isBusy(error)) return null;
      throw new SegmentStoreError(`segment table ${this.table}: the database failed`, { cause: error });
    }
  }

  async #run(sql: string, params: readonly (string | number | bigint)[]): Promise<SqlAnswer> {
    const answer = await this.#runOrBusy(sql, params);
    if (answer === null) throw new SegmentStoreError(`segment table ${this.table}: the database is busy`);
    return answer;
  }
}

async function openSqlite(path: string): Promise<SqlConnection> {
  // Loaded here, not at the top, so better-sqlite3 stays an optional peer dependency.
  const { default: Database } = await import('better-sqlite3');
  let db: BetterSqlite3.Database;
  try {
    db = new Database(path, { timeout: sqliteSegmentBusyTimeoutMs });
    db.pragma('journal_mode = WAL');
    // A range must be durable before it is used, or a power loss could hand it out again.
    db.pragma('synchronous = FULL');
  } catch (error) {
    throw new SegmentStoreError(`cannot open the SQLite segment database ${path}`, { cause: error });
  }
  // Statements are few and fixed (one table), so the cache is bounded by their number.
  const prepared = new Map<string, BetterSqlite3.Statement>();
  const statementOf = (sql: string): BetterSqlite3.Statement => {
    let statement = prepared.get(sql);
    if (statement === undefined) {
      statement = db.prepare(sql);
      if (statement.reader) statement.safeIntegers(true);
      prepared.set(sql, statement);
    }
    return statement;
  };
  return {
    // Named, since better-sqlite3 counts a repeated `?N` once per use when binding an array.
    param: (index) => `@p${index}`,
    now: `strftime('%Y-%m-%dT%H:%M:%fZ', 'now')`,
    timeType: 'text',
    async run(sql, params) {
      const statement = statementOf(sql);
      const named = Object.fromEntries(params.map((value, index) => [`p${index + 1}`, value]));
      const bound = params.length === 0 ? [] : [named];
      if (statement.reader) {
        const rows = statement.all(...bound) as Record<string, unknown>[];
        return { rows, changes: rows.length };
      }
      return { rows: [], changes: statement.run(...bound).changes };
    },
    isBusy: (error) => (error as { code?: unknown } | null)?.code === 'SQLITE_BUSY',
    async close() {
      db.close();
    },
  };
}

async function openPostgres(target: Extract<SqlSegmentTarget, { kind: 'postgres' }>): Promise<SqlConnection> {
  const { default: pg } = await import('pg');
  const owned = !('pool' in target);
  const pool: Pool = 'pool' in target
    ? target.pool
    : new pg.Pool({ connectionString: target.connectionString, max: sqlSegmentPoolConnectionsMax });
  // An idle client's error (a server restart) must not crash the process; the next query fails.
  if (owned) pool.on('error', () => undefined);
  return {
    param: (index) => `$${index}`,
    now: 'now()',
    timeType: 'timestamptz',
    async run(sql, params) {
      // pg sends text; bigints as decimal strings are read back exactly.
      const values = params.map((value) => (typeof value === 'bigint' ? value.toString() : value));
      const result = await pool.query(sql, values);
      return { rows: result.rows as Record<string, unknown>[], changes: result.rowCount ?? 0 };
    },
    isBusy: () => false,
    async close() {
      if (owned) await pool.end();
    },
  };
}
