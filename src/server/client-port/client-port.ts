/**
 * The client port shared by gRPC and HTTP/1.1, as etcd's cmux shares 2379: Synod owns the TCP
 * listener, reads the first bytes of each connection, and hands the socket, those bytes put back
 * in front of its stream, to grpc-js (the HTTP/2 preface) or to an HTTP/1.1 server (anything
 * else: /health, /version, /metrics).
 *
 * The bytes go back with `socket.unshift` on a paused socket with no 'data' listener left, so the
 * receiver reads them first: Node's HTTP/2 session feeds a socket's already-buffered bytes to
 * nghttp2 before it reads the handle, and the HTTP/1.1 server reads them through its 'data'
 * listener once resumed. (Injecting a socket whose preface was consumed makes grpc-js's session
 * see a mid-stream frame, and the client gets RST_STREAM.)
 *
 * A connection is held undecided only until its bytes depart from the preface or complete it, so
 * at most 23 bytes, and at most `prefaceTimeoutMs` from accept; at most `undecidedConnectionsMax`
 * connections wait at once, and others are closed at accept.
 *
 * With TLS (an https:// client URL, `ClientPortOptions.tls`), each accepted socket is handed to a
 * non-listening `tls.Server` for the handshake, still counted undecided and still bound by
 * `prefaceTimeoutMs`. Once secure, ALPN decides: `h2` goes to grpc-js and `http/1.1` to the
 * HTTP/1.1 server, with no byte read; a client that negotiated no ALPN is classified by its
 * decrypted preface as above (and held at most `prefaceTimeoutMs` again). The server lists
 * `http/1.1` first and OpenSSL honours the server's order: gRPC clients offer only `h2` (grpc-js,
 * grpc-go, Node's http2) and get it; curl and browsers offer both and get HTTP/1.1, which serves
 * /health and the gateway (grpc-js answers only gRPC over HTTP/2). With `clientCertAuth`, a
 * handshake without a certificate signed by the trusted CA fails; the verified certificate's CN
 * is recorded on the connection (tls/client-identity.ts). `setTlsMaterial` installs a new
 * certificate for later handshakes.
 */

import { createServer, type Server as NetServer, type Socket } from 'node:net';
import type { Server as HttpServer } from 'node:http';
import type { Duplex } from 'node:stream';
import {
  createServer as createTlsServer, type Server as TlsServer, type TLSSocket,
} from 'node:tls';
import { assert, SynodError } from '../../base/index.js';
import { recordClientCertificate, serverContextOptions, type TlsMaterial } from '../tls/index.js';
import { classifyPreface, http2Preface } from './preface.js';

/** How long a new connection may take to show its protocol before it is closed. */
export const prefaceTimeoutMsDefault = 10_000;
/**
 * How long an HTTP/1.1 connection may stay silent, mid-request or between requests, before it
 * is closed. Node's own headersTimeout/requestTimeout checks run only for a server that listens
 * itself, so this is what bounds an idle HTTP/1.1 connection here.
 */
export const http1IdleTimeoutMsDefault = 120_000;
/** Connections that may be waiting to show their protocol at once; more are closed at accept. */
export const undecidedConnectionsMaxDefault = 1024;

/** Where HTTP/2 connections go: grpc-js's `ConnectionInjector` has this shape. */
export interface Http2ConnectionSink {
  injectConnection(connection: Duplex): void;
}

/** Options of `ClientPort.listen`. */
export interface ClientPortOptions {
  /** The host to bind, as in the client URL. */
  readonly host: string;
  /** The TCP port; 0 picks one. */
  readonly port: number;
  /** Receives each HTTP/2 connection with its preface unread. */
  readonly http2: Http2ConnectionSink;
  /** Serves each other connection; not listening itself (its 'connection' event is fed here). */
  readonly http1: HttpServer;
  readonly prefaceTimeoutMs?: number;
  readonly undecidedConnectionsMax?: number;
  readonly http1IdleTimeoutMs?: number;
  /** Serve TLS (an https:// URL); plain TCP when null or absent. */
  readonly tls?: ClientPortTls | null;
}

/** TLS on a client port. */
export interface ClientPortTls {
  /** The certificate presented, its key, and the CA client certificates must chain to. */
  readonly material: TlsMaterial;
  /** etcd's --client-cert-auth: refuse clients without a certificate signed by `material.ca`. */
  readonly clientCertAuth: boolean;
}

/**
 * The client port's ALPN list, in the server's order of preference (see the module comment):
 * HTTP/1.1 for clients that speak both, h2 for gRPC clients, which offer nothing else.
 */
export const clientPortAlpnProtocols: readonly string[] = Object.freeze(['http/1.1', 'h2']);

