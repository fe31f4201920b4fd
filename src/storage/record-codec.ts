/**
 * The on-disk encoding of the Raft log store's records. Every record starts with a format version
 * and ends its fixed header with a crc32 covering the header (crc field excluded) and the payload,
 * so a flipped bit anywhere is caught on read. Integers are big-endian; indexes and terms are u64
 * on disk and must be safe JavaScript integers in memory.
 *
 * Keys: the `log` database maps `logKey(index)` (8 bytes, big-endian, so LMDB order = index order)
 * to an entry record. The `meta` database holds one record per `metaKeys` name.
 */

import { crc32 } from 'node:zlib';
import { assert, SynodError } from '../base/index.js';
import type { ConfState, Entry, EntryType, HardState, SnapshotMetadata } from '../raft/types.js';

/** The format version written in every record's first byte. */
export const recordVersion = 1;

/** Bytes of an entry record before its data: version, type, reserved, length, term, index, crc. */
export const entryHeaderBytes = 28;

/** Largest entry data a record can describe (a u32 length); the store bounds it further. */
export const entryDataBytesLimit = 0xffff_ffff;

/** Names of the records in the `meta` database. */
export const metaKeys = Object.freeze({
  hardState: Buffer.from('hard-state'),
  /** The log's dummy entry (index and term just before `firstIndex`) and its last index. */
  bounds: Buffer.from('log-bounds'),
  snapshotMetadata: Buffer.from('snapshot-metadata'),
  snapshotData: Buffer.from('snapshot-data'),
});

/** Where the log starts and ends. Invariant: `dummyIndex ≤ lastIndex`. */
export interface LogBounds {
  /** The index just before the first entry held: the compaction point. */
  readonly dummyIndex: number;
  /** The term of the entry at `dummyIndex`. */
  readonly dummyTerm: number;
  /** The last entry held, or `dummyIndex` when the log is empty. */
  readonly lastIndex: number;
}

/** A decoded snapshot metadata record: the metadata plus the checksum of the data it describes. */
export interface SnapshotRecord {
  readonly metadata: SnapshotMetadata;
  /** Length of the snapshot data, bytes. */
  readonly dataBytes: number;
  /** crc32 of the snapshot data. */
  readonly dataCrc: number;
}

/** The 8-byte big-endian key of the entry at `index`. */
export function logKey(index: number): Buffer {
  assert(Number.isSafeInteger(index) && index >= 0, `bad log index ${index}`);
  const key = Buffer.allocUnsafe(8);
  key.writeBigUInt64BE(BigInt(index));
  return key;
}

/** The index a `logKey` encodes. */
export function logKeyIndex(key: Uint8Array): number {
  assert(key.length === 8, `log key of ${key.length} bytes`);
  return Number(Buffer.from(key.buffer, key.byteOffset, 8).readBigUInt64BE());
}

function corrupt(key: string, why: string): SynodError {
  return new SynodError('SYNOD_STORAGE_CORRUPT', `storage record ${key} is corrupt: ${why}`);
}

function readU64(view: Buffer, offset: number, key: string): number {
  const value = view.readBigUInt64BE(offset);
  if (value > BigInt(Number.MAX_SAFE_INTEGER)) throw corrupt(key, `integer ${value} out of range`);
  return Number(value);
}

/** Appends a crc32 of `body` to it. */
function sealed(body: Buffer): Buffer {
  const record = Buffer.allocUnsafe(body.length + 4);
  body.copy(record);
  record.writeUInt32BE(crc32(body), body.length);
  return record;
}

/** Checks version and trailing crc32 of a sealed record; returns its body. */
function unsealed(record: Uint8Array, key: string, bodyBytes: number): Buffer {
  const view = Buffer.from(record.buffer, record.byteOffset, record.length);
  if (view.length < 5) throw corrupt(key, `${view.length} bytes`);
  const body = view.subarray(0, view.length - 4);
  if (crc32(body) !== view.readUInt32BE(body.length)) throw corrupt(key, 'checksum mismatch');
  if (view[0] !== recordVersion) throw corrupt(key, `unknown version ${view[0]}`);
  if (bodyBytes >= 0 && body.length !== bodyBytes) throw corrupt(key, `${body.length} bytes`);
  return body;
}

const entryTypeCodes: Record<EntryType, number> = { normal: 0, 'conf-change': 1 };
const entryTypes: readonly (EntryType | undefined)[] = ['normal', 'conf-change'];

/** Encodes `entry` as a record. */
export function encodeEntry(entry: Entry): Buffer {
  assert(entry.index >= 1 && entry.term >= 1, `bad entry ${entry.index}@${entry.term}`);
  assert(entry.data.length <= entryDataBytesLimit, `entry data of ${entry.data.length} bytes`);
  const record = Buffer.allocUnsafe(entryHeaderBytes + entry.data.length);
  record.writeUInt8(recordVersion, 0);
  record.writeUInt8(entryTypeCodes[entry.type], 1);
  record.writeUInt16BE(0, 2);
  record.writeUInt32BE(entry.data.length, 4);
  record.writeBigUInt64BE(BigInt(entry.term), 8);
  record.writeBigUInt64BE(BigInt(entry.index), 16);
  record.set(entry.data, entryHeaderBytes);
  const crc = crc32(record.subarray(entryHeaderBytes), crc32(record.subarray(0, 24)));
  record.writeUInt32BE(crc, 24);
  return record;
}

/**
 * Decodes and verifies the entry record stored under the key of `index`. Throws
 * SYNOD_STORAGE_CORRUPT naming the key on a checksum, length, type or index mismatch.
 */
