/**
 * What the Lock and Election services share: etcd's client/v3/concurrency recipes run inside the
 * server, as etcd's v3lock and v3election do, over this member's Raft KV.
 *
 * - A candidate of `name` owns the key `name/<lease in lowercase hex>` (Go's `%x`), created in
 *   one Txn only if absent (`create_revision == 0`), else read back: a lease that already holds
 *   the key resumes its place. The candidate with the lowest create revision under `name/` holds
 *   the lock or leads; the others wait for every key created before theirs to go (`waitDeletes`).
 * - Each wait ends with the call: when the client cancels, or when the call was answered after
 *   the client left, the key the call put is deleted (guarded by its create revision), so it does
 *   not hold the lock until its lease expires. etcd does the same in Mutex.Lock (Unlock on a
 *   failed wait) and Election.Campaign (Resign on a cancelled context).
 * - Errors leave as etcd's status. etcd returns the recipe errors as plain Go errors, which gRPC
 *   sends as Unknown with the error's text; the Go client compares those texts.
 */

import {
  status as GrpcStatus, type handleUnaryCall, type ServerUnaryCall, type ServiceError,
} from '@grpc/grpc-js';
import { Metadata } from '@grpc/grpc-js';
import { AssertionFailure, assert, isSynodError, mark, SynodError } from '../../base/index.js';
import type { ErrorCode } from '../../base/index.js';
import { checkTxnRequest, prefixEnd, txnOpsMaxDefault } from '../../kv/index.js';
import type { KeyValue, TxnRequest, TxnResponse } from '../../kv/index.js';
import type { RaftNode } from '../node/raft-node.js';
import type { HeaderSource } from './kv-encode.js';
import { ApiStatusError, internalStatus, statusOf, type EtcdStatus } from './status.js';
import { rethrowLater, type FatalHandler } from './unary.js';
import type { KeyWaiters } from './waiting-keys.js';

/** etcd's concurrency defaultSessionTTL: the lease granted when a request names lease 0. */
export const sessionTtlSecondsDefault = 60;

const uint64Max = (1n << 64n) - 1n;
const slash = 0x2f;

/** Options of `createLockService` and `createElectionService`. */
export interface RecipeServiceOptions {
  readonly node: RaftNode;
  /** The member's waits; one instance shared by both services, so the bound is per member. */
  readonly waiters: KeyWaiters;
  /** Sent in every header; a stable non-zero uint64. */
  readonly clusterId: bigint;
  /** This member's id in every header; a stable non-zero uint64. */
  readonly memberId: bigint;
  /** Receives an `AssertionFailure` met while serving. Default: rethrow asynchronously (crash). */
  readonly onFatal?: FatalHandler;
}

/** Validated `RecipeServiceOptions`. */
export interface RecipeContext {
  readonly node: RaftNode;
  readonly waiters: KeyWaiters;
  readonly onFatal: FatalHandler;
  /** The header fields besides the revision, read at call time (the term moves). */
  header(): HeaderSource;
}

/** Validates `options` once (SYNOD_INVALID_CONFIG) and freezes the result. */
export function recipeContextOf(options: RecipeServiceOptions): RecipeContext {
  for (const [name, id] of [['clusterId', options.clusterId], ['memberId', options.memberId]]) {
    if (typeof id !== 'bigint' || id <= 0n || id > uint64Max) {
      throw new SynodError('SYNOD_INVALID_CONFIG', `${name} must be a uint64 > 0`);
    }
  }
  const { node, clusterId, memberId } = options;
  return Object.freeze({
    node,
    waiters: options.waiters,
    onFatal: options.onFatal ?? rethrowLater,
    header: (): HeaderSource => ({ clusterId, memberId, raftTerm: node.term }),
  });
}

// Statuses of the recipe codes; statusOf (status.ts) maps the KV layer's. etcd's recipe errors
// are plain Go errors, sent as Unknown; a cancelled context is sent as Canceled.
const recipeStatuses: Readonly<Partial<Record<ErrorCode, EtcdStatus>>> = Object.freeze({
  SYNOD_KEY_WAITERS_EXHAUSTED: {
    code: GrpcStatus.RESOURCE_EXHAUSTED, message: 'etcdserver: too many requests',
  },
  SYNOD_CALL_CANCELLED: { code: GrpcStatus.CANCELLED, message: 'context canceled' },
  SYNOD_LOCK_SESSION_EXPIRED: { code: GrpcStatus.UNKNOWN, message: 'mutex: session is expired' },
  SYNOD_ELECTION_NOT_LEADER: { code: GrpcStatus.UNKNOWN, message: 'election: not leader' },
  SYNOD_ELECTION_NO_LEADER: { code: GrpcStatus.UNKNOWN, message: 'election: no leader' },
});

