/**
 * The bit layout of a Snowflake id (Twitter, 2010): one positive 64-bit integer made of, from the
 * most significant bit down, a timestamp counted in units since a custom epoch, a datacenter id, a
 * worker id, and a sequence number within the timestamp's unit.
 *
 *   [ 0 | timestamp (41) | datacenter (5) | worker (5) | sequence (12) ]   (the default)
 *
 * The top bit stays 0 (at most 63 bits are used) so an id is positive as a signed int64: a Java
 * `long`, a PostgreSQL `bigint`, a protobuf `int64`. Because the timestamp is on top, ids sort by
 * time across workers, and ids of one worker sort exactly in issue order.
 *
 * A layout is validated once and frozen; the generator and `decode` must use the same one, so a
 * layout, like its epoch, is fixed for the life of a deployment.
 */

import { SynodError, assert } from '../../base/index.js';

/** The shape of a layout; every field is optional and defaults to Twitter's layout. */
export interface SnowflakeLayoutOptions {
  /** Bits of the timestamp; default 41 (69.7 years of milliseconds). */
  readonly timestampBits?: number;
  /** Bits of the datacenter id; default 5 (32 datacenters). May be 0. */
  readonly datacenterBits?: number;
  /** Bits of the worker id within a datacenter; default 5 (32 workers). May be 0. */
  readonly workerBits?: number;
  /** Bits of the sequence within one timestamp unit; default 12 (4,096 ids per unit). May be 0. */
  readonly sequenceBits?: number;
  /** Unix ms of timestamp 0; default 2020-01-01T00:00:00Z (see `snowflakeEpochMsDefault`). */
  readonly epochMs?: number;
  /** Milliseconds per timestamp unit; default 1. Sonyflake, for one, counts 10 ms units. */
  readonly timestampUnitMs?: number;
}

/** The fields of one id. */
export interface SnowflakeParts {
  /** Unix ms of the start of the id's timestamp unit (with 1 ms units, the issue time). */
  readonly timestampMs: number;
  readonly datacenterId: number;
  readonly workerId: number;
  /** The id's position among those of its worker and timestamp unit, from 0. */
  readonly sequence: number;
}

/**
 * 2020-01-01T00:00:00Z. A recent epoch leaves the most of the timestamp's range ahead: with 41 bits
 * of ms the default layout lasts until 2089-09-06, where the Unix epoch would end it in 2039 and
 * Twitter's (2010-11-04) in 2080. It is a round date before Synod issued any id: an epoch may never
 * move once ids exist (the same bits would decode to another time and could collide), and every
 * clock reading must lie after it.
 */
export const snowflakeEpochMsDefault = 1_577_836_800_000;
/** Twitter's field widths (41 + 5 + 5 + 12 = 63 bits) and 1 ms units. */
export const snowflakeTimestampBitsDefault = 41;
export const snowflakeDatacenterBitsDefault = 5;
export const snowflakeWorkerBitsDefault = 5;
export const snowflakeSequenceBitsDefault = 12;
export const snowflakeTimestampUnitMsDefault = 1;

/** Bits an id may use in all: one fewer than int64, so every id is positive when signed. */
export const snowflakeBitsMax = 63;
/** Bits of a datacenter, worker or sequence field: their values stay within uint32 numbers. */
export const snowflakeFieldBitsMax = 31;
/** Bits of the timestamp: its tick count stays a safe integer (the epoch must leave room too). */
export const snowflakeTimestampBitsMax = 53;

/** The longest decimal form of an id below 2^63 (9,223,372,036,854,775,807). */
const decimalDigitsMax = 19;
const decimalPattern = /^(?:0|[1-9][0-9]*)$/;

function invalid(message: string): SynodError {
  return new SynodError('SYNOD_INVALID_ARGUMENT', message);
}

function checkBits(name: string, bits: number, bitsMin: number, bitsMax: number): void {
  if (!Number.isSafeInteger(bits) || bits < bitsMin || bits > bitsMax) {
    throw invalid(`snowflake layout: ${name} must be a whole number in [${bitsMin}, ${bitsMax}]`);
  }
}

function checkField(name: string, value: number, valueMax: number): void {
  if (!Number.isSafeInteger(value) || value < 0 || value > valueMax) {
    throw invalid(`snowflake: ${name} must be a whole number in [0, ${valueMax}], not ${value}`);
  }
}

/** A validated, frozen layout, with the codec for its ids. */
export class SnowflakeLayout {
  readonly timestampBits: number;
  readonly datacenterBits: number;
  readonly workerBits: number;
  readonly sequenceBits: number;
  readonly epochMs: number;
  readonly timestampUnitMs: number;
  /** Bits used in all, ≤ 63. */
  readonly totalBits: number;
  /** The largest value of each field. */
  readonly timestampTicksMax: number;
  readonly datacenterIdMax: number;
  readonly workerIdMax: number;
  readonly sequenceMax: number;
  /** Ids one worker can issue per timestamp unit: 2^sequenceBits. */
  readonly idsPerTickMax: number;
  /** The ceiling of one worker's rate: 2^sequenceBits per unit, in ids per millisecond. */
  readonly idsPerMsMax: number;
  /** Unix ms of the start of the last representable unit; a later timestamp has no id. */
  readonly lastTimestampMs: number;
  /** Ids are below this: 2^totalBits. */
  readonly idLimit: bigint;
  readonly #timestampShift: bigint;
  readonly #datacenterShift: bigint;
  readonly #workerShift: bigint;

