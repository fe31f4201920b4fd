/**
 * The ID service listening: an IdService behind an HTTP server and a gRPC server, each on its
 * own address (loopback by default: the service hands out ids to whoever asks, so exposing it is
 * the operator's explicit choice). With `tls` both speak TLS (HTTPS, gRPC over TLS) and, with
 * `tls.clientCertAuth`, serve only clients whose certificate `tls.ca` signed (listener-tls.ts).
 */

import { once } from 'node:events';
import type { Server as HttpServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Server as GrpcServer, ServerCredentials } from '@grpc/grpc-js';
import { SynodError, assert } from '../../../base/index.js';
import { createIdGrpcServer } from './grpc-api.js';
import { createIdHttpServer } from './http-api.js';
import { IdService, type IdServiceOptions } from './id-service.js';
import {
  grpcCredentialsOf, listenerTlsOf, type IdServerTls, type ListenerTls,
} from './listener-tls.js';

/** Where one protocol listens. */
export interface ListenAddress {
  /** Default `127.0.0.1`. */
  readonly host?: string;
  /** 0 picks a free port; default 0. */
  readonly port?: number;
}

/** Options of `startIdServer`: the service's, plus where each protocol listens. */
export interface IdServerOptions extends IdServiceOptions {
  /** HTTP/JSON; null serves no HTTP. Default `{ host: '127.0.0.1', port: 0 }`. */
  readonly http?: ListenAddress | null;
  /** gRPC; null serves no gRPC. Default `{ host: '127.0.0.1', port: 0 }`. */
  readonly grpc?: ListenAddress | null;
  /** Open HTTP connections at once; default 1 024. */
  readonly httpConnectionsMax?: number;
  /** TLS on both listeners; plain HTTP and insecure gRPC when absent or null. */
  readonly tls?: IdServerTls | null;
}

/** The default listen host. */
export const listenHostDefault = '127.0.0.1';

/** A running ID service. */
export interface IdServer {
  readonly service: IdService;
  /** The HTTP port bound, or null without HTTP. */
  readonly httpPort: number | null;
  /** The gRPC port bound, or null without gRPC. */
  readonly grpcPort: number | null;
  /**
   * Stops both listeners and cuts the connections, calls in flight included. The source and
   * its generators stay open: the caller owns them and closes them after this.
   */
  close(): Promise<void>;
}

/** Starts the service on its addresses; resolves once both listen. */
export async function startIdServer(options: IdServerOptions): Promise<IdServer> {
  const httpAddress = options.http === undefined ? {} : options.http;
  const grpcAddress = options.grpc === undefined ? {} : options.grpc;
  if (httpAddress === null && grpcAddress === null) {
    throw new SynodError('SYNOD_INVALID_CONFIG', 'the ID service needs HTTP, gRPC or both');
  }
  const tls: ListenerTls | null = options.tls === undefined || options.tls === null
    ? null : listenerTlsOf(options.tls);
  const service = new IdService(options);
  let http: HttpServer | null = null;
  let grpc: GrpcServer | null = null;
  try {
    let httpPort: number | null = null;
    let grpcPort: number | null = null;
    if (httpAddress !== null) {
      http = createIdHttpServer({ service, httpConnectionsMax: options.httpConnectionsMax, tls });
      httpPort = await listenHttp(http, httpAddress);
    }
    if (grpcAddress !== null) {
      grpc = createIdGrpcServer({ service });
      const credentials = grpcCredentialsOf(tls);
      grpcPort = await bindGrpc(grpc, { address: grpcAddress, credentials });
    }
    const [boundHttp, boundGrpc] = [http, grpc];
    return {
      service, httpPort, grpcPort,
      close: () => closeAll(service, boundHttp, boundGrpc),
    };
  } catch (error) {
    await closeAll(service, http, grpc);
    throw error;
  }
}

async function listenHttp(server: HttpServer, address: ListenAddress): Promise<number> {
  server.listen(address.port ?? 0, address.host ?? listenHostDefault);
  await once(server, 'listening');
  const bound = server.address() as AddressInfo;
  assert(bound !== null && typeof bound === 'object', 'http: a TCP address');
  return bound.port;
}

function bindGrpc(
  server: GrpcServer, bind: { address: ListenAddress; credentials: ServerCredentials },
): Promise<number> {
  const host = bind.address.host ?? listenHostDefault;
  // An IPv6 literal needs brackets in gRPC's host:port.
  const target = `${host.includes(':') ? `[${host}]` : host}:${bind.address.port ?? 0}`;
  return new Promise((resolve, reject) => {
    server.bindAsync(target, bind.credentials, (error, port) => {
      if (error === null) resolve(port);
      else reject(error);
    });
  });
}

async function closeAll(
  service: IdService, http: HttpServer | null, grpc: GrpcServer | null,
): Promise<void> {
  service.close();
  const closing: Promise<void>[] = [];
  if (http !== null && http.listening) {
    closing.push(new Promise((resolve) => http.close(() => resolve())));
    // Keep-alive sockets and requests waiting for a segment would hold close() open.
    http.closeAllConnections();
  }
  if (grpc !== null) {
    closing.push(new Promise((resolve) => grpc.tryShutdown(() => resolve())));
    // Cancels calls in flight; tryShutdown alone waits for them.
    grpc.forceShutdown();
  }
  await Promise.all(closing);
}
