/**
 * The client port as etcd serves it: gRPC and HTTP/1.1 (`/health`, `/version`, `/metrics`) on
 * one listener, and the member's metrics that `/metrics` answers with here and on
 * `--listen-metrics-urls`.
 */

import type { Server as GrpcServer } from '@grpc/grpc-js';
import { createInsecureInjector } from '../api/grpc-server.js';
import { createHttpEndpoints, type HttpEndpointsOptions } from '../http-endpoints.js';
import { ClientPort } from './client-port.js';

export {
  ClientPort, http1IdleTimeoutMsDefault, prefaceTimeoutMsDefault, undecidedConnectionsMaxDefault,
  type ClientPortOptions, type Http2ConnectionSink,
} from './client-port.js';
export {
  MemberMetrics, metricsContentType, type MemberMetricsOptions, type MetricsNode,
} from './metrics.js';
export { classifyPreface, http2Preface, type PrefaceVerdict } from './preface.js';

/** Options of `listenClientUrl`. */
export interface ClientUrlOptions {
  /** An http:// client URL; its port defaults to etcd's 2379. */
  readonly url: URL;
  /** Serves the gRPC connections; its services are registered already or later. */
  readonly grpc: GrpcServer;
  /** What the HTTP/1.1 connections are answered with. */
  readonly endpoints: HttpEndpointsOptions;
  readonly prefaceTimeoutMs?: number;
}

/**
 * Listens on `options.url` for both protocols. grpc-js's shutdown closes the gRPC sessions;
 * `ClientPort.close` closes the listener and the HTTP/1.1 connections.
 */
export function listenClientUrl(options: ClientUrlOptions): Promise<ClientPort> {
  return ClientPort.listen({
    host: options.url.hostname.replace(/^\[(.*)\]$/, '$1'),
    port: Number(options.url.port || 2379),
    http2: createInsecureInjector(options.grpc),
    http1: createHttpEndpoints(options.endpoints),
    ...(options.prefaceTimeoutMs === undefined
      ? {}
      : { prefaceTimeoutMs: options.prefaceTimeoutMs }),
  });
}