  constructor(options: SnowflakeLayoutOptions = {}) {
    this.timestampBits = options.timestampBits ?? snowflakeTimestampBitsDefault;
    this.datacenterBits = options.datacenterBits ?? snowflakeDatacenterBitsDefault;
    this.workerBits = options.workerBits ?? snowflakeWorkerBitsDefault;
    this.sequenceBits = options.sequenceBits ?? snowflakeSequenceBitsDefault;
    this.epochMs = options.epochMs ?? snowflakeEpochMsDefault;
    this.timestampUnitMs = options.timestampUnitMs ?? snowflakeTimestampUnitMsDefault;
    checkBits('timestampBits', this.timestampBits, 1, snowflakeTimestampBitsMax);
    checkBits('datacenterBits', this.datacenterBits, 0, snowflakeFieldBitsMax);
    checkBits('workerBits', this.workerBits, 0, snowflakeFieldBitsMax);
    checkBits('sequenceBits', this.sequenceBits, 0, snowflakeFieldBitsMax);
    this.totalBits = this.timestampBits + this.datacenterBits + this.workerBits + this.sequenceBits;
    if (this.totalBits > snowflakeBitsMax) {
      throw invalid(`snowflake layout: ${this.totalBits} bits in all; at most ` +
        `${snowflakeBitsMax} keep ids positive as a signed int64`);
    }
    if (!Number.isSafeInteger(this.epochMs) || this.epochMs < 0) {
      throw invalid('snowflake layout: epochMs must be a whole number of unix ms, not negative');
    }
    if (!Number.isSafeInteger(this.timestampUnitMs) || this.timestampUnitMs < 1) {
      throw invalid('snowflake layout: timestampUnitMs must be a whole number of ms, at least 1');
    }
    this.timestampTicksMax = 2 ** this.timestampBits - 1;
    this.datacenterIdMax = 2 ** this.datacenterBits - 1;
    this.workerIdMax = 2 ** this.workerBits - 1;
    this.sequenceMax = 2 ** this.sequenceBits - 1;
    this.idsPerTickMax = 2 ** this.sequenceBits;
    this.idsPerMsMax = this.idsPerTickMax / this.timestampUnitMs;
    this.lastTimestampMs = this.epochMs + this.timestampTicksMax * this.timestampUnitMs;
    if (!Number.isSafeInteger(this.lastTimestampMs + this.timestampUnitMs)) {
      throw invalid('snowflake layout: the timestamp range (epochMs + 2^timestampBits units) ' +
        'must stay within safe integer milliseconds');
    }
    this.idLimit = 1n << BigInt(this.totalBits);
    this.#workerShift = BigInt(this.sequenceBits);
    this.#datacenterShift = BigInt(this.sequenceBits + this.workerBits);
    this.#timestampShift = BigInt(this.sequenceBits + this.workerBits + this.datacenterBits);
    Object.freeze(this);
  }

  /** The unit a unix-ms reading falls in (negative before the epoch); fractions allowed. */
  tickOf(unixMs: number): number {
    return Math.floor((unixMs - this.epochMs) / this.timestampUnitMs);
  }

  /** Unix ms of the start of unit `tick`. */
  tickStartMs(tick: number): number {
    return this.epochMs + tick * this.timestampUnitMs;
  }