/** A connection waiting to show its protocol: its deadline runs from accept. */
interface Undecided {
  readonly socket: Socket;
  /** Stops tracking it (deadline, listeners, the undecided set); idempotent. */
  readonly forget: () => void;
}

/** One listening client port. */
export class ClientPort {
  readonly #listener: NetServer;
  readonly #options: Required<Omit<ClientPortOptions, 'tls'>>;
  readonly #undecided = new Set<Socket>();
  /**
   * HTTP/1.1 connections handed over. An http.Server that does not listen itself tracks none
   * (Node starts its tracking on 'listening'), so its closeAllConnections would miss them.
   */
  readonly #http1Sockets = new Set<Socket>();
  /** Does the handshakes of a TLS port; fed accepted sockets, never listening itself. */
  readonly #tlsServer: TlsServer | null;
  /** Accepted sockets in their TLS handshake, by `connectionKeyOf`. */
  readonly #handshaking = new Map<string, Undecided>();
  #closing: Promise<void> | null = null;
  #port = 0;

  private constructor(
    options: Required<Omit<ClientPortOptions, 'tls'>>, tls: ClientPortTls | null,
  ) {
    this.#options = options;
    this.#listener = createServer((socket) => this.#onConnection(socket));
    this.#tlsServer = tls === null ? null : this.#createTlsServer(tls);
  }

