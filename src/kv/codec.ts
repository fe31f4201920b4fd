/**
 * Binary encodings for what the MVCC layer stores: a growable writer and a bounds-checked reader,
 * and the record kept under each revision in the `key` bucket. Integers are big-endian; revisions
 * and versions are unsigned 64-bit, lease IDs signed 64-bit. Byte strings carry a u32 length.
 */

import { assert, SynodError } from '../base/index.js';
import type { KeyValue } from './types.js';

/** Appends fixed-width big-endian fields and length-prefixed byte strings. */
export class ByteWriter {
  #bytes = new Uint8Array(64);
  #view = new DataView(this.#bytes.buffer);
  #length = 0;

  /** Appends one byte. */
  u8(value: number): this {
    assert(Number.isInteger(value) && value >= 0 && value <= 0xff, 'u8 out of range');
    this.#reserve(1).setUint8(this.#length - 1, value);
    return this;
  }

  /** Appends a non-negative safe integer as u64. */
  u64(value: number): this {
    assert(Number.isSafeInteger(value) && value >= 0, 'u64 out of range');
    this.#reserve(8).setBigUint64(this.#length - 8, BigInt(value));
    return this;
  }

  /** Appends a signed 64-bit integer. */
  i64(value: bigint): this {
    assert(BigInt.asIntN(64, value) === value, 'i64 out of range');
    this.#reserve(8).setBigInt64(this.#length - 8, value);
    return this;
  }

  /** Appends a u32 length and the bytes. */
  bytes(value: Uint8Array): this {
    assert(value.length <= 0xffff_ffff, 'byte string too long');
    this.#reserve(4).setUint32(this.#length - 4, value.length);
    this.#reserve(value.length);
    this.#bytes.set(value, this.#length - value.length);
    return this;
  }

  /** The bytes written so far (a copy). */
  finish(): Uint8Array {
    return this.#bytes.slice(0, this.#length);
  }

  #reserve(count: number): DataView {
    const needed = this.#length + count;
    if (needed > this.#bytes.length) {
      const grown = new Uint8Array(Math.max(needed, this.#bytes.length * 2));
      grown.set(this.#bytes.subarray(0, this.#length));
      this.#bytes = grown;
      this.#view = new DataView(grown.buffer);
    }
    this.#length = needed;
    return this.#view;
  }
}

/**
 * Reads what `ByteWriter` wrote. Input comes from disk or a snapshot, so truncation is an expected
 * condition (SYNOD_STORAGE_CORRUPT), not an assertion.
 */
export class ByteReader {
  readonly #bytes: Uint8Array;
  readonly #view: DataView;
  #offset = 0;

  constructor(bytes: Uint8Array) {
    this.#bytes = bytes;
    this.#view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  /** True when every byte has been read. */
  get done(): boolean {
    return this.#offset === this.#bytes.length;
  }

  /** Reads one byte. */
  u8(): number {
    return this.#view.getUint8(this.#advance(1));
  }

  /** Reads a u64 that must be a safe integer. */
  u64(): number {
    const value = this.#view.getBigUint64(this.#advance(8));
    if (value > BigInt(Number.MAX_SAFE_INTEGER)) throw corrupt('u64 above the safe range');
    return Number(value);
  }

  /** Reads a signed 64-bit integer. */
  i64(): bigint {
    return this.#view.getBigInt64(this.#advance(8));
  }

  /** Reads a length-prefixed byte string (a copy). */
  bytes(): Uint8Array {
    const length = this.#view.getUint32(this.#advance(4));
    const start = this.#advance(length);
    return this.#bytes.slice(start, start + length);
  }

  #advance(count: number): number {
    const start = this.#offset;
    if (start + count > this.#bytes.length) throw corrupt('truncated record');
    this.#offset += count;
    return start;
  }
}

function corrupt(detail: string): SynodError {
  return new SynodError('SYNOD_STORAGE_CORRUPT', `kv: ${detail}`);
}

/** What the `key` bucket holds under a revision: a value, or the tombstone of a delete. */
export type RevisionRecord =
  | { readonly kind: 'put'; readonly kv: KeyValue }
  | { readonly kind: 'tombstone'; readonly key: Uint8Array };

/** Encodes a record; `modRevision` is implied by the revision it is stored under. */
export function encodeRecord(record: RevisionRecord): Uint8Array {
  const writer = new ByteWriter();
  if (record.kind === 'tombstone') return writer.u8(1).bytes(record.key).finish();
  const { kv } = record;
  return writer.u8(0).bytes(kv.key).u64(kv.createRevision).u64(kv.version).i64(kv.lease)
    .bytes(kv.value).finish();
}

/** Decodes a record stored under main revision `modRevision`. */
export function decodeRecord(bytes: Uint8Array, modRevision: number): RevisionRecord {
  const reader = new ByteReader(bytes);
  const kind = reader.u8();
  const key = reader.bytes();
  if (kind === 1) return { kind: 'tombstone', key };
  if (kind !== 0) throw corrupt(`unknown record kind ${kind}`);
  const createRevision = reader.u64();
  const version = reader.u64();
  const lease = reader.i64();
  const value = reader.bytes();
  if (!reader.done) throw corrupt('trailing bytes in record');
  return { kind: 'put', kv: { key, createRevision, modRevision, version, value, lease } };
}
