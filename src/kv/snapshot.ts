/**
 * Snapshots of the whole KV state machine for Raft: every entry of every backend bucket, which is
 * all the state there is (the key index, leases and attachments are rebuilt from it on restore),
 * like etcd's snapshot of its bolt database. Layout: magic "SYKV", format version u8, then per
 * bucket in `bucketNames` order an entry count u64 and each entry's key and value as byte strings.
 */

import { SynodError } from '../base/index.js';
import type { Backend, BackendWrite } from './backend.js';
import { bucketNames } from './backend.js';
import { ByteReader, ByteWriter } from './codec.js';

const magic = [0x53, 0x59, 0x4b, 0x56];
const formatVersion = 1;

/** Encodes every entry of `backend`. */
export function serializeBackend(backend: Backend): Uint8Array {
  const writer = new ByteWriter();
  for (const byte of magic) writer.u8(byte);
  writer.u8(formatVersion);
  for (const bucket of bucketNames) {
    const entries = [...backend.scan(bucket, { start: new Uint8Array(0) })];
    writer.u64(entries.length);
    for (const entry of entries) writer.bytes(entry.key).bytes(entry.value);
  }
  return writer.finish();
}

/**
 * Writes the entries of `snapshot` into `backend`, which must be empty, in one batch. Throws
 * SYNOD_STORAGE_CORRUPT on a malformed snapshot, before writing anything.
 */
export function restoreBackend(snapshot: Uint8Array, backend: Backend): void {
  for (const bucket of bucketNames) {
    const first = backend.scan(bucket, { start: new Uint8Array(0) })[Symbol.iterator]().next();
    if (first.done !== true) {
      const detail = `kv: restore needs an empty backend (${bucket})`;
      throw new SynodError('SYNOD_INVALID_CONFIG', detail);
    }
  }
  const reader = new ByteReader(snapshot);
  for (const byte of magic) {
    if (reader.u8() !== byte) throw corrupt('not a KV snapshot');
  }
  if (reader.u8() !== formatVersion) throw corrupt('unknown snapshot format version');
  const writes: BackendWrite[] = [];
  for (const bucket of bucketNames) {
    const count = reader.u64();
    for (let index = 0; index < count; index++) {
      writes.push({ bucket, key: reader.bytes(), value: reader.bytes() });
    }
  }
  if (!reader.done) throw corrupt('trailing bytes in snapshot');
  backend.commit(writes);
}

function corrupt(detail: string): SynodError {
  return new SynodError('SYNOD_STORAGE_CORRUPT', `kv snapshot: ${detail}`);
}
