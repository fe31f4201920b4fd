/**
 * v3lockpb.Lock on a `RaftNode`: etcd's server-side lock (server/etcdserver/api/v3lock), which
 * runs the client/v3/concurrency Mutex recipe (recipe.ts) under the caller's lease.
 *
 * - Lock `{name, lease}` puts `name/<lease hex>` unless the lease already has it, then waits
 *   until no key under `name/` is older, and answers with that key. Lease 0 gets a fresh
 *   60-second lease, as etcd's session does. An unknown lease fails the Put: NotFound
 *   "etcdserver: requested lease not found".
 * - If the key disappears while the call waits (its lease expired or was revoked, or someone
 *   deleted it), the call fails with Unknown "mutex: session is expired", as etcd 3.5's Mutex
 *   does; it never reports a lock it does not hold.
 * - A call cancelled while waiting, or answered after the client left, deletes its key.
 * - Unlock `{key}` deletes the key, whoever holds it, as etcd's does.
 */

import type { UntypedServiceImplementation } from '@grpc/grpc-js';
import { assert, SynodError } from '../../base/index.js';
import { checkDeleteRangeRequest } from '../../kv/index.js';
import { leaseIdOf } from './kv-decode.js';
import { encodeHeader } from './kv-encode.js';
import {
  cancellableUnaryHandler, candidateKeyOf, enqueue, isAbandoned, prefixOf, recipeContextOf,
  releaseAbandoned, sessionLease, waitForTurn, type RecipeContext, type RecipeServiceOptions,
} from './recipe.js';

/** `LockRequest` on the wire (grpc/proto.ts decoding). */
export interface WireLockRequest {
  readonly name: Buffer;
  /** int64 as a decimal string. */
  readonly lease: string;
}

/** `UnlockRequest` on the wire. */
export interface WireUnlockRequest {
  readonly key: Buffer;
}

/** Options of `createLockService`: see `RecipeServiceOptions`. */
export type LockServiceOptions = RecipeServiceOptions;

/** The Lock implementation for `server.addService(proto.services.Lock, …)`. */
export function createLockService(options: LockServiceOptions): UntypedServiceImplementation {
  const context = recipeContextOf(options);
  return {
    Lock: cancellableUnaryHandler<WireLockRequest>(
      context.onFatal,
      (request, signal) => lock(context, request, signal),
    ),
    Unlock: cancellableUnaryHandler<WireUnlockRequest>(
      context.onFatal,
      (request) => unlock(context, request),
    ),
  };
}

async function lock(
  context: RecipeContext,
  wire: WireLockRequest,
  signal: AbortSignal,
): Promise<object> {
  const { node } = context;
  // Refuse before writing: a key put for a call that cannot wait would only need deleting.
  if (context.waiters.full) throw new SynodError('SYNOD_KEY_WAITERS_EXHAUSTED');
  const lease = await sessionLease(node, leaseIdOf(wire.lease));
  const prefix = prefixOf(new Uint8Array(wire.name));
  const key = candidateKeyOf(prefix, lease);
  const { createRevision } = await enqueue(node, { key, value: new Uint8Array(0), lease });
  let revision: number;
  try {
    revision = await waitForTurn(
      context,
      { prefix, key, createRevision, lostCode: 'SYNOD_LOCK_SESSION_EXPIRED' },
      signal,
    );
    // The turn can come in the same turn of the event loop as the cancellation.
    if (signal.aborted) throw new SynodError('SYNOD_CALL_CANCELLED');
  } catch (error) {
    if (isAbandoned(error)) await releaseAbandoned(node, { key, createRevision });
    throw error;
  }
  return { header: encodeHeader(context.header(), revision), key: Buffer.from(key) };
}

async function unlock(context: RecipeContext, wire: WireUnlockRequest): Promise<object> {
  const request = { key: new Uint8Array(wire.key) };
  checkDeleteRangeRequest(request);
  const result = await context.node.propose({ type: 'deleteRange', request });
  if (!result.ok) throw result.error;
  assert(result.result.type === 'deleteRange', 'apply answered another command type');
  return { header: encodeHeader(context.header(), result.result.response.header.revision) };
}
