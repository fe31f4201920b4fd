/**
 * The binary encoding of a `Command` in a log entry (format 1). Every entry is encoded once by the
 * proposer and decoded by every member on apply and again on each replay, so the format favours a
 * cheap decode: no text, no hex, byte strings copied once.
 *
 * Layout (integers are unsigned LEB128 varints unless stated):
 * - byte 0: the format, `commandFormatBinary` (1). JSON entries from older members start with `{`.
 * - byte 1: the command type (`put` 1, `deleteRange` 2, `txn` 3, `compact` 4, `leaseGrant` 5,
 *   `leaseRevoke` 6, `alarm` 7, `member` 8, `auth` 9), then its body. A `member` or `auth` body
 *   is one byte string holding the change as JSON (such changes are rare; their shape may grow).
 * - A request body starts with a flags varint holding one presence bit per optional field, and a
 *   value bit per optional boolean, so `undefined`, `false` and `0` all round-trip as they were.
 *   Present fields follow in declaration order. Unknown flag bits are corruption.
 * - Byte strings: a length, then the bytes. Numbers (safe integers, possibly negative): a signed
 *   varint whose first byte holds a sign bit (0x40) and 6 magnitude bits, then 7 bits a byte.
 * - Lease IDs (int64) and member IDs (uint64): a tag byte, 0 for `0n` or 1 for 8 big-endian bytes.
 * - Enums: one byte (etcd's enum number plus one, so 0 never names a value).
 * - Lists: a count, then the items. A request op: a tag byte (range 1, put 2, deleteRange 3,
 *   txn 4), then the request.
 *
 * Decoding trusts nothing: a truncated, garbled or trailing-bytes entry is SYNOD_STORAGE_CORRUPT,
 * and no length or count is allocated before the bytes it claims are known to exist.
 */

import { assert, SynodError } from '../base/index.js';
import type { Command } from './command.js';
import { decodeAuthChange, encodeAuthChange } from './auth-store.js';
import { decodeMemberChange, encodeMemberChange } from './members.js';
import type { AlarmMember, AlarmType } from './mvcc-store.js';
import type {
  Compare, CompareResult, DeleteRangeRequest, PutRequest, RangeRequest, RequestOp, SortOrder,
  SortTarget, TxnRequest,
} from './types.js';

/** The first byte of a binary command entry. JSON entries start with `{` (0x7b). */
export const commandFormatBinary = 0x01;

const commandTypeCodes = Object.freeze({
  put: 1, deleteRange: 2, txn: 3, compact: 4, leaseGrant: 5, leaseRevoke: 6, alarm: 7, member: 8, auth: 9,
}) satisfies Record<Command['type'], number>;

const requestOpTags = Object.freeze({ range: 1, put: 2, deleteRange: 3, txn: 4 });

const sortOrders: readonly SortOrder[] = ['NONE', 'ASCEND', 'DESCEND'];
const sortTargets: readonly SortTarget[] = ['KEY', 'VERSION', 'CREATE', 'MOD', 'VALUE'];
const compareResults: readonly CompareResult[] = ['EQUAL', 'GREATER', 'LESS', 'NOT_EQUAL'];
const compareTargets: readonly Compare['target'][] = ['VERSION', 'CREATE', 'MOD', 'VALUE', 'LEASE'];
const alarmActions: readonly ('activate' | 'deactivate')[] = ['activate', 'deactivate'];
const alarmTypes: readonly AlarmType[] = ['NOSPACE', 'CORRUPT'];

/** Flag bits of a Put body. */
const putFlags = Object.freeze({
  value: 1 << 0, lease: 1 << 1, prevKv: 1 << 2, ignoreValue: 1 << 4, ignoreLease: 1 << 6,
});
/** Flag bits of a Range body; an optional boolean at bit b keeps its value at bit b + 1. */
const rangeFlags = Object.freeze({
  rangeEnd: 1 << 0, limit: 1 << 1, revision: 1 << 2, sortOrder: 1 << 3, sortTarget: 1 << 4,
  keysOnly: 1 << 5, countOnly: 1 << 7, minModRevision: 1 << 9, maxModRevision: 1 << 10,
  minCreateRevision: 1 << 11, maxCreateRevision: 1 << 12,
});
const deleteRangeFlags = Object.freeze({ rangeEnd: 1 << 0, prevKv: 1 << 1 });
const txnFlags = Object.freeze({ compare: 1 << 0, success: 1 << 1, failure: 1 << 2 });
const compareFlags = Object.freeze({ rangeEnd: 1 << 0 });

