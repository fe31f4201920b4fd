/**
 * Byte-string helpers. etcd orders keys by unsigned byte comparison (Go's `bytes.Compare`); every
 * ordered structure in src/kv uses `compareBytes` so that the in-memory index, the backend and the
 * client agree on what `[key, range_end)` means.
 */

import { assert } from '../base/index.js';

/** Unsigned lexicographic order: negative if `a < b`, 0 if equal, positive if `a > b`. */
export function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const length = Math.min(a.length, b.length);
  for (let index = 0; index < length; index++) {
    const difference = a[index]! - b[index]!;
    if (difference !== 0) return difference;
  }
  return a.length - b.length;
}

/** True when `a` and `b` hold the same bytes. */
export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && compareBytes(a, b) === 0;
}

/**
 * The `range_end` that selects every key starting with `prefix`, as etcd's clientv3 computes it:
 * bump the last byte below 0xff and drop the 0xff bytes after it; if every byte is 0xff (or the
 * prefix is empty), `"\0"`, which means "no upper bound".
 */
export function prefixEnd(prefix: Uint8Array): Uint8Array {
  for (let index = prefix.length - 1; index >= 0; index--) {
    if (prefix[index]! < 0xff) {
      const end = prefix.slice(0, index + 1);
      end[index] = end[index]! + 1;
      assert(compareBytes(end, prefix) > 0, 'prefixEnd: end must follow the prefix');
      return end;
    }
  }
  return new Uint8Array([0]);
}

/** True for etcd's `"\0"` range end: a single zero byte, meaning "every key ≥ key". */
export function isUnboundedEnd(rangeEnd: Uint8Array): boolean {
  return rangeEnd.length === 1 && rangeEnd[0] === 0;
}

/** UTF-8 bytes of `text`; a convenience for tests and callers building keys. */
export function utf8(text: string): Uint8Array {
  return textEncoder.encode(text);
}

/** The UTF-8 text of `bytes` (lossy for invalid sequences); for tests and messages. */
export function utf8Text(bytes: Uint8Array): string {
  return textDecoder.decode(bytes);
}

/** Lower-case hex spelling of `bytes`; a map key for byte strings. */
export function toHex(bytes: Uint8Array): string {
  let text = '';
  for (const byte of bytes) text += byte.toString(16).padStart(2, '0');
  return text;
}

/** The bytes spelled by `text` in hex (as `toHex` writes it); undefined if malformed. */
export function fromHex(text: string): Uint8Array | undefined {
  if (text.length % 2 !== 0 || !/^[0-9a-f]*$/.test(text)) return undefined;
  const bytes = new Uint8Array(text.length / 2);
  for (let index = 0; index < bytes.length; index++) {
    bytes[index] = Number.parseInt(text.slice(index * 2, index * 2 + 2), 16);
  }
  return bytes;
}

const textEncoder = new TextEncoder();
const textDecoder = new TextDecoder();

/**
 * Key span of a request: `[key, rangeEnd)` in etcd's encoding. `rangeEnd` empty means the single
 * key `key`; `rangeEnd = "\0"` means no upper bound.
 */
export interface KeySpan {
  readonly key: Uint8Array;
  readonly rangeEnd: Uint8Array;
}

/** True when `candidate` falls inside `span` under etcd's range_end rules. */
export function spanContains(span: KeySpan, candidate: Uint8Array): boolean {
  if (span.rangeEnd.length === 0) return bytesEqual(span.key, candidate);
  if (compareBytes(candidate, span.key) < 0) return false;
  return isUnboundedEnd(span.rangeEnd) || compareBytes(candidate, span.rangeEnd) < 0;
}
