/**
 * The client port as etcd serves it: gRPC and HTTP/1.1 (`/health`, `/version`, `/metrics`,
 * `/livez`, `/readyz` and the `/v3/…` JSON gateway) on one listener, in clear text or, for an
 * https:// URL, TLS (client-port.ts), and the member's metrics that `/metrics` answers with here
 * and on `--listen-metrics-urls`.
 */

import { credentials, type ChannelCredentials, type Server as GrpcServer } from '@grpc/grpc-js';
import { SynodError } from '../../base/index.js';
import { createInsecureInjector } from '../api/grpc-server.js';
import { Gateway } from '../gateway/gateway.js';
import { createHttpEndpoints, type HttpEndpointsOptions } from '../http-endpoints.js';
import type { TlsMaterial, TlsMaterialSource } from '../tls/index.js';
import { ClientPort } from './client-port.js';

export {
  ClientPort, clientPortAlpnProtocols, http1IdleTimeoutMsDefault, prefaceTimeoutMsDefault,
  undecidedConnectionsMaxDefault, type ClientPortOptions, type ClientPortTls,
  type Http2ConnectionSink,
} from './client-port.js';
export {
  diskBucketBoundsSeconds, MemberMetrics, metricsContentType, type MemberMetricsOptions, type MetricsNode,
} from './metrics.js';
export { classifyPreface, http2Preface, type PrefaceVerdict } from './preface.js';

/** TLS for an https:// client URL (etcd's --cert-file, --key-file, --trusted-ca-file). */
export interface ClientUrlTls {
  /** The certificate, key and trusted CA, and their reloads (a `CertificateReloader`). */
  readonly source: TlsMaterialSource;
  /** etcd's --client-cert-auth. */
  readonly clientCertAuth: boolean;
}

/** Options of `listenClientUrl`. */
export interface ClientUrlOptions {
  /** An http:// or https:// client URL; its port defaults to etcd's 2379. */
  readonly url: URL;
  /** Required for an https:// URL; ignored for http://. */
  readonly tls?: ClientUrlTls | null;
  /** Serves the gRPC connections; its services are registered already or later. */
  readonly grpc: GrpcServer;
  /** What the HTTP/1.1 connections are answered with. */
  readonly endpoints: HttpEndpointsOptions;
  readonly prefaceTimeoutMs?: number;
}

/**
 * Listens on `options.url` for both protocols, over TLS for an https:// URL (the certificate
 * follows `tls.source`'s reloads). grpc-js's shutdown closes the gRPC sessions; `ClientPort.close`
 * closes the listener, the HTTP/1.1 connections and the gateway's gRPC client. The gateway dials
 * this port itself (gateway/gateway.ts says why), over loopback when the URL binds every
 * interface, with TLS when the port has it (`gatewayCredentialsOf`).
 */
export async function listenClientUrl(options: ClientUrlOptions): Promise<ClientPort> {
  const host = options.url.hostname.replace(/^\[(.*)\]$/, '$1');
  const tls = tlsOf(options);
  let target = '';
  const gateway = new Gateway({
    target: () => target,
    ...(options.endpoints.maxRequestBytes === undefined
      ? {} : { maxRequestBytes: options.endpoints.maxRequestBytes }),
    ...(tls === null ? {} : {
      credentials: gatewayCredentialsOf(tls.source.current, tls.clientCertAuth),
      // grpc-js would send the target's IP as the TLS server name, which Node warns about
      // (RFC 6066 allows host names only); the name is not verified (gatewayCredentialsOf).
      channelOptions: { 'grpc.ssl_target_name_override': 'localhost' },
    }),
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
    tls: tls === null ? null : { material: tls.source.current, clientCertAuth: tls.clientCertAuth },
  });
  if (tls !== null) {
    const unsubscribe = tls.source.onReload((material) => {
      port.setTlsMaterial(material);
      if (tls.clientCertAuth) gateway.setCredentials(gatewayCredentialsOf(material, true));
    });
    http1.once('close', unsubscribe);
  }
  target = gatewayTargetOf(host, port.port);
  return port;
}

function tlsOf(options: ClientUrlOptions): ClientUrlTls | null {
  if (options.url.protocol !== 'https:') return null;
  if (options.tls === undefined || options.tls === null) {
    const url = options.url.href;
    throw new SynodError(
      'SYNOD_INVALID_CONFIG',
      `TLS key/cert (--cert-file, --key-file) must be provided for client url ${url} with HTTPS scheme`,
    );
  }
  return options.tls;
}

/**
 * How the JSON gateway dials its own TLS port. Like etcd's gateway (embed/serve.go, "trust local
 * server": InsecureSkipVerify), it does not verify the certificate: it dials the address this
 * member has just bound, often 127.0.0.1 for a certificate issued to a host name, and the
 * certificate may chain to a CA the member was not given. With `clientCertAuth` it presents the
 * member's own certificate, which must therefore also be valid as a client certificate signed by
 * --trusted-ca-file (as with etcd).
 */
export function gatewayCredentialsOf(
  material: TlsMaterial, clientCertAuth: boolean,
): ChannelCredentials {
  return credentials.createSsl(
    null,
    clientCertAuth ? material.key : null,
    clientCertAuth ? material.cert : null,
    { rejectUnauthorized: false },
  );
}

/** Where the gateway dials its own port: loopback for a wildcard host, else the host itself. */
export function gatewayTargetOf(host: string, port: number): string {
  if (host === '0.0.0.0' || host === '') return `127.0.0.1:${port}`;
  if (host === '::') return `[::1]:${port}`;
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}
