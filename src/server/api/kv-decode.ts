/**
 * Decoding of etcdserverpb KV requests, as proto-loader hands them to handlers (grpc/proto.ts:
 * `keepCase`, int64 as decimal strings, enums as names, bytes as Buffer, `defaults`, `oneofs`),
 * into the kv layer's request types. Revisions become safe-integer numbers (an int64 beyond
 * 2^53 - 1 is refused with INVALID_ARGUMENT rather than rounded); lease IDs become bigints. An
 * enum number etcd has not defined is refused too, so the kv layer only ever sees closed unions.
 */

import type {
  Compare, CompareResult, DeleteRangeRequest, PutRequest, RangeRequest, RequestOp, SortOrder,
  SortTarget, TxnRequest,
} from '../../kv/index.js';
import { invalidArgument } from './status.js';

/** `RangeRequest` on the wire. */
export interface WireRangeRequest {
  readonly key: Buffer;
  readonly range_end: Buffer;
  readonly limit: string;
  readonly revision: string;
  readonly sort_order: string | number;
  readonly sort_target: string | number;
  readonly serializable: boolean;
  readonly keys_only: boolean;
  readonly count_only: boolean;
  readonly min_mod_revision: string;
  readonly max_mod_revision: string;
  readonly min_create_revision: string;
  readonly max_create_revision: string;
}

/** `PutRequest` on the wire. */
export interface WirePutRequest {
  readonly key: Buffer;
  readonly value: Buffer;
  readonly lease: string;
  readonly prev_kv: boolean;
  readonly ignore_value: boolean;
  readonly ignore_lease: boolean;
}

/** `DeleteRangeRequest` on the wire. */
export interface WireDeleteRangeRequest {
  readonly key: Buffer;
  readonly range_end: Buffer;
  readonly prev_kv: boolean;
}

/** `Compare` on the wire; only the `target_union` member that was sent is present. */
export interface WireCompare {
  readonly result: string | number;
  readonly target: string | number;
  readonly key: Buffer;
  readonly range_end: Buffer;
  readonly version?: string;
  readonly create_revision?: string;
  readonly mod_revision?: string;
  readonly value?: Buffer;
  readonly lease?: string;
}

/** `RequestOp` on the wire: `request` names the oneof member that is set. */
export interface WireRequestOp {
  readonly request?: 'request_range' | 'request_put' | 'request_delete_range' | 'request_txn';
  readonly request_range?: WireRangeRequest | null;
  readonly request_put?: WirePutRequest | null;
  readonly request_delete_range?: WireDeleteRangeRequest | null;
  readonly request_txn?: WireTxnRequest | null;
}

/** `TxnRequest` on the wire. */
export interface WireTxnRequest {
  readonly compare: readonly WireCompare[];
  readonly success: readonly WireRequestOp[];
  readonly failure: readonly WireRequestOp[];
}

/** `CompactionRequest` on the wire. */
export interface WireCompactionRequest {
  readonly revision: string;
  readonly physical: boolean;
}

const int64Max = (1n << 63n) - 1n;
const sortOrders: readonly SortOrder[] = ['NONE', 'ASCEND', 'DESCEND'];
const sortTargets: readonly SortTarget[] = ['KEY', 'VERSION', 'CREATE', 'MOD', 'VALUE'];
const compareResults: readonly CompareResult[] = ['EQUAL', 'GREATER', 'LESS', 'NOT_EQUAL'];
const compareTargets = ['VERSION', 'CREATE', 'MOD', 'VALUE', 'LEASE'] as const;

/** An int64 field holding a revision (or a count) as a safe-integer number. */
export function safeIntegerOf(text: string | undefined, field: string): number {
  const value = BigInt(text ?? '0');
  if (value > BigInt(Number.MAX_SAFE_INTEGER) || value < BigInt(Number.MIN_SAFE_INTEGER)) {
    throw invalidArgument(`${field} ${value} is outside [-(2^53 - 1), 2^53 - 1]`);
  }
  return Number(value);
}

/** An int64 lease ID; proto-loader already bounds it to int64. */
export function leaseIdOf(text: string | undefined): bigint {
  const value = BigInt(text ?? '0');
  if (value > int64Max) throw invalidArgument(`lease ${value} is not an int64`);
  return value;
}

function enumOf<T extends string>(values: readonly T[], value: string | number, field: string): T {
  const name = typeof value === 'number' ? values[value] : values.find((known) => known === value);
  if (name === undefined) throw invalidArgument(`unknown ${field} ${String(value)}`);
  return name;
}

