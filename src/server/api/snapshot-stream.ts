/**
 * Maintenance.Snapshot's byte stream (etcd server/etcdserver/api/v3rpc/maintenance.go, Snapshot).
 *
 * etcd streams its bbolt file in 32 KiB `{header, remaining_bytes, blob}` messages, then one last
 * message whose blob is the SHA-256 of every byte before it. etcdctl 3.4's `snapshot save` writes
 * the blobs to a file and refuses it unless `size % 512 == 32` (whole bbolt pages plus the hash).
 *
 * Synod streams its own snapshot file instead, which is NOT a bbolt file: `etcdctl snapshot
 * status` and `etcdctl snapshot restore` cannot parse it; Synod's own restore reads it with
 * `decodeSnapshotFile`. Layout, integers big-endian:
 *
 *   offset 0   magic "SYNODSNP" (8 bytes)
 *   offset 8   format version, u32 (`snapshotFormatVersion`)
 *   offset 12  payload length in bytes, u64
 *   offset 20  payload: `KvStateMachine.serialize()` (src/kv/snapshot.ts), alarms included
 *   then       zero bytes up to the next multiple of 512 (`snapshotPageBytes`), so etcdctl's
 *              size check passes; the length field says where the payload ends
 *   last 32    SHA-256 of everything above
 */

import { createHash } from 'node:crypto';
import type { ServerWritableStream } from '@grpc/grpc-js';
import { assert, SynodError } from '../../base/index.js';

/** Bytes of `blob` per message, as etcd sends. */
export const snapshotChunkBytes = 32 * 1024;
/** The body is padded to a multiple of this, etcdctl 3.4's bbolt page assumption. */
export const snapshotPageBytes = 512;
/** The trailing SHA-256. */
export const snapshotHashBytes = 32;
/** The version written after the magic; a reader refuses any other. */
export const snapshotFormatVersion = 1;

const magic = new TextEncoder().encode('SYNODSNP');
const prefixBytes = magic.length + 4 + 8;

/** The padded body of a snapshot file holding `payload`, as segments (no copy of the payload). */
export function snapshotBody(payload: Uint8Array): readonly Uint8Array[] {
  const prefix = new Uint8Array(prefixBytes);
  prefix.set(magic);
  const view = new DataView(prefix.buffer);
  view.setUint32(magic.length, snapshotFormatVersion);
  view.setBigUint64(magic.length + 4, BigInt(payload.length));
  const unpadded = prefixBytes + payload.length;
  const paddingBytes = (snapshotPageBytes - (unpadded % snapshotPageBytes)) % snapshotPageBytes;
  const padding = new Uint8Array(paddingBytes);
  assert((unpadded + padding.length) % snapshotPageBytes === 0, 'body is whole pages');
  return [prefix, payload, padding];
}

/**
 * The payload of a snapshot file (what `snapshot save` wrote). A file that fails its hash, its
 * magic, its version, its length or its zero padding is SYNOD_STORAGE_CORRUPT.
 */
export function decodeSnapshotFile(file: Uint8Array): Uint8Array {
  const corrupt = (why: string): never => {
    throw new SynodError('SYNOD_STORAGE_CORRUPT', `snapshot file: ${why}`);
  };
  if (file.length < prefixBytes + snapshotHashBytes) corrupt('too short');
  const bodyBytes = file.length - snapshotHashBytes;
  if (bodyBytes % snapshotPageBytes !== 0) corrupt('not whole 512-byte pages plus a hash');
  const body = file.subarray(0, bodyBytes);
  const hash = createHash('sha256').update(body).digest();
  if (!hash.equals(file.subarray(bodyBytes))) corrupt('SHA-256 mismatch');
  if (!magic.every((byte, index) => body[index] === byte)) corrupt('not a Synod snapshot');
  const view = new DataView(body.buffer, body.byteOffset, body.byteLength);
  if (view.getUint32(magic.length) !== snapshotFormatVersion) corrupt('unknown format version');
  const payloadBytes = view.getBigUint64(magic.length + 4);
  if (payloadBytes > BigInt(bodyBytes - prefixBytes)) corrupt('payload length past the end');
  const payloadEnd = prefixBytes + Number(payloadBytes);
  if (bodyBytes - payloadEnd >= snapshotPageBytes) corrupt('more padding than one page');
  if (body.subarray(payloadEnd).some((byte) => byte !== 0)) corrupt('padding is not zero');
  // A plain copy: `file` may be a Buffer, whose slice() shares memory and whose type leaks out.
  return Uint8Array.from(body.subarray(prefixBytes, payloadEnd));
}

/** One `SnapshotResponse` on the wire. */
export interface SnapshotMessage {
  readonly header: object;
  /** Body bytes still to come after this message's blob, as a decimal string (uint64). */
  readonly remaining_bytes: string;
  readonly blob: Uint8Array;
}

/** `snapshotChunkBytes`-sized blobs over `segments`, each with the body bytes left after it. */
export function* snapshotChunks(
  segments: readonly Uint8Array[],
): Generator<{ readonly blob: Uint8Array; readonly remainingBytes: number }> {
  const total = segments.reduce((sum, segment) => sum + segment.length, 0);
  let sent = 0;
  let chunk = new Uint8Array(Math.min(snapshotChunkBytes, total));
  let filled = 0;
  for (const segment of segments) {
    for (let offset = 0; offset < segment.length;) {
      const take = Math.min(chunk.length - filled, segment.length - offset);
      chunk.set(segment.subarray(offset, offset + take), filled);
      filled += take;
      offset += take;
      if (filled < chunk.length) continue;
      sent += filled;
      yield { blob: chunk, remainingBytes: total - sent };
      chunk = new Uint8Array(Math.min(snapshotChunkBytes, total - sent));
      filled = 0;
    }
  }
  assert(sent === total && filled === 0, 'every body byte is sent exactly once');
}

/**
 * Writes the snapshot file of `payload` to `call`: the body in chunks, then the SHA-256. Waits for
 * 'drain' whenever `write` reports a full buffer, so a slow reader holds at most the stream's
 * buffer, and stops (without ending the call) once the client cancels. Resolves when the call is
 * ended or cancelled.
 */
export async function writeSnapshot(
  call: ServerWritableStream<unknown, SnapshotMessage>,
  options: { readonly payload: Uint8Array; readonly header: () => object },
): Promise<void> {
  const hash = createHash('sha256');
  // A cancelled call is also destroyed by grpc-js; either way nothing more may be written.
  const stopped = (): boolean => call.cancelled || call.destroyed || call.writableEnded;
  const send = async (message: SnapshotMessage): Promise<boolean> => {
    if (stopped()) return false;
    if (!call.write(message)) await drainOrCancel(call);
    return !stopped();
  };
  for (const { blob, remainingBytes } of snapshotChunks(snapshotBody(options.payload))) {
    hash.update(blob);
    const message = { header: options.header(), remaining_bytes: String(remainingBytes), blob };
    if (!(await send(message))) return;
  }
  const digest = new Uint8Array(hash.digest());
  assert(digest.length === snapshotHashBytes, 'SHA-256 is 32 bytes');
  if (!(await send({ header: options.header(), remaining_bytes: '0', blob: digest }))) return;
  call.end();
}

function drainOrCancel(call: ServerWritableStream<unknown, SnapshotMessage>): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      call.off('drain', done);
      call.off('cancelled', done);
      call.off('close', done);
      resolve();
    };
    call.on('drain', done);
    call.on('cancelled', done);
    call.on('close', done);
  });
}
