/**
 * What each etcd RPC needs from the caller once auth is enabled, from the decoded request alone
 * (etcd server/etcdserver/v3_server.go and server/auth/store.go, `isOpPermitted` and friends):
 *
 * - KV: Range needs READ on its key or range; Put needs WRITE on its key, plus READ with
 *   `prev_kv`; DeleteRange needs WRITE on its range, plus READ with `prev_kv`; Txn needs READ on
 *   every compare's key or range and, for each operation of both branches at every depth, what the
 *   operation alone would need (etcd checks both branches, whichever runs). Compact needs only a
 *   valid user: etcd 3.4 checks no permission on it (measured with etcdctl in the interop test),
 *   and clients such as Kubernetes' API server compact as a non-root user.
 * - Watch: a create request needs READ on its key or range.
 * - Lease: grant, keep-alive, time-to-live and list need only a valid user; a revoke needs WRITE on
 *   every key attached to the lease (resolved by the caller, which holds the lease table).
 * - Lock and Election run etcd's recipes on keys under the name: Lock and Campaign need READ and
 *   WRITE there, Leader and Observe READ, Unlock, Proclaim and Resign WRITE on their own key.
 * - Cluster and Maintenance are root only, except MemberList, Status and Alarm GET.
 * - Auth: Authenticate and AuthStatus need nothing; every other Auth RPC is root only.
 * Pure; the interceptor that applies it is auth-interceptor.ts.
 */

import type { WireCompare, WireRequestOp, WireTxnRequest } from '../api/kv-decode.js';

/** A key, or the range `[key, rangeEnd)`, and the access wanted on it. */
export interface KeyCheck {
  readonly key: Uint8Array;
  /** Empty: the key alone; `"\0"`: every key from `key` on. */
  readonly rangeEnd: Uint8Array;
  readonly wanted: 'READ' | 'WRITE';
}

/** What an RPC needs. */
export type Requirement =
  /** Nothing: callers without credentials too. */
  | { readonly kind: 'open' }
  /** Any authenticated user. */
  | { readonly kind: 'user' }
  /** A user holding the root role. */
  | { readonly kind: 'root' }
  /** A user permitted every check. */
  | { readonly kind: 'keys'; readonly checks: readonly KeyCheck[] }
  /** A user permitted WRITE on every key attached to `leaseId` (decimal text). */
  | { readonly kind: 'lease-keys'; readonly leaseId: string };

const open: Requirement = Object.freeze({ kind: 'open' });
const user: Requirement = Object.freeze({ kind: 'user' });
const root: Requirement = Object.freeze({ kind: 'root' });
const empty = new Uint8Array(0);

interface WireKeyRange {
  readonly key?: Uint8Array;
  readonly range_end?: Uint8Array;
  readonly prev_kv?: boolean;
}

function bytes(value: Uint8Array | undefined): Uint8Array {
  return value ?? empty;
}

function rangeChecks(request: WireKeyRange, wanted: 'READ' | 'WRITE'): KeyCheck[] {
  const check = { key: bytes(request.key), rangeEnd: bytes(request.range_end), wanted };
  return request.prev_kv === true && wanted === 'WRITE' ? [check, { ...check, wanted: 'READ' }] : [check];
}

function putChecks(request: WireKeyRange): KeyCheck[] {
  return rangeChecks({ key: bytes(request.key), range_end: empty, prev_kv: request.prev_kv === true }, 'WRITE');
}

function compareChecks(compares: readonly WireCompare[]): KeyCheck[] {
  return compares.map((compare) => ({ key: bytes(compare.key), rangeEnd: bytes(compare.range_end), wanted: 'READ' as const }));
}

function opChecks(op: WireRequestOp): KeyCheck[] {
  switch (op.request) {
    case 'request_range': return op.request_range ? rangeChecks(op.request_range, 'READ') : [];
    case 'request_put': return op.request_put ? putChecks(op.request_put) : [];
    case 'request_delete_range': return op.request_delete_range ? rangeChecks(op.request_delete_range, 'WRITE') : [];
    case 'request_txn': return op.request_txn ? txnChecks(op.request_txn) : [];
    default: return [];
  }
}

