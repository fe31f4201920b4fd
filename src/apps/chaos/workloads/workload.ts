/**
 * What the chaos runner calls on a workload, and the thin etcd v3 KV client the workloads speak
 * through. The client is @grpc/grpc-js over Synod's own protos (`loadEtcdProto()`), both runtime
 * dependencies, so `synod chaos` runs from `dist/` without the npm etcd3 client (a devDependency).
 * It is deliberately thin: one gRPC call per method, no retries, no leader redirect, a deadline
 * on every call. Retrying would hide exactly the ambiguity the history must record.
 */

import { setTimeout as delay } from 'node:timers/promises';
import {
  Client, Metadata, credentials, type ClientUnaryCall, type MethodDefinition, type ServiceError,
} from '@grpc/grpc-js';
import { assert } from '../../../base/index.js';
import type { EtcdProto } from '../../../server/grpc/proto.js';
import type { CheckVerdict, HistoryEntry, WorkloadKind } from '../types.js';
import type { HistoryRecorder } from './history-recorder.js';

/** One member as a workload sees it: its name (recorded in the history) and a KV client to it. */
export interface WorkloadClient {
  /** The member's name, copied into every `HistoryEntry.member`. */
  readonly member: string;
  /** `host:port` of the member's client URL, for workloads that open other services. */
  readonly address: string;
  readonly kv: KvClient;
}

/** What `startClient` is handed: one logical client, bound to one member, until `signal` aborts. */
export interface ClientRun {
  /** Stable for the run; distinct per concurrent client. Non-negative integer. */
  readonly clientId: number;
  readonly client: WorkloadClient;
  readonly recorder: HistoryRecorder;
  /** Aborted when the run ends. The operation in flight then completes (or times out) first. */
  readonly signal: AbortSignal;
}

/**
 * A workload the runner drives: `setup` once before any client starts, `startClient` once per
 * concurrent client (it resolves after `signal` aborts and its last operation is recorded),
 * `final` once after every client resolved and the faults healed, then `check`.
 */
export interface Workload<FinalRead = unknown> {
  readonly kind: WorkloadKind;
  /** Brings the keyspace to the workload's initial state; retries until it is definitely there. */
  setup(clients: readonly WorkloadClient[]): Promise<void>;
  /** Issues operations back to back, recording each, until `run.signal` aborts. */
  startClient(run: ClientRun): Promise<void>;
  /** A final linearizable read, retried until it succeeds (see `retryUntilSuccess`). */
  final(clients: readonly WorkloadClient[]): Promise<FinalRead>;
  /** Judges this workload's entries of the history (others are ignored) and the final read. */
  check(history: readonly HistoryEntry[], finalRead: FinalRead): CheckVerdict;
}

/** The deadline and cancellation of one call. */
export interface CallContext {
  /** Absolute wall-clock deadline (gRPC sends it as grpc-timeout). */
  readonly deadline: Date;
  /** Cancels the call (the client then sees CANCELLED). */
  readonly signal?: AbortSignal;
}

/** A key-value pair as the workloads use it: UTF-8 keys and values, revisions as numbers. */
export interface KeyValue {
  readonly key: string;
  readonly value: string;
  readonly modRevision: number;
}

/** A Range request: one key, or `[key, rangeEnd)`. */
export interface RangeRequest {
  readonly key: string;
  /** Exclusive end; omitted for a single key. `prefixEnd(prefix)` ranges over a prefix. */
  readonly rangeEnd?: string;
  /** Read at this revision; omitted for the newest. */
  readonly revision?: number;
  /** At most this many keys; omitted for all. */
  readonly limit?: number;
}

/** The answer to a Range: the kvs in key order, at one revision. */
export interface RangeResult {
  readonly revision: number;
  readonly kvs: readonly KeyValue[];
  /** More keys lie in the range beyond `limit`. */
  readonly more: boolean;
}

/** A Txn compare, always EQUAL. A `modRevision` of 0 matches an absent key. */
export type TxnCompare =
  | { readonly key: string; readonly target: 'value'; readonly value: string }
  | { readonly key: string; readonly target: 'mod'; readonly modRevision: number }
  | { readonly key: string; readonly target: 'create'; readonly createRevision: number };

