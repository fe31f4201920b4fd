/**
 * Password hashing for the auth store: scrypt (node:crypto), a memory-hard slow hash, run on
 * libuv's thread pool so a hash never blocks the member's event loop. The member that proposes a
 * user change hashes the password before proposing, so only the hash reaches the log, snapshots
 * and the disk (etcd 3.4 hashes with bcrypt inside the apply; 3.5 moved it before Raft too).
 *
 * Stored form: `scrypt$<log2 N>$<r>$<p>$<salt base64>$<hash base64>`, so the cost can be raised
 * later without invalidating existing hashes. Verification compares in constant time.
 * Authentication is the expensive path clients can drive (etcd's pain point: bcrypt made
 * Authenticate a CPU bottleneck under reconnect herds); `PasswordVerifier` bounds how many
 * verifications run at once and how many wait, and remembers recent successes for a short time.
 */

import { createHash, randomBytes, scrypt, timingSafeEqual } from 'node:crypto';
import { SynodError } from '../../base/index.js';

/** scrypt's cost: N = 2^15, r = 8, p = 1 (about 32 MiB and tens of milliseconds per hash). */
export const scryptCostDefault = Object.freeze({ log2N: 15, r: 8, p: 1 });
const saltBytes = 16;
const hashBytes = 32;
/** Longest password accepted (etcd has none; a bound keeps a request from buying CPU). */
export const passwordBytesMax = 1024;

type ScryptCost = { readonly log2N: number; readonly r: number; readonly p: number };

function scryptAsync(password: string, salt: Buffer, cost: ScryptCost): Promise<Buffer> {
  const N = 2 ** cost.log2N;
  return new Promise((resolve, reject) => {
    // maxmem above what N and r need (128 * N * r bytes), or Node refuses the parameters.
    scrypt(password, salt, hashBytes, { N, r: cost.r, p: cost.p, maxmem: 256 * N * cost.r }, (error, key) => {
      if (error === null) resolve(key);
      else reject(error);
    });
  });
}

/** Hashes `password` into the stored form. */
export async function hashPassword(password: string, cost: ScryptCost = scryptCostDefault): Promise<string> {
  checkPassword(password);
  const salt = randomBytes(saltBytes);
  const key = await scryptAsync(password, salt, cost);
  return ['scrypt', cost.log2N, cost.r, cost.p, salt.toString('base64'), key.toString('base64')].join('$');
}

/** Whether `password` matches `stored` (false for a malformed stored hash). */
export async function verifyPassword(password: string, stored: string): Promise<boolean> {
  if (Buffer.byteLength(password) > passwordBytesMax) return false;
  const parts = stored.split('$');
  if (parts.length !== 6 || parts[0] !== 'scrypt') return false;
  const [log2N, r, p] = parts.slice(1, 4).map(Number) as [number, number, number];
  if (![log2N, r, p].every((n) => Number.isInteger(n) && n > 0) || log2N > 20) return false;
  const expected = Buffer.from(parts[5]!, 'base64');
  const actual = await scryptAsync(password, Buffer.from(parts[4]!, 'base64'), { log2N, r, p });
  return expected.length === actual.length && timingSafeEqual(expected, actual);
}

function checkPassword(password: string): void {
  if (typeof password !== 'string' || Buffer.byteLength(password) > passwordBytesMax) {
    throw new SynodError('SYNOD_AUTH_INVALID_MANAGEMENT', `etcdserver: passwords are at most ${passwordBytesMax} bytes`);
  }
}

/** Options of `PasswordVerifier`. */
export interface PasswordVerifierOptions {
  /** Verifications running at once (each holds a thread-pool thread and ~32 MiB). */
  readonly concurrentMax?: number;
  /** Verifications waiting for a slot; beyond, SYNOD_AUTH_BUSY. */
  readonly waitingMax?: number;
  /** How long a verified (user, password) pair is remembered, in ms. */
  readonly rememberMs?: number;
  /** Pairs remembered at most. */
  readonly rememberedMax?: number;
  /** Milliseconds since some fixed point (injected for tests). */
  readonly nowMs?: () => number;
}

/**
 * Verifies passwords with bounded concurrency and a short memory of recent successes, keyed by a
 * hash of user, stored hash and password (never the password itself), so a herd of clients
 * re-authenticating with the same credentials costs one scrypt, and a changed password is never
 * matched by an old entry.
 */
export class PasswordVerifier {
  readonly #concurrentMax: number;
  readonly #waitingMax: number;
  readonly #rememberMs: number;
  readonly #rememberedMax: number;
  readonly #nowMs: () => number;
  readonly #waiting: (() => void)[] = [];
  readonly #remembered = new Map<string, number>();
  #running = 0;

  constructor(options: PasswordVerifierOptions = {}) {
    this.#concurrentMax = options.concurrentMax ?? 2;
    this.#waitingMax = options.waitingMax ?? 64;
    this.#rememberMs = options.rememberMs ?? 10_000;
    this.#rememberedMax = options.rememberedMax ?? 1_000;
    this.#nowMs = options.nowMs ?? (() => performance.now());
  }

  /** Whether `password` matches `stored`; rejects with SYNOD_AUTH_BUSY when too many wait. */
  async verify(user: string, password: string, stored: string): Promise<boolean> {
    const memoKey = createHash('sha256').update(`${user}\n${stored}\n${password}`).digest('base64');
    const until = this.#remembered.get(memoKey);
    if (until !== undefined && until > this.#nowMs()) return true;
    await this.#acquire();
    try {
      const ok = await verifyPassword(password, stored);
      if (ok) this.#remember(memoKey);
      return ok;
    } finally {
      this.#release();
    }
  }

  #remember(memoKey: string): void {
    this.#remembered.delete(memoKey);
    this.#remembered.set(memoKey, this.#nowMs() + this.#rememberMs);
    while (this.#remembered.size > this.#rememberedMax) {
      this.#remembered.delete(this.#remembered.keys().next().value!);
    }
  }

  #acquire(): Promise<void> {
    if (this.#running < this.#concurrentMax) {
      this.#running += 1;
      return Promise.resolve();
    }
    if (this.#waiting.length >= this.#waitingMax) return Promise.reject(new SynodError('SYNOD_AUTH_BUSY'));
    return new Promise((resolve) => this.#waiting.push(() => {
      this.#running += 1;
      resolve();
    }));
  }

  #release(): void {
    this.#running -= 1;
    this.#waiting.shift()?.();
  }
}
