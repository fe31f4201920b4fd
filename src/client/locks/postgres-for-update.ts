/**
 * The `'for-update'` mode of the PostgreSQL lock backend: the mutex is the row lock that
 * `SELECT … FOR UPDATE` takes on the lock's row, held by a transaction left open on a connection
 * checked out for the lock's lifetime. Waiters queue inside PostgreSQL (roughly in arrival order,
 * with no polling), and the lock dies with the transaction: a holder whose connection breaks
 * (crash, `pg_terminate_backend`, `idle_in_transaction_session_timeout`) frees the lock at once.
 * Its `lost` fires when the driver reports the connection's error or end, or when the liveness
 * probe (`SELECT 1` every `renewIntervalMs`) has not answered for `ttlMs`.
 *
 * The fencing token cannot live in the locked row: a bump inside the holder's transaction is
 * rolled back with it when the connection dies, and the next holder would get the same token. So
 * the holder, once it has the row lock, bumps a counter in `<table>_fences` in its own committed
 * transaction on a separate small control pool (`fenceConnectionsMax` connections, also used to
 * cancel waits). Only a holder bumps, so tokens rise in grant order, durably.
 *
 * Costs: each held or waiting lock occupies a connection, and a held lock is a long-open
 * transaction with an XID, which holds back VACUUM's horizon for the whole database.
 */

import type { Pool, PoolClient } from 'pg';
import { AssertionFailure, assert, isSynodError } from '../../base/index.js';
import { LockBackendError, LockTimeoutError } from '../errors.js';
import { waitScope } from '../recipes/wait.js';
import { RenewalWatchdog } from './renewal-watchdog.js';
import type { SqlGrant, SqlLockTiming } from './sql-lock-schema.js';

/** Connections of the control pool: fence bumps and cancels are short and never wait on locks. */
export const fenceConnectionsMax = 2;
/** How long a cancelled wait may take to end before its connection is destroyed instead. */
export const cancelGraceMs = 2_000;

/** PostgreSQL's SQLSTATEs the mode expects. */
const lockNotAvailable = '55P03';

/** The mode's statements on the lease table `table` (its rows are the mutexes) and its fences. */
export function forUpdateStatements(table: string) {
  const fences = `${table}_fences`;
  return Object.freeze({
    createFences: `CREATE TABLE IF NOT EXISTS ${fences} ` +
      `(name text PRIMARY KEY, fence bigint NOT NULL)`,
    // Committed before the transaction starts, so every contender finds the row to queue on.
    ensureRow: `INSERT INTO ${table} (name, owner, version, expires_at) ` +
      `VALUES ($1, '', 0, '-infinity') ON CONFLICT (name) DO NOTHING`,
    lockRow: `SELECT name FROM ${table} WHERE name = $1 FOR UPDATE`,
    lockRowNowait: `SELECT name FROM ${table} WHERE name = $1 FOR UPDATE NOWAIT`,
    setLockTimeout: `SELECT set_config('lock_timeout', $1, true)`,
    bumpFence: `INSERT INTO ${fences} (name, fence) VALUES ($1, 1) ` +
      `ON CONFLICT (name) DO UPDATE SET fence = ${fences}.fence + 1 RETURNING fence`,
    // backend_start guards the cancel against a PID reused by a later backend.
    whoAmI: `SELECT pid, backend_start::text AS started FROM pg_stat_activity ` +
      `WHERE pid = pg_backend_pid()`,
    cancel: `SELECT pg_cancel_backend(pid) FROM pg_stat_activity ` +
      `WHERE pid = $1 AND backend_start::text = $2`,
  });
}

type Statements = ReturnType<typeof forUpdateStatements>;

/** A backend process, as `pg_cancel_backend` names it. */
interface BackendIdentity {
  readonly pid: number;
  readonly started: string;
}

/** A connection checked out for one lock: it knows when it broke and is given back exactly once. */
class HolderConnection {
  readonly client: PoolClient;
  readonly #broken = new AbortController();
  readonly #onError = (error: Error): void => this.#broken.abort(error);
  readonly #onEnd = (): void => this.#broken.abort(new Error('the connection closed'));
  #returned = false;