/** A Txn whose success branch puts keys and whose failure branch does nothing. */
export interface TxnRequest {
  readonly compare: readonly TxnCompare[];
  readonly puts: readonly { readonly key: string; readonly value: string }[];
}

/** The etcd v3 KV calls the register, bank and set workloads need. */
export interface KvClient {
  /** A linearizable Range. */
  range(request: RangeRequest, context: CallContext): Promise<RangeResult>;
  /** Resolves with the revision the put created. */
  put(request: { readonly key: string; readonly value: string }, context: CallContext):
    Promise<number>;
  /** Resolves with whether the compare held (and the puts were applied). */
  txn(request: TxnRequest, context: CallContext): Promise<boolean>;
  /** Deletes `[key, rangeEnd)` (or one key); resolves with the number deleted. */
  deleteRange(request: { readonly key: string; readonly rangeEnd?: string }, context: CallContext):
    Promise<number>;
  close(): void;
}

/** Options of `createKvClient`. */
export interface KvClientOptions {
  /** `host:port`, plaintext. */
  readonly address: string;
  readonly proto: EtcdProto;
}

interface WireKeyValue {
  readonly key: Buffer;
  readonly value: Buffer;
  readonly mod_revision: string;
}

interface WireRangeResponse {
  readonly header: { readonly revision: string } | null;
  readonly kvs: readonly WireKeyValue[];
  readonly more: boolean;
}

/** Opens a KV client to one member over its own HTTP/2 connection. */
export function createKvClient(options: KvClientOptions): KvClient {
  const grpcClient = new Client(options.address, credentials.createInsecure());
  const methods = options.proto.services.KV;
  const call = <Response>(name: string, request: object, context: CallContext) =>
    unaryCall<Response>({ grpcClient, method: methods[name]!, request, context });
  return {
    async range(request, context) {
      const response = await call<WireRangeResponse>('Range', wireRange(request), context);
      return {
        revision: Number(response.header?.revision ?? '0'),
        kvs: response.kvs.map((kv) => ({
          key: kv.key.toString('utf8'),
          value: kv.value.toString('utf8'),
          modRevision: Number(kv.mod_revision),
        })),
        more: response.more,
      };
    },
    async put(request, context) {
      const wire = { key: Buffer.from(request.key), value: Buffer.from(request.value) };
      const response = await call<{ header: { revision: string } | null }>('Put', wire, context);
      return Number(response.header?.revision ?? '0');
    },
    async txn(request, context) {
      const response = await call<{ succeeded: boolean }>('Txn', wireTxn(request), context);
      return response.succeeded;
    },
    async deleteRange(request, context) {
      const wire = { key: Buffer.from(request.key), ...wireRangeEnd(request.rangeEnd) };
      const response = await call<{ deleted: string }>('DeleteRange', wire, context);
      return Number(response.deleted);
    },
    close: () => grpcClient.close(),
  };
}

/**
 * `range_end` only when set. grpc-js's encoder writes a field given as an empty Buffer (tag and
 * length 0), and etcd's Go decoder then sees a non-nil empty range end, which it reads as "every
 * key ≥ key" rather than "this key alone": a get of an absent key returned the next key.
 */
function wireRangeEnd(rangeEnd: string | undefined): { range_end?: Buffer } {
  return rangeEnd === undefined || rangeEnd === '' ? {} : { range_end: Buffer.from(rangeEnd) };
}

function wireRange(request: RangeRequest): object {
  return {
    key: Buffer.from(request.key),
    ...wireRangeEnd(request.rangeEnd),
    revision: String(request.revision ?? 0),
    limit: String(request.limit ?? 0),
  };
}

function wireTxn(request: TxnRequest): object {
  const compare = request.compare.map((each) => {
    const base = { result: 'EQUAL', key: Buffer.from(each.key) };
    switch (each.target) {
      case 'value':
        return { ...base, target: 'VALUE', value: Buffer.from(each.value) };
      case 'mod':
        return { ...base, target: 'MOD', mod_revision: String(each.modRevision) };
      case 'create':
        return { ...base, target: 'CREATE', create_revision: String(each.createRevision) };
    }
  });
  const success = request.puts.map((put) => ({
    request_put: { key: Buffer.from(put.key), value: Buffer.from(put.value) },
  }));
  return { compare, success, failure: [] };
}

