import { randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isSynodError } from '../../base/index.js';
import type { Message, MessageType } from '../../raft/index.js';
import { encodeFrame, FrameDecoder, frameKinds } from './frame.js';
import { decodeHello, encodeHello } from './hello.js';
import { decodeMessages, encodeMessages } from './message-codec.js';
import { decodeRequest, decodeResponse, encodeRequest, encodeResponse } from './rpc-codec.js';

const networkTypes: MessageType[] = [
  'prop', 'app', 'app-resp', 'vote', 'vote-resp', 'pre-vote', 'pre-vote-resp', 'snap', 'heartbeat',
  'heartbeat-resp', 'transfer-leader', 'timeout-now', 'read-index', 'read-index-resp',
];
const uint = fc.oneof(fc.nat(1000), fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }));
const bytes = fc.uint8Array({ maxLength: 64 });
const entry = fc.record({
  term: uint, index: uint, type: fc.constantFrom('normal' as const, 'conf-change' as const), data: bytes,
});
const snapshot = fc.record({
  metadata: fc.record({
    index: uint, term: uint,
    confState: fc.record({ voters: fc.array(uint, { maxLength: 5 }), learners: fc.array(uint, { maxLength: 3 }) }),
  }),
  data: bytes,
});
const message: fc.Arbitrary<Message> = fc.record({
  type: fc.constantFrom(...networkTypes), to: uint, from: uint, term: uint, logTerm: uint, index: uint,
  entries: fc.array(entry, { maxLength: 4 }), commit: uint, reject: fc.boolean(), rejectHint: uint,
  snapshot: fc.option(snapshot, { nil: null }), context: bytes, leaseTick: uint,
});

function expectProtocolError(action: () => unknown): void {
  try {
    action();
  } catch (error) {
    expect(isSynodError(error, 'SYNOD_PEER_PROTOCOL')).toBe(true);
    return;
  }
  expect.fail('expected SYNOD_PEER_PROTOCOL');
}

describe('message codec', () => {
  it('round-trips any batch of network messages', () => {
    fc.assert(fc.property(fc.array(message, { maxLength: 5 }), (messages) => {
      expect(decodeMessages(encodeMessages(messages))).toEqual(messages);
    }), { seed: 42, numRuns: 300 });
  });

  it('rejects truncated, padded and garbled batches with SYNOD_PEER_PROTOCOL', () => {
    const sample = fc.sample(message, { seed: 7, numRuns: 1 })[0]!;
    const encoded = encodeMessages([sample]);
    expectProtocolError(() => decodeMessages(encoded.subarray(0, encoded.length - 1)));
    expectProtocolError(() => decodeMessages(new Uint8Array([...encoded, 0])));
    const badType = encoded.slice();
    badType[4] = 99; // The first message's type code.
    expectProtocolError(() => decodeMessages(badType));
    for (let i = 0; i < 200; i++) {
      try {
        decodeMessages(randomBytes(1 + (i % 90)));
      } catch (error) {
        expect(isSynodError(error, 'SYNOD_PEER_PROTOCOL')).toBe(true);
      }
    }
  });

  it('refuses to put a local message type on the wire', () => {
    const local = { ...fc.sample(message, { seed: 1, numRuns: 1 })[0]!, type: 'hup' as const };
    expect(() => encodeMessages([local])).toThrow(TypeError);
  });
});

function decodeAll(bytes: Buffer): unknown[] {
  const decoder = new FrameDecoder(1024);
  decoder.push(bytes);
  return decoder.drain();
}

describe('frames', () => {
  it('reassembles frames split at every byte and joined in one chunk', () => {
    const frames = [
      encodeFrame(frameKinds.raft, new Uint8Array([1, 2, 3])),
      encodeFrame(frameKinds.request, new Uint8Array(0)),
      encodeFrame(frameKinds.response, new Uint8Array(300).fill(7)),
    ];
    const stream = Buffer.concat(frames);
    const byteWise = new FrameDecoder(1024);
    const out = [];
    for (const byte of stream) {
      byteWise.push(Buffer.from([byte]));
      out.push(...byteWise.drain());
    }
    expect(out.map((frame) => [frame.kind, frame.payload.length])).toEqual([[2, 3], [3, 0], [4, 300]]);
    const whole = new FrameDecoder(1024);
    whole.push(stream);
    expect(whole.drain()).toHaveLength(3);
    expect(byteWise.bufferedBytes).toBe(0);
  });

  it('rejects a checksum mismatch, an unknown kind and an oversized frame', () => {
    const frame = Buffer.from(encodeFrame(frameKinds.raft, new Uint8Array([1, 2, 3])));
    const flipped = Buffer.from(frame);
    flipped[frame.length - 1] = flipped[frame.length - 1]! ^ 1;
    expectProtocolError(() => decodeAll(flipped));
    const unknownKind = Buffer.from(encodeFrame(9 as never, new Uint8Array(1)));
    expectProtocolError(() => decodeAll(unknownKind));
    const big = Buffer.from(encodeFrame(frameKinds.raft, new Uint8Array(2000)));
    // Refused from the header alone, before the body is buffered.
    expectProtocolError(() => decodeAll(big.subarray(0, 8)));
  });
});

describe('hello and forwarded requests', () => {
  it('round-trip', () => {
    const hello = { clusterId: 0xfedcba9876543210n, from: 2, to: 3, purpose: 'snapshot' as const };
    expect(decodeHello(encodeHello(hello))).toEqual(hello);
    const request = { id: 9, method: 'lease.keepAlive', payload: new Uint8Array([1, 2]) };
    expect(decodeRequest(encodeRequest(request))).toEqual(request);
    const failure = { id: 9, ok: false as const, code: 'SYNOD_LEASE_NOT_FOUND', message: 'gone' };
    expect(decodeResponse(encodeResponse(failure))).toEqual(failure);
  });

  it('refuses a hello of another protocol version or a stranger', () => {
    const hello = encodeHello({ clusterId: 1n, from: 1, to: 2, purpose: 'messages' });
    const otherVersion = hello.slice();
    otherVersion[4] = 9;
    expectProtocolError(() => decodeHello(otherVersion));
    expectProtocolError(() => decodeHello(new TextEncoder().encode('GET / HTTP/1.1\r\n\r\n')));
  });
});
