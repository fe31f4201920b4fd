/**
 * The outbound connection to one peer: this member's Raft messages and forwarded requests go out
 * on it, and the answers to those requests come back on it. Raft tolerates loss, so the link is
 * best effort and never blocks the caller:
 *
 * - It connects lazily, on the first frame to send, and queues frames while connecting.
 * - After a failure it waits out a backoff (doubling from `reconnectDelayMsMin` to
 *   `reconnectDelayMsMax`) during which frames are dropped and the peer reported unreachable; the
 *   next frame after the backoff reconnects. An idle dead peer costs nothing.
 * - What the socket has not yet written is bounded by `queueBytesMax`; beyond it frames are
 *   dropped and the peer reported unreachable, which makes the leader's flow control probe
 *   slowly instead of piling up memory for a peer that cannot keep up.
 */

import type { Socket } from 'node:net';
import type { Logger } from 'pino';
import { assert, isSynodError } from '../../base/index.js';
import type { NodeId } from '../../raft/index.js';
import { encodeFrame, frameKinds, FrameDecoder } from './frame.js';
import { encodeHello } from './hello.js';
import { connectedEventOf, dialPeer, type PeerTls } from './peer-tls.js';
import { decodeResponse, type PeerResponse } from './rpc-codec.js';

/** A peer's listening address. */
export interface PeerAddress {
  readonly host: string;
  readonly port: number;
  /** Whether its peer URL is https://: it is dialed over TLS (peer-tls.ts). */
  readonly tls?: boolean;
}

/** Settings shared by every link of a transport. */
export interface PeerLinkSettings {
  readonly selfId: NodeId;
  readonly clusterId: bigint;
  /** This member's advertised peer URL, sent in every hello (see hello.ts). */
  readonly selfPeerUrl?: string;
  readonly queueBytesMax: number;
  readonly reconnectDelayMsMin: number;
  readonly reconnectDelayMsMax: number;
  /** Bound on answer frames (small; requests' answers are small). */
  readonly responseFrameBytesMax: number;
  readonly logger: Logger;
  /** This member's peer certificate, for https:// peers; null without one. */
  readonly tls: PeerTls | null;
}

/** What a link reports back to its transport. */
export interface PeerLinkEvents {
  /** The peer is unreachable or too slow: a frame was dropped. */
  onUnreachable(peer: NodeId): void;
  /** The connection was lost; requests waiting on it must fail. */
  onDisconnect(peer: NodeId): void;
  onResponse(peer: NodeId, response: PeerResponse): void;
}

type LinkState =
  | { readonly kind: 'idle' }
  | { readonly kind: 'connecting'; readonly socket: Socket; readonly queue: Uint8Array[] }
  | { readonly kind: 'connected'; readonly socket: Socket }
  | { readonly kind: 'backoff'; readonly timer: NodeJS.Timeout }
  | { readonly kind: 'closed' };

/** The link to one peer. */
export class PeerLink {
  readonly #peer: NodeId;
  readonly #address: PeerAddress;
  readonly #settings: PeerLinkSettings;
  readonly #events: PeerLinkEvents;
  #state: LinkState = { kind: 'idle' };
  #queuedBytes = 0;
  #reconnectDelayMs: number;

  constructor(peer: NodeId, address: PeerAddress, settings: PeerLinkSettings, events: PeerLinkEvents) {
    this.#peer = peer;
    this.#address = address;
    this.#settings = settings;
    this.#events = events;
    this.#reconnectDelayMs = settings.reconnectDelayMsMin;
  }

  /** Whether a connection is established (for status and tests). */
  get connected(): boolean {
    return this.#state.kind === 'connected';
  }

