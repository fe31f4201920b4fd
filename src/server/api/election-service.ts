/**
 * v3electionpb.Election on a `RaftNode`: etcd's server-side election
 * (server/etcdserver/api/v3election), which runs the client/v3/concurrency Election recipe
 * (recipe.ts) under the caller's lease.
 *
 * - Campaign `{name, lease, value}` puts `name/<lease hex>` = value unless the lease already has
 *   the key (then, if the value differs, it proclaims the new one), waits until no key under
 *   `name/` is older, and answers with the LeaderKey `{name, key, rev (create revision), lease}`.
 *   The header is the first Txn's, as etcd's. If the key disappears while waiting (lease expired
 *   or revoked), the call fails with "election: not leader" rather than report a leadership it
 *   does not hold. A call cancelled while waiting, or answered after the client left, resigns.
 * - Proclaim `{leader, value}`: Txn(create_revision(key) == rev ? Put(key, value, lease)); a
 *   failed compare is "election: not leader".
 * - Leader `{name}`: a linearizable read of the key under `name/` with the lowest create revision;
 *   none is "election: no leader".
 * - Observe `{name}`: streams the leader's key-value now (after a linearizable read) and after
 *   every change to it: a new value, or a new leader. Nothing is sent while there is no leader.
 *   A slow reader is sent only the latest leader once it drains (the stream coalesces).
 * - Resign `{leader}`: Txn(create_revision(key) == rev ? Delete(key)); not an error if it fails.
 * - A Proclaim or Resign without `leader` fails with Unknown `"leader" field must be provided`.
 */

import {
  status as GrpcStatus, type ServerWritableStream, type UntypedServiceImplementation,
} from '@grpc/grpc-js';
import { AssertionFailure, isSynodError, SynodError } from '../../base/index.js';
import { bytesEqual, type KeyValue } from '../../kv/index.js';
import { leaseIdOf, safeIntegerOf } from './kv-decode.js';
import { encodeHeader, encodeKeyValue } from './kv-encode.js';
import {
  applyTxn, cancellableUnaryHandler, candidateKeyOf, deleteCandidate, enqueue, firstCreated,
  isAbandoned, prefixOf, recipeContextOf, recipeServiceErrorOf, releaseAbandoned, sessionLease,
  signalOfCall, waitForTurn, type RecipeContext, type RecipeServiceOptions,
} from './recipe.js';
import { ApiStatusError, internalStatus } from './status.js';

/** `LeaderKey` on the wire: int64 fields as decimal strings. */
export interface WireLeaderKey {
  readonly name: Buffer;
  readonly key: Buffer;
  readonly rev: string;
  readonly lease: string;
}

/** `CampaignRequest` on the wire. */
export interface WireCampaignRequest {
  readonly name: Buffer;
  readonly lease: string;
  readonly value: Buffer;
}

/** `ProclaimRequest` on the wire; an unset `leader` is null. */
export interface WireProclaimRequest {
  readonly leader: WireLeaderKey | null;
  readonly value: Buffer;
}

/** `LeaderRequest` on the wire (Leader and Observe). */
export interface WireLeaderRequest {
  readonly name: Buffer;
}

/** `ResignRequest` on the wire; an unset `leader` is null. */
export interface WireResignRequest {
  readonly leader: WireLeaderKey | null;
}

/** Options of `createElectionService`: see `RecipeServiceOptions`. */
export type ElectionServiceOptions = RecipeServiceOptions;

/** etcd's v3election ErrMissingLeaderKey, a plain Go error (Unknown). */
const missingLeaderKey = new ApiStatusError({
  code: GrpcStatus.UNKNOWN, message: '"leader" field must be provided',
});

/** The Election implementation for `server.addService(proto.services.Election, …)`. */
export function createElectionService(
  options: ElectionServiceOptions,
): UntypedServiceImplementation {
  const context = recipeContextOf(options);
  const unary = <Request>(handle: (request: Request, signal: AbortSignal) => Promise<object>) =>
    cancellableUnaryHandler<Request>(context.onFatal, handle);
  return {
    Campaign: unary<WireCampaignRequest>((request, signal) => campaign(context, request, signal)),
    Proclaim: unary<WireProclaimRequest>((request) => proclaim(context, request)),
    Leader: unary<WireLeaderRequest>((request) => leader(context, request)),
    Observe: (call: ServerWritableStream<WireLeaderRequest, object>) => observe(context, call),
    Resign: unary<WireResignRequest>((request) => resign(context, request)),
  };
}

