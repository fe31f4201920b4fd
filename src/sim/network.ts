/**
 * The simulated network: messages in flight with a delivery step each. Random delays reorder them;
 * messages may be dropped or duplicated; links may be cut one way (asymmetric partitions) or both.
 * A cut link loses what is sent on it and what was in flight on it when it was cut, like a TCP
 * connection reset. Nothing here knows Raft beyond the message's `from` and `to`.
 */

import { assert, type SeededRandom } from '../base/index.js';
import type { Message, NodeId } from '../raft/index.js';
import type { NetworkFaultRates } from './scenario.js';
import type { Trace } from './trace.js';

/** A message with the node that actually sent it (a forwarded message keeps its first `from`). */
export interface Envelope {
  readonly message: Message;
  readonly sender: NodeId;
}

/** Messages that reached their delivery step, and those lost on the way. */
export interface Delivery {
  readonly delivered: readonly Envelope[];
  readonly lost: readonly Envelope[];
}

/** Counts of what the network did to messages. */
export interface NetworkCounts {
  sent: number;
  delivered: number;
  dropped: number;
  duplicated: number;
  cut: number;
}

/** In-flight messages at most; a driver that floods the network is a bug (a step loop). */
const inFlightMax = 200_000;

/** A network of in-flight messages between node ids. */
export class SimNetwork {
  readonly #random: SeededRandom;
  readonly #trace: Trace;
  /** Delivery step → messages due then. */
  readonly #buckets = new Map<number, Envelope[]>();
  /** Links cut, as `from * linkBase + to`. */
  readonly #cut = new Set<number>();
  #rates: NetworkFaultRates;
  #inFlight = 0;
  readonly counts: NetworkCounts = { sent: 0, delivered: 0, dropped: 0, duplicated: 0, cut: 0 };

  constructor(options: {
    readonly random: SeededRandom;
    readonly trace: Trace;
    readonly rates: NetworkFaultRates;
  }) {
    this.#random = options.random;
    this.#trace = options.trace;
    this.#rates = options.rates;
  }

  /** Switches the fault rates (the heal switches to a reliable network). */
  setRates(rates: NetworkFaultRates): void {
    this.#rates = rates;
  }

  /** Sends `envelope` at `step`. Returns false if it was lost at once (dropped, or link cut). */
  send(envelope: Envelope, step: number): boolean {
    const { message, sender } = envelope;
    this.counts.sent++;
    if (this.isCut(sender, message.to)) {
      this.counts.cut++;
      this.#trace.event(
        'cut',
        [message.from, message.to],
        () => `net ${describe(message)} lost: link cut`,
      );
      return false;
    }
    if (this.#random.chance(this.#rates.dropRate)) {
      this.counts.dropped++;
      this.#trace.event(
        'drop',
        [message.from, message.to],
        () => `net ${describe(message)} dropped`,
      );
      return false;
    }
    this.#enqueue(envelope, step + this.#delaySteps());
    if (this.#random.chance(this.#rates.duplicateRate)) {
      this.counts.duplicated++;
      this.#trace.event(
        'dup',
        [message.from, message.to],
        () => `net ${describe(message)} duplicated`,
      );
      this.#enqueue(envelope, step + this.#delaySteps());
    }
    return true;
  }

  /** Takes the messages due at `step`, in a random order; those on links cut meanwhile are lost. */
  takeDue(step: number): Delivery {
    const due = this.#buckets.get(step);
    if (due === undefined) return { delivered: [], lost: [] };
    this.#buckets.delete(step);
    this.#inFlight -= due.length;
    shuffle(due, this.#random);
    const delivered: Envelope[] = [];
    const lost: Envelope[] = [];
    for (const envelope of due) {
      if (this.isCut(envelope.sender, envelope.message.to)) {
        this.counts.cut++;
        lost.push(envelope);
      } else {
        this.counts.delivered++;
        delivered.push(envelope);
      }
    }
    return { delivered, lost };
  }

  /** Cuts the link `from → to` (messages the other way still flow). */
  cut(from: NodeId, to: NodeId): void {
    this.#cut.add(linkKey(from, to));
  }

  /** Whether `from → to` is cut. */
  isCut(from: NodeId, to: NodeId): boolean {
    return this.#cut.size > 0 && this.#cut.has(linkKey(from, to));
  }

  /** Restores every link. */
  healLinks(): void {
    this.#cut.clear();
  }

  /** Whether any link is cut. */
  get partitioned(): boolean {
    return this.#cut.size > 0;
  }

  /** Forgets every in-flight message from or to `id` (a decommissioned node's identity dies). */
  purge(id: NodeId): void {
    for (const [step, messages] of this.#buckets) {
      const kept = messages.filter(
        (e) => e.sender !== id && e.message.from !== id && e.message.to !== id,
      );
      this.#inFlight -= messages.length - kept.length;
      if (kept.length === 0) this.#buckets.delete(step);
      else this.#buckets.set(step, kept);
    }
  }

  /** Messages in flight. */
  get inFlight(): number {
    return this.#inFlight;
  }

  #enqueue(envelope: Envelope, deliveryStep: number): void {
    assert(this.#inFlight < inFlightMax, `network flooded: ${this.#inFlight} messages in flight`);
    let bucket = this.#buckets.get(deliveryStep);
    if (bucket === undefined) {
      bucket = [];
      this.#buckets.set(deliveryStep, bucket);
    }
    bucket.push(envelope);
    this.#inFlight++;
  }

  #delaySteps(): number {
    const rates = this.#rates;
    if (this.#random.chance(rates.longDelayRate))
      return rates.delayStepsMax + 1 + this.#random.int(rates.longDelayStepsMax);
    return rates.delayStepsMin + this.#random.int(rates.delayStepsMax - rates.delayStepsMin + 1);
  }
}

/** Node ids stay far below this; a link is one integer key. */
const linkBase = 1024;

function linkKey(from: NodeId, to: NodeId): number {
  assert(from < linkBase && to < linkBase, 'node id too large for link keys');
  return from * linkBase + to;
}

/** Fisher–Yates with the run's generator. */
export function shuffle<T>(items: T[], random: SeededRandom): void {
  for (let i = items.length - 1; i > 0; i--) {
    const j = random.int(i + 1);
    const item = items[i]!;
    items[i] = items[j]!;
    items[j] = item;
  }
}

/** A message for the readable trace. */
export function describe(message: Message): string {
  const parts = [`${message.type} ${message.from}→${message.to} t${message.term}`];
  if (message.type === 'app')
    parts.push(
      `prev ${message.index}/${message.logTerm} n${message.entries.length} c${message.commit}`,
    );
  if (message.type === 'app-resp')
    parts.push(`${message.reject ? 'reject' : 'ok'} ${message.index}`);
  if (message.type === 'snap' && message.snapshot !== null)
    parts.push(`@${message.snapshot.metadata.index}`);
  if (message.type === 'vote-resp' || message.type === 'pre-vote-resp')
    parts.push(message.reject ? 'reject' : 'grant');
  return parts.join(' ');
}
