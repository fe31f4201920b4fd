/**
 * Ticket servers (Flickr, "Ticket Servers: Distributed Unique Primary Keys on the Cheap", 2010):
 * several databases each hand out ids from an auto-increment counter with its own offset and a
 * common increment (MySQL's `auto_increment_offset` and `auto_increment_increment`). Database
 * `k` of `n` gives `k, k + n, k + 2n, …`, so their streams never overlap, and with any one of
 * them down the others still serve ids.
 *
 * `TicketGenerator` takes each call round-robin from the next database; a database that fails
 * is skipped for `failureBackoffMs` and the call moves on to the next one, so a caller sees an
 * error only when every database failed (SYNOD_ID_STORE_UNAVAILABLE, each failure in its cause).
 *
 * What the ids are, honestly: unique, and increasing within each database's stream, but not
 * globally increasing. Two databases serve `1, 3, 5, …` and `2, 4, 6, …`; while one is down the
 * other runs ahead, and when it comes back its ids are lower than ones already handed out. The
 * same holds across processes sharing the databases. An application that needs time order wants
 * Snowflake, a segment or UUIDv7 instead.
 *
 * Each call is one database round trip (Flickr's design: the database is the generator). A batch
 * is one round trip too, taken whole from one database. A ticket a database counted but whose
 * answer was lost is wasted, never repeated: a database never gives a value twice — unless it is
 * restored from a backup, which moves its counter back (raise it past every id handed out first).
 *
 * Adapters:
 * - PostgreSQL: a SEQUENCE per tag, `INCREMENT BY <increment> START WITH <offset>`; `nextval`,
 *   and batches with `SELECT nextval(…) FROM generate_series(1, n)`. `nextval` is durable once
 *   its autocommit transaction commits with `synchronous_commit` on (the default); with it off,
 *   a crash can hand the last values out again. A crash skips values (PostgreSQL logs a sequence
 *   32 values ahead), which is waste, not repetition.
 * - SQLite (better-sqlite3): a table per tag with an `INTEGER PRIMARY KEY AUTOINCREMENT` and a
 *   unique stub column. Flickr's `REPLACE INTO Tickets64 (stub) VALUES ('a')` replaces the one
 *   row with a new rowid, so the table stays one row; AUTOINCREMENT never reuses a rowid, even
 *   after the delete. Ticket = offset + (rowid − 1) × increment. A batch of `n` bumps
 *   `sqlite_sequence` by `n − 1` in the same transaction, claiming `n` rowids in two statements.
 *   better-sqlite3 is synchronous: each call blocks the event loop for its commit (an fsync, with
 *   `synchronous = FULL`), and up to `ticketSqliteBusyTimeoutMs` behind another process's write
 *   lock, after which the call fails over to the next database.
 *
 * `pg` and `better-sqlite3` are loaded on `open`, so they stay optional peer dependencies.
 */

import type BetterSqlite3 from 'better-sqlite3';
import type { Pool } from 'pg';
import { AssertionFailure, SynodError, assert, isSynodError } from '../../base/index.js';
import { idBatchMax, type IdGenerator } from './id-generator.js';

/** One ticket database: a counter with its own offset and the common increment. */
export interface TicketDatabase {
  /** Where the tickets come from, for errors and stats. */
  readonly name: string;
  /** The first ticket, in [1, increment]; every ticket is ≡ offset (mod increment). */
  readonly offset: number;
  /** The distance between two tickets of this database; the same for all of a generator's. */
  readonly increment: number;
  /** `count` tickets of `tag`, never given before, increasing. Errors are SynodErrors. */
  take(tag: string, count: number): Promise<bigint[]>;
  /** Releases the connection; tickets already taken stay taken. */
  close(): Promise<void>;
}

/** Options of a TicketGenerator. */
export interface TicketGeneratorOptions {
  /** The databases, with distinct offsets and one increment. The caller closes them. */
  readonly databases: readonly TicketDatabase[];
  /** The ticket space: generators on the same databases and tag never share an id. */
  readonly tag: string;
  /** How long a failed database is skipped; default 1 000 ms. */
  readonly failureBackoffMs?: number;
  /** Calls that may be in flight at once; more are refused. Default 10 000. */
  readonly waitersMax?: number;
  /** A monotonic clock in milliseconds for the backoff; default `performance.now()`. */
  readonly clock?: { nowMs(): number };
}

