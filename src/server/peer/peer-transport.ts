/**
 * The peer transport: Raft messages and forwarded requests between the members of a cluster, over
 * TCP on `--listen-peer-urls`. Framing is frame.ts; the first frame of every connection is a hello
 * (hello.ts) naming the cluster and both members.
 *
 * - Each member sends on its own outbound link per peer (peer-link.ts) and receives on the
 *   connections peers opened to it, as etcd's stream transport does: two one-way streams per pair.
 *   One `send` call writes one frame per peer, however many messages it carries (batching).
 * - A `snap` message travels on a connection of its own, so a large snapshot never delays the
 *   heartbeats behind it; the receiver acknowledges once it has handed the snapshot to Raft, and
 *   only then is the snapshot reported finished (a lost connection reports it failed).
 * - `request` forwards a call to a peer and resolves with its answer, which comes back on the same
 *   connection. Requests in flight are bounded and time out.
 *
 * A peer with an https:// URL is dialed over TLS and an https:// listener serves TLS
 * (peer-tls.ts: --peer-cert-file, --peer-trusted-ca-file, --peer-client-cert-auth); over plain
 * TCP the hello is the only check, so keep such peer ports on a private network.
 */

import type { Server, Socket } from 'node:net';
import type { Logger } from 'pino';
import { assert, isSynodError, SynodError } from '../../base/index.js';
import type { Message, NodeId } from '../../raft/index.js';
import { snapshotDataBytesMax } from '../../storage/index.js';
import { encodeFrame, frameKinds } from './frame.js';
import { acceptConnection, type InboundHandlers } from './inbound.js';
import { encodeMessages } from './message-codec.js';
import { PeerLink, type PeerAddress, type PeerLinkEvents, type PeerLinkSettings } from './peer-link.js';
import { createPeerServer, type PeerServer, type PeerTls } from './peer-tls.js';
import { encodeRequest, errorOfResponse, type PeerResponse } from './rpc-codec.js';
import { sendSnapshot } from './snapshot-sender.js';

export type { PeerAddress } from './peer-link.js';
export type { PeerTls } from './peer-tls.js';

/** Per-peer bound on bytes queued for the socket (etcd's stream buffer is comparable). */
export const peerQueueBytesMaxDefault = 64 * 1024 * 1024;
/** The largest frame accepted: one snapshot plus its message envelope. */
export const peerFrameBytesMax = snapshotDataBytesMax + 1024 * 1024;
/** Inbound connections accepted at once (several per peer across reconnects and snapshots). */
export const inboundConnectionsMax = 256;
/** Forwarded requests in flight from this member. */
export const peerRequestsInflightMax = 4096;
/** Default time a forwarded request may take. */
export const peerRequestTimeoutMsDefault = 5_000;

/** Serves a forwarded request on this member; throws a SynodError to answer with an error. */
export type PeerRequestHandler = (payload: Uint8Array, from: NodeId) => Promise<Uint8Array>;

/** Options of `PeerTransport`. */
export interface PeerTransportOptions {
  readonly selfId: NodeId;
  readonly clusterId: bigint;
  /** Every other member's peer address. */
  readonly peers: ReadonlyMap<NodeId, PeerAddress>;
  /** This member's advertised peer URL, sent to peers in each hello. */
  readonly selfPeerUrl?: string;
  /** Messages received from peers, already checked to be addressed to this member. */
  readonly onMessages: (messages: Message[]) => void;
  /** A peer could not be reached (Raft's ReportUnreachable). */
  readonly onUnreachable: (peer: NodeId) => void;
  /** The outcome of a snapshot sent to a peer (Raft's ReportSnapshot). */
  readonly onSnapshotStatus: (peer: NodeId, outcome: 'finish' | 'failure') => void;
  readonly logger: Logger;
  readonly queueBytesMax?: number;
  readonly requestTimeoutMs?: number;
  /** This member's peer certificate: needed to dial https:// peers and to listen on one. */
  readonly tls?: PeerTls | null;
}

/** Options of `PeerTransport.listen`. */
export interface PeerListenOptions {
  /** Serve TLS (an https:// --listen-peer-urls); needs `PeerTransportOptions.tls`. */
  readonly secure?: boolean;
}

interface PendingRequest {
  readonly peer: NodeId;
  readonly resolve: (payload: Uint8Array) => void;
  readonly reject: (error: SynodError) => void;
  readonly timer: NodeJS.Timeout;
}

