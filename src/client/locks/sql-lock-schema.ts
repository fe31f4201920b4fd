/**
 * What the SQL lock backends (PostgreSQL and SQLite) share: the lease table and its statements,
 * the validation of names and timings, the polling wait, and the registry of held locks.
 *
 * The lease table has one row per lock name that was ever granted: `(name, owner, version,
 * expires_at)`. A grant bumps `version`, which is the fencing token; a release only expires the
 * row, never deletes it, so the next grant of the name still counts up from the last token and
 * tokens never repeat (deleting rows by hand resets a name's count, and breaks that promise).
 *
 * Both engines run the same statements; they differ only in where time comes from (a
 * `SqlDialect`): PostgreSQL reads the server's clock, so holders on different machines agree on
 * expiry; SQLite has no server and reads the clock of the process running the statement.
 */

import { randomInt, randomUUID } from 'node:crypto';
import { SeededRandom, SynodError, type Random } from '../../base/index.js';
import { invalidArgument, LockBackendError } from '../errors.js';
import { waitScope } from '../recipes/wait.js';
import type { HeldLock } from './lock.js';

/** How a SQL backend makes its mutex (see postgres-lock.ts and sqlite-lock.ts). */
export type SqlLockMode = 'lease-row' | 'for-update' | 'optimistic';

/** Longest lock name, in UTF-8 bytes: keeps index entries small on both engines. */
export const sqlLockNameBytesMax = 256;
/** Longest table name: a PostgreSQL identifier is 63 bytes, and for-update adds `_fences`. */
export const sqlLockTableNameLengthMax = 48;
/** How long a grant or renewal keeps a lease row, by default. */
export const sqlLockTtlMsDefault = 30_000;
/** The shortest `ttlMs`: a shorter TTL cannot be renewed in time over a real network. */
export const sqlLockTtlMsMin = 100;
/** The longest `ttlMs`, a day: a crashed holder keeps its lock this long at most. */
export const sqlLockTtlMsMax = 86_400_000;
/** The first pause between polls of a waiting acquire, by default; it doubles up to the cap. */
export const sqlLockRetryDelayMsDefault = 25;
/** The cap of the pause between polls, and the largest `retryDelayMs`. */
export const sqlLockRetryDelayMsMax = 1_000;
/** Longest `timeoutMs`: Node timers overflow (and fire at once) past 2^31 - 1 ms. */
export const sqlLockTimeoutMsMax = 2 ** 31 - 1;
/** Most locks one backend holds at once; each for-update lock also holds a connection. */
export const sqlLockHeldMax = 1_024;

/** Backend timings, validated and filled in by `resolveSqlLockTiming`. */
export interface SqlLockTiming {
  /** How long a grant or renewal keeps the lock, in milliseconds. */
  readonly ttlMs: number;
  /** Time between renewals by the watchdog; below `ttlMs`. */
  readonly renewIntervalMs: number;
  /** The first pause between polls of a waiting acquire; doubles up to `sqlLockRetryDelayMsMax`. */
  readonly retryDelayMs: number;
}

/** Refuses a lock name the tables cannot hold: empty, too long, or with a NUL (PostgreSQL text). */
export function validateLockName(name: unknown): asserts name is string {
  if (typeof name !== 'string' || name === '') {
    throw invalidArgument('lock name must be a non-empty string');
  }
  if (Buffer.byteLength(name) > sqlLockNameBytesMax) {
    throw invalidArgument(`lock name must be at most ${sqlLockNameBytesMax} bytes`);
  }
  if (name.includes('\0')) throw invalidArgument('lock name must not contain NUL');
}

/** Refuses a table name that is not a plain identifier, since it is spliced into SQL text. */
export function validateTableName(table: string): void {
  const pattern = new RegExp(`^[a-z_][a-z0-9_]{0,${sqlLockTableNameLengthMax - 1}}$`);
  if (!pattern.test(table)) {
    throw invalidArgument(
      `table must be 1..${sqlLockTableNameLengthMax} of [a-z0-9_], not starting with a digit`);
  }
}

/** Validates the timing options once, fills the defaults, and freezes the result. */
export function resolveSqlLockTiming(options: {
  readonly ttlMs?: number;
  readonly renewIntervalMs?: number;
  readonly retryDelayMs?: number;
}): SqlLockTiming {
  const ttlMs = options.ttlMs ?? sqlLockTtlMsDefault;
  if (!Number.isSafeInteger(ttlMs) || ttlMs < sqlLockTtlMsMin || ttlMs > sqlLockTtlMsMax) {
    throw invalidArgument(`ttlMs must be a whole number in ${sqlLockTtlMsMin}..${sqlLockTtlMsMax}`);
  }
  const renewIntervalMs = options.renewIntervalMs ?? Math.floor(ttlMs / 3);
  if (!Number.isSafeInteger(renewIntervalMs) || renewIntervalMs < 1 || renewIntervalMs >= ttlMs) {
    throw invalidArgument('renewIntervalMs must be a whole number in 1..ttlMs-1');
  }
  const retryDelayMs = options.retryDelayMs ?? sqlLockRetryDelayMsDefault;
  const retryDelayValid = Number.isSafeInteger(retryDelayMs) && retryDelayMs >= 1;
  if (!retryDelayValid || retryDelayMs > sqlLockRetryDelayMsMax) {
    throw invalidArgument(`retryDelayMs must be a whole number in 1..${sqlLockRetryDelayMsMax}`);
  }
  return Object.freeze({ ttlMs, renewIntervalMs, retryDelayMs });
}

