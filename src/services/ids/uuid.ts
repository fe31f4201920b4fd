/**
 * UUIDs (RFC 9562): ids that need no coordination at all, unique by their random bits.
 *
 * - Version 4 (§5.4) is 122 random bits from `crypto.randomUUID` (which draws from Node's own
 *   entropy cache). Random order: a B-tree index over them takes writes all over its pages.
 * - Version 7 (§5.7) puts a 48-bit Unix millisecond timestamp first, so ids sort by creation time
 *   and an index takes them at its right edge, like an auto-increment key.
 *
 * Version 7 here uses §6.2 method 1, a fixed bit-length dedicated counter: the 12 bits of rand_a
 * count within one millisecond. Each new millisecond seeds the counter randomly with its top bit
 * clear (the "rollover guard" of §6.2), so at least 2 048 ids fit in a millisecond before it
 * overflows, and two generators starting the same millisecond rarely start on the same count.
 * The 62 bits of rand_b are fresh random bits per id, taken from a pool that
 * `crypto.randomFillSync` refills in chunks: one system call per `uuidRandomPoolBytes / 8` ids,
 * not one per id.
 *
 * One generator's ids strictly increase as strings (lowercase hex sorts as its numbers do), even
 * when:
 * - the clock steps back (an NTP correction): the last millisecond is held and the counter goes
 *   on (§6.2, "Monotonic Error Checking": the next UUID must be greater than the previous one,
 *   whatever the clock did);
 * - the counter overflows: the timestamp moves one millisecond ahead of the clock and the
 *   counter is reseeded (§6.2 "Counter Rollover Handling"). Under a sustained rate above about 2 048 ids per
 *   millisecond the timestamps run ahead of the clock until the rate drops.
 * Across generators, order is only as good as their clocks, and uniqueness rests on the random
 * bits: two ids collide only with the same millisecond, the same count and the same 62 bits.
 */

import { randomFillSync, randomUUID } from 'node:crypto';
import { SynodError, assert, mark } from '../../base/index.js';
import { idBatchMax, type IdGenerator } from './id-generator.js';

/** A wall clock in Unix milliseconds, injected so tests can step it back. */
export interface UuidClock {
  nowMs(): number;
}

/** Options of a UuidV7Generator. */
export interface UuidV7GeneratorOptions {
  /** Default `Date.now()`: the timestamp must be Unix time, not a monotonic clock. */
  readonly clock?: UuidClock;
  /** Fills a buffer with random bytes; default `crypto.randomFillSync`. For tests only. */
  readonly fillRandom?: (bytes: Uint8Array) => void;
}

/** The largest 48-bit timestamp (year 10889). */
export const uuidV7TimestampMsMax = 2 ** 48 - 1;
/** The largest value of the 12-bit rand_a counter. */
export const uuidV7CounterMax = 0xfff;
/** A new millisecond's counter seed is below this: the top bit stays clear as rollover guard. */
export const uuidV7CounterSeedBound = 0x800;
/** Random bytes drawn per refill of the pool: 1 024 ids' rand_b. */
export const uuidRandomPoolBytes = 8 * 1024;

/** Lowercase canonical UUID text (RFC 9562 §4), any version and variant. */
export const uuidPattern = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const uuidV7Pattern = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/i;

/** Two hex digits per byte value. */
const byteHex: readonly string[] = Array.from({ length: 256 }, (_, value) =>
  value.toString(16).padStart(2, '0'));
/** Three hex digits per counter value, so a counter costs one lookup. */
const counterHex: readonly string[] = Array.from({ length: uuidV7CounterMax + 1 }, (_, value) =>
  value.toString(16).padStart(3, '0'));

const systemClock: UuidClock = { nowMs: () => Date.now() };

function closedError(kind: string): SynodError {
  return new SynodError('SYNOD_ID_GENERATOR_CLOSED', `${kind} generator is closed`);
}

/** `count` ids from `next`, in order, after checking `count`: both generators' `nextBatch`. */
function batchOf(count: number, next: () => string): string[] {
  if (!Number.isSafeInteger(count) || count < 0 || count > idBatchMax) {
    throw new SynodError(
      'SYNOD_INVALID_ARGUMENT', `a batch is a whole number of ids in [0, ${idBatchMax}]`);
  }
  const ids = new Array<string>(count);
  for (let index = 0; index < count; index++) ids[index] = next();
  return ids;
}

/** Version 4 UUIDs: 122 random bits each, in no order. */
export class UuidV4Generator implements IdGenerator<string> {
  readonly kind = 'uuidv4' as const;
  #closed = false;