/** The numeric fields of a Range request after its flags, in encoding order. */
const rangeNumberFields = [
  'limit', 'revision', 'minModRevision', 'maxModRevision', 'minCreateRevision',
  'maxCreateRevision',
] as const;

/** Encodes `command` in format 1 after `prefix`, into one buffer of exactly the needed size. */
export function encodeCommandBinary(command: Command, prefix?: Uint8Array): Uint8Array {
  const prefixBytes = prefix?.length ?? 0;
  const sizer = new CommandWriter(undefined);
  writeCommand(sizer, command);
  const data = new Uint8Array(prefixBytes + sizer.offset);
  if (prefix !== undefined) data.set(prefix, 0);
  const writer = new CommandWriter(data.subarray(prefixBytes));
  writeCommand(writer, command);
  // Invariant: both passes walk the same command, so the writer fills the buffer exactly.
  assert(writer.offset === sizer.offset, 'command encoding size mismatch');
  return data;
}

/** Decodes a format-1 entry (first byte `commandFormatBinary`). */
export function decodeCommandBinary(bytes: Uint8Array): Command {
  const reader = new CommandReader(bytes);
  try {
    if (reader.u8() !== commandFormatBinary) throw corrupt('not a binary command');
    const command = readCommand(reader);
    if (!reader.done) throw corrupt('trailing bytes');
    return command;
  } catch (error) {
    // Only a garbled entry nests deeper than the stack allows: the proposer encoded it by the same
    // recursion with the same frame depth per level.
    if (error instanceof RangeError) throw corrupt(`nesting too deep (${error.message})`);
    throw error;
  }
}

/**
 * Writes the primitives of format 1. Built without a buffer it only counts bytes, so that
 * `encodeCommandBinary` can allocate exactly once; built over a buffer it writes into it.
 */
class CommandWriter {
  readonly #bytes: Uint8Array | undefined;
  #view: DataView | undefined;
  offset = 0;

  constructor(bytes: Uint8Array | undefined) {
    this.#bytes = bytes;
  }