/** Offsets per cycle at most: room for this many databases, including ones added later. */
export const ticketIncrementMax = 1_024;
/** A tag names a table or sequence: ASCII letters, digits and `_`, at most 32 of them. */
export const ticketTagPattern = /^[A-Za-z0-9_]{1,32}$/;
/** A table or sequence prefix: a lowercase SQL identifier start, at most 30 characters. */
export const ticketPrefixPattern = /^[a-z_][a-z0-9_]{0,29}$/;
/** The default prefix of the tables and sequences. */
export const ticketPrefixDefault = 'synod_ticket_';
/** Tags one database keeps prepared statements or checked sequences for. */
export const ticketTagsPerDatabaseMax = 1_024;
export const ticketFailureBackoffMsDefault = 1_000;
export const ticketWaitersMaxDefault = 10_000;
/** Connections of a pool the PostgreSQL adapter opens from a connection string. */
export const ticketPoolConnectionsMax = 4;
/** How long the PostgreSQL adapter waits for a connection or an answer before failing over. */
export const ticketPostgresTimeoutMs = 2_000;
/** How long one SQLite statement may block the event loop on the file lock. */
export const ticketSqliteBusyTimeoutMs = 50;

const int64Max = 2n ** 63n - 1n;

function invalid(message: string): SynodError {
  return new SynodError('SYNOD_INVALID_ARGUMENT', message);
}

function unavailable(message: string, cause?: unknown): SynodError {
  const error = new SynodError('SYNOD_ID_STORE_UNAVAILABLE', message);
  if (cause !== undefined) error.cause = cause;
  return error;
}

/** Throws SYNOD_INVALID_ARGUMENT unless `offset` and `increment` can place a database. */
export function validateTicketSpacing(offset: number, increment: number): void {
  if (!Number.isSafeInteger(increment) || increment < 1 || increment > ticketIncrementMax) {
    throw invalid(`a ticket increment is a whole number in [1, ${ticketIncrementMax}]`);
  }
  if (!Number.isSafeInteger(offset) || offset < 1 || offset > increment) {
    throw invalid(`a ticket offset is a whole number in [1, increment = ${increment}]`);
  }
}

function validateTag(tag: string): void {
  if (typeof tag !== 'string' || !ticketTagPattern.test(tag)) {
    throw invalid(`a ticket tag matches ${ticketTagPattern}`);
  }
}

function validatePrefix(prefix: string): void {
  if (!ticketPrefixPattern.test(prefix)) {
    throw invalid(`a ticket prefix matches ${ticketPrefixPattern}`);
  }
}

/** Ids from several ticket databases in round-robin; see the file comment. */
export class TicketGenerator implements IdGenerator<bigint> {
  readonly kind = 'ticket' as const;
  readonly tag: string;
  readonly #databases: readonly TicketDatabase[];
  readonly #failureBackoffMs: number;
  readonly #waitersMax: number;
  readonly #clock: { nowMs(): number };
  /** Per database: skipped until this time on the clock. */
  readonly #downUntilMs: number[];
  /** The database the next call starts with. */
  #cursor = 0;
  #inFlight = 0;
  #closed = false;
  /** Counters for metrics and tests, per database in `databases` order. */
  readonly stats: { readonly taken: number[]; readonly failures: number[] };