/** Refuses a `timeoutMs` a timer cannot wait for. */
export function validateTimeoutMs(timeoutMs: number | undefined): void {
  if (timeoutMs === undefined) return;
  if (!Number.isFinite(timeoutMs) || timeoutMs < 0 || timeoutMs > sqlLockTimeoutMsMax) {
    throw invalidArgument(`timeoutMs must be in 0..${sqlLockTimeoutMsMax}`);
  }
}

/** A fresh owner per grant, so two grants in one process exclude each other too. */
export function newOwner(): string {
  return randomUUID();
}

/** A jitter source for one backend, seeded from the OS so processes do not poll in step. */
export function newJitter(): Random {
  return new SeededRandom(randomInt(2 ** 31));
}

/** Where an engine's statements get the time, and the type of the expiry column. */
export interface SqlDialect {
  /** The text of the `index`th (1-based) positional parameter. */
  param(index: number): string;
  /** The expiry column's name and SQL type. */
  readonly expiresAtColumn: string;
  readonly expiresAtType: string;
  /** The current time, comparable with the expiry column. */
  readonly now: string;
  /** The expiry of a grant `ttlMsParam` (an already-rendered parameter) milliseconds from now. */
  expiry(ttlMsParam: string): string;
  /** An expiry before every real time: what a release writes. */
  readonly released: string;
}

/** The lease table's statements in one dialect, with each statement's parameters listed. */
export interface LeaseStatements {
  readonly createTable: string;
  /** (name, owner, ttlMs) → version if granted: inserts the row or takes over an expired one. */
  readonly grant: string;
  /** (name) → version, free: the optimistic mode's read. */
  readonly read: string;
  /** (name, owner, ttlMs) → version if this call created the row. */
  readonly insertFirst: string;
  /** (name, owner, readVersion, ttlMs) → version if the row was still at readVersion and free. */
  readonly compareAndGrant: string;
  /** (name, owner, version, ttlMs): one row changed if this grant still holds the lock. */
  readonly renew: string;
  /** (name, owner, version): expires the row if this grant still holds it. */
  readonly release: string;
}

/** The statements of the lease table `table` (already validated) in `dialect`. */
export function leaseStatements(table: string, dialect: SqlDialect): LeaseStatements {
  const p = (index: number): string => dialect.param(index);
  const expiresAt = dialect.expiresAtColumn;
  return Object.freeze({
    createTable: `CREATE TABLE IF NOT EXISTS ${table} (name text PRIMARY KEY, ` +
      `owner text NOT NULL, version bigint NOT NULL, ` +
      `${expiresAt} ${dialect.expiresAtType} NOT NULL)`,
    // One statement, so the check for expiry and the takeover are atomic on both engines.
    grant: `INSERT INTO ${table} (name, owner, version, ${expiresAt}) ` +
      `VALUES (${p(1)}, ${p(2)}, 1, ${dialect.expiry(p(3))}) ` +
      `ON CONFLICT (name) DO UPDATE SET owner = excluded.owner, ` +
      `version = ${table}.version + 1, ${expiresAt} = excluded.${expiresAt} ` +
      `WHERE ${table}.${expiresAt} <= ${dialect.now} RETURNING version`,
    read: `SELECT version, ${expiresAt} <= ${dialect.now} AS free FROM ${table} ` +
      `WHERE name = ${p(1)}`,
    insertFirst: `INSERT INTO ${table} (name, owner, version, ${expiresAt}) ` +
      `VALUES (${p(1)}, ${p(2)}, 1, ${dialect.expiry(p(3))}) ` +
      `ON CONFLICT (name) DO NOTHING RETURNING version`,
    compareAndGrant: `UPDATE ${table} SET owner = ${p(2)}, version = version + 1, ` +
      `${expiresAt} = ${dialect.expiry(p(4))} ` +
      `WHERE name = ${p(1)} AND version = ${p(3)} AND ${expiresAt} <= ${dialect.now} ` +
      `RETURNING version`,
    // A renewal after expiry is refused even if no one took over: once the table says the lock is
    // free, a contender may be about to take it, and the holder must not believe otherwise.
    renew: `UPDATE ${table} SET ${expiresAt} = ${dialect.expiry(p(4))} ` +
      `WHERE name = ${p(1)} AND owner = ${p(2)} AND version = ${p(3)} ` +
      `AND ${expiresAt} > ${dialect.now}`,
    release: `UPDATE ${table} SET ${expiresAt} = ${dialect.released} ` +
      `WHERE name = ${p(1)} AND owner = ${p(2)} AND version = ${p(3)}`,
  });
}

