/**
 * The SDK's view of the etcd v3 KV messages: keys and values as bytes, every revision, version and
 * lease ID as a bigint (they are 64-bit; lease IDs exceed 2^53), and the request shapes built from
 * friendlier options. Encoding and decoding to the wire (proto-loader objects with snake_case
 * names and decimal-string int64s) happens only here.
 */

import { invalidArgument } from './errors.js';

/** A key or value: a string is UTF-8 encoded; bytes are sent as they are. */
export type Bytes = string | Uint8Array;

/** The header every response carries. */
export interface ResponseHeader {
  readonly clusterId: bigint;
  readonly memberId: bigint;
  /** The store's revision when the request was served. */
  readonly revision: bigint;
  readonly raftTerm: bigint;
}

/** One key's current (or historical) version. */
export interface KeyValue {
  readonly key: Buffer;
  readonly value: Buffer;
  /** Revision of the write that created the key (in its current life). */
  readonly createRevision: bigint;
  /** Revision of the key's last write. */
  readonly modRevision: bigint;
  /** Writes since creation; 1 after the create, 0 once deleted. */
  readonly version: bigint;
  /** The lease the key is attached to; 0n when none. */
  readonly lease: bigint;
}

/** Which keys a range covers: one key, a prefix, an explicit `[key, end)`, or `key` onwards. */
export interface KeyRange {
  /** Every key starting with `key`. */
  readonly prefix?: boolean;
  /** Exclusive end of the range; `'\0'` means every key from `key` on. */
  readonly end?: Bytes;
  /** Every key greater than or equal to `key`. */
  readonly fromKey?: boolean;
}

/** The field a range is sorted by. */
export type SortTarget = 'key' | 'version' | 'create' | 'mod' | 'value';

/** Options of a Range (get) request. */
export interface RangeOptions extends KeyRange {
  /** At most this many keys; 0 (default) means no limit. */
  readonly limit?: number;
  /** Read the store as of this revision; default: the latest. */
  readonly revision?: bigint;
  readonly sort?: { readonly target: SortTarget; readonly order: 'ascend' | 'descend' };
  /** Serve from the member's local state without a linearizable read (may be stale). */
  readonly serializable?: boolean;
  readonly keysOnly?: boolean;
  readonly countOnly?: boolean;
  readonly minModRevision?: bigint;
  readonly maxModRevision?: bigint;
  readonly minCreateRevision?: bigint;
  readonly maxCreateRevision?: bigint;
}

/** The answer to a Range. */
export interface RangeResult {
  readonly header: ResponseHeader;
  readonly kvs: readonly KeyValue[];
  /** More keys matched than `limit` let through. */
  readonly more: boolean;
  /** How many keys matched in all. */
  readonly count: bigint;
}

/** Options of a Put. */
export interface PutOptions {
  /** Attach the key to this lease (it is deleted when the lease ends). */
  readonly lease?: bigint;
  /** Return the key's previous version. */
  readonly prevKv?: boolean;
  /** Keep the current value (change only the lease); `value` must then be empty. */
  readonly ignoreValue?: boolean;
  /** Keep the current lease (change only the value). */
  readonly ignoreLease?: boolean;
}

/** The answer to a Put. */
export interface PutResult {
  readonly header: ResponseHeader;
  readonly prevKv: KeyValue | null;
}

/** Options of a DeleteRange. */
export interface DeleteOptions extends KeyRange {
  /** Return the deleted keys' last versions. */
  readonly prevKv?: boolean;
}

/** The answer to a DeleteRange. */
export interface DeleteResult {
  readonly header: ResponseHeader;
  readonly deleted: bigint;
  readonly prevKvs: readonly KeyValue[];
}

/** Keys and values longer than this are refused before sending (etcd's default request limit). */
export const requestBytesMax = 1.5 * 1024 * 1024;

/** `value` as a Buffer; strings are UTF-8. */
export function toBuffer(value: Bytes): Buffer {
  return typeof value === 'string' ? Buffer.from(value, 'utf8') : Buffer.from(value.buffer, value.byteOffset, value.byteLength);
}

/** The smallest key greater than every key starting with `prefix` (etcd's GetPrefixRangeEnd). */
export function prefixEnd(prefix: Uint8Array): Buffer {
  const end = Buffer.from(prefix);
  for (let index = end.length - 1; index >= 0; index--) {
    if (end[index]! < 0xff) {
      end[index]! += 1;
      return end.subarray(0, index + 1);
    }
  }
  // Every byte is 0xff (or the prefix is empty): no end exists, so the range runs to the last key.
  return Buffer.from([0]);
}

/**
 * The wire's key and range_end for `key` and `range`. A single key sends no range_end at all:
 * etcd's Go decoder turns a present-but-empty bytes field into a non-nil empty slice, and etcd's
 * MVCC index reads a non-nil end as a range, so an empty range_end would make etcd answer (or
 * delete!) every key from `key` on.
 */
