/**
 * Test kit for the Lock and Election services: a single-member leader serving both over a real
 * gRPC server, raw grpc-js clients built from the loaded protos, and event-driven synchronisation
 * (a wait registering, an apply reaching a state) so tests never sleep.
 */

import {
  credentials, type Client, type ClientReadableStream, type ClientUnaryCall, type Metadata,
  type ServiceClientConstructor, type ServiceError,
} from '@grpc/grpc-js';
import { assert } from '../../base/index.js';
import { loadEtcdProto } from '../grpc/proto.js';
import type { RaftNode } from '../node/raft-node.js';
import { createElectionService } from './election-service.js';
import { bindInsecure, createGrpcServer, shutdownServer } from './grpc-server.js';
import { createLockService } from './lock-service.js';
import { startLeader } from './single-member-test-kit.js';
import { KeyWaiters, type WaitStep } from './waiting-keys.js';

/** The header ids the kit's services stamp. */
export const testClusterId = 0xcafe_f00d_1234_5678n;
/** See `testClusterId`. */
export const testMemberId = 0xfeed_beef_0000_0002n;

/**
 * `KeyWaiters` that lets a test await the moment a call starts waiting or the last wait ends, and
 * hold a finished wait's result until its call is cancelled (to reach "answered after the client
 * left" deterministically).
 */
export class ObservedWaiters extends KeyWaiters {
  #onWait: (() => void)[] = [];
  #onIdle: (() => void)[] = [];
  /** While set, a wait finishing hands back its value only once its signal aborts. */
  holdUntilCancelled = false;

  /** Resolves when the next wait has registered and run its first step. */
  nextWait(): Promise<void> {
    return new Promise((resolve) => this.#onWait.push(resolve));
  }

  /** Resolves once no wait is in progress, checking now and as each wait settles. */
  untilIdle(): Promise<void> {
    if (this.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.#onIdle.push(resolve));
  }

  override wait<T>(step: WaitStep<T>, signal: AbortSignal): Promise<T> {
    const promise = super.wait(step, signal);
    for (const resolve of this.#onWait.splice(0)) resolve();
    const onSettled = (): void => {
      if (this.size === 0) for (const resolve of this.#onIdle.splice(0)) resolve();
    };
    promise.then(onSettled, onSettled);
    return promise.then(async (value) => {
      if (!this.holdUntilCancelled || signal.aborted) return value;
      await new Promise((resolve) => signal.addEventListener('abort', resolve, { once: true }));
      return value;
    });
  }
}

type Callback<T> = (error: ServiceError | null, response: T) => void;
type UnaryMethod = (request: object, callback: Callback<unknown>) => ClientUnaryCall;

/** A grpc-js client with unary methods by name, and Observe's server stream. */
export type RecipeClient = Client & Record<string, UnaryMethod> & {
  Observe(request: object, metadata?: Metadata): ClientReadableStream<unknown>;
};

/** A unary call in flight: its eventual response and the handle to cancel it. */
export interface PendingCall<T> {
  readonly response: Promise<T>;
  readonly call: ClientUnaryCall;
}

/** Starts `method` on `client`; the response promise rejects with the ServiceError. */
export function startCall<T>(
  client: RecipeClient,
  method: string,
  request: object,
): PendingCall<T> {
  let call!: ClientUnaryCall;
  const response = new Promise<T>((resolve, reject) => {
    const invoke = client[method];
    assert(invoke !== undefined, `client has no method ${method}`);
    call = invoke.call(client, request, (error, value) => {
      if (error === null) resolve(value as T);
      else reject(error);
    });
  });
  return { response, call };
}

/** Everything a recipe test needs. */
export interface RecipeHarness {
  readonly node: RaftNode;
  readonly waiters: ObservedWaiters;
  readonly lock: RecipeClient;
  readonly election: RecipeClient;
}

/** Starts a leader and a gRPC server with both services; `cleanups` runs in reverse. */
export async function startRecipeHarness(
  prefix: string,
  cleanups: (() => Promise<void>)[],
  options: { readonly waitersMax?: number } = {},
): Promise<RecipeHarness> {
  const proto = loadEtcdProto();
  const node = await startLeader(prefix, cleanups);
  const waiters = new ObservedWaiters({ node, waitersMax: options.waitersMax ?? 16 });
  const serviceOptions = { node, waiters, clusterId: testClusterId, memberId: testMemberId };
  const server = createGrpcServer({ proto });
  server.addService(proto.services.Lock, createLockService(serviceOptions));
  server.addService(proto.services.Election, createElectionService(serviceOptions));
  const port = await bindInsecure(server, '127.0.0.1:0');
  cleanups.push(() => shutdownServer(server));
  const clientOf = (packageName: string, service: string): RecipeClient => {
    const namespace = proto.packageObject[packageName] as Record<string, ServiceClientConstructor>;
    const Constructor = namespace[service];
    assert(Constructor !== undefined, `${packageName}.${service} is loaded`);
    const client = new Constructor(`127.0.0.1:${port}`, credentials.createInsecure());
    cleanups.push(async () => client.close());
    return client as RecipeClient;
  };
  return {
    node,
    waiters,
    lock: clientOf('v3lockpb', 'Lock'),
    election: clientOf('v3electionpb', 'Election'),
  };
}

/** Grants a 60-second lease through Raft and returns its ID. */
export async function grantLease(node: RaftNode): Promise<bigint> {
  const result = await node.propose({ type: 'leaseGrant', id: 0n, ttlSeconds: 60 });
  assert(result.ok && result.result.type === 'leaseGrant', 'lease granted');
  return result.result.response.id;
}

/** Revokes `lease` through Raft, deleting its keys. */
export async function revokeLease(node: RaftNode, lease: bigint): Promise<void> {
  const result = await node.propose({ type: 'leaseRevoke', id: lease });
  assert(result.ok, 'lease revoked');
}

/** Resolves once `holds()` is true, checking now and after each applied batch. */
export function appliedUntil(node: RaftNode, holds: () => boolean): Promise<void> {
  return new Promise((resolve) => {
    if (holds()) {
      resolve();
      return;
    }
    const unsubscribe = node.onApplied(() => {
      if (!holds()) return;
      unsubscribe();
      resolve();
    });
  });
}

/** Whether `key` exists in `node`'s store. */
export function keyExists(node: RaftNode, key: string): boolean {
  return node.stateMachine.store.range({ key: Buffer.from(key) }).kvs.length > 0;
}

/** The candidate key of `name` under `lease`, as etcd spells it. */
export function candidateKey(name: string, lease: bigint): string {
  return `${name}/${lease.toString(16)}`;
}
