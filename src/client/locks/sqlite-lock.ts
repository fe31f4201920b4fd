/**
 * Locks as lease rows in a SQLite database file, shared by the processes of one host
 * (better-sqlite3, WAL journal). The table and statements are sql-lock-schema.ts's; two modes
 * make the mutex:
 * - `'lease-row'` (default): one upsert takes a free or expired row and bumps its version.
 * - `'optimistic'`: read the row's version, then compare-and-set it (`WHERE version = read`).
 * Either way a RenewalWatchdog pushes the expiry forward while the holder lives.
 *
 * Time is the clock of the process running each statement, since SQLite has no server. Processes
 * on one host share that clock, but a wall-clock step (NTP, a VM resume) moves every lease at
 * once: stepping forward by more than the TTL lets a contender take a lock its holder still
 * renews. A database file on a network filesystem is unsafe twice over: SQLite's file locks are
 * unreliable there, and the hosts' clocks differ. Fencing tokens are stored durably
 * (`synchronous = FULL`), so they keep growing across reopening the file.
 *
 * better-sqlite3 runs statements synchronously on the event loop, so each statement is one short
 * write and a busy database is never waited for long inside SQLite (`busyTimeoutMs`, 50 ms by
 * default): the backend steps back to the event loop and tries again with jittered backoff.
 */

import type BetterSqlite3 from 'better-sqlite3';
import { AssertionFailure, assert, type Random } from '../../base/index.js';
import { LockBackendError, invalidArgument } from '../errors.js';
import type { AcquireOptions, HeldLock, LockBackend } from './lock.js';
import { RenewalWatchdog } from './renewal-watchdog.js';
import {
  SqlLockRegistry, delay, leaseStatements, newJitter, newOwner, pollUntilGranted, resolveSqlLockTiming,
  validateLockName, validateTableName, validateTimeoutMs, type LeaseStatements, type SqlDialect,
  type SqlLockTiming,
} from './sql-lock-schema.js';

/** Options of `SqliteLockBackend.open`. */
export interface SqliteLockBackendOptions {
  /** The database file; created if missing. Every process sharing locks opens the same file. */
  readonly path: string;
  /** How long a grant or renewal keeps the lock; default 30 000 ms. */
  readonly ttlMs?: number;
  /** Time between renewals; default a third of the TTL. */
  readonly renewIntervalMs?: number;
  /** The first pause between polls of a waiting acquire; default 25 ms, doubling to 1 s. */
  readonly retryDelayMs?: number;
  /** The lease table; default `synod_locks`. */
  readonly table?: string;
  /** How the mutex is made; default `'lease-row'`. */
  readonly mode?: SqliteLockMode;
  /** How long one statement may block the event loop waiting for SQLite's file lock; default 50. */
  readonly busyTimeoutMs?: number;
}

/** The modes SQLite supports; for-update needs row locks, which SQLite does not have. */
export type SqliteLockMode = 'lease-row' | 'optimistic';

/** The default `busyTimeoutMs`: short, since a waiting statement blocks the whole event loop. */
export const sqliteBusyTimeoutMsDefault = 50;
/** The largest `busyTimeoutMs`. */
export const sqliteBusyTimeoutMsMax = 1_000;
/** How many busy answers `tryAcquire`, a renewal or a release rides out before failing. */
export const sqliteBusyAttemptsMax = 20;

/** SQLite's own clock in Unix milliseconds, read once per statement (SQLite keeps 'now' stable). */
const sqliteNowMs = `CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)`;

const sqliteDialect: SqlDialect = Object.freeze({
  param: (index: number) => `?${index}`,
  expiresAtColumn: 'expires_at_ms',
  expiresAtType: 'INTEGER',
  now: sqliteNowMs,
  expiry: (ttlMsParam: string) => `(${sqliteNowMs} + ${ttlMsParam})`,
  released: '0',
});

/** What one attempt found: a grant's version, a lock held by another, or a busy database. */
type Attempt = { readonly version: bigint } | 'held' | 'busy';

/** The prepared statements of one open database. */
interface Prepared {
  readonly grant: BetterSqlite3.Statement;
  readonly read: BetterSqlite3.Statement;
  readonly insertFirst: BetterSqlite3.Statement;
  readonly compareAndGrant: BetterSqlite3.Statement;
  readonly renew: BetterSqlite3.Statement;
  readonly release: BetterSqlite3.Statement;
}