  constructor(options: TicketGeneratorOptions) {
    validateTag(options.tag);
    validateDatabases(options.databases);
    const failureBackoffMs = options.failureBackoffMs ?? ticketFailureBackoffMsDefault;
    if (!(Number.isFinite(failureBackoffMs) && failureBackoffMs >= 0)) {
      throw invalid('failureBackoffMs must be a non-negative number of milliseconds');
    }
    const waitersMax = options.waitersMax ?? ticketWaitersMaxDefault;
    if (!Number.isSafeInteger(waitersMax) || waitersMax < 1) {
      throw invalid('waitersMax must be a positive whole number');
    }
    this.tag = options.tag;
    this.#databases = [...options.databases];
    this.#failureBackoffMs = failureBackoffMs;
    this.#waitersMax = waitersMax;
    this.#clock = options.clock ?? { nowMs: () => performance.now() };
    this.#downUntilMs = this.#databases.map(() => -Infinity);
    this.stats = { taken: this.#databases.map(() => 0), failures: this.#databases.map(() => 0) };
  }

  /** How many databases are not being skipped after a failure. */
  get databasesUp(): number {
    const nowMs = this.#clock.nowMs();
    return this.#downUntilMs.filter((untilMs) => untilMs <= nowMs).length;
  }

  next(): Promise<bigint> {
    return this.#take(1).then((ids) => ids[0]!);
  }

  async nextBatch(count: number): Promise<bigint[]> {
    if (!Number.isSafeInteger(count) || count < 0 || count > idBatchMax) {
      throw invalid(`a batch is a whole number of ids in [0, ${idBatchMax}]`);
    }
    if (count === 0) return [];
    return this.#take(count);
  }

  /** Refuses new calls; calls in flight finish. The databases stay open: the caller owns them. */
  async close(): Promise<void> {
    this.#closed = true;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  async #take(count: number): Promise<bigint[]> {
    if (this.#closed) {
      throw new SynodError('SYNOD_ID_GENERATOR_CLOSED', `ticket ${this.tag} is closed`);
    }
    if (this.#inFlight >= this.#waitersMax) {
      const message = `ticket ${this.tag}: ${this.#waitersMax} calls already in flight`;
      throw new SynodError('SYNOD_ID_WAITERS_EXHAUSTED', message);
    }
    this.#inFlight += 1;
    try {
      const errors: unknown[] = [];
      for (const index of this.#order()) {
        try {
          const ids = await this.#takeFrom(index, count);
          this.#downUntilMs[index] = -Infinity;
          this.stats.taken[index]! += ids.length;
          return ids;
        } catch (error) {
          // A bug is never failed over: it crashes the process.
          if (error instanceof AssertionFailure) throw error;
          errors.push(error);
          this.stats.failures[index]! += 1;
          this.#downUntilMs[index] = this.#clock.nowMs() + this.#failureBackoffMs;
        }
      }
      throw allFailed(this.tag, errors);
    } finally {
      this.#inFlight -= 1;
    }
  }

  /** Database indexes to try, round-robin from the cursor, skipping the ones backing off. */
  #order(): number[] {
    const count = this.#databases.length;
    const start = this.#cursor;
    this.#cursor = (start + 1) % count;
    const nowMs = this.#clock.nowMs();
    const all = Array.from({ length: count }, (_, step) => (start + step) % count);
    const up = all.filter((index) => this.#downUntilMs[index]! <= nowMs);
    // With every database backing off, trying them beats failing without a try.
    return up.length > 0 ? up : all;
  }

  async #takeFrom(index: number, count: number): Promise<bigint[]> {
    const database = this.#databases[index]!;
    const ids = await database.take(this.tag, count);
    const increment = BigInt(database.increment);
    const residue = BigInt(database.offset) % increment;
    const fits = ids.length === count && ids.every((id, at) =>
      id >= 1n && id % increment === residue && (at === 0 || id > ids[at - 1]!));
    // A ticket outside its database's residue class could be another database's: never use it.
    if (!fits) throw unavailable(`ticket ${this.tag}: ${database.name} broke its spacing`);
    return ids;
  }
}

function validateDatabases(databases: readonly TicketDatabase[]): void {
  if (!Array.isArray(databases) || databases.length === 0) {
    throw invalid('a ticket generator needs at least one database');
  }
  const increment = databases[0]!.increment;
  const offsets = new Set<number>();
  for (const database of databases) {
    validateTicketSpacing(database.offset, database.increment);
    if (database.increment !== increment) {
      throw invalid(
        `ticket databases need one increment: ${database.name} has ${database.increment}`);
    }
    if (offsets.has(database.offset)) {
      throw invalid(
        `two ticket databases share offset ${database.offset}; their ids would overlap`);
    }
    offsets.add(database.offset);
  }
  assert(offsets.size === databases.length && offsets.size <= increment, 'ticket: offsets fit');
}

function allFailed(tag: string, errors: readonly unknown[]): SynodError {
  assert(errors.length > 0, 'ticket: a failure per database tried');
  // Every database out of ids is its own condition; anything else is an unavailable store.
  if (errors.every((error) => isSynodError(error, 'SYNOD_ID_SPACE_EXHAUSTED'))) {
    return errors[0] as SynodError;
  }
  const cause =
    errors.length === 1 ? errors[0] : new AggregateError(errors, 'every database failed');
  return unavailable(`ticket ${tag}: every database failed (${errors.length} tried)`, cause);
}