  /** The datacenter and worker fields in place, validated: the part an id's worker fixes. */
  workerBitsOf(datacenterId: number, workerId: number): bigint {
    checkField('datacenterId', datacenterId, this.datacenterIdMax);
    checkField('workerId', workerId, this.workerIdMax);
    const datacenter = BigInt(datacenterId) << this.#datacenterShift;
    return datacenter | (BigInt(workerId) << this.#workerShift);
  }

  /** The id with sequence 0 of `tick` for a worker's `workerBits` (from `workerBitsOf`). */
  firstIdOf(tick: number, workerBits: bigint): bigint {
    assert(Number.isSafeInteger(tick) && tick >= 0 && tick <= this.timestampTicksMax,
      'snowflake layout: tick in range');
    assert(workerBits >= 0n && workerBits < 1n << this.#timestampShift,
      'snowflake layout: worker bits below the timestamp');
    return (BigInt(tick) << this.#timestampShift) | workerBits;
  }

  /**
   * The id of `parts`. A timestamp inside a unit encodes that unit (decoding gives its start).
   * Throws SYNOD_INVALID_ARGUMENT for a field out of range or a time before the epoch, and
   * SYNOD_ID_SPACE_EXHAUSTED for a time after `lastTimestampMs`'s unit.
   */
  encode(parts: SnowflakeParts): bigint {
    const { timestampMs, sequence } = parts;
    if (!Number.isSafeInteger(timestampMs) || timestampMs < this.epochMs) {
      throw invalid(`snowflake: timestampMs must be whole unix ms from the epoch ${this.epochMs}` +
        ` on, not ${timestampMs}`);
    }
    checkField('sequence', sequence, this.sequenceMax);
    const tick = this.tickOf(timestampMs);
    if (tick > this.timestampTicksMax) throw this.spaceExhausted(timestampMs);
    const id = this.firstIdOf(tick, this.workerBitsOf(parts.datacenterId, parts.workerId)) |
      BigInt(sequence);
    assert(id >= 0n && id < this.idLimit, 'snowflake layout: an encoded id fits the layout');
    return id;
  }

  /**
   * The fields of an id, given as a bigint or as its decimal string (digits only: no sign, no
   * leading zeros, no spaces). Throws SYNOD_INVALID_ARGUMENT for anything else, a negative id or
   * one of more bits than the layout has.
   */
  decode(id: bigint | string): SnowflakeParts {
    const value = this.#parse(id);
    const field = (shift: bigint, bits: number): number =>
      Number((value >> shift) & ((1n << BigInt(bits)) - 1n));
    const tick = field(this.#timestampShift, this.timestampBits);
    const parts: SnowflakeParts = {
      timestampMs: this.tickStartMs(tick),
      datacenterId: field(this.#datacenterShift, this.datacenterBits),
      workerId: field(this.#workerShift, this.workerBits),
      sequence: field(0n, this.sequenceBits),
    };
    assert(parts.timestampMs <= this.lastTimestampMs, 'snowflake layout: a decoded time in range');
    return parts;
  }

  /** The decimal form of an id, the JSON-safe one (a JSON number loses bits past 2^53). */
  toDecimalString(id: bigint): string {
    return this.#parse(id).toString();
  }

  /** The error for a time past the last unit the timestamp bits can hold. */
  spaceExhausted(timestampMs: number): SynodError {
    const lastIso = new Date(this.lastTimestampMs).toISOString();
    return new SynodError('SYNOD_ID_SPACE_EXHAUSTED', `snowflake: ${timestampMs} is past the ` +
      `layout's last timestamp (${lastIso}); the ${this.timestampBits}-bit timestamp is used up`);
  }

  #parse(id: bigint | string): bigint {
    let value: bigint;
    if (typeof id === 'bigint') {
      value = id;
    } else if (typeof id === 'string') {
      if (id.length > decimalDigitsMax || !decimalPattern.test(id)) {
        throw invalid(`snowflake: ${JSON.stringify(id.slice(0, 40))} is not a decimal id`);
      }
      value = BigInt(id);
    } else {
      throw invalid('snowflake: an id is a bigint or a decimal string');
    }
    if (value < 0n || value >= this.idLimit) {
      throw invalid(`snowflake: ${value} is outside the layout's ids [0, 2^${this.totalBits})`);
    }
    return value;
  }
}

/** The low three decimal digits of an id, zero-padded, by value. */
const decimalLowDigits = Array.from({ length: 1000 }, (_, low) => String(low).padStart(3, '0'));

/**
 * Decimal forms of consecutive ids, cheaper than a bigint's toString per id (about half the time,
 * and no bigint division): an id is split as prefix × 1000 + low, the prefix's digits are worked
 * out once per thousand ids and the low three digits come from a table. A generator keeps one and
 * formats each id as its unit's first id plus an offset.
 */
export class SnowflakeDecimalCursor {
  /** The first id the cursor was set up for, with its low three digits as a number. */
  #firstId = -1n;
  #firstLow = 0;
  /** Thousands past #firstId's prefix that #prefix stands for; -1 when not worked out yet. */
  #carry = -1;
  #prefix = '';

  /** The decimal form of `firstId + offset`. */
  format(firstId: bigint, offset: number): string {
    assert(firstId >= 0n && Number.isSafeInteger(offset) && offset >= 0, 'decimal: a valid id');
    if (firstId !== this.#firstId) {
      this.#firstId = firstId;
      this.#firstLow = Number(firstId % 1000n);
      this.#carry = -1;
    }
    const low = this.#firstLow + offset;
    const carry = Math.floor(low / 1000);
    if (carry !== this.#carry) {
      this.#carry = carry;
      const prefix = firstId / 1000n + BigInt(carry);
      this.#prefix = prefix === 0n ? '' : prefix.toString();
    }
    // Under 1 000 there is no prefix, and the digits take no leading zeros.
    if (this.#prefix === '') return String(low);
    return this.#prefix + decimalLowDigits[low - carry * 1000]!;
  }
}

/** Twitter's layout from Synod's epoch: 41 timestamp, 5 datacenter, 5 worker, 12 sequence bits. */
export const snowflakeLayoutDefault = new SnowflakeLayout();
