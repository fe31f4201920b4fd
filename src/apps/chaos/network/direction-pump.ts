/**
 * One direction of a proxied connection: reads chunks from a source socket and writes them, in
 * order, to a destination socket. Bytes wait in a bounded queue while the direction is held (its
 * dialer is being identified, or the link is cut) and until each chunk's latency has passed. A full
 * queue pauses the source, so TCP back-pressure holds further bytes in the kernel: nothing is ever
 * dropped mid-stream.
 */

import type { Socket } from 'node:net';
import { assert } from '../../../base/index.js';

/** The bounds of one direction's queue. */
export interface DirectionBounds {
  /** Bytes queued before the source is paused. */
  readonly queueBytesMax: number;
  /** Chunks queued before the source is paused (many tiny chunks cost more than their bytes). */
  readonly queueChunksMax: number;
}

/** What a pump needs from its connection. */
export interface DirectionPumpOptions {
  readonly source: Socket;
  readonly destination: Socket;
  readonly bounds: DirectionBounds;
  /** A monotonic clock in milliseconds. */
  readonly nowMs: () => number;
  /** The latency to give a chunk read now, drawn per chunk; 0 when there is none. */
  readonly drawDelayMs: () => number;
  /** Called with the size of each chunk written to the destination. */
  readonly onForwarded: (bytes: number) => void;
  /** Called once if the source ends (FIN) while a cut holds its end back. */
  readonly onEndHeld: () => void;
}

interface QueuedChunk {
  readonly bytes: Buffer;
  readonly receivedAtMs: number;
  readonly delayMs: number;
}

/** Moves bytes one way, holding them while identifying or cut and delaying them for latency. */
export class DirectionPump {
  readonly #options: DirectionPumpOptions;
  /** FIFO: delivery stops at a head that is not yet due, which preserves byte order. */
  #queue: QueuedChunk[] = [];
  /** Invariant: the sum of `#queue[i].bytes.length`. */
  #queuedBytes = 0;
  #identifying = true;
  #cut = false;
  /** Whether latency applies: only to links between two members. */
  #latencyApplies = false;
  #awaitingDrain = false;
  #pausedForRoom = false;
  #sourceEnded = false;
  #endForwarded = false;
  #stopped = false;
  #timer: NodeJS.Timeout | null = null;

  constructor(options: DirectionPumpOptions) {
    assert(options.bounds.queueBytesMax > 0, 'queueBytesMax must be positive');
    assert(options.bounds.queueChunksMax > 0, 'queueChunksMax must be positive');
    this.#options = options;
    options.source.on('data', (chunk: Buffer) => this.#onData(chunk));
    options.source.on('end', () => this.#onEnd());
  }

  /** Bytes held because the direction is cut; 0 while it flows. */
  get stalledBytes(): number {
    return this.#cut ? this.#queuedBytes : 0;
  }

  /**
   * Ends the identification hold. `latencyApplies` is true for member-to-member links; `cut` says
   * whether a cut already holds the direction, so no byte slips through between the two holds.
   */
  identified(state: { readonly latencyApplies: boolean; readonly cut: boolean }): void {
    assert(this.#identifying, 'a direction is identified once');
    this.#identifying = false;
    this.#latencyApplies = state.latencyApplies;
    this.#cut = state.cut;
    this.#noticeHeldEnd();
    this.#flush();
  }

  /** Holds (true) or releases (false) the direction's bytes. */
  setCut(cut: boolean): void {
    assert(!this.#identifying || !cut, 'only an identified direction can be cut');
    this.#cut = cut;
    this.#noticeHeldEnd();
    this.#flush();
  }

  /** Stops all work: the connection is closing and queued bytes are discarded with it. */
  stop(): void {
    this.#stopped = true;
    this.#clearTimer();
    this.#queue = [];
    this.#queuedBytes = 0;
  }

  #onData(chunk: Buffer): void {
    if (this.#stopped) return;
    assert(!this.#sourceEnded, 'data after end');
    this.#queue.push({
      bytes: chunk,
      receivedAtMs: this.#options.nowMs(),
      delayMs: this.#options.drawDelayMs(),
    });
    this.#queuedBytes += chunk.length;
    const { queueBytesMax, queueChunksMax } = this.#options.bounds;
    if (this.#queuedBytes >= queueBytesMax || this.#queue.length >= queueChunksMax) {
      this.#options.source.pause();
      this.#pausedForRoom = true;
    }
    this.#flush();
  }

  #onEnd(): void {
    this.#sourceEnded = true;
    this.#noticeHeldEnd();
    this.#flush();
  }

  /**
   * A source that hangs up on a cut direction has given up on the connection (etcd times out a
   * stalled read and redials; Synod's listener drops a connection whose hello is late). Heal would
   * reset the connection anyway, so the connection is told now: otherwise every redial during a
   * long partition would leave a connection behind.
   */
  #noticeHeldEnd(): void {
    if (this.#stopped || !this.#cut || !this.#sourceEnded || this.#endForwarded) return;
    this.#options.onEndHeld();
  }

  #held(): boolean {
    return this.#stopped || this.#identifying || this.#cut;
  }

  #flush(): void {
    if (this.#held()) return;
    while (this.#queue.length > 0 && !this.#awaitingDrain) {
      const head = this.#queue[0]!;
      const dueAtMs = head.receivedAtMs + (this.#latencyApplies ? head.delayMs : 0);
      const nowMs = this.#options.nowMs();
      if (dueAtMs > nowMs) {
        this.#schedule(dueAtMs - nowMs);
        break;
      }
      this.#queue.shift();
      this.#queuedBytes -= head.bytes.length;
      assert(this.#queuedBytes >= 0, 'queued bytes went negative');
      this.#options.onForwarded(head.bytes.length);
      if (!this.#options.destination.write(head.bytes)) this.#awaitDrain();
    }
    this.#resumeIfRoom();
    if (this.#sourceEnded && this.#queue.length === 0 && !this.#endForwarded) {
      this.#endForwarded = true;
      this.#options.destination.end(); // Half-close: the reverse direction keeps flowing.
    }
  }

  #awaitDrain(): void {
    this.#awaitingDrain = true;
    this.#options.destination.once('drain', () => {
      this.#awaitingDrain = false;
      this.#flush();
    });
  }

  #resumeIfRoom(): void {
    const { queueBytesMax, queueChunksMax } = this.#options.bounds;
    if (!this.#pausedForRoom) return;
    if (this.#queuedBytes >= queueBytesMax || this.#queue.length >= queueChunksMax) return;
    this.#pausedForRoom = false;
    this.#options.source.resume();
  }

  #schedule(delayMs: number): void {
    this.#clearTimer();
    this.#timer = setTimeout(() => {
      this.#timer = null;
      this.#flush();
    }, Math.ceil(delayMs));
  }

  #clearTimer(): void {
    if (this.#timer === null) return;
    clearTimeout(this.#timer);
    this.#timer = null;
  }
}
