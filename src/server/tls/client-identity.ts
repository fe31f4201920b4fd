/**
 * Who a client proved to be with its TLS certificate. With `--client-cert-auth`, etcd takes the
 * verified certificate's subject CN as the user name when a request carries no auth token
 * (etcd `server/auth/store.go` `AuthInfoFromTLS`). Synod records that CN on the connection when
 * the handshake completes (client-port.ts) so that the Auth layer, when it lands, can do the same;
 * nothing here decides anything.
 *
 * - HTTP/1.1 (health, metrics, the JSON gateway): `clientCommonNameOfSocket(request.socket)`.
 * - gRPC: `clientCommonNameOfCall(call)`, from grpc-js's auth context, which reads the same
 *   verified certificate of the session's TLS socket.
 *
 * Only a certificate that verified against `--trusted-ca-file` counts; without
 * `--client-cert-auth` no certificate is requested and both answer null.
 *
 * For the Auth layer: the JSON gateway dials its own port presenting the member's certificate
 * (gateway/gateway.ts), so a gateway call carries the member's CN, not the HTTP client's. etcd
 * ignores the CN of calls marked with grpc-gateway's `grpcgateway-accept` metadata for that reason.
 */

import type { TLSSocket } from 'node:tls';

const commonNames = new WeakMap<object, string>();

/** Records the CN of `socket`'s verified client certificate, if it has one. */
export function recordClientCertificate(socket: TLSSocket): void {
  if (!socket.authorized) return;
  const subject = socket.getPeerCertificate().subject as
    | Record<string, string | string[]> | undefined;
  const commonName = commonNameOf(subject);
  if (commonName !== null) commonNames.set(socket, commonName);
}

/** The CN of the verified client certificate of the connection `socket`, or null. */
export function clientCommonNameOfSocket(socket: object): string | null {
  return commonNames.get(socket) ?? null;
}

/** What `clientCommonNameOfCall` reads: grpc-js server calls have this method. */
export interface CallWithAuthContext {
  getAuthContext(): { readonly sslPeerCertificate?: { readonly subject?: object } } | null;
}

/** The CN of the verified client certificate of the connection a gRPC call came on, or null. */
export function clientCommonNameOfCall(call: CallWithAuthContext): string | null {
  const subject = call.getAuthContext()?.sslPeerCertificate?.subject as
    | Record<string, string | string[]> | undefined;
  return commonNameOf(subject);
}

/** A certificate subject's CN (the first, if several), or null. */
function commonNameOf(subject: Record<string, string | string[]> | undefined): string | null {
  if (subject === undefined) return null;
  const value = subject.CN;
  const first = Array.isArray(value) ? value[0] : value;
  return first === undefined || first === '' ? null : first;
}