/** Locks as lease rows in one SQLite file. */
export class SqliteLockBackend implements LockBackend {
  readonly kind = 'sqlite' as const;
  readonly mode: SqliteLockMode;
  readonly #db: BetterSqlite3.Database;
  readonly #prepared: Prepared;
  readonly #timing: SqlLockTiming;
  readonly #busyTimeoutMs: number;
  readonly #jitter: Random = newJitter();
  readonly #registry = new SqlLockRegistry('SQLite');
  #closed: Promise<void> | null = null;

  private constructor(db: BetterSqlite3.Database, prepared: Prepared, config: {
    mode: SqliteLockMode; timing: SqlLockTiming; busyTimeoutMs: number;
  }) {
    this.#db = db;
    this.#prepared = prepared;
    this.mode = config.mode;
    this.#timing = config.timing;
    this.#busyTimeoutMs = config.busyTimeoutMs;
  }

  /** Opens (creating if needed) the database file and its lease table. */
  static async open(options: SqliteLockBackendOptions): Promise<SqliteLockBackend> {
    const { mode, table, timing, busyTimeoutMs } = resolveConfig(options);
    // Loaded here, not imported at the top, so better-sqlite3 stays an optional peer dependency.
    const { default: Database } = await import('better-sqlite3');
    const statements = leaseStatements(table, sqliteDialect);
    let db: BetterSqlite3.Database;
    try {
      db = new Database(options.path, { timeout: busyTimeoutMs });
    } catch (error) {
      const message = `cannot open the SQLite lock database ${options.path}`;
      throw new LockBackendError(message, { cause: error });
    }
    try {
      await whileBusy(busyTimeoutMs, () => {
        // WAL lets readers and the one writer of other processes proceed together; FULL makes
        // each grant durable before it is reported, so a token is never handed out twice.
        db.pragma('journal_mode = WAL');
        db.pragma('synchronous = FULL');
        db.exec(statements.createTable);
      });
      return new SqliteLockBackend(db, prepare(db, statements), { mode, timing, busyTimeoutMs });
    } catch (error) {
      db.close();
      throw error;
    }
  }

  async acquire(name: string, options: AcquireOptions = {}): Promise<HeldLock> {
    validateLockName(name);
    validateTimeoutMs(options.timeoutMs);
    return await this.#registry.admit((closing) => pollUntilGranted(async () => {
      const owner = newOwner();
      // Taken before the statement, so the holder's belief never outlasts the row's expiry.
      const grantedAtMs = performance.now();
      const attempt = this.#attempt(name, owner);
      if (typeof attempt !== 'object') return null;
      return this.#track({ name, owner, version: attempt.version, grantedAtMs });
    }, {
      name, timeoutMs: options.timeoutMs, signals: [options.signal, closing], jitter: this.#jitter,
      retryDelayMs: this.#timing.retryDelayMs, discard: (held) => held.release(),
    }));
  }

  async tryAcquire(name: string): Promise<HeldLock | null> {
    validateLockName(name);
    return await this.#registry.admit(async (closing) => {
      const owner = newOwner();
      for (let attemptIndex = 0; attemptIndex < sqliteBusyAttemptsMax; attemptIndex++) {
        const grantedAtMs = performance.now();
        const attempt = this.#attempt(name, owner);
        if (attempt === 'held') return null;
        if (attempt !== 'busy') {
          return this.#track({ name, owner, version: attempt.version, grantedAtMs });
        }
        await delay(this.#busyTimeoutMs + 1, closing);
      }
      throw new LockBackendError(
        `the SQLite lock database stayed busy through ${sqliteBusyAttemptsMax} attempts`);
    });
  }

  /** Stops waits, releases what this backend holds, and closes the database. */
  close(): Promise<void> {
    this.#closed ??= this.#registry.close().then(() => void this.#db.close());
    return this.#closed;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  /** One try at the lock in this backend's mode; never blocks past one busy timeout. */
  #attempt(name: string, owner: string): Attempt {
    const ttlMs = this.#timing.ttlMs;
    try {
      if (this.mode === 'lease-row') {
        const row = this.#prepared.grant.get(bind(name, owner, ttlMs)) as VersionRow | undefined;
        return row === undefined ? 'held' : { version: row.version };
      }
      return this.#attemptOptimistic(name, owner);
    } catch (error) {
      if (error instanceof AssertionFailure) throw error;
      if (isBusy(error)) return 'busy';
      throw new LockBackendError('a SQLite lock statement failed', { cause: error });
    }
  }

  /** Read the version, then grant only if the row is still at it: the version column as a CAS. */
  #attemptOptimistic(name: string, owner: string): Attempt {
    const ttlMs = this.#timing.ttlMs;
    const row = this.#prepared.read.get(bind(name)) as (VersionRow & { free: bigint }) | undefined;
    if (row === undefined) {
      const created = this.#prepared.insertFirst.get(bind(name, owner, ttlMs)) as
        VersionRow | undefined;
      // Another contender created the row between our read and insert: it holds the lock now.
      return created === undefined ? 'held' : { version: created.version };
    }
    if (row.free === 0n) return 'held';
    const granted = this.#prepared.compareAndGrant.get(bind(name, owner, row.version, ttlMs)) as
      VersionRow | undefined;
    if (granted === undefined) return 'held';
    // The CAS matched version `row.version`, so it can only have written the next one.
    assert(granted.version === row.version + 1n, 'sqlite lock: a grant bumps the version by one');
    return { version: granted.version };
  }

  /** A lease row this backend now holds, renewed by a watchdog until released or lost. */
  #track(grant: { name: string; owner: string; version: bigint; grantedAtMs: number }): HeldLock {
    const { name, owner, version } = grant;
    const ttlMs = this.#timing.ttlMs;
    const watchdog = new RenewalWatchdog({
      ttlMs,
      renewIntervalMs: this.#timing.renewIntervalMs,
      renew: () => whileBusy(this.#busyTimeoutMs, () => {
        if (!this.#db.open) return false;
        return this.#prepared.renew.run(bind(name, owner, version, ttlMs)).changes === 1;
      }),
    }, grant.grantedAtMs);
    const release = async (): Promise<void> => {
      watchdog.stop();
      if (!this.#db.open) return;
      try {
        await whileBusy(this.#busyTimeoutMs, () => {
          this.#prepared.release.run(bind(name, owner, version));
        });
      } catch (error) {
        // The row still expires one TTL after the last renewal.
        const message = `releasing lock ${name} failed; it expires within the TTL`;
        throw new LockBackendError(message, { cause: error });
      }
    };
    return this.#registry.track({ name, fencingToken: version, lost: watchdog.lost, release });
  }
}

