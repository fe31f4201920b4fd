/**
 * The raw gRPC client the kv benchmark drives both servers with: grpc-js stubs built from Synod's
 * own proto definitions (`loadEtcdProto()`), with no client library in between, so what is timed
 * is one HTTP/2 round trip and the server's work.
 */

import {
  credentials, Metadata, status,
  type Client, type ClientOptions, type ServiceError,
} from '@grpc/grpc-js';
import { assert } from '../src/base/index.js';
import type { EtcdProto } from '../src/server/grpc/proto.js';

/** A grpc-js service client constructor as `loadPackageDefinition` returns it. */
export type GrpcMethod = new (
  address: string,
  creds: ReturnType<typeof credentials.createInsecure>,
  options?: ClientOptions,
) => Client;

type UnaryMethod = (
  request: object,
  metadata: Metadata,
  options: { deadline: number },
  callback: (error: ServiceError | null, response: unknown) => void,
) => unknown;

/**
 * Most HTTP/2 connections one load cell opens to the server; concurrent requests beyond it are
 * multiplexed as streams on these. Real etcd clients hold one connection per endpoint, so a few
 * connections with many streams each is the realistic shape; 16 lets both servers spread work
 * over their reading goroutines or event-loop turns without one socket per request.
 */
export const channelsMax = 16;

/** Options that give every client its own connection instead of grpc-js's shared subchannel. */
const ownConnection: ClientOptions = {
  'grpc.use_local_subchannel_pool': 1,
  'grpc.max_receive_message_length': 16 * 1024 * 1024,
};

/** A set of service stubs, one per connection, for one server endpoint. */
export class ChannelPool {
  readonly kv: readonly Client[];
  readonly watch: readonly Client[];

  constructor(options: { proto: EtcdProto; clientUrl: string; channels: number }) {
    assert(options.channels >= 1 && options.channels <= channelsMax, 'channel count within bounds');
    const address = options.clientUrl.replace('http://', '');
    const services = options.proto.packageObject.etcdserverpb as Record<string, unknown>;
    const kv = services.KV as GrpcMethod;
    const watch = services.Watch as GrpcMethod;
    const kvClients: Client[] = [];
    const watchClients: Client[] = [];
    for (let index = 0; index < options.channels; index++) {
      // A local subchannel pool gives each KV stub its own connection; the Watch stub of the same
      // index rides on that connection, as one etcd client multiplexes KV and Watch.
      const kvClient = new kv(address, credentials.createInsecure(), ownConnection);
      kvClients.push(kvClient);
      const shared: ClientOptions = { channelOverride: kvClient.getChannel() };
      watchClients.push(new watch(address, credentials.createInsecure(), shared));
    }
    this.kv = kvClients;
    this.watch = watchClients;
  }

  /** The KV stub for the `index`-th concurrent request. */
  kvFor(index: number): Client {
    return this.kv[index % this.kv.length]!;
  }

  /** The Watch stub for the `index`-th watcher. */
  watchFor(index: number): Client {
    return this.watch[index % this.watch.length]!;
  }

  close(): void {
    for (const client of [...this.watch, ...this.kv]) client.close();
  }
}

/** One unary call as a promise; rejects with the gRPC error (code and details). */
export function unaryCall<Response>(
  client: Client,
  method: string,
  request: object,
  deadlineMs: number,
): Promise<Response> {
  const call = (client as unknown as Record<string, UnaryMethod>)[method];
  assert(call !== undefined, `gRPC method ${method} exists on the stub`);
  return new Promise((resolve, reject) => {
    const options = { deadline: Date.now() + deadlineMs };
    call.call(client, request, new Metadata(), options, (error, response) => {
      if (error !== null) reject(error);
      else resolve(response as Response);
    });
  });
}

/** A short description of a gRPC error for the report: `UNIMPLEMENTED: …`. */
export function describeGrpcError(error: unknown): string {
  const candidate = error as Partial<ServiceError>;
  if (typeof candidate.code === 'number') {
    const details = candidate.details ?? candidate.message ?? '';
    return `${status[candidate.code] ?? candidate.code}: ${details}`.slice(0, 200);
  }
  return error instanceof Error ? error.message : String(error);
}
