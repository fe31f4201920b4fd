/**
 * The commands the server proposes through Raft for the KV state machine, as plain data, and their
 * encoding in log entries. A command is fully decided before it is proposed (the leader picks
 * lease IDs and expiry), so applying it is deterministic.
 *
 * Entries are written in the binary format of command-codec.ts, whose first byte is 1. Logs and
 * snapshots of older members hold JSON entries (first byte `{`) with two tagged forms,
 * `{"$b": "<hex>"}` for byte strings and `{"$n": "<decimal>"}` for int64 IDs; those still decode,
 * so a member upgrades without rewriting its log.
 */

import { SynodError } from '../base/index.js';
import { fromHex } from './bytes.js';
import { commandFormatBinary, decodeCommandBinary, encodeCommandBinary } from './command-codec.js';
import type { AuthChange } from './auth-store.js';
import type { MemberChange } from './members.js';
import type { AlarmMember } from './mvcc-store.js';
import type { DeleteRangeRequest, PutRequest, TxnRequest } from './types.js';

/** A state-machine command. */
export type Command =
  | { readonly type: 'put'; readonly request: PutRequest }
  | { readonly type: 'deleteRange'; readonly request: DeleteRangeRequest }
  | { readonly type: 'txn'; readonly request: TxnRequest }
  | { readonly type: 'compact'; readonly revision: number }
  /** `id` 0n lets the state machine pick the next free ID deterministically. */
  | { readonly type: 'leaseGrant'; readonly id: bigint; readonly ttlSeconds: number }
  | { readonly type: 'leaseRevoke'; readonly id: bigint }
  /** etcd's Alarm ACTIVATE/DEACTIVATE; GET reads the store and is not proposed. */
  | {
    readonly type: 'alarm';
    readonly action: 'activate' | 'deactivate';
    readonly member: AlarmMember;
  }
  /** A change to the members (src/kv/members.ts): the context of a conf change, or a publish. */
  | { readonly type: 'member'; readonly change: MemberChange }
  /** A change to the auth store (src/kv/auth-store.ts); passwords arrive hashed. */
  | { readonly type: 'auth'; readonly change: AuthChange };

const commandTypes = new Set<string>([
  'put', 'deleteRange', 'txn', 'compact', 'leaseGrant', 'leaseRevoke', 'alarm', 'member', 'auth',
]);

/**
 * Whether `command` can grow the database, so the NOSPACE alarm and the backend quota refuse it:
 * a Put, a LeaseGrant, or a Txn holding a Put at any depth (etcd's capped applier lets read-only
 * and delete-only txns through; it misses puts in nested txns, which are counted here).
 */
export function commandGrowsDatabase(command: Command): boolean {
  switch (command.type) {
    case 'put':
    case 'leaseGrant':
      return true;
    case 'txn':
      return txnHasPut(command.request);
    default:
      return false;
  }
}

/** Whether either branch of `request`, or of a txn nested in it, holds a Put. */
export function txnHasPut(request: TxnRequest): boolean {
  const ops = [...(request.success ?? []), ...(request.failure ?? [])];
  return ops.some((op) => 'requestPut' in op || ('requestTxn' in op && txnHasPut(op.requestTxn)));
}

/** Options of `encodeCommand`. */
export interface EncodeCommandOptions {
  /** Bytes to place before the command in the same buffer (a proposal header), saving a copy. */
  readonly prefix?: Uint8Array;
}

/** Encodes `command` for a log entry, in the binary format, after `options.prefix` if given. */
export function encodeCommand(command: Command, options?: EncodeCommandOptions): Uint8Array {
  return encodeCommandBinary(command, options?.prefix);
}

/**
 * Decodes a log entry written by `encodeCommand`, or by the JSON encoder of older members,
 * dispatching on the first byte. Malformed input is SYNOD_STORAGE_CORRUPT.
 */
export function decodeCommand(bytes: Uint8Array): Command {
  if (bytes.length > 0 && bytes[0] === commandFormatBinary) return decodeCommandBinary(bytes);
  if (bytes.length > 0 && bytes[0] === jsonFormatFirstByte) return decodeCommandJson(bytes);
  throw new SynodError('SYNOD_STORAGE_CORRUPT', 'kv command: unknown format');
}

/** `{`, which opens every entry the JSON encoder wrote. */
const jsonFormatFirstByte = 0x7b;

function decodeCommandJson(bytes: Uint8Array): Command {
  let parsed: unknown;
  try {
    parsed = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes), revive);
  } catch (error) {
    throw new SynodError('SYNOD_STORAGE_CORRUPT', `kv command: ${String(error)}`);
  }
  const type = (parsed as { type?: unknown } | null)?.type;
  if (typeof type !== 'string' || !commandTypes.has(type)) {
    throw new SynodError('SYNOD_STORAGE_CORRUPT', 'kv command: unknown type');
  }
  return parsed as Command;
}
function revive(_key: string, value: unknown): unknown {
  if (typeof value !== 'object' || value === null) return value;
  const record = value as Record<string, unknown>;
  const keys = Object.keys(record);
  if (keys.length !== 1) return value;
  if (typeof record.$b === 'string') {
    const decoded = fromHex(record.$b);
    if (decoded === undefined) throw new SyntaxError('malformed hex byte string');
    return decoded;
  }
  if (typeof record.$n === 'string') {
    if (!/^-?\d+$/.test(record.$n)) throw new SyntaxError('malformed int64');
    return BigInt(record.$n);
  }
  return value;
}
