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
 */

import { createServer, type Server as NetServer, type Socket } from 'node:net';
import type { Server as HttpServer } from 'node:http';
import type { Duplex } from 'node:stream';
import { assert, SynodError } from '../../base/index.js';
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
}

/** One listening client port. */
export class ClientPort {
  readonly #listener: NetServer;
  readonly #options: Required<ClientPortOptions>;
  readonly #undecided = new Set<Socket>();
  /**
   * HTTP/1.1 connections handed over. An http.Server that does not listen itself tracks none
   * (Node starts its tracking on 'listening'), so its closeAllConnections would miss them.
   */
  readonly #http1Sockets = new Set<Socket>();
  #closing: Promise<void> | null = null;
  #port = 0;

  private constructor(options: Required<ClientPortOptions>) {
    this.#options = options;
    this.#listener = createServer((socket) => this.#onConnection(socket));
  }

  /** Binds `options.host:options.port` and resolves once it listens. */
  static async listen(options: ClientPortOptions): Promise<ClientPort> {
    const filled: Required<ClientPortOptions> = Object.freeze({
      prefaceTimeoutMs: prefaceTimeoutMsDefault,
      undecidedConnectionsMax: undecidedConnectionsMaxDefault,
      http1IdleTimeoutMs: http1IdleTimeoutMsDefault,
      ...options,
    });
    const bounds = [
      filled.prefaceTimeoutMs, filled.undecidedConnectionsMax, filled.http1IdleTimeoutMs,
    ];
    if (!bounds.every((bound) => Number.isSafeInteger(bound) && bound > 0)) {
      throw new SynodError(
        'SYNOD_INVALID_CONFIG', `client port: timeouts and bounds must be integers > 0: ${bounds}`,
      );
    }
    const port = new ClientPort(filled);
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

  /** The server of this port's HTTP/1.1 connections. */
  get http1Server(): HttpServer {
    return this.#options.http1;
  }

  /** Connections accepted but not yet handed over. */
  get undecidedConnections(): number {
    return this.#undecided.size;
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
      // It never listened itself, so this only emits its 'close' (what it owns, e.g. the JSON
      // gateway's gRPC client, closes on that).
      this.#options.http1.close();
      this.#closing = Promise.resolve();
    }
    return this.#closing;
  }

  #onConnection(socket: Socket): void {
    if (this.#closing !== null || this.#undecided.size >= this.#options.undecidedConnectionsMax) {
      socket.destroy();
      return;
    }
    this.#undecided.add(socket);
    const received: Buffer[] = [];
    let receivedBytes = 0;
    const onError = (): void => {
      socket.destroy();
    };
    const deadline = setTimeout(() => socket.destroy(), this.#options.prefaceTimeoutMs);
    const forget = (): void => {
      clearTimeout(deadline);
      socket.off('data', onData);
      socket.off('error', onError);
      socket.off('close', forget);
      this.#undecided.delete(socket);
    };
    const onData = (chunk: Buffer): void => {
      received.push(chunk);
      receivedBytes += chunk.length;
      const head = received.length === 1 ? chunk : Buffer.concat(received, receivedBytes);
      const verdict = classifyPreface(head);
      if (verdict === 'undecided') {
        assert(receivedBytes < http2Preface.length, 'undecided bytes stay below the preface');
        return;
      }
      forget();
      this.#handOver(socket, head, verdict);
    };
    socket.on('data', onData);
    socket.on('error', onError);
    socket.on('close', forget);
  }

  #handOver(socket: Socket, head: Buffer, verdict: 'http1' | 'http2'): void {
    // Paused and with no 'data' listener, the unshifted bytes wait in the stream's buffer for the
    // receiver instead of being emitted again at once.
    socket.pause();
    socket.unshift(head);
    if (verdict === 'http2') {
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