async function campaign(
  context: RecipeContext,
  wire: WireCampaignRequest,
  signal: AbortSignal,
): Promise<object> {
  const { node } = context;
  // Refuse before writing: a key put for a call that cannot wait would only need resigning.
  if (context.waiters.full) throw new SynodError('SYNOD_KEY_WAITERS_EXHAUSTED');
  const lease = await sessionLease(node, leaseIdOf(wire.lease));
  const name = new Uint8Array(wire.name);
  const value = new Uint8Array(wire.value);
  const prefix = prefixOf(name);
  const key = candidateKeyOf(prefix, lease);
  const enqueued = await enqueue(node, { key, value, lease });
  const { createRevision } = enqueued;
  if (!bytesEqual(enqueued.value, value)) {
    try {
      await proclaimValue(context, { key, createRevision, lease, value });
    } catch (error) {
      // etcd resigns after a failed Proclaim; the guarded delete is a no-op once the key went.
      await releaseAbandoned(node, { key, createRevision });
      throw error;
    }
  }
  try {
    await waitForTurn(
      context,
      { prefix, key, createRevision, lostCode: 'SYNOD_ELECTION_NOT_LEADER' },
      signal,
    );
    // The turn can come in the same turn of the event loop as the cancellation.
    if (signal.aborted) throw new SynodError('SYNOD_CALL_CANCELLED');
  } catch (error) {
    if (isAbandoned(error)) await releaseAbandoned(node, { key, createRevision });
    throw error;
  }
  return {
    header: encodeHeader(context.header(), enqueued.revision),
    // etcd echoes the request's lease; Synod sends the lease the key is under, which differs only
    // for lease 0, so the LeaderKey is usable in Proclaim.
    leader: {
      name: Buffer.from(name), key: Buffer.from(key), rev: String(createRevision),
      lease: lease.toString(),
    },
  };
}

interface LeaderClaim {
  readonly key: Uint8Array;
  readonly createRevision: number;
  readonly lease: bigint;
  readonly value: Uint8Array;
}

/** etcd's Election.Proclaim; returns the Txn's revision. */
async function proclaimValue(context: RecipeContext, claim: LeaderClaim): Promise<number> {
  const { key, createRevision, lease, value } = claim;
  const response = await applyTxn(context.node, {
    compare: [{ key, target: 'CREATE', createRevision, result: 'EQUAL' }],
    success: [{ requestPut: { key, value, lease } }],
  });
  if (!response.succeeded) throw new SynodError('SYNOD_ELECTION_NOT_LEADER');
  return response.header.revision;
}

async function proclaim(context: RecipeContext, wire: WireProclaimRequest): Promise<object> {
  const leaderKey = requireLeaderKey(wire.leader);
  const revision = await proclaimValue(context, {
    key: new Uint8Array(leaderKey.key),
    createRevision: safeIntegerOf(leaderKey.rev, 'leader.rev'),
    lease: leaseIdOf(leaderKey.lease),
    value: new Uint8Array(wire.value),
  });
  return { header: encodeHeader(context.header(), revision) };
}

async function leader(context: RecipeContext, wire: WireLeaderRequest): Promise<object> {
  const { node } = context;
  await node.linearizableRead();
  const kv = firstCreated(node, prefixOf(new Uint8Array(wire.name)));
  if (kv === undefined) throw new SynodError('SYNOD_ELECTION_NO_LEADER');
  return leaderResponse(context, kv);
}

async function resign(context: RecipeContext, wire: WireResignRequest): Promise<object> {
  const leaderKey = requireLeaderKey(wire.leader);
  const response = await deleteCandidate(context.node, {
    key: new Uint8Array(leaderKey.key),
    createRevision: safeIntegerOf(leaderKey.rev, 'leader.rev'),
  });
  return { header: encodeHeader(context.header(), response.header.revision) };
}

function requireLeaderKey(leaderKey: WireLeaderKey | null | undefined): WireLeaderKey {
  if (leaderKey === null || leaderKey === undefined) throw missingLeaderKey;
  return leaderKey;
}

function leaderResponse(context: RecipeContext, kv: KeyValue): object {
  const revision = context.node.stateMachine.store.currentRevision;
  return { header: encodeHeader(context.header(), revision), kv: encodeKeyValue(kv) };
}

function observe(
  context: RecipeContext,
  call: ServerWritableStream<WireLeaderRequest, object>,
): void {
  const signal = signalOfCall(call);
  followLeader(context, call, signal).catch((error: unknown) => {
    if (isSynodError(error, 'SYNOD_CALL_CANCELLED')) return; // The client left; nobody to tell.
    if (error instanceof AssertionFailure) {
      call.emit('error', recipeServiceErrorOf(new ApiStatusError(internalStatus)));
      context.onFatal(error);
      return;
    }
    call.emit('error', recipeServiceErrorOf(error));
  });
}

/** Writes each new leader state to `call` until it is cancelled; only ever ends by rejecting. */
async function followLeader(
  context: RecipeContext,
  call: ServerWritableStream<WireLeaderRequest, object>,
  signal: AbortSignal,
): Promise<never> {
  const { node, waiters } = context;
  if (waiters.full) throw new SynodError('SYNOD_KEY_WAITERS_EXHAUSTED');
  const prefix = prefixOf(new Uint8Array(call.request.name));
  await node.linearizableRead();
  let sent: { readonly key: Uint8Array; readonly modRevision: number } | null = null;
  let draining = false;
  await waiters.wait(() => {
    if (draining) return undefined;
    const kv = firstCreated(node, prefix);
    if (kv === undefined) return undefined;
    if (sent !== null && sent.modRevision === kv.modRevision && bytesEqual(sent.key, kv.key)) {
      return undefined;
    }
    sent = { key: kv.key, modRevision: kv.modRevision };
    if (!call.write(leaderResponse(context, kv))) {
      // Stop writing until the client reads; then send only the latest leader.
      draining = true;
      call.once('drain', () => {
        draining = false;
        waiters.recheck();
      });
    }
    return undefined;
  }, signal);
  throw new AssertionFailure('an Observe wait never resolves');
}
