/**
 * The byte writer and bounds-checked reader of the peer protocol. Integers are big-endian; a
 * "uint" is a non-negative safe integer written as two u32 halves (terms and indexes stay below
 * 2^53 for the life of a cluster). A malformed frame from a peer is an expected condition
 * (SYNOD_PEER_PROTOCOL), never an assertion: peers run other builds and networks garble bytes.
 */

import { assert, SynodError } from '../../base/index.js';

const twoTo32 = 2 ** 32;

/** Appends fields to a growable buffer. */
export class WireWriter {
  #bytes: Uint8Array;
  #view: DataView;
  #length = 0;

  constructor(capacityBytes = 256) {
    this.#bytes = new Uint8Array(capacityBytes);
    this.#view = new DataView(this.#bytes.buffer);
  }

  /** Bytes written so far. */
  get length(): number {
    return this.#length;
  }

  u8(value: number): this {
    assert(Number.isInteger(value) && value >= 0 && value <= 0xff, 'u8 out of range');
    const at = this.#reserve(1); // Before reading #view: reserving may replace it.
    this.#view.setUint8(at, value);
    return this;
  }

  u32(value: number): this {
    assert(Number.isInteger(value) && value >= 0 && value < twoTo32, 'u32 out of range');
    const at = this.#reserve(4);
    this.#view.setUint32(at, value);
    return this;
  }

  /** A non-negative safe integer in 8 bytes. */
  uint(value: number): this {
    assert(Number.isSafeInteger(value) && value >= 0, `uint out of range: ${value}`);
    const at = this.#reserve(8);
    this.#view.setUint32(at, Math.floor(value / twoTo32));
    this.#view.setUint32(at + 4, value >>> 0);
    return this;
  }

  /** A u32 length, then the bytes. */
  bytes(value: Uint8Array): this {
    this.u32(value.length);
    const at = this.#reserve(value.length);
    this.#bytes.set(value, at);
    return this;
  }

  /** UTF-8 text as `bytes`. */
  text(value: string): this {
    return this.bytes(new TextEncoder().encode(value));
  }

  /** Overwrites the u32 at `offset` (for lengths known only after writing what follows). */
  patchU32(offset: number, value: number): void {
    assert(offset + 4 <= this.#length, 'patch beyond the written bytes');
    this.#view.setUint32(offset, value);
  }

  /** A view of the bytes written (not a copy; the writer must not be used afterwards). */
  finish(): Uint8Array {
    return this.#bytes.subarray(0, this.#length);
  }

  #reserve(count: number): number {
    const at = this.#length;
    const needed = at + count;
    if (needed > this.#bytes.length) {
      const grown = new Uint8Array(Math.max(needed, this.#bytes.length * 2));
      grown.set(this.#bytes.subarray(0, at));
      this.#bytes = grown;
      this.#view = new DataView(grown.buffer);
    }
    this.#length = needed;
    return at;
  }
}

/** Reads what `WireWriter` wrote; any overrun or bad value is SYNOD_PEER_PROTOCOL. */
export class WireReader {
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

  u8(): number {
    return this.#view.getUint8(this.#advance(1));
  }

  u32(): number {
    return this.#view.getUint32(this.#advance(4));
  }

  uint(): number {
    const at = this.#advance(8);
    const high = this.#view.getUint32(at);
    if (high >= 2 ** 21) throw peerProtocolError('integer above 2^53');
    return high * twoTo32 + this.#view.getUint32(at + 4);
  }

  /** A length-prefixed byte string (a copy, so the frame buffer can be released). */
  bytes(): Uint8Array {
    const length = this.u32();
    const at = this.#advance(length);
    // Not `slice`: on a Buffer it returns a view, which would pin the whole frame in memory.
    const copy = new Uint8Array(length);
    copy.set(this.#bytes.subarray(at, at + length));
    return copy;
  }

  text(): string {
    try {
      return new TextDecoder('utf-8', { fatal: true }).decode(this.bytes());
    } catch {
      throw peerProtocolError('malformed UTF-8');
    }
  }

  /** Throws unless every byte was read. */
  end(): void {
    if (!this.done) throw peerProtocolError('trailing bytes');
  }

  #advance(count: number): number {
    const at = this.#offset;
    if (at + count > this.#bytes.length) throw peerProtocolError('truncated frame');
    this.#offset = at + count;
    return at;
  }
}

/** A SYNOD_PEER_PROTOCOL error saying what was wrong. */
export function peerProtocolError(detail: string): SynodError {
  return new SynodError('SYNOD_PEER_PROTOCOL', `peer protocol: ${detail}`);
}