/** The transport of one member. */
export class PeerTransport {
  readonly #options: PeerTransportOptions;
  readonly #links = new Map<NodeId, PeerLink>();
  readonly #addresses = new Map<NodeId, PeerAddress>();
  readonly #linkSettings: PeerLinkSettings;
  readonly #linkEvents: PeerLinkEvents;
  readonly #handlers = new Map<string, PeerRequestHandler>();
  readonly #pending = new Map<number, PendingRequest>();
  readonly #inbound = new Set<Socket>();
  /** Every accepted TCP connection, TLS handshakes included. */
  readonly #accepted = new Set<Socket>();
  readonly #snapshotSockets = new Set<Socket>();
  readonly #requestTimeoutMs: number;
  #server: PeerServer | null = null;
  #requestIdNext = 1;
  #closed = false;

  constructor(options: PeerTransportOptions) {
    assert(!options.peers.has(options.selfId), 'a member is not its own peer');
    this.#options = options;
    this.#requestTimeoutMs = options.requestTimeoutMs ?? peerRequestTimeoutMsDefault;
    const settings = {
      selfId: options.selfId,
      clusterId: options.clusterId,
      ...(options.selfPeerUrl === undefined ? {} : { selfPeerUrl: options.selfPeerUrl }),
      queueBytesMax: options.queueBytesMax ?? peerQueueBytesMaxDefault,
      reconnectDelayMsMin: 50,
      reconnectDelayMsMax: 1_000,
      responseFrameBytesMax: 16 * 1024 * 1024,
      logger: options.logger,
      tls: options.tls ?? null,
    };
    this.#linkSettings = settings;
    this.#linkEvents = {
      onUnreachable: (peer: NodeId) => options.onUnreachable(peer),
      onDisconnect: (peer: NodeId) => this.#failRequests(peer),
      onResponse: (peer: NodeId, response: PeerResponse) => this.#onResponse(peer, response),
    };
    this.setPeers(options.peers);
  }

  /**
   * Makes `peers` the members this transport talks to (runtime membership): opens links to new
   * ones, closes links to members no longer listed, and reopens a link whose address changed.
   */
  setPeers(peers: ReadonlyMap<NodeId, PeerAddress>): void {
    assert(!peers.has(this.#options.selfId), 'a member is not its own peer');
    if (this.#closed) return;
    for (const [peer, link] of this.#links) {
      const address = peers.get(peer);
      if (address !== undefined && sameAddress(address, this.#addresses.get(peer)!)) continue;
      link.close();
      this.#links.delete(peer);
      this.#addresses.delete(peer);
      this.#failRequests(peer);
    }
    for (const [peer, address] of peers) {
      if (this.#links.has(peer)) continue;
      this.#links.set(peer, new PeerLink(peer, address, this.#linkSettings, this.#linkEvents));
      this.#addresses.set(peer, address);
    }
  }

  /**
   * While true, inbound connections from members not (yet) in the peer set are accepted if they
   * name this cluster: a member that has just joined learns the others' addresses only by
   * replaying the log the leader sends it.
   */
  acceptUnknownPeers = false;

  /** Registers the handler of forwarded requests named `method`. */
  handle(method: string, handler: PeerRequestHandler): void {
    assert(!this.#handlers.has(method), `peer method ${method} registered twice`);
    this.#handlers.set(method, handler);
  }

  /** Listens for peers on `host:port` (0 picks a port), TLS if `secure`; resolves with the port. */
  async listen(host: string, port: number, options: PeerListenOptions = {}): Promise<number> {
    assert(this.#server === null, 'PeerTransport listens once');
    const handlers: InboundHandlers = {
      selfId: this.#options.selfId,
      clusterId: this.#options.clusterId,
      isPeer: (id) => this.#links.has(id) || this.acceptUnknownPeers,
      frameBytesMax: peerFrameBytesMax,
      logger: this.#options.logger,
      onMessages: (messages) => this.#options.onMessages(messages),
      onRequest: (method, payload, from) => this.#serve(method, payload, from),
    };
    const peerServer = createPeerServer({
      secure: options.secure ?? false,
      tls: this.#options.tls ?? null,
      logger: this.#options.logger,
      onConnection: (socket) => {
        if (this.#closed || this.#inbound.size >= inboundConnectionsMax) {
          socket.destroy();
          return;
        }
        this.#inbound.add(socket);
        socket.once('close', () => this.#inbound.delete(socket));
        acceptConnection(socket, handlers);
      },
    });
    const server: Server = peerServer.server;
    // Connections still in their TLS handshake count too (the inbound set sees only secure ones),
    // and are closed with the transport.
    server.maxConnections = inboundConnectionsMax;
    server.on('connection', (socket: Socket) => {
      this.#accepted.add(socket);
      socket.once('close', () => this.#accepted.delete(socket));
    });
    this.#server = peerServer;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    const address = server.address();
    assert(address !== null && typeof address === 'object', 'a TCP server has an address');
    return address.port;
  }

  /** Sends `messages`, one frame per peer; snapshots each on a connection of their own. */
  send(messages: readonly Message[]): void {
    if (this.#closed) return;
    const byPeer = new Map<NodeId, Message[]>();
    for (const message of messages) {
      if (message.type === 'snap') {
        this.#sendSnapshot(message);
        continue;
      }
      const list = byPeer.get(message.to);
      if (list === undefined) byPeer.set(message.to, [message]);
      else list.push(message);
    }
    for (const [peer, list] of byPeer) {
      const link = this.#links.get(peer);
      if (link === undefined) continue; // Not (or no longer) a member's address we know.
      link.send(encodeFrame(frameKinds.raft, encodeMessages(list)));
    }
  }

  /** Forwards `method(payload)` to `peer`; rejects with the peer's error or SYNOD_PEER_UNAVAILABLE. */
  request(peer: NodeId, method: string, payload: Uint8Array): Promise<Uint8Array> {
    const link = this.#links.get(peer);
    if (this.#closed || link === undefined) return Promise.reject(unavailable(`member ${peer} is not a peer`));
    if (this.#pending.size >= peerRequestsInflightMax) {
      return Promise.reject(unavailable('too many requests in flight to peers'));
    }
    const id = this.#requestIdNext;
    this.#requestIdNext = id >= 0xffff_fffe ? 1 : id + 1;
    return new Promise<Uint8Array>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(id);
        reject(unavailable(`request ${method} to member ${peer} timed out`));
      }, this.#requestTimeoutMs);
      this.#pending.set(id, { peer, resolve, reject, timer });
      const frame = encodeFrame(frameKinds.request, encodeRequest({ id, method, payload }));
      if (!link.send(frame)) this.#settle(id, unavailable(`member ${peer} is unreachable`));
    });
  }

  /** Whether the outbound link to `peer` is connected. */
  isConnected(peer: NodeId): boolean {
    return this.#links.get(peer)?.connected ?? false;
  }

  /** Closes every connection and the listener; fails requests in flight. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const link of this.#links.values()) link.close();
    const sockets = [...this.#inbound, ...this.#accepted, ...this.#snapshotSockets];
    for (const socket of sockets) socket.destroy();
    for (const id of [...this.#pending.keys()]) this.#settle(id, unavailable('transport closed'));
    const peerServer = this.#server;
    if (peerServer === null) return;
    peerServer.dispose();
    await new Promise<void>((resolve) => peerServer.server.close(() => resolve()));
  }

  #sendSnapshot(message: Message): void {
    const address = this.#addresses.get(message.to);
    if (address === undefined) return;
    const socket = sendSnapshot({
      address, message, selfId: this.#options.selfId, clusterId: this.#options.clusterId,
      onDone: (outcome) => {
        this.#snapshotSockets.delete(socket);
        if (!this.#closed) this.#options.onSnapshotStatus(message.to, outcome);
      },
      logger: this.#options.logger,
      tls: this.#options.tls ?? null,
    });
    this.#snapshotSockets.add(socket);
  }

  async #serve(method: string, payload: Uint8Array, from: NodeId): Promise<Uint8Array> {
    const handler = this.#handlers.get(method);
    if (handler === undefined) throw unavailable(`no handler for peer method ${method}`);
    return handler(payload, from);
  }

  #onResponse(peer: NodeId, response: PeerResponse): void {
    const pending = this.#pending.get(response.id);
    if (pending === undefined || pending.peer !== peer) return; // Timed out meanwhile.
    if (response.ok) {
      this.#pending.delete(response.id);
      clearTimeout(pending.timer);
      pending.resolve(response.payload);
    } else {
      this.#settle(response.id, errorOfResponse(response));
    }
  }

  #failRequests(peer: NodeId): void {
    for (const [id, pending] of this.#pending) {
      if (pending.peer === peer) this.#settle(id, unavailable(`connection to member ${peer} lost`));
    }
  }

  #settle(id: number, error: SynodError): void {
    const pending = this.#pending.get(id);
    if (pending === undefined) return;
    this.#pending.delete(id);
    clearTimeout(pending.timer);
    pending.reject(error);
  }
}

function sameAddress(a: PeerAddress, b: PeerAddress): boolean {
  return a.host === b.host && a.port === b.port && (a.tls ?? false) === (b.tls ?? false);
}

function unavailable(detail: string): SynodError {
  return new SynodError('SYNOD_PEER_UNAVAILABLE', detail);
}

/** Whether `error` is a peer transport failure (as opposed to the peer's own answer). */
export function isPeerUnavailable(error: unknown): boolean {
  return isSynodError(error, 'SYNOD_PEER_UNAVAILABLE');
}