/** Bytes the kv layer may keep: a Buffer is a Uint8Array view; copy so no pooled slab is held. */
function bytesOf(buffer: Buffer | undefined): Uint8Array {
  return buffer === undefined ? new Uint8Array(0) : new Uint8Array(buffer);
}

/** Decodes a Range request (`serializable` is the handler's concern, not the store's). */
export function decodeRangeRequest(wire: WireRangeRequest): RangeRequest {
  const limit = safeIntegerOf(wire.limit, 'limit');
  return {
    key: bytesOf(wire.key),
    rangeEnd: bytesOf(wire.range_end),
    // etcd treats a negative limit as none.
    limit: Math.max(0, limit),
    revision: safeIntegerOf(wire.revision, 'revision'),
    sortOrder: enumOf(sortOrders, wire.sort_order, 'sort_order'),
    sortTarget: enumOf(sortTargets, wire.sort_target, 'sort_target'),
    keysOnly: wire.keys_only,
    countOnly: wire.count_only,
    minModRevision: safeIntegerOf(wire.min_mod_revision, 'min_mod_revision'),
    maxModRevision: safeIntegerOf(wire.max_mod_revision, 'max_mod_revision'),
    minCreateRevision: safeIntegerOf(wire.min_create_revision, 'min_create_revision'),
    maxCreateRevision: safeIntegerOf(wire.max_create_revision, 'max_create_revision'),
  };
}

/** Decodes a Put request. */
export function decodePutRequest(wire: WirePutRequest): PutRequest {
  return {
    key: bytesOf(wire.key),
    value: bytesOf(wire.value),
    lease: leaseIdOf(wire.lease),
    prevKv: wire.prev_kv,
    ignoreValue: wire.ignore_value,
    ignoreLease: wire.ignore_lease,
  };
}

/** Decodes a DeleteRange request. */
export function decodeDeleteRangeRequest(wire: WireDeleteRangeRequest): DeleteRangeRequest {
  return { key: bytesOf(wire.key), rangeEnd: bytesOf(wire.range_end), prevKv: wire.prev_kv };
}

/** Decodes a Txn request, nested txns included (their depth is bounded by the message size). */
export function decodeTxnRequest(wire: WireTxnRequest): TxnRequest {
  return {
    compare: wire.compare.map(decodeCompare),
    success: wire.success.map(decodeRequestOp),
    failure: wire.failure.map(decodeRequestOp),
  };
}

function decodeCompare(wire: WireCompare): Compare {
  const base = {
    key: bytesOf(wire.key),
    rangeEnd: bytesOf(wire.range_end),
    result: enumOf(compareResults, wire.result, 'compare result'),
  };
  // An operand left unset compares against its proto3 zero value, as in etcd.
  const target = enumOf(compareTargets, wire.target, 'compare target');
  switch (target) {
    case 'VERSION':
      return { ...base, target, version: safeIntegerOf(wire.version, 'compare version') };
    case 'CREATE': {
      const createRevision = safeIntegerOf(wire.create_revision, 'compare create_revision');
      return { ...base, target, createRevision };
    }
    case 'MOD': {
      const modRevision = safeIntegerOf(wire.mod_revision, 'compare mod_revision');
      return { ...base, target, modRevision };
    }
    case 'VALUE':
      return { ...base, target, value: bytesOf(wire.value) };
    case 'LEASE':
      return { ...base, target, lease: leaseIdOf(wire.lease) };
  }
}

function decodeRequestOp(wire: WireRequestOp): RequestOp {
  switch (wire.request) {
    case 'request_range':
      return { requestRange: decodeRangeRequest(present(wire.request_range)) };
    case 'request_put':
      return { requestPut: decodePutRequest(present(wire.request_put)) };
    case 'request_delete_range':
      return { requestDeleteRange: decodeDeleteRangeRequest(present(wire.request_delete_range)) };
    case 'request_txn':
      return { requestTxn: decodeTxnRequest(present(wire.request_txn)) };
    default:
      // etcd's checkTxnRequest skips an empty RequestOp; it would fail at apply, so refuse it here.
      throw invalidArgument('txn request op is empty');
  }
}

function present<T>(value: T | null | undefined): T {
  if (value === null || value === undefined) throw invalidArgument('txn request op is empty');
  return value;
}