/** Options of `SqliteTicketDatabase.open`. */
export interface SqliteTicketDatabaseOptions {
  readonly path: string;
  readonly offset: number;
  readonly increment: number;
  /** Tables are named `<prefix><tag>`; default `synod_ticket_`. */
  readonly tablePrefix?: string;
}

/** The statements of one tag's table. */
interface SqliteTicketTable {
  readonly table: string;
  readonly replace: BetterSqlite3.Statement;
  readonly bump: BetterSqlite3.Statement;
}

/** Tickets from a SQLite file through better-sqlite3; see the file comment. */
export class SqliteTicketDatabase implements TicketDatabase {
  readonly name: string;
  readonly offset: number;
  readonly increment: number;
  readonly #db: BetterSqlite3.Database;
  readonly #prefix: string;
  readonly #tables = new Map<string, SqliteTicketTable>();
  /** Claims `count` rowids in one write transaction; returns the first. */
  readonly #claim: BetterSqlite3.Transaction<(table: SqliteTicketTable, count: number) => bigint>;

  private constructor(db: BetterSqlite3.Database, options: SqliteTicketDatabaseOptions) {
    this.#db = db;
    this.name = `sqlite:${options.path}`;
    this.offset = options.offset;
    this.increment = options.increment;
    this.#prefix = options.tablePrefix ?? ticketPrefixDefault;
    this.#claim = db.transaction(claimRows);
  }

  /** Opens (creating) the file; loads better-sqlite3. */
  static async open(options: SqliteTicketDatabaseOptions): Promise<SqliteTicketDatabase> {
    validateTicketSpacing(options.offset, options.increment);
    validatePrefix(options.tablePrefix ?? ticketPrefixDefault);
    let Database: typeof BetterSqlite3;
    try {
      ({ default: Database } = await import('better-sqlite3'));
    } catch (cause) {
      const message = 'the SQLite ticket database needs the peer dependency better-sqlite3';
      throw unavailable(message, cause);
    }
    let db: BetterSqlite3.Database | null = null;
    try {
      db = new Database(options.path, { timeout: ticketSqliteBusyTimeoutMs });
      db.pragma('journal_mode = WAL');
      // A ticket must be durable before it is used, or a power loss could hand it out again.
      db.pragma('synchronous = FULL');
    } catch (cause) {
      db?.close();
      throw unavailable(`cannot open the SQLite ticket database ${options.path}`, cause);
    }
    return new SqliteTicketDatabase(db, options);
  }

  async take(tag: string, count: number): Promise<bigint[]> {
    validateTag(tag);
    assert(Number.isSafeInteger(count) && count >= 1 && count <= idBatchMax, 'ticket: batch size');
    let firstRowid: bigint;
    try {
      // IMMEDIATE takes the write lock first, so a second writer waits instead of deadlocking.
      firstRowid = this.#claim.immediate(this.#tableOf(tag), count);
    } catch (error) {
      if (isSynodError(error) || error instanceof AssertionFailure) throw error;
      throw unavailable(`ticket ${tag}: ${this.name} failed`, error);
    }
    return ticketsOf(firstRowid, count, this.offset, this.increment);
  }

  async close(): Promise<void> {
    this.#db.close();
  }