  u8(value: number): void {
    assert(Number.isInteger(value) && value >= 0 && value <= 0xff, 'u8 out of range');
    if (this.#bytes !== undefined) this.#bytes[this.offset] = value;
    this.offset += 1;
  }

  /** Unsigned LEB128 of a non-negative safe integer. */
  uvarint(value: number): void {
    assert(Number.isSafeInteger(value) && value >= 0, 'uvarint out of range');
    let rest = value;
    while (rest >= 0x80) {
      this.#byte((rest % 0x80) | 0x80);
      rest = Math.floor(rest / 0x80);
    }
    this.#byte(rest);
  }

  /** A safe integer: sign bit 0x40 and 6 magnitude bits in the first byte, then LEB128. */
  svarint(value: number): void {
    assert(Number.isSafeInteger(value), 'svarint: not a safe integer');
    const magnitude = Math.abs(value);
    const sign = value < 0 ? 0x40 : 0;
    const rest = Math.floor(magnitude / 0x40);
    this.#byte((rest === 0 ? 0 : 0x80) | sign | (magnitude % 0x40));
    if (rest !== 0) this.uvarint(rest);
  }

  bytes(value: Uint8Array): void {
    this.uvarint(value.length);
    if (this.#bytes !== undefined) this.#bytes.set(value, this.offset);
    this.offset += value.length;
  }

  /** An int64 (`signed`) or uint64: tag 0 for zero, else tag 1 and 8 big-endian bytes. */
  int64(value: bigint, options: { readonly signed: boolean }): void {
    const width = options.signed ? BigInt.asIntN(64, value) : BigInt.asUintN(64, value);
    assert(width === value, 'bigint outside its 64-bit range');
    this.u8(value === 0n ? 0 : 1);
    if (value === 0n) return;
    if (this.#bytes !== undefined) {
      this.#view ??= new DataView(this.#bytes.buffer, this.#bytes.byteOffset, this.#bytes.length);
      if (options.signed) this.#view.setBigInt64(this.offset, value);
      else this.#view.setBigUint64(this.offset, value);
    }
    this.offset += 8;
  }

  /** The index of `value` in `values` as one byte, plus one. */
  enumeration<T>(values: readonly T[], value: T): void {
    const index = values.indexOf(value);
    assert(index >= 0, `unknown enum value ${String(value)}`);
    this.u8(index + 1);
  }

  #byte(value: number): void {
    if (this.#bytes !== undefined) this.#bytes[this.offset] = value;
    this.offset += 1;
  }
}

/** Reads what `CommandWriter` wrote; every shortfall is SYNOD_STORAGE_CORRUPT. */
class CommandReader {
  readonly #bytes: Uint8Array;
  #view: DataView | undefined;
  #offset = 0;

  constructor(bytes: Uint8Array) {
    this.#bytes = bytes;
  }

  get done(): boolean {
    return this.#offset === this.#bytes.length;
  }

  /** Bytes not yet read: an upper bound on any count still to come. */
  get remaining(): number {
    return this.#bytes.length - this.#offset;
  }

  u8(): number {
    if (this.#offset >= this.#bytes.length) throw corrupt('truncated');
    const value = this.#bytes[this.#offset]!;
    this.#offset += 1;
    return value;
  }

  uvarint(): number {
    let value = 0;
    let scale = 1;
    for (let count = 0; count < 8; count++) {
      const byte = this.u8();
      value += (byte & 0x7f) * scale;
      if (byte < 0x80) {
        if (!Number.isSafeInteger(value)) throw corrupt('varint above the safe range');
        return value;
      }
      scale *= 0x80;
    }
    throw corrupt('varint too long');
  }

  svarint(): number {
    const first = this.u8();
    const low = first & 0x3f;
    const magnitude = (first & 0x80) === 0 ? low : this.uvarint() * 0x40 + low;
    if (!Number.isSafeInteger(magnitude)) throw corrupt('number above the safe range');
    if (first === 0x40) throw corrupt('negative zero');
    return (first & 0x40) === 0 ? magnitude : -magnitude;
  }

  /** A byte string, copied so the entry's buffer is not kept alive by the store. */
  bytes(): Uint8Array {
    const length = this.uvarint();
    if (length > this.remaining) throw corrupt('truncated byte string');
    const start = this.#offset;
    this.#offset += length;
    return this.#bytes.slice(start, this.#offset);
  }

  int64(options: { readonly signed: boolean }): bigint {
    const tag = this.u8();
    if (tag === 0) return 0n;
    if (tag !== 1) throw corrupt(`bad 64-bit integer tag ${tag}`);
    if (this.remaining < 8) throw corrupt('truncated 64-bit integer');
    this.#view ??= new DataView(this.#bytes.buffer, this.#bytes.byteOffset, this.#bytes.length);
    const offset = this.#offset;
    this.#offset += 8;
    return options.signed ? this.#view.getBigInt64(offset) : this.#view.getBigUint64(offset);
  }

  enumeration<T>(values: readonly T[], what: string): T {
    const code = this.u8();
    const value = values[code - 1];
    if (code === 0 || value === undefined) throw corrupt(`unknown ${what} ${code}`);
    return value;
  }

  /** A flags varint, refused if it sets a bit outside `known`. */
  flags(known: number): number {
    const value = this.uvarint();
    if (value > known || (value & ~known) !== 0) throw corrupt('unknown flags');
    return value;
  }

  /** A list count, refused if the entry cannot hold that many items of at least one byte. */
  count(): number {
    const value = this.uvarint();
    if (value > this.remaining) throw corrupt('list longer than the entry');
    return value;
  }
}

function corrupt(detail: string): SynodError {
  return new SynodError('SYNOD_STORAGE_CORRUPT', `kv command: ${detail}`);
}

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

/** The presence bit at `bit` and, for `true`, the value bit after it. */
function booleanFlags(value: boolean | undefined, bit: number): number {
  if (value === undefined) return 0;
  return value ? bit | (bit << 1) : bit;
}

/** The optional boolean whose presence bit is `bit` in `flags`. */
function booleanOf(flags: number, bit: number): boolean | undefined {
  if ((flags & bit) === 0) {
    if ((flags & (bit << 1)) !== 0) throw corrupt('boolean value without presence');
    return undefined;
  }
  return (flags & (bit << 1)) !== 0;
}

function writeCommand(writer: CommandWriter, command: Command): void {
  writer.u8(commandFormatBinary);
  writer.u8(commandTypeCodes[command.type]);
  switch (command.type) {
    case 'put':
      return writePut(writer, command.request);
    case 'deleteRange':
      return writeDeleteRange(writer, command.request);
    case 'txn':
      return writeTxn(writer, command.request);
    case 'compact':
      return writer.svarint(command.revision);
    case 'leaseGrant':
      writer.int64(command.id, { signed: true });
      return writer.svarint(command.ttlSeconds);
    case 'leaseRevoke':
      return writer.int64(command.id, { signed: true });
    case 'alarm':
      writer.enumeration(alarmActions, command.action);
      writer.enumeration(alarmTypes, command.member.alarm);
      return writer.int64(command.member.memberId, { signed: false });
    case 'member':
      return writer.bytes(encodeMemberChange(command.change));
    case 'auth':
      return writer.bytes(encodeAuthChange(command.change));
  }
}

function readCommand(reader: CommandReader): Command {
  const code = reader.u8();
  switch (code) {
    case commandTypeCodes.put:
      return { type: 'put', request: readPut(reader) };
    case commandTypeCodes.deleteRange:
      return { type: 'deleteRange', request: readDeleteRange(reader) };
    case commandTypeCodes.txn:
      return { type: 'txn', request: readTxn(reader) };
    case commandTypeCodes.compact:
      return { type: 'compact', revision: reader.svarint() };
    case commandTypeCodes.leaseGrant: {
      const id = reader.int64({ signed: true });
      return { type: 'leaseGrant', id, ttlSeconds: reader.svarint() };
    }
    case commandTypeCodes.leaseRevoke:
      return { type: 'leaseRevoke', id: reader.int64({ signed: true }) };
    case commandTypeCodes.alarm: {
      const action = reader.enumeration(alarmActions, 'alarm action');
      const alarm = reader.enumeration(alarmTypes, 'alarm type');
      const member: AlarmMember = { memberId: reader.int64({ signed: false }), alarm };
      return { type: 'alarm', action, member };
    }
    case commandTypeCodes.member:
      return { type: 'member', change: decodeMemberChange(reader.bytes()) };
    case commandTypeCodes.auth:
      return { type: 'auth', change: decodeAuthChange(reader.bytes()) };
    default:
      throw corrupt(`unknown type ${code}`);
  }
}

function writePut(writer: CommandWriter, request: PutRequest): void {
  const flags = (request.value === undefined ? 0 : putFlags.value)
    | (request.lease === undefined ? 0 : putFlags.lease)
    | booleanFlags(request.prevKv, putFlags.prevKv)
    | booleanFlags(request.ignoreValue, putFlags.ignoreValue)
    | booleanFlags(request.ignoreLease, putFlags.ignoreLease);
  writer.uvarint(flags);
  writer.bytes(request.key);
  if (request.value !== undefined) writer.bytes(request.value);
  if (request.lease !== undefined) writer.int64(request.lease, { signed: true });
}

function readPut(reader: CommandReader): PutRequest {
  const flags = reader.flags(0xff);
  const request: Mutable<PutRequest> = { key: reader.bytes() };
  if ((flags & putFlags.value) !== 0) request.value = reader.bytes();
  if ((flags & putFlags.lease) !== 0) request.lease = reader.int64({ signed: true });
  const prevKv = booleanOf(flags, putFlags.prevKv);
  if (prevKv !== undefined) request.prevKv = prevKv;
  const ignoreValue = booleanOf(flags, putFlags.ignoreValue);
  if (ignoreValue !== undefined) request.ignoreValue = ignoreValue;
  const ignoreLease = booleanOf(flags, putFlags.ignoreLease);
  if (ignoreLease !== undefined) request.ignoreLease = ignoreLease;
  return request;
}

function writeDeleteRange(writer: CommandWriter, request: DeleteRangeRequest): void {
  const flags = (request.rangeEnd === undefined ? 0 : deleteRangeFlags.rangeEnd)
    | booleanFlags(request.prevKv, deleteRangeFlags.prevKv);
  writer.uvarint(flags);
  writer.bytes(request.key);
  if (request.rangeEnd !== undefined) writer.bytes(request.rangeEnd);
}

function readDeleteRange(reader: CommandReader): DeleteRangeRequest {
  const flags = reader.flags(0b111);
  const request: Mutable<DeleteRangeRequest> = { key: reader.bytes() };
  if ((flags & deleteRangeFlags.rangeEnd) !== 0) request.rangeEnd = reader.bytes();
  const prevKv = booleanOf(flags, deleteRangeFlags.prevKv);
  if (prevKv !== undefined) request.prevKv = prevKv;
  return request;
}

function writeRange(writer: CommandWriter, request: RangeRequest): void {
  let flags = (request.rangeEnd === undefined ? 0 : rangeFlags.rangeEnd)
    | (request.sortOrder === undefined ? 0 : rangeFlags.sortOrder)
    | (request.sortTarget === undefined ? 0 : rangeFlags.sortTarget)
    | booleanFlags(request.keysOnly, rangeFlags.keysOnly)
    | booleanFlags(request.countOnly, rangeFlags.countOnly);
  for (const field of rangeNumberFields) {
    if (request[field] !== undefined) flags |= rangeFlags[field];
  }
  writer.uvarint(flags);
  writer.bytes(request.key);
  if (request.rangeEnd !== undefined) writer.bytes(request.rangeEnd);
  if (request.sortOrder !== undefined) writer.enumeration(sortOrders, request.sortOrder);
  if (request.sortTarget !== undefined) writer.enumeration(sortTargets, request.sortTarget);
  for (const field of rangeNumberFields) {
    const value = request[field];
    if (value !== undefined) writer.svarint(value);
  }
}

function readRange(reader: CommandReader): RangeRequest {
  const flags = reader.flags(0x1fff);
  const request: Mutable<RangeRequest> = { key: reader.bytes() };
  if ((flags & rangeFlags.rangeEnd) !== 0) request.rangeEnd = reader.bytes();
  if ((flags & rangeFlags.sortOrder) !== 0) {
    request.sortOrder = reader.enumeration(sortOrders, 'sort order');
  }
  if ((flags & rangeFlags.sortTarget) !== 0) {
    request.sortTarget = reader.enumeration(sortTargets, 'sort target');
  }
  for (const field of rangeNumberFields) {
    if ((flags & rangeFlags[field]) !== 0) request[field] = reader.svarint();
  }
  const keysOnly = booleanOf(flags, rangeFlags.keysOnly);
  if (keysOnly !== undefined) request.keysOnly = keysOnly;
  const countOnly = booleanOf(flags, rangeFlags.countOnly);
  if (countOnly !== undefined) request.countOnly = countOnly;
  return request;
}

function writeTxn(writer: CommandWriter, request: TxnRequest): void {
  const { compare, success, failure } = request;
  writer.uvarint((compare === undefined ? 0 : txnFlags.compare)
    | (success === undefined ? 0 : txnFlags.success)
    | (failure === undefined ? 0 : txnFlags.failure));
  if (compare !== undefined) {
    writer.uvarint(compare.length);
    for (const comparison of compare) writeCompare(writer, comparison);
  }
  if (success !== undefined) writeRequestOps(writer, success);
  if (failure !== undefined) writeRequestOps(writer, failure);
}

function readTxn(reader: CommandReader): TxnRequest {
  const flags = reader.flags(0b111);
  const request: Mutable<TxnRequest> = {};
  if ((flags & txnFlags.compare) !== 0) {
    const compare: Compare[] = [];
    for (let count = reader.count(); count > 0; count--) compare.push(readCompare(reader));
    request.compare = compare;
  }
  if ((flags & txnFlags.success) !== 0) request.success = readRequestOps(reader);
  if ((flags & txnFlags.failure) !== 0) request.failure = readRequestOps(reader);
  return request;
}

function writeCompare(writer: CommandWriter, comparison: Compare): void {
  writer.uvarint(comparison.rangeEnd === undefined ? 0 : compareFlags.rangeEnd);
  writer.enumeration(compareResults, comparison.result);
  writer.enumeration(compareTargets, comparison.target);
  writer.bytes(comparison.key);
  if (comparison.rangeEnd !== undefined) writer.bytes(comparison.rangeEnd);
  switch (comparison.target) {
    case 'VERSION':
      return writer.svarint(comparison.version);
    case 'CREATE':
      return writer.svarint(comparison.createRevision);
    case 'MOD':
      return writer.svarint(comparison.modRevision);
    case 'VALUE':
      return writer.bytes(comparison.value);
    case 'LEASE':
      return writer.int64(comparison.lease, { signed: true });
  }
}

function readCompare(reader: CommandReader): Compare {
  const flags = reader.flags(compareFlags.rangeEnd);
  const result = reader.enumeration(compareResults, 'compare result');
  const target = reader.enumeration(compareTargets, 'compare target');
  const key = reader.bytes();
  const base: Mutable<{ key: Uint8Array; rangeEnd?: Uint8Array; result: CompareResult }> =
    { key, result };
  if ((flags & compareFlags.rangeEnd) !== 0) base.rangeEnd = reader.bytes();
  switch (target) {
    case 'VERSION':
      return { ...base, target, version: reader.svarint() };
    case 'CREATE':
      return { ...base, target, createRevision: reader.svarint() };
    case 'MOD':
      return { ...base, target, modRevision: reader.svarint() };
    case 'VALUE':
      return { ...base, target, value: reader.bytes() };
    case 'LEASE':
      return { ...base, target, lease: reader.int64({ signed: true }) };
  }
}

function writeRequestOps(writer: CommandWriter, ops: readonly RequestOp[]): void {
  writer.uvarint(ops.length);
  for (const op of ops) {
    // The precedence of the state machine's dispatch (txn-check.ts, txn.ts).
    if ('requestRange' in op) {
      writer.u8(requestOpTags.range);
      writeRange(writer, op.requestRange);
    } else if ('requestPut' in op) {
      writer.u8(requestOpTags.put);
      writePut(writer, op.requestPut);
    } else if ('requestDeleteRange' in op) {
      writer.u8(requestOpTags.deleteRange);
      writeDeleteRange(writer, op.requestDeleteRange);
    } else {
      writer.u8(requestOpTags.txn);
      writeTxn(writer, op.requestTxn);
    }
  }
}

function readRequestOps(reader: CommandReader): RequestOp[] {
  const ops: RequestOp[] = [];
  for (let count = reader.count(); count > 0; count--) ops.push(readRequestOp(reader));
  return ops;
}

function readRequestOp(reader: CommandReader): RequestOp {
  const tag = reader.u8();
  switch (tag) {
    case requestOpTags.range:
      return { requestRange: readRange(reader) };
    case requestOpTags.put:
      return { requestPut: readPut(reader) };
    case requestOpTags.deleteRange:
      return { requestDeleteRange: readDeleteRange(reader) };
    case requestOpTags.txn:
      return { requestTxn: readTxn(reader) };
    default:
      throw corrupt(`unknown request op ${tag}`);
  }
}