export function decodeEntry(record: Uint8Array, index: number): Entry {
  const key = `log/${index}`;
  const view = Buffer.from(record.buffer, record.byteOffset, record.length);
  if (view.length < entryHeaderBytes) throw corrupt(key, `${view.length} bytes`);
  const crc = crc32(view.subarray(entryHeaderBytes), crc32(view.subarray(0, 24)));
  if (crc !== view.readUInt32BE(24)) throw corrupt(key, 'checksum mismatch');
  if (view[0] !== recordVersion) throw corrupt(key, `unknown version ${view[0]}`);
  const length = view.readUInt32BE(4);
  if (length !== view.length - entryHeaderBytes) throw corrupt(key, `data length ${length}`);
  const type = entryTypes[view[1]!];
  if (type === undefined) throw corrupt(key, `unknown entry type ${view[1]}`);
  const term = readU64(view, 8, key);
  const recordIndex = readU64(view, 16, key);
  if (recordIndex !== index) throw corrupt(key, `holds the entry of index ${recordIndex}`);
  if (term < 1) throw corrupt(key, 'term 0');
  // Copy: lmdb-js may reuse the buffer it read into.
  return { term, index, type, data: new Uint8Array(view.subarray(entryHeaderBytes)) };
}

/** Encodes a hard state record. */
export function encodeHardState(hardState: HardState): Buffer {
  const body = Buffer.alloc(25);
  body.writeUInt8(recordVersion, 0);
  body.writeBigUInt64BE(BigInt(hardState.term), 1);
  body.writeBigUInt64BE(BigInt(hardState.vote), 9);
  body.writeBigUInt64BE(BigInt(hardState.commit), 17);
  return sealed(body);
}

/** Decodes and verifies a hard state record. */
export function decodeHardState(record: Uint8Array): HardState {
  const key = 'meta/hard-state';
  const body = unsealed(record, key, 25);
  return {
    term: readU64(body, 1, key),
    vote: readU64(body, 9, key),
    commit: readU64(body, 17, key),
  };
}

/** Encodes the log bounds record. */
export function encodeBounds(bounds: LogBounds): Buffer {
  assert(bounds.dummyIndex <= bounds.lastIndex, 'bounds: dummy index beyond last index');
  const body = Buffer.alloc(25);
  body.writeUInt8(recordVersion, 0);
  body.writeBigUInt64BE(BigInt(bounds.dummyIndex), 1);
  body.writeBigUInt64BE(BigInt(bounds.dummyTerm), 9);
  body.writeBigUInt64BE(BigInt(bounds.lastIndex), 17);
  return sealed(body);
}

/** Decodes and verifies the log bounds record. */
export function decodeBounds(record: Uint8Array): LogBounds {
  const key = 'meta/log-bounds';
  const body = unsealed(record, key, 25);
  const bounds = {
    dummyIndex: readU64(body, 1, key),
    dummyTerm: readU64(body, 9, key),
    lastIndex: readU64(body, 17, key),
  };
  if (bounds.dummyIndex > bounds.lastIndex) throw corrupt(key, 'dummy index beyond last index');
  return bounds;
}

/** Encodes snapshot metadata with the length and crc32 of its data. */
export function encodeSnapshotMetadata(metadata: SnapshotMetadata, data: Uint8Array): Buffer {
  const { voters, learners } = metadata.confState;
  const body = Buffer.alloc(1 + 8 + 8 + 4 + 4 + 4 + 4 + 8 * (voters.length + learners.length));
  let offset = body.writeUInt8(recordVersion, 0);
  offset = body.writeBigUInt64BE(BigInt(metadata.index), offset);
  offset = body.writeBigUInt64BE(BigInt(metadata.term), offset);
  offset = body.writeUInt32BE(data.length, offset);
  offset = body.writeUInt32BE(crc32(data), offset);
  for (const ids of [voters, learners]) {
    offset = body.writeUInt32BE(ids.length, offset);
    for (const id of ids) offset = body.writeBigUInt64BE(BigInt(id), offset);
  }
  assert(offset === body.length, 'snapshot metadata length');
  return sealed(body);
}

/** Decodes and verifies snapshot metadata. */
export function decodeSnapshotMetadata(record: Uint8Array): SnapshotRecord {
  const key = 'meta/snapshot-metadata';
  const body = unsealed(record, key, -1);
  if (body.length < 25) throw corrupt(key, `${body.length} bytes`);
  const index = readU64(body, 1, key);
  const term = readU64(body, 9, key);
  const dataBytes = body.readUInt32BE(17);
  const dataCrc = body.readUInt32BE(21);
  let offset = 25;
  const lists: number[][] = [];
  for (let list = 0; list < 2; list++) {
    if (offset + 4 > body.length) throw corrupt(key, 'truncated membership');
    const count = body.readUInt32BE(offset);
    offset += 4;
    if (offset + 8 * count > body.length) throw corrupt(key, 'truncated membership');
    const ids: number[] = [];
    for (let i = 0; i < count; i++, offset += 8) ids.push(readU64(body, offset, key));
    lists.push(ids);
  }
  if (offset !== body.length) throw corrupt(key, 'trailing bytes');
  const confState: ConfState = { voters: lists[0]!, learners: lists[1]! };
  return { metadata: { index, term, confState }, dataBytes, dataCrc };
}

/** Verifies snapshot data against its metadata; returns a private copy. */
export function verifySnapshotData(data: Uint8Array, record: SnapshotRecord): Uint8Array {
  const key = 'meta/snapshot-data';
  if (data.length !== record.dataBytes) throw corrupt(key, `length ${data.length}`);
  if (crc32(data) !== record.dataCrc) throw corrupt(key, 'checksum mismatch');
  return new Uint8Array(data);
}