/** A row's version column, read as bigint. */
interface VersionRow {
  readonly version: bigint;
}

function resolveConfig(options: SqliteLockBackendOptions): {
  mode: SqliteLockMode; table: string; timing: SqlLockTiming; busyTimeoutMs: number;
} {
  const timing = resolveSqlLockTiming(options);
  const mode = options.mode ?? 'lease-row';
  if (mode !== 'lease-row' && mode !== 'optimistic') {
    throw invalidArgument(`sqlite lock mode must be lease-row or optimistic, not ${String(mode)}`);
  }
  const table = options.table ?? 'synod_locks';
  validateTableName(table);
  const busyTimeoutMs = options.busyTimeoutMs ?? sqliteBusyTimeoutMsDefault;
  const busyTimeoutValid = Number.isSafeInteger(busyTimeoutMs) && busyTimeoutMs >= 0;
  if (!busyTimeoutValid || busyTimeoutMs > sqliteBusyTimeoutMsMax) {
    throw invalidArgument(`busyTimeoutMs must be a whole number in 0..${sqliteBusyTimeoutMsMax}`);
  }
  return Object.freeze({ mode, table, timing, busyTimeoutMs });
}

function prepare(db: BetterSqlite3.Database, statements: LeaseStatements): Prepared {
  // Versions are 64-bit; read them as bigint so a token past 2^53 stays exact.
  const statement = (source: string): BetterSqlite3.Statement =>
    db.prepare(source).safeIntegers(true);
  return {
    grant: statement(statements.grant),
    read: statement(statements.read),
    insertFirst: statement(statements.insertFirst),
    compareAndGrant: statement(statements.compareAndGrant),
    renew: statement(statements.renew),
    release: statement(statements.release),
  };
}

/** Positional parameters `?1…?n` as better-sqlite3 binds them: an object keyed by position. */
function bind(...values: (string | number | bigint)[]): Record<number, string | number | bigint> {
  return Object.fromEntries(values.map((value, index) => [index + 1, value]));
}

/** True for SQLite's "another connection holds the lock" answers, which a retry can outlast. */
function isBusy(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  if (typeof code !== 'string') return false;
  return code.startsWith('SQLITE_BUSY') || code.startsWith('SQLITE_LOCKED');
}

/** Runs `body` until it is not refused as busy, yielding to the event loop between tries. */
async function whileBusy<Result>(busyTimeoutMs: number, body: () => Result): Promise<Result> {
  for (let attemptIndex = 1; ; attemptIndex++) {
    try {
      return body();
    } catch (error) {
      if (!isBusy(error) || attemptIndex >= sqliteBusyAttemptsMax) throw error;
    }
    await delay(busyTimeoutMs + 1);
  }
}
