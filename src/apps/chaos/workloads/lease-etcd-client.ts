/**
 * The raw etcd v3 client the watch, lease and lock workloads share: grpc-js clients built from
 * Synod's own protos (`loadEtcdProto`), one unary call helper with a deadline, Jepsen's outcome
 * classification of gRPC errors, and a lease keep-alive loop that records every renewal.
 *
 * Raw grpc-js rather than the npm etcd3 client: it is a runtime dependency (`npx synod chaos`
 * ships without devDependencies), it speaks to Synod and etcd identically, and it hides nothing —
 * etcd3 retries, fails over between hosts and renews leases on its own, which would blur the
 * line between one invocation and its outcome that the checkers depend on.
 *
 * Lives in a `lease-` file only because of file ownership in this folder; it belongs in a shared
 * `etcd-client.ts` beside `workload.ts`.
 */

import {
  credentials, status, type Client, type ClientDuplexStream, type ServiceClientConstructor,
  type ServiceError,
} from '@grpc/grpc-js';
import { setMaxListeners } from 'node:events';
import { setTimeout as delay } from 'node:timers/promises';
import { assert } from '../../../base/index.js';
import type { EtcdProto } from '../../../server/grpc/proto.js';
import type { ChaosMember, OutcomeKind } from '../types.js';

/** What a workload needs of a member: its name for the history and the URL to dial. */
export type EtcdEndpoint = Pick<ChaosMember, 'name' | 'clientUrl'>;

type Callback = (error: ServiceError | null, response: unknown) => void;
type UnaryMethod = (request: object, options: { deadline: number }, callback: Callback) => unknown;
type StreamMethod = () => ClientDuplexStream<object, unknown>;

/** A grpc-js client whose methods are looked up by name (the protos are loaded at run time). */
export type RawClient = Client & Record<string, UnaryMethod | StreamMethod>;

/** The service clients of one member, over one channel each. */
export interface EtcdClients {
  readonly member: string;
  readonly kv: RawClient;
  readonly watch: RawClient;
  readonly lease: RawClient;
  readonly lock: RawClient;
  close(): void;
}