  private constructor(client: PoolClient) {
    this.client = client;
    // A checked-out client with no error listener would crash the process when it fails.
    client.on('error', this.#onError);
    client.on('end', this.#onEnd);
  }

  static async checkOut(pool: Pool): Promise<HolderConnection> {
    return new HolderConnection(await pool.connect());
  }

  /** Aborts, with the driver's error, once the connection failed or ended. */
  get broken(): AbortSignal {
    return this.#broken.signal;
  }

  /** Ends the transaction (releasing the row lock) and returns the connection to the pool. */
  async giveBack(timeoutMs: number): Promise<void> {
    if (this.#returned) return;
    if (this.#broken.signal.aborted) return this.destroy();
    let timer: NodeJS.Timeout | undefined;
    const hung = new Promise<'hung'>((resolve) => {
      timer = setTimeout(() => resolve('hung'), timeoutMs);
    });
    try {
      const outcome = await Promise.race([this.client.query('ROLLBACK'), hung]);
      if (outcome === 'hung') return this.destroy();
    } catch {
      return this.destroy();
    } finally {
      clearTimeout(timer);
    }
    if (this.#returned) return;
    this.#returned = true;
    this.#detach();
    this.client.release();
  }

  /** Closes the connection; the server then rolls the transaction back. Idempotent. */
  destroy(): void {
    if (this.#returned) return;
    this.#returned = true;
    this.#detach();
    // The closing client may still report an error; nobody else listens to it any more.
    this.client.on('error', () => undefined);
    this.client.release(true);
  }

  #detach(): void {
    this.client.off('error', this.#onError);
    this.client.off('end', this.#onEnd);
  }
}

/** Grants for-update locks from `pool`; fences and cancels go through `control`. */
export class ForUpdateLocks {
  readonly #pool: Pool;
  readonly #control: Pool;
  readonly #statements: Statements;
  readonly #timing: SqlLockTiming;

  constructor(config: { pool: Pool; control: Pool; table: string; timing: SqlLockTiming }) {
    this.#pool = config.pool;
    this.#control = config.control;
    this.#statements = forUpdateStatements(config.table);
    this.#timing = config.timing;
  }

  /** Creates the fences table (the lease table must exist). */
  async setUp(): Promise<void> {
    await this.#control.query(this.#statements.createFences);
  }

  /** The lock if its row is not locked now (`NOWAIT`), else null. */
  async tryGrant(name: string): Promise<SqlGrant | null> {
    const connection = await checkOut(this.#pool);
    try {
      await connection.client.query(this.#statements.ensureRow, [name]);
      await connection.client.query('BEGIN');
      try {
        await connection.client.query(this.#statements.lockRowNowait, [name]);
      } catch (error) {
        if (sqlState(error) !== lockNotAvailable) throw error;
        await connection.giveBack(this.#timing.ttlMs);
        return null;
      }
      return await this.#hold(connection, name, performance.now());
    } catch (error) {
      connection.destroy();
      throw backendError(error, `for-update tryAcquire of ${name} failed`);
    }
  }

  /** Queues on the row lock until granted, `timeoutMs` passes, or one of `signals` aborts. */
  async grant(name: string, options: {
    readonly timeoutMs?: number;
    readonly signals: readonly (AbortSignal | undefined)[];
  }): Promise<SqlGrant> {
    const { timeoutMs, signals } = options;
    const startMs = performance.now();
    const scope = waitScope({ name, signals, timeoutMs });
    try {
      scope.signal.throwIfAborted();
      const connection = await abortableCheckOut(this.#pool, scope.signal, this.#timing.ttlMs);
      try {
        const { client } = connection;
        await client.query(this.#statements.ensureRow, [name]);
        const identity = (await client.query<BackendIdentity>(this.#statements.whoAmI)).rows[0];
        if (identity === undefined) {
          throw new LockBackendError('the lock connection is missing from pg_stat_activity');
        }
        await client.query('BEGIN');
        if (timeoutMs !== undefined) {
          // The server gives up too, in case the cancel never reaches it.
          const remainingMs = Math.max(1, Math.ceil(timeoutMs - (performance.now() - startMs)));
          await client.query(this.#statements.setLockTimeout, [`${remainingMs}ms`]);
        }
        const wait = { name, signal: scope.signal, timeoutMs };
        await this.#lockRowCancellable(connection, identity, wait);
        return await this.#hold(connection, name, performance.now());
      } catch (error) {
        await connection.giveBack(this.#timing.ttlMs);
        throw error;
      }
    } catch (error) {
      if (scope.signal.aborted) throw scope.signal.reason;
      throw backendError(error, `for-update acquire of ${name} failed`);
    } finally {
      scope.dispose();
    }
  }

  /** Waits on the row lock; an abort cancels the statement, or failing that, the connection. */
  async #lockRowCancellable(connection: HolderConnection, identity: BackendIdentity, wait: {
    name: string; signal: AbortSignal; timeoutMs: number | undefined;
  }): Promise<void> {
    let graceTimer: NodeJS.Timeout | undefined;
    const onAbort = (): void => {
      const cancel = this.#control.query(this.#statements.cancel, [identity.pid, identity.started]);
      cancel.catch(() => undefined);
      graceTimer = setTimeout(() => connection.destroy(), cancelGraceMs);
    };
    wait.signal.addEventListener('abort', onAbort, { once: true });
    try {
      await connection.client.query(this.#statements.lockRow, [wait.name]);
    } catch (error) {
      wait.signal.throwIfAborted();
      if (sqlState(error) === lockNotAvailable) {
        throw new LockTimeoutError(wait.name, wait.timeoutMs ?? 0);
      }
      throw error;
    } finally {
      wait.signal.removeEventListener('abort', onAbort);
      clearTimeout(graceTimer);
    }
    // Granted just as the caller gave up: the caller's catch rolls it back.
    wait.signal.throwIfAborted();
  }

  /** Stamps a fencing token on a row lock just taken, and watches its connection. */
  async #hold(connection: HolderConnection, name: string, grantedAtMs: number): Promise<SqlGrant> {
    const bumped = await this.#control.query<{ fence: string }>(this.#statements.bumpFence, [name]);
    const fenceRow = bumped.rows[0];
    assert(fenceRow !== undefined, 'for-update: an upsert with RETURNING returns its row');
    if (connection.broken.aborted) {
      throw new LockBackendError(`the connection holding ${name} closed during the grant`);
    }
    const { client } = connection;
    const watchdog = new RenewalWatchdog({
      ttlMs: this.#timing.ttlMs,
      renewIntervalMs: this.#timing.renewIntervalMs,
      // The row lock needs no renewal; the probe proves the transaction holding it is alive.
      renew: async () => {
        await client.query('SELECT 1');
        return !connection.broken.aborted;
      },
    }, grantedAtMs);
    const onBroken = (): void => {
      const reason = String(connection.broken.reason);
      watchdog.markLost(`the connection holding the lock failed: ${reason}`);
    };
    connection.broken.addEventListener('abort', onBroken, { once: true });
    return {
      name,
      fencingToken: BigInt(fenceRow.fence),
      lost: watchdog.lost,
      release: async () => {
        watchdog.stop();
        connection.broken.removeEventListener('abort', onBroken);
        await connection.giveBack(this.#timing.ttlMs);
      },
    };
  }
}

async function checkOut(pool: Pool): Promise<HolderConnection> {
  try {
    return await HolderConnection.checkOut(pool);
  } catch (error) {
    throw new LockBackendError('cannot get a PostgreSQL connection for a lock', { cause: error });
  }
}

/** Checks a connection out, giving up when `signal` aborts; a late connection goes back unused. */
async function abortableCheckOut(
  pool: Pool, signal: AbortSignal, giveBackTimeoutMs: number,
): Promise<HolderConnection> {
  const pending = checkOut(pool);
  let onAbort: (() => void) | undefined;
  const aborted = new Promise<never>((_resolve, reject) => {
    onAbort = (): void => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
  });
  try {
    return await Promise.race([pending, aborted]);
  } catch (error) {
    pending.then((late) => late.giveBack(giveBackTimeoutMs), () => undefined);
    throw error;
  } finally {
    if (onAbort !== undefined) signal.removeEventListener('abort', onAbort);
  }
}

/** The SQLSTATE of a PostgreSQL error, if it is one. */
export function sqlState(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

/**
 * `error` as the SDK reports it: SDK errors and assertion failures pass through, driver errors
 * become a LockBackendError.
 */
export function backendError(error: unknown, message: string): Error {
  if (isSynodError(error) || error instanceof AssertionFailure) return error;
  return new LockBackendError(message, { cause: error });
}