  /** The tag's table and statements, creating the table on the tag's first use. */
  #tableOf(tag: string): SqliteTicketTable {
    const known = this.#tables.get(tag);
    if (known !== undefined) return known;
    if (this.#tables.size >= ticketTagsPerDatabaseMax) {
      throw invalid(`${this.name}: more than ${ticketTagsPerDatabaseMax} ticket tags`);
    }
    const table = this.#prefix + tag;
    // The row carries the spacing it was written with, so a file reopened with another offset
    // or increment (which could overlap a second database's tickets) is refused.
    this.#db.exec(`CREATE TABLE IF NOT EXISTS "${table}" (id INTEGER PRIMARY KEY AUTOINCREMENT, ` +
      'stub TEXT NOT NULL UNIQUE, ticket_offset INTEGER NOT NULL, ' +
      'ticket_increment INTEGER NOT NULL)');
    const spacing = this.#db.prepare(`SELECT ticket_offset, ticket_increment FROM "${table}"`)
      .get() as { ticket_offset: number; ticket_increment: number } | undefined;
    if (spacing !== undefined &&
      (spacing.ticket_offset !== this.offset || spacing.ticket_increment !== this.increment)) {
      throw invalid(`${this.name}: table ${table} was written with offset ` +
        `${spacing.ticket_offset} and increment ${spacing.ticket_increment}, ` +
        `not ${this.offset} and ${this.increment}`);
    }
    const replace = this.#db.prepare(`REPLACE INTO "${table}" (stub, ticket_offset, ` +
      `ticket_increment) VALUES ('a', ${this.offset}, ${this.increment}) RETURNING id`);
    replace.safeIntegers(true);
    const bump =
      this.#db.prepare('UPDATE sqlite_sequence SET seq = seq + @more WHERE name = @table');
    const statements = { table, replace, bump };
    this.#tables.set(tag, statements);
    return statements;
  }
}

/** Flickr's REPLACE, then `count - 1` more rowids claimed at once; the first rowid. */
function claimRows(table: SqliteTicketTable, count: number): bigint {
  const row = table.replace.get() as { id: bigint } | undefined;
  assert(row !== undefined && typeof row.id === 'bigint', 'ticket: REPLACE returned the rowid');
  if (count > 1) {
    const changed = table.bump.run({ more: count - 1, table: table.table }).changes;
    assert(changed === 1, 'ticket: sqlite_sequence has the table row');
  }
  return row.id;
}

/** Tickets for rowids `[firstRowid, firstRowid + count)`; refuses any past 2^63 − 1. */
function ticketsOf(firstRowid: bigint, count: number, offset: number, increment: number): bigint[] {
  assert(firstRowid >= 1n, 'ticket: rowids start at 1');
  const step = BigInt(increment);
  const first = BigInt(offset) + (firstRowid - 1n) * step;
  const last = first + BigInt(count - 1) * step;
  if (last > int64Max) {
    throw new SynodError('SYNOD_ID_SPACE_EXHAUSTED', `ticket: ${last} is past 2^63 - 1`);
  }
  const ids = new Array<bigint>(count);
  for (let index = 0; index < count; index++) ids[index] = first + BigInt(index) * step;
  return ids;
}

/**
 * Where the PostgreSQL adapter connects: a pool the caller owns, or a connection string (a pool
 * with `ticketPostgresTimeoutMs` timeouts). A caller's pool should set `connectionTimeoutMillis`
 * and `query_timeout` too, or a hung database stalls calls instead of failing them over.
 */
export type PostgresTicketTarget =
  | { readonly connectionString: string }
  | { readonly pool: Pool };

/** Options of `PostgresTicketDatabase.open`. */
export interface PostgresTicketDatabaseOptions {
  readonly target: PostgresTicketTarget;
  readonly offset: number;
  readonly increment: number;
  /** Sequences are named `<prefix><tag>` in the current schema; default `synod_ticket_`. */
  readonly sequencePrefix?: string;
  /** For errors and stats; default `postgres:<prefix>`. */
  readonly name?: string;
}

/** SQLSTATEs of a concurrent `CREATE SEQUENCE IF NOT EXISTS` that lost the race in the catalog. */
const createRaceCodes = new Set(['23505', '42P07']);
/** SQLSTATE sequence_generator_limit_exceeded: nextval passed MAXVALUE. */
const sequenceLimitCode = '2200H';

/** Tickets from PostgreSQL sequences; see the file comment. */
export class PostgresTicketDatabase implements TicketDatabase {
  readonly name: string;
  readonly offset: number;
  readonly increment: number;
  readonly #pool: Pool;
  readonly #owned: boolean;
  readonly #prefix: string;
  /** Per tag: the check that its sequence exists with this database's spacing, once. */
  readonly #checked = new Map<string, Promise<void>>();

  private constructor(pool: Pool, owned: boolean, options: PostgresTicketDatabaseOptions) {
    this.#pool = pool;
    this.#owned = owned;
    this.#prefix = options.sequencePrefix ?? ticketPrefixDefault;
    this.offset = options.offset;
    this.increment = options.increment;
    this.name = options.name ?? `postgres:${this.#prefix}`;
  }