  /** Sends one frame if the link can take it; otherwise drops it and reports the peer. */
  send(frame: Uint8Array): boolean {
    const state = this.#state;
    switch (state.kind) {
      case 'closed':
        return false;
      case 'backoff':
        this.#events.onUnreachable(this.#peer);
        return false;
      case 'idle':
        this.#connect([frame]);
        return true;
      case 'connecting':
        if (!this.#admit(frame)) return false;
        state.queue.push(frame);
        return true;
      case 'connected':
        if (state.socket.writableLength + frame.length > this.#settings.queueBytesMax) {
          this.#events.onUnreachable(this.#peer);
          return false;
        }
        state.socket.write(frame);
        return true;
    }
  }

  /** Closes the link for good. */
  close(): void {
    const state = this.#state;
    this.#state = { kind: 'closed' };
    if (state.kind === 'backoff') clearTimeout(state.timer);
    if (state.kind === 'connecting' || state.kind === 'connected') state.socket.destroy();
  }

  #admit(frame: Uint8Array): boolean {
    if (this.#queuedBytes + frame.length > this.#settings.queueBytesMax) {
      this.#events.onUnreachable(this.#peer);
      return false;
    }
    this.#queuedBytes += frame.length;
    return true;
  }

  #connect(initial: Uint8Array[]): void {
    const socket = dialPeer(this.#address, this.#settings.tls);
    socket.setNoDelay(true);
    socket.setKeepAlive(true, 5_000);
    this.#queuedBytes = 0;
    const queue: Uint8Array[] = [];
    for (const frame of initial) if (this.#admit(frame)) queue.push(frame);
    this.#state = { kind: 'connecting', socket, queue };
    const decoder = new FrameDecoder(this.#settings.responseFrameBytesMax);
    // Over TLS, only once the peer's certificate is verified.
    socket.once(connectedEventOf(socket), () => this.#onConnect(socket));
    socket.on('data', (chunk: Buffer) => this.#onData(socket, decoder, chunk));
    socket.on('error', (error) => this.#onFailure(socket, error));
    socket.on('close', () => this.#onFailure(socket, null));
  }

  #onConnect(socket: Socket): void {
    const state = this.#state;
    if (state.kind !== 'connecting' || state.socket !== socket) return;
    const hello = encodeHello({
      clusterId: this.#settings.clusterId, from: this.#settings.selfId, to: this.#peer,
      purpose: 'messages',
      ...(this.#settings.selfPeerUrl === undefined ? {} : { fromPeerUrl: this.#settings.selfPeerUrl }),
    });
    socket.cork();
    socket.write(encodeFrame(frameKinds.hello, hello));
    for (const frame of state.queue) socket.write(frame);
    socket.uncork();
    this.#queuedBytes = 0;
    this.#state = { kind: 'connected', socket };
    this.#reconnectDelayMs = this.#settings.reconnectDelayMsMin;
    this.#settings.logger.info({ peer: this.#peer }, 'peer connected');
  }

  #onData(socket: Socket, decoder: FrameDecoder, chunk: Buffer): void {
    try {
      decoder.push(chunk);
      for (const frame of decoder.drain()) {
        if (frame.kind !== frameKinds.response) {
          this.#settings.logger.warn({ peer: this.#peer, kind: frame.kind }, 'unexpected frame');
          socket.destroy();
          return;
        }
        this.#events.onResponse(this.#peer, decodeResponse(frame.payload));
      }
    } catch (error) {
      if (!isSynodError(error, 'SYNOD_PEER_PROTOCOL')) throw error;
      this.#settings.logger.warn({ peer: this.#peer, err: error.message }, 'peer protocol error');
      socket.destroy();
    }
  }

  #onFailure(socket: Socket, error: Error | null): void {
    const state = this.#state;
    if ((state.kind !== 'connecting' && state.kind !== 'connected') || state.socket !== socket) {
      return;
    }
    socket.destroy();
    if (state.kind === 'connected' || error !== null) {
      this.#settings.logger.debug({ peer: this.#peer, err: error?.message }, 'peer link down');
    }
    this.#queuedBytes = 0;
    const delayMs = this.#reconnectDelayMs;
    this.#reconnectDelayMs = Math.min(delayMs * 2, this.#settings.reconnectDelayMsMax);
    const timer = setTimeout(() => {
      if (this.#state.kind === 'backoff') this.#state = { kind: 'idle' };
    }, delayMs);
    timer.unref();
    this.#state = { kind: 'backoff', timer };
    assert(this.#state.kind === 'backoff', 'a failed link backs off');
    this.#events.onUnreachable(this.#peer);
    this.#events.onDisconnect(this.#peer);
  }
}