  /** Binds `options.host:options.port` and resolves once it listens. */
  static async listen(options: ClientPortOptions): Promise<ClientPort> {
    const { tls = null, ...rest } = options;
    const filled: Required<Omit<ClientPortOptions, 'tls'>> = Object.freeze({
      prefaceTimeoutMs: prefaceTimeoutMsDefault,
      undecidedConnectionsMax: undecidedConnectionsMaxDefault,
      http1IdleTimeoutMs: http1IdleTimeoutMsDefault,
      ...rest,
    });
    const bounds = [
      filled.prefaceTimeoutMs, filled.undecidedConnectionsMax, filled.http1IdleTimeoutMs,
    ];
    if (!bounds.every((bound) => Number.isSafeInteger(bound) && bound > 0)) {
      throw new SynodError(
        'SYNOD_INVALID_CONFIG', `client port: timeouts and bounds must be integers > 0: ${bounds}`,
      );
    }
    const port = new ClientPort(filled, tls);
    await new Promise<void>((resolve, reject) => {
      port.#listener.once('error', reject);
      port.#listener.listen(filled.port, filled.host, () => {
        port.#listener.off('error', reject);
        const address = port.#listener.address();
        assert(address !== null && typeof address === 'object', 'a TCP listener has an address');
        port.#port = address.port;
        resolve();
      });
    });
    return port;
  }

  /** The bound TCP port (still known after `close`). */
  get port(): number {
    return this.#port;
  }

  /** Whether this port serves TLS. */
  get secure(): boolean {
    return this.#tlsServer !== null;
  }

  /** The server of this port's HTTP/1.1 connections. */
  get http1Server(): HttpServer {
    return this.#options.http1;
  }

  /** Connections accepted but not yet handed over (TLS handshakes included). */
  get undecidedConnections(): number {
    return this.#undecided.size;
  }

  /**
   * Presents `material` in the handshakes that start from now on; connections already open keep
   * theirs. Only on a TLS port.
   */
  setTlsMaterial(material: TlsMaterial): void {
    assert(this.#tlsServer !== null, 'only a TLS client port takes a certificate');
    this.#tlsServer.setSecureContext(serverContextOptions(material));
  }

  /**
   * Stops accepting, and closes the connections not yet handed over and the HTTP/1.1 ones. HTTP/2
   * sessions belong to grpc-js: its shutdown closes them. Resolves once the port accepts no more,
   * without waiting for the gRPC sessions (net.Server's own close callback would, and grpc-js is
   * usually shut down after the ports).
   */
  close(): Promise<void> {
    if (this.#closing === null) {
      this.#listener.close(() => {});
      for (const socket of [...this.#undecided, ...this.#http1Sockets]) socket.destroy();
      this.#undecided.clear();
      this.#http1Sockets.clear();
      this.#handshaking.clear();
      // It never listened itself, so this only emits its 'close' (what it owns, e.g. the JSON
      // gateway's gRPC client, closes on that).
      this.#options.http1.close();
      this.#closing = Promise.resolve();
    }
    return this.#closing;
  }

  #createTlsServer(tls: ClientPortTls): TlsServer {
    const server = createTlsServer({
      ...serverContextOptions(tls.material),
      ALPNProtocols: [...clientPortAlpnProtocols],
      requestCert: tls.clientCertAuth,
      rejectUnauthorized: tls.clientCertAuth,
      // The undecided deadline bounds the handshake already; this is a second fence.
      handshakeTimeout: this.#options.prefaceTimeoutMs,
    });
    server.on('secureConnection', (socket: TLSSocket) => this.#onSecureConnection(socket));
    // A failed handshake (no certificate, an unknown CA, not TLS at all): the socket is destroyed
    // by tls.Server; its accepted socket's 'close' forgets it.
    server.on('tlsClientError', () => {});
    return server;
  }

  #onConnection(socket: Socket): void {
    if (this.#closing !== null || this.#undecided.size >= this.#options.undecidedConnectionsMax) {
      socket.destroy();
      return;
    }
    const undecided = this.#track(socket);
    if (this.#tlsServer === null) {
      this.#classify(undecided);
      return;
    }
    const key = connectionKeyOf(socket);
    this.#handshaking.set(key, undecided);
    // The TLS socket reports the connection's errors; this keeps the accepted socket's own from
    // going unhandled once it is no longer undecided.
    socket.on('error', () => socket.destroy());
    socket.once('close', () => {
      if (this.#handshaking.get(key) === undecided) this.#handshaking.delete(key);
    });
    this.#tlsServer.emit('connection', socket);
  }

  /** Counts `socket` as undecided until `forget`, destroying it at `prefaceTimeoutMs`. */
  #track(socket: Socket): Undecided {
    this.#undecided.add(socket);
    const onError = (): void => {
      socket.destroy();
    };
    const deadline = setTimeout(() => socket.destroy(), this.#options.prefaceTimeoutMs);
    const forget = (): void => {
      clearTimeout(deadline);
      socket.off('error', onError);
      socket.off('close', forget);
      this.#undecided.delete(socket);
    };
    socket.on('error', onError);
    socket.on('close', forget);
    return { socket, forget };
  }

  /**
   * A TLS handshake completed. The TLS socket wraps the accepted one, which tls.Server does not
   * name, so it is found again by the connection's addresses (unique among open connections).
   */
  #onSecureConnection(socket: TLSSocket): void {
    const key = connectionKeyOf(socket);
    const accepted = this.#handshaking.get(key);
    this.#handshaking.delete(key);
    if (accepted === undefined || this.#closing !== null) {
      socket.destroy();
      return;
    }
    accepted.forget();
    recordClientCertificate(socket);
    if (socket.alpnProtocol === 'h2') {
      this.#handOver(socket, null, 'http2');
    } else if (socket.alpnProtocol === 'http/1.1') {
      this.#handOver(socket, null, 'http1');
    } else if (this.#undecided.size >= this.#options.undecidedConnectionsMax) {
      socket.destroy();
    } else {
      this.#classify(this.#track(socket));
    }
  }

  /** Reads the first bytes of an undecided connection until they tell its protocol. */
  #classify(undecided: Undecided): void {
    const { socket } = undecided;
    const received: Buffer[] = [];
    let receivedBytes = 0;
    const onData = (chunk: Buffer): void => {
      received.push(chunk);
      receivedBytes += chunk.length;
      const head = received.length === 1 ? chunk : Buffer.concat(received, receivedBytes);
      const verdict = classifyPreface(head);
      if (verdict === 'undecided') {
        assert(receivedBytes < http2Preface.length, 'undecided bytes stay below the preface');
        return;
      }
      socket.off('data', onData);
      undecided.forget();
      this.#handOver(socket, head, verdict);
    };
    socket.on('data', onData);
    socket.once('close', () => socket.off('data', onData));
  }

  #handOver(socket: Socket, head: Buffer | null, verdict: 'http1' | 'http2'): void {
    if (head !== null) {
      // Paused and with no 'data' listener, the unshifted bytes wait in the stream's buffer for
      // the receiver instead of being emitted again at once.
      socket.pause();
      socket.unshift(head);
    }
    if (verdict === 'http2') {
      const tlsSocket = socket as Partial<TLSSocket>;
      // Node's HTTP/2 server sends a TLS socket that negotiated no ALPN to its HTTP/1.1 fallback;
      // this one showed the HTTP/2 preface, so it is HTTP/2 as surely as if ALPN had said h2.
      if (tlsSocket.alpnProtocol === false) tlsSocket.alpnProtocol = 'h2';
      this.#options.http2.injectConnection(socket);
    } else {
      this.#http1Sockets.add(socket);
      socket.once('close', () => this.#http1Sockets.delete(socket));
      socket.setTimeout(this.#options.http1IdleTimeoutMs, () => socket.destroy());
      this.#options.http1.emit('connection', socket);
      socket.resume();
    }
  }
}

/** The addresses of both ends: one open TCP connection's, and its TLS socket's. */
function connectionKeyOf(socket: Socket): string {
  return `${socket.remoteAddress}|${socket.remotePort}|${socket.localAddress}|${socket.localPort}`;
}
