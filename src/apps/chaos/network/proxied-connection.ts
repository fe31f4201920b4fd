/**
 * One TCP connection through a member's proxy: the socket a dialer opened to the proxy (`client`)
 * and the proxy's own connection to the member's real peer listener (`upstream`). Bytes flow both
 * ways, as etcd's rafthttp streams do, so each direction has its own pump: `outbound` carries
 * dialer → target, `inbound` carries target → dialer.
 */

import type { Socket } from 'node:net';
import { assert } from '../../../base/index.js';
import { DirectionPump, type DirectionBounds } from './direction-pump.js';

/** Who dialed: a member's name, `unknown` (no member process owns the socket), or not yet known. */
export type Dialer =
  | { readonly kind: 'identifying' }
  | { readonly kind: 'member'; readonly name: string }
  | { readonly kind: 'unknown' };

/** A dialer once identification has finished. */
export type IdentifiedDialer = Exclude<Dialer, { readonly kind: 'identifying' }>;

/** The link rules a connection obeys, read from the network when they change. */
export interface LinkRules {
  isCut(from: string, to: string): boolean;
}

/** What a connection needs from the network that accepted it. */
export interface ProxiedConnectionOptions {
  /** The member whose proxy accepted the connection. */
  readonly target: string;
  readonly client: Socket;
  readonly upstream: Socket;
  readonly bounds: DirectionBounds;
  readonly nowMs: () => number;
  readonly drawDelayMs: () => number;
  readonly onForwarded: (bytes: number) => void;
  /** Called once, when both sockets are gone. */
  readonly onClosed: (connection: ProxiedConnection) => void;
}

/** A proxied connection; it closes itself when either side fails or both sides finish. */
export class ProxiedConnection {
  readonly target: string;
  readonly #options: ProxiedConnectionOptions;
  readonly #outbound: DirectionPump;
  readonly #inbound: DirectionPump;
  #dialer: Dialer = { kind: 'identifying' };
  /** True once a cut held either direction: heal must reset the connection. */
  #touchedByCut = false;
  #closedSockets = 0;
  #closed = false;

  constructor(options: ProxiedConnectionOptions) {
    this.target = options.target;
    this.#options = options;
    const { client, upstream, bounds, nowMs, drawDelayMs, onForwarded } = options;
    const onEndHeld = (): void => this.reset();
    const common = { bounds, nowMs, drawDelayMs, onForwarded, onEndHeld };
    this.#outbound = new DirectionPump({ ...common, source: client, destination: upstream });
    this.#inbound = new DirectionPump({ ...common, source: upstream, destination: client });
    for (const socket of [client, upstream]) {
      socket.setNoDelay(true); // Nagle's delay would blur the latency the harness injects.
      socket.on('error', () => this.reset()); // A failed side resets the other, as a router would.
      socket.on('close', () => this.#onSocketClosed());
    }
  }

  /** The dialing member, once identified. */
  get dialer(): Dialer {
    return this.#dialer;
  }

  /** `dialer→target`, with `?` for an unknown dialer and `…` while identifying. */
  describe(): string {
    const dialer = this.#dialer;
    const from = dialer.kind === 'member' ? dialer.name : dialer.kind === 'unknown' ? '?' : '…';
    return `${from}→${this.target}`;
  }

  /** True when a cut held either direction since the connection opened. */
  get touchedByCut(): boolean {
    return this.#touchedByCut;
  }

  /** Bytes held by cuts in both directions. */
  get stalledBytes(): number {
    return this.#outbound.stalledBytes + this.#inbound.stalledBytes;
  }

  /** Records who dialed and releases the bytes held while identifying (unless a cut holds them). */
  identify(dialer: IdentifiedDialer, rules: LinkRules): void {
    assert(this.#dialer.kind === 'identifying', 'a connection is identified once');
    if (this.#closed) return;
    this.#dialer = dialer;
    const { outboundCut, inboundCut } = this.#cuts(rules);
    const latencyApplies = dialer.kind === 'member';
    this.#outbound.identified({ latencyApplies, cut: outboundCut });
    this.#inbound.identified({ latencyApplies, cut: inboundCut });
  }

  /** Holds or releases each direction by the current cuts. Unknown dialers are never cut. */
  applyRules(rules: LinkRules): void {
    if (this.#closed || this.#dialer.kind === 'identifying') return;
    const { outboundCut, inboundCut } = this.#cuts(rules);
    this.#outbound.setCut(outboundCut);
    this.#inbound.setCut(inboundCut);
  }

  /** Which directions `rules` cut; records that a cut touched the connection. */
  #cuts(rules: LinkRules): { outboundCut: boolean; inboundCut: boolean } {
    if (this.#dialer.kind !== 'member') return { outboundCut: false, inboundCut: false };
    const dialer = this.#dialer.name;
    const outboundCut = rules.isCut(dialer, this.target);
    const inboundCut = rules.isCut(this.target, dialer);
    if (outboundCut || inboundCut) this.#touchedByCut = true;
    return { outboundCut, inboundCut };
  }

  /** Sends RST on both sockets and discards queued bytes. Idempotent. */
  reset(): void {
    if (this.#closed) return;
    this.#close();
    for (const socket of [this.#options.client, this.#options.upstream]) {
      if (socket.destroyed) continue;
      // A connecting socket has no TCP handle yet to reset; destroying it aborts the connect.
      if (socket.connecting) socket.destroy();
      else socket.resetAndDestroy();
    }
  }

  #onSocketClosed(): void {
    this.#closedSockets += 1;
    assert(this.#closedSockets <= 2, 'a socket closed twice');
    // One side finishing cleanly leaves the other to finish its half-close on its own.
    if (this.#closedSockets === 2) this.#close();
  }

  #close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#outbound.stop();
    this.#inbound.stop();
    this.#options.onClosed(this);
  }
}