  /** Loads pg and makes (or adopts) the pool; connects on the first ticket. */
  static async open(options: PostgresTicketDatabaseOptions): Promise<PostgresTicketDatabase> {
    validateTicketSpacing(options.offset, options.increment);
    validatePrefix(options.sequencePrefix ?? ticketPrefixDefault);
    if ('pool' in options.target) {
      return new PostgresTicketDatabase(options.target.pool, false, options);
    }
    let pg: typeof import('pg').default;
    try {
      ({ default: pg } = await import('pg'));
    } catch (cause) {
      throw unavailable('the PostgreSQL ticket database needs the peer dependency pg', cause);
    }
    const pool = new pg.Pool({
      connectionString: options.target.connectionString, max: ticketPoolConnectionsMax,
      connectionTimeoutMillis: ticketPostgresTimeoutMs, query_timeout: ticketPostgresTimeoutMs,
    });
    // An idle client's error (a server restart) must not crash the process; the next query fails.
    pool.on('error', () => undefined);
    return new PostgresTicketDatabase(pool, true, options);
  }

  async take(tag: string, count: number): Promise<bigint[]> {
    validateTag(tag);
    assert(Number.isSafeInteger(count) && count >= 1 && count <= idBatchMax, 'ticket: batch size');
    const sequence = `"${this.#prefix}${tag}"`;
    try {
      await this.#sequenceChecked(tag);
      const result = count === 1
        ? await this.#pool.query('SELECT nextval($1::regclass) AS id', [sequence])
        : await this.#pool.query(
          'SELECT nextval($1::regclass) AS id FROM generate_series(1, $2)', [sequence, count]);
      // int8 arrives as decimal text: exact.
      const ids = (result.rows as { id: string }[]).map((row) => BigInt(row.id));
      return ids.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    } catch (error) {
      if (isSynodError(error) || error instanceof AssertionFailure) throw error;
      if ((error as { code?: unknown } | null)?.code === sequenceLimitCode) {
        throw new SynodError('SYNOD_ID_SPACE_EXHAUSTED', `ticket ${tag}: ${this.name} is used up`);
      }
      throw unavailable(`ticket ${tag}: ${this.name} failed`, error);
    }
  }

  async close(): Promise<void> {
    if (this.#owned) await this.#pool.end();
  }

  /** Resolves once the tag's sequence is known to exist with this database's spacing. */
  #sequenceChecked(tag: string): Promise<void> {
    let checked = this.#checked.get(tag);
    if (checked !== undefined) return checked;
    if (this.#checked.size >= ticketTagsPerDatabaseMax) {
      const message = `${this.name}: more than ${ticketTagsPerDatabaseMax} ticket tags`;
      return Promise.reject(invalid(message));
    }
    // Concurrent first calls share one check; a failed check is forgotten so the next call retries.
    checked = this.#ensureSequence(tag);
    this.#checked.set(tag, checked);
    checked.catch(() => this.#checked.delete(tag));
    return checked;
  }

  /** Creates the tag's sequence if missing, then checks it has this database's spacing. */
  async #ensureSequence(tag: string): Promise<void> {
    const name = this.#prefix + tag;
    try {
      await this.#pool.query(`CREATE SEQUENCE IF NOT EXISTS "${name}" AS bigint ` +
        `INCREMENT BY ${this.increment} MINVALUE 1 START WITH ${this.offset} NO CYCLE`);
    } catch (error) {
      const code = (error as { code?: unknown } | null)?.code;
      if (typeof code !== 'string' || !createRaceCodes.has(code)) throw error;
    }
    const found = await this.#pool.query(
      'SELECT start_value, increment_by FROM pg_sequences ' +
      'WHERE schemaname = current_schema() AND sequencename = $1', [name]);
    const row = found.rows[0] as { start_value: string; increment_by: string } | undefined;
    assert(row !== undefined, 'ticket: the sequence exists after CREATE');
    if (BigInt(row.start_value) !== BigInt(this.offset) ||
      BigInt(row.increment_by) !== BigInt(this.increment)) {
      // Reconfigured spacing over an existing sequence would overlap another database's ids.
      throw invalid(`sequence ${name} has start ${row.start_value} and increment ` +
        `${row.increment_by}, not ${this.offset} and ${this.increment}`);
    }
  }
}