/** The status a Lock or Election client receives for `error`. Rethrows an AssertionFailure. */
export function recipeStatusOf(error: unknown): EtcdStatus {
  if (isSynodError(error)) {
    const status = recipeStatuses[error.code];
    if (status !== undefined) return status;
  }
  return statusOf(error);
}

/** `recipeStatusOf(error)` as a grpc-js service error. */
export function recipeServiceErrorOf(error: unknown): Partial<ServiceError> {
  const { code, message } = recipeStatusOf(error);
  return { code, details: message, metadata: new Metadata() };
}

/** The part of a grpc-js server call that reports the client's cancellation. */
export interface CancellableCall {
  readonly cancelled: boolean;
  once(event: 'cancelled', listener: () => void): unknown;
}

/** An AbortSignal that aborts when the client cancels `call` (or already has). */
export function signalOfCall(call: CancellableCall): AbortSignal {
  const controller = new AbortController();
  if (call.cancelled) controller.abort();
  else call.once('cancelled', () => controller.abort());
  return controller.signal;
}

/**
 * A unary handler whose work sees the call's cancellation. Like unary.ts `unaryHandler`, with
 * the recipe statuses; an `AssertionFailure` answers INTERNAL and goes to `onFatal`.
 */
export function cancellableUnaryHandler<Request>(
  onFatal: FatalHandler,
  handle: (request: Request, signal: AbortSignal) => Promise<object>,
): handleUnaryCall<Request, object> {
  return (call: ServerUnaryCall<Request, object>, callback) => {
    handle(call.request, signalOfCall(call)).then(
      (response) => callback(null, response),
      (error: unknown) => {
        if (error instanceof AssertionFailure) {
          callback(recipeServiceErrorOf(new ApiStatusError(internalStatus)));
          onFatal(error);
          return;
        }
        callback(recipeServiceErrorOf(error));
      },
    );
  };
}

/** Proposes `request` and returns its response; a failed apply throws its SynodError. */
export async function applyTxn(node: RaftNode, request: TxnRequest): Promise<TxnResponse> {
  // Client-supplied keys (Proclaim, Resign) may be empty: refuse before the log, as KV.Txn does.
  checkTxnRequest(request, txnOpsMaxDefault);
  const result = await node.propose({ type: 'txn', request });
  if (!result.ok) throw result.error;
  assert(result.result.type === 'txn', 'apply answered another command type');
  return result.result.response;
}

/** The lease a recipe writes under: `lease`, or a fresh `sessionTtlSecondsDefault` one for 0. */
export async function sessionLease(node: RaftNode, lease: bigint): Promise<bigint> {
  if (lease !== 0n) return lease;
  // etcd's server builds a concurrency.Session, which grants a lease when given none and, being
  // orphaned, never renews it: the key lives at most that TTL.
  const ttlSeconds = sessionTtlSecondsDefault;
  const result = await node.propose({ type: 'leaseGrant', id: 0n, ttlSeconds });
  if (!result.ok) throw result.error;
  assert(result.result.type === 'leaseGrant', 'apply answered another command type');
  return result.result.response.id;
}

/** `name/`: the prefix every candidate key of `name` is under. */
export function prefixOf(name: Uint8Array): Uint8Array {
  const prefix = new Uint8Array(name.length + 1);
  prefix.set(name);
  prefix[name.length] = slash;
  return prefix;
}

/** `name/<lease in lowercase hex>`, as Go's `fmt.Sprintf("%s%x", pfx, lease)`. */
export function candidateKeyOf(prefix: Uint8Array, lease: bigint): Uint8Array {
  const suffix = new TextEncoder().encode(lease.toString(16));
  const key = new Uint8Array(prefix.length + suffix.length);
  key.set(prefix);
  key.set(suffix, prefix.length);
  return key;
}

/** The key under `prefix` with the lowest create revision (the holder or leader), if any. */
export function firstCreated(node: RaftNode, prefix: Uint8Array): KeyValue | undefined {
  const response = node.stateMachine.store.range({
    key: prefix, rangeEnd: prefixEnd(prefix), sortTarget: 'CREATE', sortOrder: 'ASCEND', limit: 1,
  });
  return response.kvs[0];
}

/** Where a candidate stands after `enqueue`. */
export interface Enqueued {
  /** The Txn's revision (etcd's header for an uncontended acquire or a Campaign). */
  readonly revision: number;
  /** The candidate key's create revision: its place in the queue. */
  readonly createRevision: number;
  /** Whether this call created the key (false: the lease already had one). */
  readonly created: boolean;
  /** The key's value after the Txn. */
  readonly value: Uint8Array;
}

