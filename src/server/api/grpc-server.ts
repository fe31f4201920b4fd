/**
 * The gRPC server of the client port: message-size limits as etcd sets them, and
 * `grpc.health.v1.Health` answering SERVING. Services are added by the caller.
 */

import {
  Server, ServerCredentials, status as GrpcStatus, type ConnectionInjector,
  type ServerInterceptor, type ServerWritableStream, type UntypedServiceImplementation,
  type handleUnaryCall,
} from '@grpc/grpc-js';
import { SynodError } from '../../base/index.js';
import { maxRequestBytesDefault } from '../flags.js';
import { serviceNames, type EtcdProto } from '../grpc/proto.js';

/** etcd's grpcOverheadBytes: gRPC accepts `maxRequestBytes` plus this much framing. */
export const grpcOverheadBytes = 512 * 1024;
/** etcd's maxSendBytes: responses may be as large as gRPC allows (math.MaxInt32). */
export const grpcSendBytesMax = 2 ** 31 - 1;

/** Options of `createGrpcServer`. */
export interface GrpcServerOptions {
  /** The loaded protos (services.Health is added here). */
  readonly proto: EtcdProto;
  /** etcd's --max-request-bytes (default 1.5 MiB). The receive limit adds `grpcOverheadBytes`. */
  readonly maxRequestBytes?: number;
  /** Run on every call before its service (the auth interceptor). */
  readonly interceptors?: readonly ServerInterceptor[];
}

/** A `Server` with etcd's message-size limits and the health service; add the others, then bind. */
export function createGrpcServer(options: GrpcServerOptions): Server {
  const maxRequestBytes = options.maxRequestBytes ?? maxRequestBytesDefault;
  if (!Number.isSafeInteger(maxRequestBytes) || maxRequestBytes <= 0) {
    throw new SynodError('SYNOD_INVALID_CONFIG', `maxRequestBytes ${maxRequestBytes}`);
  }
  const receiveBytesMax = Math.min(maxRequestBytes + grpcOverheadBytes, grpcSendBytesMax);
  const server = new Server({
    'grpc.max_receive_message_length': receiveBytesMax,
    'grpc.max_send_message_length': grpcSendBytesMax,
    interceptors: [...(options.interceptors ?? [])],
  });
  server.addService(options.proto.services.Health, healthService());
  return server;
}

/** Binds `server` to `address` (`host:port`; port 0 picks one) without TLS; resolves the port. */
export function bindInsecure(server: Server, address: string): Promise<number> {
  return new Promise((resolve, reject) => {
    server.bindAsync(address, ServerCredentials.createInsecure(), (error, port) => {
      if (error === null) resolve(port);
      else reject(error);
    });
  });
}

/**
 * A way into `server` for connections accepted elsewhere (the shared client port), without TLS:
 * each injected socket becomes an HTTP/2 session of `server`, which `shutdownServer` closes like
 * those of a bound port. The socket must still hold the HTTP/2 preface, unread.
 */
export function createInsecureInjector(server: Server): ConnectionInjector {
  return server.createConnectionInjector(ServerCredentials.createInsecure());
}

/**
 * Closes `server`: stops accepting calls and cancels the ones in flight, including long-lived
 * streams (health watches), which would otherwise hold a graceful shutdown open forever.
 */
export function shutdownServer(server: Server): Promise<void> {
  return new Promise((resolve) => {
    server.tryShutdown(() => resolve());
    server.forceShutdown();
  });
}

interface HealthCheckRequest {
  readonly service: string;
}

interface HealthCheckResponse {
  readonly status: 'SERVING' | 'SERVICE_UNKNOWN';
}

const servedNames = new Set<string>(['', ...Object.values(serviceNames)]);

/**
 * grpc.health.v1.Health: the whole server ('') and each etcd service are SERVING while the process
 * serves, as etcd reports. An unknown name is NOT_FOUND on Check and SERVICE_UNKNOWN on Watch, as
 * the health protocol specifies.
 */
function healthService(): UntypedServiceImplementation {
  const check: handleUnaryCall<HealthCheckRequest, HealthCheckResponse> = (call, callback) => {
    if (servedNames.has(call.request.service)) callback(null, { status: 'SERVING' });
    else callback({ code: GrpcStatus.NOT_FOUND, details: 'unknown service' });
  };
  const watch = (call: ServerWritableStream<HealthCheckRequest, HealthCheckResponse>): void => {
    const known = servedNames.has(call.request.service);
    call.write({ status: known ? 'SERVING' : 'SERVICE_UNKNOWN' });
    // The status never changes while the server runs; the stream ends when the client cancels.
  };
  return { Check: check, Watch: watch };
}
