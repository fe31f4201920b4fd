/**
 * Framing of the peer byte stream: `[u32 body length][u32 crc32 of body][body]`, where the body is
 * a one-byte kind and its payload. The checksum catches what TCP's weak checksum lets through and,
 * more usefully, a peer speaking something else; a bad frame closes the connection
 * (SYNOD_PEER_PROTOCOL) and Raft retransmits over the next one.
 */

import { crc32 } from 'node:zlib';
import { assert } from '../../base/index.js';
import { peerProtocolError } from './wire-buffer.js';

/** What a frame carries. Codes are stable. */
export const frameKinds = Object.freeze({
  /** The first frame on every connection: who is calling whom, in which cluster. */
  hello: 1,
  /** A batch of Raft messages (message-codec.ts). */
  raft: 2,
  /** A request forwarded to the peer (e.g. a lease keep-alive to the leader). */
  request: 3,
  /** The answer to a `request`. */
  response: 4,
});

/** A frame's kind code. */
export type FrameKind = (typeof frameKinds)[keyof typeof frameKinds];

const knownKinds = new Set<number>(Object.values(frameKinds));
const headerBytes = 8;

/** One decoded frame. */
export interface Frame {
  readonly kind: FrameKind;
  readonly payload: Uint8Array;
}

/** The bytes of one frame: header, kind, payload. */
export function encodeFrame(kind: FrameKind, payload: Uint8Array): Uint8Array {
  const frame = new Uint8Array(headerBytes + 1 + payload.length);
  frame[headerBytes] = kind;
  frame.set(payload, headerBytes + 1);
  const view = new DataView(frame.buffer);
  view.setUint32(0, 1 + payload.length);
  view.setUint32(4, crc32(frame.subarray(headerBytes)));
  return frame;
}

/**
 * Cuts a byte stream into frames. Holds at most one partial frame, whose declared size must not
 * exceed `frameBytesMax`, so a peer cannot make this buffer grow without bound.
 */
export class FrameDecoder {
  #frameBytesMax: number;
  #chunks: Buffer[] = [];
  #bufferedBytes = 0;

  constructor(frameBytesMax: number) {
    assert(Number.isSafeInteger(frameBytesMax) && frameBytesMax > 0, 'frameBytesMax > 0');
    this.#frameBytesMax = frameBytesMax;
  }

  /** Changes the bound for frames not yet started (e.g. raised once a peer has said hello). */
  setFrameBytesMax(frameBytesMax: number): void {
    assert(Number.isSafeInteger(frameBytesMax) && frameBytesMax > 0, 'frameBytesMax > 0');
    this.#frameBytesMax = frameBytesMax;
  }

  /** Bytes held of an incomplete frame. */
  get bufferedBytes(): number {
    return this.#bufferedBytes;
  }

  /** Appends `chunk` to the buffered bytes; take frames with `next`. */
  push(chunk: Buffer): void {
    this.#chunks.push(chunk);
    this.#bufferedBytes += chunk.length;
  }

  /**
   * The next complete frame, or null until more bytes arrive. One at a time, so a caller can
   * change the size bound between frames (a hello raises it). Throws SYNOD_PEER_PROTOCOL on a bad
   * frame.
   */
  next(): Frame | null {
    if (this.#bufferedBytes < headerBytes) return null;
    const header = this.#peek(headerBytes);
    const bodyBytes = header.readUInt32BE(0);
    if (bodyBytes < 1 || bodyBytes > this.#frameBytesMax) {
      throw peerProtocolError(`frame of ${bodyBytes} bytes (max ${this.#frameBytesMax})`);
    }
    if (this.#bufferedBytes < headerBytes + bodyBytes) return null;
    const checksum = header.readUInt32BE(4);
    const body = this.#take(headerBytes + bodyBytes).subarray(headerBytes);
    if (crc32(body) !== checksum) throw peerProtocolError('frame checksum mismatch');
    const kind = body[0]!;
    if (!knownKinds.has(kind)) throw peerProtocolError(`unknown frame kind ${kind}`);
    return { kind: kind as FrameKind, payload: body.subarray(1) };
  }

  /** Every complete frame buffered, in order (for callers that never change the bound). */
  drain(): Frame[] {
    const frames: Frame[] = [];
    for (let frame = this.next(); frame !== null; frame = this.next()) frames.push(frame);
    return frames;
  }

  /** The first `count` buffered bytes, without consuming them. */
  #peek(count: number): Buffer {
    const first = this.#chunks[0]!;
    if (first.length >= count) return first.subarray(0, count);
    this.#chunks = [Buffer.concat(this.#chunks)];
    return this.#chunks[0]!.subarray(0, count);
  }

  #take(count: number): Buffer {
    const joined = this.#chunks.length === 1 ? this.#chunks[0]! : Buffer.concat(this.#chunks);
    const frame = joined.subarray(0, count);
    const rest = joined.subarray(count);
    this.#chunks = rest.length === 0 ? [] : [rest];
    this.#bufferedBytes = rest.length;
    return frame;
  }
}
