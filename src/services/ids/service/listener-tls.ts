/**
 * TLS on the ID service's own listeners, as the member's client port has it (etcd's
 * `--cert-file`, `--key-file`, `--trusted-ca-file`, `--client-cert-auth`): one identity for both
 * protocols and, with `clientCertAuth`, a client certificate signed by `ca` required on both.
 * This layer takes PEM contents, not paths: the caller reads the files and names them in its
 * messages (`synod ids` does, with server/tls's `tlsMaterialOf`); here they are checked once more
 * as options, since a program may start the service without that CLI.
 */

import { X509Certificate } from 'node:crypto';
import type { ServerOptions as HttpsServerOptions } from 'node:https';
import { createSecureContext } from 'node:tls';
import { ServerCredentials } from '@grpc/grpc-js';
import { SynodError, assert } from '../../../base/index.js';

/** The `tls` option of `startIdServer`. */
export interface IdServerTls {
  /** PEM certificate the listeners present, optionally followed by its chain. */
  readonly cert: Buffer;
  /** PEM private key of `cert`. */
  readonly key: Buffer;
  /** PEM CA bundle a client certificate must chain to; required with `clientCertAuth`. */
  readonly ca?: Buffer;
  /** Both listeners refuse a client without a certificate signed by `ca`. Default false. */
  readonly clientCertAuth?: boolean;
}

/** `IdServerTls` validated, defaults filled in. Frozen. */
export interface ListenerTls {
  readonly cert: Buffer;
  readonly key: Buffer;
  /** null: no CA of its own (then `clientCertAuth` is false). */
  readonly ca: Buffer | null;
  readonly clientCertAuth: boolean;
}

/** A TLS handshake must finish within this; a slow client holds a connection no longer. */
export const tlsHandshakeTimeoutMs = 10_000;

function invalid(message: string): never {
  throw new SynodError('SYNOD_INVALID_CONFIG', message);
}

function isPem(value: unknown): value is Buffer {
  return Buffer.isBuffer(value) && value.length > 0;
}

/** Whether the first certificate of a PEM bundle parses. */
function holdsCertificate(bundle: Buffer): boolean {
  try {
    return new X509Certificate(bundle).raw.length > 0;
  } catch {
    return false;
  }
}

/**
 * Checks `tls`: a certificate and its key together, a CA when client certificates are required,
 * and a key that belongs to the certificate. Throws SYNOD_INVALID_CONFIG; never echoes the key.
 */
export function listenerTlsOf(tls: IdServerTls): ListenerTls {
  if (!isPem(tls.cert) || !isPem(tls.key)) {
    invalid('tls.cert and tls.key go together: both PEM contents, as Buffers');
  }
  if (tls.ca !== undefined && !isPem(tls.ca)) invalid('tls.ca is PEM contents, as a Buffer');
  const clientCertAuth = tls.clientCertAuth ?? false;
  if (typeof clientCertAuth !== 'boolean') invalid('tls.clientCertAuth is a boolean');
  if (clientCertAuth && tls.ca === undefined) {
    invalid('tls.clientCertAuth needs tls.ca, the CA client certificates must be signed by');
  }
  const ca = tls.ca ?? null;
  // createSecureContext takes a bundle without a certificate in it and then trusts nothing.
  if (ca !== null && !holdsCertificate(ca)) invalid('tls.ca holds no PEM certificate');
  try {
    createSecureContext({ cert: tls.cert, key: tls.key, ...(ca === null ? {} : { ca }) });
  } catch (error) {
    invalid(`tls.cert and tls.key do not make a TLS identity (${(error as Error).message})`);
  }
  return Object.freeze({ cert: tls.cert, key: tls.key, ca, clientCertAuth });
}

/** What node:https takes: the identity, and a client certificate demanded with clientCertAuth. */
export function httpsOptionsOf(tls: ListenerTls): HttpsServerOptions {
  return {
    cert: tls.cert,
    key: tls.key,
    ...(tls.ca === null ? {} : { ca: tls.ca }),
    requestCert: tls.clientCertAuth,
    rejectUnauthorized: tls.clientCertAuth,
    handshakeTimeout: tlsHandshakeTimeoutMs,
  };
}

/** The gRPC server's credentials: insecure without TLS. */
export function grpcCredentialsOf(tls: ListenerTls | null): ServerCredentials {
  if (tls === null) return ServerCredentials.createInsecure();
  // Invariant: client certificates are checked against our own CA, never the default roots
  // grpc-js falls back to when rootCerts is null.
  assert(!tls.clientCertAuth || tls.ca !== null, 'clientCertAuth has a CA (listenerTlsOf)');
  return ServerCredentials.createSsl(
    tls.ca, [{ private_key: tls.key, cert_chain: tls.cert }], tls.clientCertAuth);
}