export function keyRangeOf(key: Bytes, range: KeyRange = {}): { key: Buffer; range_end?: Buffer } {
  const keyBytes = toBuffer(key);
  const chosen = [range.prefix === true, range.end !== undefined, range.fromKey === true].filter(Boolean);
  if (chosen.length > 1) throw invalidArgument('a range takes one of prefix, end and fromKey');
  if (keyBytes.length > requestBytesMax) throw invalidArgument(`key longer than ${requestBytesMax} bytes`);
  if (range.prefix === true) return { key: keyBytes, range_end: prefixEnd(keyBytes) };
  if (range.fromKey === true) return { key: keyBytes, range_end: Buffer.from([0]) };
  if (range.end !== undefined) return { key: keyBytes, range_end: toBuffer(range.end) };
  return { key: keyBytes };
}

const sortTargets: Readonly<Record<SortTarget, string>> = {
  key: 'KEY', version: 'VERSION', create: 'CREATE', mod: 'MOD', value: 'VALUE',
};

function wireInt(name: string, value: bigint | number | undefined): string {
  if (value === undefined) return '0';
  const big = BigInt(value);
  if (big < 0n || big > 2n ** 63n - 1n) throw invalidArgument(`${name} must be in 0..2^63-1`);
  return big.toString();
}

/** The wire RangeRequest for `key` and `options`. */
export function rangeRequestOf(key: Bytes, options: RangeOptions = {}): object {
  if (options.limit !== undefined && (!Number.isSafeInteger(options.limit) || options.limit < 0)) {
    throw invalidArgument('limit must be a non-negative integer');
  }
  return {
    ...keyRangeOf(key, options),
    limit: String(options.limit ?? 0),
    revision: wireInt('revision', options.revision),
    sort_order: options.sort === undefined ? 'NONE' : options.sort.order.toUpperCase(),
    sort_target: options.sort === undefined ? 'KEY' : sortTargets[options.sort.target],
    serializable: options.serializable === true,
    keys_only: options.keysOnly === true,
    count_only: options.countOnly === true,
    min_mod_revision: wireInt('minModRevision', options.minModRevision),
    max_mod_revision: wireInt('maxModRevision', options.maxModRevision),
    min_create_revision: wireInt('minCreateRevision', options.minCreateRevision),
    max_create_revision: wireInt('maxCreateRevision', options.maxCreateRevision),
  };
}

/** The wire PutRequest. */
export function putRequestOf(key: Bytes, value: Bytes, options: PutOptions = {}): object {
  const keyBytes = toBuffer(key);
  const valueBytes = toBuffer(value);
  if (keyBytes.length === 0) throw invalidArgument('key is empty');
  if (keyBytes.length + valueBytes.length > requestBytesMax) {
    throw invalidArgument(`key and value longer than ${requestBytesMax} bytes`);
  }
  return {
    key: keyBytes,
    value: valueBytes,
    lease: wireInt('lease', options.lease),
    prev_kv: options.prevKv === true,
    ignore_value: options.ignoreValue === true,
    ignore_lease: options.ignoreLease === true,
  };
}

/** The wire DeleteRangeRequest. */
export function deleteRequestOf(key: Bytes, options: DeleteOptions = {}): object {
  return { ...keyRangeOf(key, options), prev_kv: options.prevKv === true };
}

/** What proto-loader decodes a mvccpb.KeyValue to. */
export interface WireKeyValue {
  readonly key: Buffer;
  readonly value: Buffer;
  readonly create_revision: string;
  readonly mod_revision: string;
  readonly version: string;
  readonly lease: string;
}

/** What proto-loader decodes a ResponseHeader to. */
export interface WireHeader {
  readonly cluster_id: string;
  readonly member_id: string;
  readonly revision: string;
  readonly raft_term: string;
}

/** A decoded KeyValue. */
export function keyValueOf(wire: WireKeyValue): KeyValue {
  return {
    key: wire.key,
    value: wire.value,
    createRevision: BigInt(wire.create_revision),
    modRevision: BigInt(wire.mod_revision),
    version: BigInt(wire.version),
    lease: BigInt(wire.lease),
  };
}

/** A decoded header; a missing one (never sent by etcd) decodes as zeros. */
export function headerOf(wire: WireHeader | null | undefined): ResponseHeader {
  if (wire === null || wire === undefined) return { clusterId: 0n, memberId: 0n, revision: 0n, raftTerm: 0n };
  return {
    clusterId: BigInt(wire.cluster_id),
    memberId: BigInt(wire.member_id),
    revision: BigInt(wire.revision),
    raftTerm: BigInt(wire.raft_term),
  };
}

/** Decodes a RangeResponse. */
export function rangeResultOf(wire: { header: WireHeader; kvs: WireKeyValue[]; more: boolean; count: string }): RangeResult {
  return { header: headerOf(wire.header), kvs: wire.kvs.map(keyValueOf), more: wire.more, count: BigInt(wire.count) };
}

/** Decodes a PutResponse. */
export function putResultOf(wire: { header: WireHeader; prev_kv: WireKeyValue | null }): PutResult {
  return { header: headerOf(wire.header), prevKv: wire.prev_kv === null || wire.prev_kv === undefined ? null : keyValueOf(wire.prev_kv) };
}

/** Decodes a DeleteRangeResponse. */
export function deleteResultOf(wire: { header: WireHeader; deleted: string; prev_kvs: WireKeyValue[] }): DeleteResult {
  return { header: headerOf(wire.header), deleted: BigInt(wire.deleted), prevKvs: wire.prev_kvs.map(keyValueOf) };
}
