/**
 * Telling HTTP/2 from HTTP/1.1 on a shared port, as etcd's cmux does: a gRPC client speaks h2c
 * with prior knowledge, so its first bytes are the HTTP/2 connection preface (RFC 9113 §3.4);
 * anything else is taken for HTTP/1.1, whose parser answers garbage with 400.
 */

import { assert } from '../../base/index.js';

/** The client connection preface every HTTP/2 connection opens with (RFC 9113 §3.4). */
export const http2Preface: Buffer = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');

/** What the first bytes of a connection say about its protocol. */
export type PrefaceVerdict = 'http2' | 'http1' | 'undecided';

/**
 * Classifies the first `received` bytes of a connection: `http2` once the whole preface is there,
 * `http1` at the first byte that departs from it, `undecided` while they are a strict prefix of it.
 * So a caller never holds more than `http2Preface.length - 1` undecided bytes.
 */
export function classifyPreface(received: Uint8Array): PrefaceVerdict {
  const compared = Math.min(received.length, http2Preface.length);
  for (let index = 0; index < compared; index += 1) {
    if (received[index] !== http2Preface[index]) return 'http1';
  }
  if (received.length >= http2Preface.length) return 'http2';
  assert(received.length < http2Preface.length, 'undecided only on a strict prefix');
  return 'undecided';
}
