/**
 * TLS on peer connections, as etcd's `--peer-*` flags set it up: a peer URL with the https
 * scheme is dialed over TLS, presenting this member's `--peer-cert-file` and verifying the peer's
 * certificate (chain to `--peer-trusted-ca-file`, or Node's default roots without one; the name or
 * IP dialed in its SANs); an https:// `--listen-peer-urls` serves TLS, and with
 * `--peer-client-cert-auth` refuses a dialer without a certificate signed by that CA. Framing and
 * the hello (hello.ts) are unchanged on top. Every kind of connection goes through here: the
 * message links (peer-link.ts), snapshots (snapshot-sender.ts), the inbound side (inbound.ts) and
 * the join invitation (invitation.ts).
 *
 * The material is read at each dial and installed on the listeners at each reload, so a new
 * certificate serves new connections without a restart; open ones keep theirs.
 */

import {
  connect as connectTcp, createServer as createTcpServer, type Server, type Socket,
} from 'node:net';
import {
  connect as connectTls, createServer as createTlsServer, TLSSocket, type Server as TlsServer,
} from 'node:tls';
import type { Logger } from 'pino';
import { assert } from '../../base/index.js';
import { serverContextOptions, type TlsMaterialSource } from '../tls/index.js';
import type { PeerAddress } from './peer-link.js';

/** How long a peer may take to complete a TLS handshake on an inbound connection. */
export const peerHandshakeTimeoutMs = 10_000;

/** This member's peer TLS (from --peer-cert-file, --peer-key-file, …). */
export interface PeerTls {
  /** The certificate presented, its key and the trusted CA; reloads included. */
  readonly source: TlsMaterialSource;
  /** etcd's --peer-client-cert-auth: inbound connections must present a trusted certificate. */
  readonly clientCertAuth: boolean;
}

/**
 * Opens a connection to `address`: TLS when it is an https:// peer, else TCP. Wait for
 * `connectedEventOf(socket)` before writing anything that should only reach a verified peer.
 * An https:// peer while this member has no peer certificate is dialed without one, against
 * Node's default roots (a cluster that half moved to TLS: the handshake most likely fails, and
 * the link backs off as after any failure).
 */
export function dialPeer(address: PeerAddress, tls: PeerTls | null): Socket {
  if (address.tls !== true) return connectTcp({ host: address.host, port: address.port });
  return connectTls({
    host: address.host,
    port: address.port,
    ...(tls === null ? {} : { secureContext: tls.source.current.context }),
  });
}

/** The event after which a dialed socket may carry frames: the TLS handshake, or the TCP one. */
export function connectedEventOf(socket: Socket): 'secureConnect' | 'connect' {
  return socket instanceof TLSSocket ? 'secureConnect' : 'connect';
}

/** A peer listener and what `close` must also undo. */
export interface PeerServer {
  readonly server: Server;
  /** Stops following certificate reloads (call when the server closes). */
  readonly dispose: () => void;
}

/**
 * A server for a peer URL: TLS when `secure` (an https:// --listen-peer-urls; `tls` is then
 * required), TCP otherwise. `onConnection` gets each connection once it is secure. Handshake
 * failures are logged (a peer with a certificate from another CA shows up here) and the socket
 * is closed.
 */
export function createPeerServer(options: {
  readonly secure: boolean;
  readonly tls: PeerTls | null;
  readonly logger: Logger;
  readonly onConnection: (socket: Socket) => void;
}): PeerServer {
  const { tls } = options;
  if (!options.secure) return { server: createTcpServer(options.onConnection), dispose: () => {} };
  assert(tls !== null, 'an https:// peer listener has the peer TLS material (flags.ts checks)');
  const server: TlsServer = createTlsServer({
    ...serverContextOptions(tls.source.current),
    requestCert: tls.clientCertAuth,
    rejectUnauthorized: tls.clientCertAuth,
    handshakeTimeout: peerHandshakeTimeoutMs,
  }, options.onConnection);
  server.on('tlsClientError', (error, socket) => {
    options.logger.warn(
      { remote: `${socket.remoteAddress}:${socket.remotePort}`, err: error.message },
      'peer TLS handshake refused',
    );
  });
  const dispose = tls.source.onReload((material) => {
    server.setSecureContext(serverContextOptions(material));
  });
  return { server, dispose };
}