/** Dials `endpoint` (an `http://host:port` client URL) for KV, Watch, Lease and Lock. */
export function connectEtcd(proto: EtcdProto, endpoint: EtcdEndpoint): EtcdClients {
  const target = endpoint.clientUrl.replace(/^[a-z]+:\/\//, '');
  const make = (packageName: string, service: string): RawClient => {
    const namespace = proto.packageObject[packageName] as Record<string, ServiceClientConstructor>;
    const Constructor = namespace[service];
    assert(Constructor !== undefined, `${packageName}.${service} is loaded`);
    return new Constructor(target, credentials.createInsecure()) as RawClient;
  };
  const clients = {
    kv: make('etcdserverpb', 'KV'),
    watch: make('etcdserverpb', 'Watch'),
    lease: make('etcdserverpb', 'Lease'),
    lock: make('v3lockpb', 'Lock'),
  };
  return {
    member: endpoint.name,
    ...clients,
    close: () => {
      for (const client of Object.values(clients)) client.close();
    },
  };
}

/** Calls unary `method` with a deadline `timeoutMs` from now; rejects with the ServiceError. */
export function unary<T>(
  client: RawClient,
  method: string,
  request: object,
  timeoutMs: number,
): Promise<T> {
  const invoke = client[method] as UnaryMethod | undefined;
  assert(invoke !== undefined, `client has no method ${method}`);
  return new Promise<T>((resolve, reject) => {
    invoke.call(client, request, { deadline: Date.now() + timeoutMs }, (error, response) => {
      if (error === null) resolve(response as T);
      else reject(error);
    });
  });
}

/**
 * gRPC codes with which etcd (and Synod) refuse a request before it can take effect. Everything
 * else — deadline, unavailable, cancelled, internal — may have been applied: 'unknown'.
 */
const definiteFailureCodes: ReadonlySet<number> = new Set([
  status.INVALID_ARGUMENT, status.NOT_FOUND, status.ALREADY_EXISTS, status.PERMISSION_DENIED,
  status.FAILED_PRECONDITION, status.OUT_OF_RANGE, status.UNIMPLEMENTED, status.UNAUTHENTICATED,
  status.RESOURCE_EXHAUSTED,
]);

/** Jepsen's classification of a thrown error: refused ('failed') or indeterminate. */
export function outcomeOfError(error: unknown): Exclude<OutcomeKind, 'ok'> {
  const code = (error as Partial<ServiceError> | null)?.code;
  return code !== undefined && definiteFailureCodes.has(code) ? 'failed' : 'unknown';
}

/** The text recorded for an error. */
export function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** A revision or ID decoded as a decimal string (`longs: String`) as a safe integer. */
export function revisionOf(text: string | number): number {
  const value = Number(text);
  assert(Number.isSafeInteger(value) && value >= 0, `revision ${text} is a safe integer`);
  return value;
}

/** The `range_end` that makes a request cover every key starting with `prefix`. */
export function prefixRangeEnd(prefix: Buffer): Buffer {
  const end = Buffer.from(prefix);
  for (let index = end.length - 1; index >= 0; index -= 1) {
    if (end[index]! < 0xff) {
      end[index] = end[index]! + 1;
      return end.subarray(0, index + 1);
    }
  }
  return Buffer.from([0]);
}

/** Waits `ms`, or less if `signal` aborts; never rejects. */
export async function pause(ms: number, signal: AbortSignal): Promise<void> {
  if (signal.aborted) return;
  await delay(ms, undefined, { signal }).catch(() => undefined);
}

/** A signal that aborts after a time or with a parent; `clear` drops the timer and listener. */
export interface Deadline {
  readonly signal: AbortSignal;
  clear(): void;
}

/** Listeners a workload's shared signals may have (one per client and stream, and then some). */
export const listenersMax = 10_000;

/**
 * Aborts `ms` from now, or when `parent` aborts. Not `AbortSignal.any([AbortSignal.timeout()])`:
 * under vitest's worker threads that combination was seen never to fire (the timeout signal is
 * held only weakly and can be collected); a plain timer holds its controller strongly.
 */
export function deadlineAfter(ms: number, parent?: AbortSignal): Deadline {
  const controller = new AbortController();
  // Every client of a workload listens on it; Node's warning at 10 listeners is noise here.
  setMaxListeners(listenersMax, controller.signal);
  const abort = (): void => controller.abort();
  const timer = setTimeout(abort, ms);
  parent?.addEventListener('abort', abort, { once: true });
  if (parent?.aborted === true) abort();
  return {
    signal: controller.signal,
    clear: () => {
      clearTimeout(timer);
      parent?.removeEventListener('abort', abort);
    },
  };
}

/** One keep-alive request on a LeaseKeepAlive stream and what came of it. */
export interface KeepAliveRecord {
  readonly leaseId: string;
  readonly member: string;
  readonly invokedAtMs: number;
  readonly completedAtMs: number;
  /** 'ok' when the response carried TTL > 0; 'failed' for TTL 0 (lease gone). */
  readonly outcome: OutcomeKind;
  /** The TTL in seconds the response granted (0 when failed or unknown). */
  readonly ttlSeconds: number;
}

/** Options of `keepAliveLoop`. */
export interface KeepAliveLoopOptions {
  readonly clients: EtcdClients;
  /** The lease ID as its decimal string. */
  readonly leaseId: string;
  readonly intervalMs: number;
  readonly nowMs: () => number;
  /** Aborting stops sending and cancels the stream; records still pending become 'unknown'. */
  readonly signal: AbortSignal;
  readonly onRecord: (record: KeepAliveRecord) => void;
}

/**
 * Renews `leaseId` every `intervalMs` over one LeaseKeepAlive stream until `signal` aborts, the
 * lease is gone (a TTL 0 response) or the stream fails. Resolves with the reason it stopped.
 * Responses on the stream answer requests in order, so each is paired with the oldest pending.
 */
export async function keepAliveLoop(
  options: KeepAliveLoopOptions,
): Promise<'stopped' | 'expired' | 'stream-failed'> {
  const { clients, leaseId, nowMs, signal, onRecord } = options;
  const stream = (clients.lease['LeaseKeepAlive'] as StreamMethod).call(clients.lease);
  const pending: number[] = [];
  const record = (invokedAtMs: number, outcome: OutcomeKind, ttlSeconds: number): void => {
    onRecord({
      leaseId, member: clients.member, invokedAtMs, completedAtMs: nowMs(), outcome, ttlSeconds,
    });
  };
  let ended: 'expired' | 'stream-failed' | null = null;
  const finished = new Promise<void>((resolve) => {
    stream.on('data', (response: { TTL: string }) => {
      const invokedAtMs = pending.shift();
      if (invokedAtMs === undefined) return;
      const ttlSeconds = Number(response.TTL);
      record(invokedAtMs, ttlSeconds > 0 ? 'ok' : 'failed', ttlSeconds);
      if (ttlSeconds <= 0) ended = 'expired';
      if (ended !== null) resolve();
    });
    stream.on('error', () => {
      ended ??= 'stream-failed';
      resolve();
    });
    stream.on('end', () => {
      ended ??= 'stream-failed';
      resolve();
    });
  });
  while (!signal.aborted && ended === null) {
    pending.push(nowMs());
    stream.write({ ID: leaseId });
    await Promise.race([pause(options.intervalMs, signal), finished]);
  }
  stream.cancel();
  for (const invokedAtMs of pending.splice(0)) record(invokedAtMs, 'unknown', 0);
  return ended ?? 'stopped';
}