/**
 * etcd's Mutex.Lock / Election.Campaign first step: Txn(create_revision(key) == 0 ?
 * Put(key, value, lease) : Range(key)).
 */
export async function enqueue(
  node: RaftNode,
  candidate: { readonly key: Uint8Array; readonly value: Uint8Array; readonly lease: bigint },
): Promise<Enqueued> {
  const { key, value, lease } = candidate;
  const response = await applyTxn(node, {
    compare: [{ key, target: 'CREATE', createRevision: 0, result: 'EQUAL' }],
    success: [{ requestPut: { key, value, lease } }],
    failure: [{ requestRange: { key } }],
  });
  const revision = response.header.revision;
  if (response.succeeded) return { revision, createRevision: revision, created: true, value };
  const first = response.responses[0];
  assert(first !== undefined && 'responseRange' in first, 'candidate txn else-branch is a range');
  const kv = first.responseRange.kvs[0];
  assert(kv !== undefined, 'a key whose create revision is not 0 exists');
  return { revision, createRevision: kv.createRevision, created: false, value: kv.value };
}

/** A candidate waiting for its turn. */
export interface Turn {
  readonly prefix: Uint8Array;
  readonly key: Uint8Array;
  readonly createRevision: number;
  /** The error when the candidate's own key goes (lease expired or revoked, or deleted). */
  readonly lostCode: ErrorCode;
}

/**
 * etcd's waitDeletes: resolves with the current revision once no key under `turn.prefix` was
 * created before `turn.key`. Each step checks the one key last seen ahead (etcd watches that key)
 * and searches the prefix again only when it is gone, so a step costs two point reads.
 */
export function waitForTurn(
  context: RecipeContext,
  turn: Turn,
  signal: AbortSignal,
): Promise<number> {
  const { node } = context;
  // An empty store is at revision 1, so every key's create revision is at least 2; the bound
  // below is then ≥ 1, never the 0 that would mean "no bound".
  assert(turn.createRevision >= 2, 'a candidate key has a create revision ≥ 2');
  let ahead: Uint8Array | null = null;
  return context.waiters.wait(() => {
    const store = node.stateMachine.store;
    const own = store.range({ key: turn.key, keysOnly: true }).kvs[0];
    if (own === undefined || own.createRevision !== turn.createRevision) {
      mark('recipe wait: own key lost');
      throw new SynodError(turn.lostCode);
    }
    if (ahead !== null) {
      const kv = store.range({ key: ahead, keysOnly: true }).kvs[0];
      if (kv !== undefined && kv.createRevision < turn.createRevision) return undefined;
    }
    const last = store.range({
      key: turn.prefix, rangeEnd: prefixEnd(turn.prefix), keysOnly: true,
      maxCreateRevision: turn.createRevision - 1, sortTarget: 'CREATE', sortOrder: 'DESCEND',
      limit: 1,
    }).kvs[0];
    if (last === undefined) return store.currentRevision;
    assert(last.createRevision < turn.createRevision, 'maxCreateRevision filter holds');
    ahead = last.key;
    return undefined;
  }, signal);
}

/**
 * Deletes `key` if it still has `createRevision` (etcd's Resign Txn). Returns the Txn response;
 * `succeeded` is false when the key had already gone or been replaced.
 */
export function deleteCandidate(
  node: RaftNode,
  candidate: { readonly key: Uint8Array; readonly createRevision: number },
): Promise<TxnResponse> {
  const { key, createRevision } = candidate;
  return applyTxn(node, {
    compare: [{ key, target: 'CREATE', createRevision, result: 'EQUAL' }],
    success: [{ requestDeleteRange: { key } }],
  });
}

/**
 * `deleteCandidate` for a call that ended without handing its key to the client. Best effort: a
 * failure (no leader, node stopped) leaves the key to its lease, and the call's own error stands.
 */
export async function releaseAbandoned(
  node: RaftNode,
  candidate: { readonly key: Uint8Array; readonly createRevision: number },
): Promise<void> {
  try {
    await deleteCandidate(node, candidate);
    mark('recipe: abandoned key released');
  } catch (error) {
    if (!isSynodError(error)) throw error;
    mark('recipe: abandoned key left to its lease');
  }
}

/** Whether a wait ended without the client taking its key, so the key must not outlive the call. */
export function isAbandoned(error: unknown): boolean {
  return isSynodError(error, 'SYNOD_CALL_CANCELLED') ||
    isSynodError(error, 'SYNOD_KEY_WAITERS_EXHAUSTED');
}