/** How `pollUntilGranted` paces and ends a wait. */
export interface PollOptions<Grant> {
  readonly name: string;
  readonly timeoutMs?: number;
  /** Any of these aborting ends the wait with its reason (the caller's, the backend closing). */
  readonly signals: readonly (AbortSignal | undefined)[];
  /** The first pause; it doubles per failed attempt up to `sqlLockRetryDelayMsMax`. */
  readonly retryDelayMs: number;
  readonly jitter: Random;
  /** Gives back a grant that arrived after the wait was aborted or timed out. */
  readonly discard: (grant: Grant) => Promise<void>;
}

/**
 * Calls `attempt` until it returns a grant, pausing between attempts with exponential backoff and
 * full jitter. Rejects with a LockTimeoutError after `timeoutMs`, or with the signal's reason.
 */
export async function pollUntilGranted<Grant>(
  attempt: () => Promise<Grant | null>, options: PollOptions<Grant>,
): Promise<Grant> {
  const { name, signals, timeoutMs } = options;
  const scope = waitScope({ name, signals, timeoutMs });
  try {
    for (let attemptIndex = 0; ; attemptIndex++) {
      scope.signal.throwIfAborted();
      const grant = await attempt();
      if (grant !== null) {
        // The caller has stopped waiting, so it would never release a lock handed to it now.
        if (scope.signal.aborted) {
          await options.discard(grant);
          scope.signal.throwIfAborted();
        }
        return grant;
      }
      await delay(backoffMs(attemptIndex, options), scope.signal);
    }
  } finally {
    scope.dispose();
  }
}

/** Full jitter over an exponential ceiling: contenders spread out instead of polling in step. */
function backoffMs(
  attemptIndex: number, options: { retryDelayMs: number; jitter: Random },
): number {
  // The exponent stops growing once the cap is reached anyway; 20 keeps the product finite.
  const growth = 2 ** Math.min(attemptIndex, 20);
  const ceilingMs = Math.min(sqlLockRetryDelayMsMax, options.retryDelayMs * growth);
  return 1 + Math.floor(options.jitter.float() * ceilingMs);
}

/** Resolves after `ms`, or rejects with the signal's reason when it aborts first. */
export function delay(ms: number, signal?: AbortSignal): Promise<void> {
  signal?.throwIfAborted();
  return new Promise<void>((resolve, reject) => {
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** The fields of one grant, and how to give it back. */
export interface SqlGrant {
  readonly name: string;
  readonly fencingToken: bigint;
  readonly lost: AbortSignal;
  /** Gives the lock up; called at most once. */
  readonly release: () => Promise<void>;
}

/**
 * The locks one backend holds and the calls still asking for one, together bounded by
 * `sqlLockHeldMax`; `close` stops the waits, lets the calls finish, then gives every lock back.
 */
export class SqlLockRegistry {
  readonly #held = new Set<HeldLock>();
  readonly #pending = new Set<Promise<unknown>>();
  readonly #closing = new AbortController();
  readonly #backendName: string;

  /** `backendName` names the backend in errors, e.g. 'SQLite'. */
  constructor(backendName: string) {
    this.#backendName = backendName;
  }

  /**
   * Runs one acquire or tryAcquire, handing it the signal that aborts when the backend closes.
   * Refused with SYNOD_CLIENT_CLOSED once closing, and with a LockBackendError at the bound.
   */
  admit<Result>(body: (closing: AbortSignal) => Promise<Result>): Promise<Result> {
    if (this.#closing.signal.aborted) throw this.#closedError();
    if (this.#held.size + this.#pending.size >= sqlLockHeldMax) {
      throw new LockBackendError(
        `this backend already holds or awaits ${sqlLockHeldMax} locks (sqlLockHeldMax)`);
    }
    const run = body(this.#closing.signal);
    this.#pending.add(run);
    const settle = (): void => void this.#pending.delete(run);
    run.then(settle, settle);
    return run;
  }

  /** Wraps a grant into the caller's handle; its release also forgets it here. */
  track(grant: SqlGrant): HeldLock {
    let released = false;
    const release = async (): Promise<void> => {
      if (released) return;
      released = true;
      this.#held.delete(handle);
      await grant.release();
    };
    const handle: HeldLock = {
      name: grant.name,
      fencingToken: grant.fencingToken,
      lost: grant.lost,
      release,
      [Symbol.asyncDispose]: release,
    };
    this.#held.add(handle);
    return handle;
  }

  /** True once `close` has begun. */
  get closing(): boolean {
    return this.#closing.signal.aborted;
  }

  /** Stops new calls, aborts waits, and releases every lock (failures are left to the TTL). */
  async close(): Promise<void> {
    if (this.#closing.signal.aborted) return;
    this.#closing.abort(this.#closedError());
    await Promise.allSettled([...this.#pending]);
    await Promise.allSettled([...this.#held].map((held) => held.release()));
  }

  #closedError(): SynodError {
    return new SynodError('SYNOD_CLIENT_CLOSED', `the ${this.#backendName} lock backend is closed`);
  }
}