interface UnaryCallOptions {
  readonly grpcClient: Client;
  readonly method: MethodDefinition<object, object>;
  readonly request: object;
  readonly context: CallContext;
}

/** One unary call with the context's deadline; rejects with the gRPC ServiceError as is. */
function unaryCall<Response>(options: UnaryCallOptions): Promise<Response> {
  const { grpcClient, method, request, context } = options;
  assert(method !== undefined, 'KV method is defined in the protos');
  return new Promise<Response>((resolve, reject) => {
    const onAbort = () => pending.cancel();
    const pending: ClientUnaryCall = grpcClient.makeUnaryRequest(
      method.path,
      method.requestSerialize,
      method.responseDeserialize,
      request,
      new Metadata(),
      { deadline: context.deadline },
      (error: ServiceError | null, response?: object) => {
        context.signal?.removeEventListener('abort', onAbort);
        if (error !== null) reject(error);
        else resolve(response as Response);
      },
    );
    if (context.signal?.aborted === true) pending.cancel();
    else context.signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/**
 * The exclusive end of the range holding every key that starts with `prefix` (etcd's
 * GetPrefixRangeEnd). Workload prefixes are printable ASCII, so incrementing the last character
 * is the same as incrementing the last byte.
 */
export function prefixEnd(prefix: string): string {
  const printable = /^[\x20-\x7e]+$/.test(prefix);
  assert(printable, `prefix must be printable ASCII: ${JSON.stringify(prefix)}`);
  const last = prefix.charCodeAt(prefix.length - 1);
  return prefix.slice(0, -1) + String.fromCharCode(last + 1);
}

/** A call context that expires `timeoutMs` from now. */
export function deadlineIn(timeoutMs: number, signal?: AbortSignal): CallContext {
  assert(Number.isFinite(timeoutMs) && timeoutMs > 0, `timeoutMs must be positive: ${timeoutMs}`);
  return signal === undefined
    ? { deadline: new Date(Date.now() + timeoutMs) }
    : { deadline: new Date(Date.now() + timeoutMs), signal };
}

/** Options of `retryUntilSuccess`. */
export interface RetryOptions {
  /** Deadline of each attempt. */
  readonly attemptTimeoutMs: number;
  /** Attempts before giving up; the members are tried in turn. */
  readonly attemptsMax: number;
  /** Pause between attempts, so a cluster still electing is not hammered. */
  readonly backoffMs: number;
}

/** Defaults for setup and final reads: ~30 s in all, enough for a healed cluster to elect. */
export const retryOptionsDefault: RetryOptions = Object.freeze({
  attemptTimeoutMs: 2_000,
  attemptsMax: 30,
  backoffMs: 100,
});

/**
 * Runs `attempt` against each member in turn until one succeeds; `attempt` must be safe to repeat
 * (idempotent writes, reads). Throws the last error once `attemptsMax` attempts failed.
 */
export async function retryUntilSuccess<Result>(
  clients: readonly WorkloadClient[],
  attempt: (client: WorkloadClient, context: CallContext) => Promise<Result>,
  options: RetryOptions = retryOptionsDefault,
): Promise<Result> {
  assert(clients.length > 0, 'at least one member to read from');
  assert(options.attemptsMax > 0, 'at least one attempt');
  let lastError: unknown = null;
  for (let index = 0; index < options.attemptsMax; index++) {
    const client = clients[index % clients.length]!;
    try {
      return await attempt(client, deadlineIn(options.attemptTimeoutMs));
    } catch (error) {
      if (!isServiceError(error)) throw error;
      lastError = error;
    }
    await delay(options.backoffMs);
  }
  throw lastError;
}

/** True for an error a gRPC call rejected with (it carries a numeric status `code`). */
export function isServiceError(error: unknown): error is ServiceError {
  return (
    error instanceof Error && typeof (error as Partial<ServiceError>).code === 'number' &&
    (error as Partial<ServiceError>).metadata !== undefined
  );
}