/** Every check a Txn needs, both branches, nested txns included. */
export function txnChecks(txn: WireTxnRequest): KeyCheck[] {
  return [
    ...compareChecks(txn.compare ?? []),
    ...(txn.success ?? []).flatMap(opChecks),
    ...(txn.failure ?? []).flatMap(opChecks),
  ];
}

/** Lock and election names: the recipes' keys are `name/…`; `wanted` on all of them. */
function recipeChecks(name: Uint8Array | undefined, wanted: readonly ('READ' | 'WRITE')[]): KeyCheck[] {
  const prefix = new Uint8Array([...bytes(name), 0x2f]); // name + '/'
  const rangeEnd = new Uint8Array([...bytes(name), 0x30]); // the prefix's end: '/' + 1
  return wanted.map((access) => ({ key: prefix, rangeEnd, wanted: access }));
}

/** A key's own write check (Unlock's key, an election leader's key). */
function keyWrite(key: Uint8Array | undefined): KeyCheck[] {
  return [{ key: bytes(key), rangeEnd: empty, wanted: 'WRITE' }];
}

const rootOnlyExceptions = new Set([
  '/etcdserverpb.Cluster/MemberList', '/etcdserverpb.Maintenance/Status',
]);

/** What the unary call or stream message `request` of `method` (a gRPC path) needs. */
export function requirementOf(method: string, request: unknown): Requirement {
  const message = (request ?? {}) as Record<string, unknown> & WireKeyRange;
  switch (method) {
    case '/grpc.health.v1.Health/Check':
    case '/grpc.health.v1.Health/Watch':
    case '/etcdserverpb.Auth/Authenticate':
    case '/etcdserverpb.Auth/AuthStatus':
      return open;
    case '/etcdserverpb.KV/Range': return { kind: 'keys', checks: rangeChecks(message, 'READ') };
    case '/etcdserverpb.KV/Put': return { kind: 'keys', checks: putChecks(message) };
    case '/etcdserverpb.KV/DeleteRange': return { kind: 'keys', checks: rangeChecks(message, 'WRITE') };
    case '/etcdserverpb.KV/Txn': return { kind: 'keys', checks: txnChecks(message as unknown as WireTxnRequest) };
    case '/etcdserverpb.KV/Compact': return user;
    case '/etcdserverpb.Watch/Watch': {
      const create = message.create_request as WireKeyRange | undefined;
      return create ? { kind: 'keys', checks: rangeChecks({ key: create.key, range_end: create.range_end }, 'READ') } : user;
    }
    case '/etcdserverpb.Lease/LeaseRevoke':
      return { kind: 'lease-keys', leaseId: String(message.ID ?? '0') };
    case '/v3lockpb.Lock/Lock':
      return { kind: 'keys', checks: recipeChecks(message.name as Uint8Array | undefined, ['READ', 'WRITE']) };
    case '/v3lockpb.Lock/Unlock': return { kind: 'keys', checks: keyWrite(message.key) };
    case '/v3electionpb.Election/Campaign':
      return { kind: 'keys', checks: recipeChecks(message.name as Uint8Array | undefined, ['READ', 'WRITE']) };
    case '/v3electionpb.Election/Leader':
    case '/v3electionpb.Election/Observe':
      return { kind: 'keys', checks: recipeChecks(message.name as Uint8Array | undefined, ['READ']) };
    case '/v3electionpb.Election/Proclaim':
    case '/v3electionpb.Election/Resign': {
      const leader = message.leader as { key?: Uint8Array } | undefined;
      return { kind: 'keys', checks: keyWrite(leader?.key) };
    }
    case '/etcdserverpb.Maintenance/Alarm':
      return message.action === 'GET' || message.action === 0 ? user : root;
    default:
      if (rootOnlyExceptions.has(method)) return user;
      if (method.startsWith('/etcdserverpb.Lease/')) return user;
      // Cluster, Maintenance, the rest of Auth, and anything not listed: root only, so a new RPC
      // is closed until someone decides otherwise.
      return root;
  }
}
