/**
 * The client port as etcd serves it: gRPC and HTTP/1.1 (`/health`, `/version`, `/metrics`,
 * `/livez`, `/readyz` and the `/v3/…` JSON gateway) on one listener, and the member's metrics
 * that `/metrics` answers with here and on `--listen-metrics-urls`.
 */

import type { Server as GrpcServer } from '@grpc/grpc-js';
import { createInsecureInjector } from '../api/grpc-server.js';
import { Gateway } from '../gateway/gateway.js';
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
 * `ClientPort.close` closes the listener, the HTTP/1.1 connections and the gateway's gRPC client.
 * The gateway dials this port itself (gateway/gateway.ts says why), over loopback when the URL
 * binds every interface.
 */
export async function listenClientUrl(options: ClientUrlOptions): Promise<ClientPort> {
  const host = options.url.hostname.replace(/^\[(.*)\]$/, '$1');
  let target = '';
  const gateway = new Gateway({
    target: () => target,
    ...(options.endpoints.maxRequestBytes === undefined
      ? {} : { maxRequestBytes: options.endpoints.maxRequestBytes }),
  });
  const http1 = createHttpEndpoints({ ...options.endpoints, gateway });
  http1.once('close', () => gateway.close());
  const port = await ClientPort.listen({
    host,
    port: Number(options.url.port || 2379),
    http2: createInsecureInjector(options.grpc),
    http1,
    ...(options.prefaceTimeoutMs === undefined
      ? {}
      : { prefaceTimeoutMs: options.prefaceTimeoutMs }),
  });
  target = gatewayTargetOf(host, port.port);
  return port;
}

/** Where the gateway dials its own port: loopback for a wildcard host, else the host itself. */
export function gatewayTargetOf(host: string, port: number): string {
  if (host === '0.0.0.0' || host === '') return `127.0.0.1:${port}`;
  if (host === '::') return `[::1]:${port}`;
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}