  next(): string {
    if (this.#closed) throw closedError(this.kind);
    return randomUUID();
  }

  async nextBatch(count: number): Promise<string[]> {
    return batchOf(count, () => this.next());
  }

  async close(): Promise<void> {
    this.#closed = true;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}

/** Version 7 UUIDs, strictly increasing per generator; see the file comment. */
export class UuidV7Generator implements IdGenerator<string> {
  readonly kind = 'uuidv7' as const;
  readonly #clock: UuidClock;
  readonly #fillRandom: (bytes: Uint8Array) => void;
  readonly #pool = new Uint8Array(uuidRandomPoolBytes);
  /** The next unused byte of the pool; the pool is empty until the first id. */
  #poolIndex = uuidRandomPoolBytes;
  /** The timestamp of the last id; -1 before the first. Never decreases. */
  #lastMs = -1;
  /** The counter of the last id, within `#lastMs`. */
  #counter = 0;
  /** The text of `#lastMs` through the version digit: `tttttttt-tttt-7`. */
  #prefix = '';
  #closed = false;
  /** Counters for metrics and tests. */
  readonly stats = { clockBehind: 0, counterOverflows: 0, poolRefills: 0 };

  constructor(options: UuidV7GeneratorOptions = {}) {
    this.#clock = options.clock ?? systemClock;
    this.#fillRandom = options.fillRandom ?? ((bytes) => void randomFillSync(bytes));
  }

  next(): string {
    if (this.#closed) throw closedError(this.kind);
    const nowMs = Math.floor(this.#clock.nowMs());
    if (nowMs > this.#lastMs) {
      this.#startMillisecond(nowMs);
    } else if (this.#counter < uuidV7CounterMax) {
      if (nowMs < this.#lastMs) this.#onClockBehind();
      this.#counter += 1;
    } else {
      mark('uuidv7: counter overflow runs the timestamp ahead');
      this.stats.counterOverflows += 1;
      this.#startMillisecond(this.#lastMs + 1);
    }
    return this.#format();
  }

  async nextBatch(count: number): Promise<string[]> {
    return batchOf(count, () => this.next());
  }

  async close(): Promise<void> {
    this.#closed = true;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  /** Counts a clock behind the last timestamp (stepped back, or overtaken after an overflow). */
  #onClockBehind(): void {
    mark('uuidv7: clock behind the last timestamp, held');
    this.stats.clockBehind += 1;
  }

  /** Moves to timestamp `ms` with a freshly seeded counter. */
  #startMillisecond(ms: number): void {
    // Invariant: the timestamp never decreases, so (timestamp, counter) strictly increases.
    assert(ms > this.#lastMs, 'uuidv7: the timestamp only moves forward');
    // A clock outside the 48-bit field is misconfigured, not a condition a caller can handle.
    assert(ms >= 0 && ms <= uuidV7TimestampMsMax, `uuidv7: timestamp ${ms} ms outside [0, 2^48)`);
    const seed = this.#take(2);
    const seedBits = (this.#pool[seed]! << 8) | this.#pool[seed + 1]!;
    this.#counter = seedBits & (uuidV7CounterSeedBound - 1);
    this.#lastMs = ms;
    const high = Math.floor(ms / 0x10000);
    const low = ms % 0x10000;
    this.#prefix = `${high.toString(16).padStart(8, '0')}-${low.toString(16).padStart(4, '0')}-7`;
  }

  /** The id of the current timestamp and counter, with 62 fresh random bits. */
  #format(): string {
    const index = this.#take(8);
    const pool = this.#pool;
    // The variant (RFC 9562 §4.1) is 0b10 in the top bits of byte 8; its other 6 bits are random.
    const variant = (pool[index]! & 0x3f) | 0x80;
    return this.#prefix + counterHex[this.#counter]! + '-' + byteHex[variant]! +
      byteHex[pool[index + 1]!]! + '-' + byteHex[pool[index + 2]!]! + byteHex[pool[index + 3]!]! +
      byteHex[pool[index + 4]!]! + byteHex[pool[index + 5]!]! + byteHex[pool[index + 6]!]! +
      byteHex[pool[index + 7]!]!;
  }

  /** The index of `count` unused pool bytes, refilling the whole pool when too few are left. */
  #take(count: number): number {
    if (this.#poolIndex + count > uuidRandomPoolBytes) {
      this.#fillRandom(this.#pool);
      this.#poolIndex = 0;
      this.stats.poolRefills += 1;
    }
    const index = this.#poolIndex;
    this.#poolIndex = index + count;
    return index;
  }
}

/**
 * The Unix millisecond timestamp of a version 7 UUID (either case). Throws SYNOD_INVALID_ARGUMENT
 * for anything else, version 4 included: its leading bits are random, not a time.
 */
export function uuidV7Timestamp(uuid: string): number {
  if (typeof uuid !== 'string' || !uuidV7Pattern.test(uuid)) {
    throw new SynodError('SYNOD_INVALID_ARGUMENT', 'not a version 7 UUID in canonical text');
  }
  // 48 bits: exact in a double.
  return Number.parseInt(uuid.slice(0, 8) + uuid.slice(9, 13), 16);
}
