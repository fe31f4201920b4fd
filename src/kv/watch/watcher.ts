/**
 * One watcher's selection and bounded buffer, after etcd's `watcher` (server/mvcc/watcher.go).
 * A watcher buffers whole revisions of selected events up to a byte bound; the hub moves it
 * between the synced group (fed by `notify`) and the unsynced group (fed from history).
 */

import { assert } from '../../base/index.js';
import type { KeySpan } from '../bytes.js';
import { spanContains } from '../bytes.js';
import type { KeyValue, KvEvent } from '../types.js';
import type { RevisionEvents } from './history.js';
import { eventKvOverheadBytes } from './limits.js';

/** What a watcher delivers; fixed at creation. */
export interface WatcherSpec {
  readonly id: number;
  readonly span: KeySpan;
  readonly noPut: boolean;
  readonly noDelete: boolean;
  readonly prevKv: boolean;
  readonly fragment: boolean;
  readonly progressNotify: boolean;
  /** The first revision it may deliver (its start revision, or the next one if 0). */
  readonly minRevision: number;
}

/** A watcher's state. Mutated only by the hub. */
export class Watcher {
  readonly spec: WatcherSpec;
  /**
   * The first revision whose events are neither buffered nor delivered.
   * Invariant: synced ⇒ `nextRevision = hub revision + 1`; else `nextRevision ≤ hub revision`.
   */
  nextRevision: number;
  /** True while `notify` feeds it; false while it catches up from history (unsynced, victim). */
  synced: boolean;
  /** Non-zero once history it needs was compacted: it ends with a cancel after its buffer. */
  compactRevision = 0;
  /** True when events were delivered since the last periodic progress check. */
  deliveredSinceProgress = false;
  readonly #buffer: RevisionEvents[] = [];
  #bufferBytes = 0;
  readonly #bufferBytesMax: number;

  constructor(spec: WatcherSpec, state: { nextRevision: number; synced: boolean;
    bufferBytesMax: number; }) {
    assert(spec.minRevision >= 1 && state.nextRevision >= 1, 'watcher: revisions out of range');
    // A synced watcher may wait for a future start; an unsynced one reads history from it.
    assert(state.synced || state.nextRevision >= spec.minRevision, 'watcher: reads before start');
    assert(state.bufferBytesMax >= 1, 'watcher: buffer bound');
    this.spec = spec;
    this.nextRevision = state.nextRevision;
    this.synced = state.synced;
    this.#bufferBytesMax = state.bufferBytesMax;
  }

  /** True when `event` is on the watcher's keys and passes its filters. */
  readonly selects = (event: KvEvent): boolean => {
    if (event.type === 'PUT' ? this.spec.noPut : this.spec.noDelete) return false;
    return spanContains(this.spec.span, event.kv.key);
  };

  /** The events of one revision this watcher delivers, shaped for it (prevKv kept if asked). */
  eventsOf(events: readonly KvEvent[]): KvEvent[] {
    const selected = events.filter(this.selects);
    if (this.spec.prevKv) return selected;
    return selected.map((event) => event.prevKv === undefined ? event
      : { type: event.type, kv: event.kv });
  }

  /** Bytes buffered now. Invariant: ≤ the bound, or one revision alone. */
  get bufferBytes(): number {
    return this.#bufferBytes;
  }

  /** True when nothing is buffered. */
  get bufferEmpty(): boolean {
    return this.#buffer.length === 0;
  }

  /**
   * Buffers one revision if it fits (an empty buffer takes any one revision); false when full.
   * Revisions must arrive in ascending order.
   */
  tryBuffer(group: RevisionEvents): boolean {
    assert(group.events.length > 0, 'watcher: empty revision buffered');
    const last = this.#buffer.at(-1);
    assert(last === undefined || last.revision < group.revision, 'watcher: revisions must ascend');
    const bytes = eventsBytes(group.events);
    if (this.#buffer.length > 0 && this.#bufferBytes + bytes > this.#bufferBytesMax) return false;
    this.#buffer.push(group);
    this.#bufferBytes += bytes;
    // Invariant: the buffer bound holds, except for one oversized revision alone.
    assert(this.#bufferBytes <= this.#bufferBytesMax || this.#buffer.length === 1,
      'watcher: buffer over its bound');
    return true;
  }

  /** Removes and returns the oldest buffered revision. */
  shift(): RevisionEvents | undefined {
    const group = this.#buffer.shift();
    if (group !== undefined) this.#bufferBytes -= eventsBytes(group.events);
    assert(this.#bufferBytes >= 0, 'watcher: negative buffer bytes');
    return group;
  }
}

/** Bytes an event is counted as: keys and values of its kv and prev_kv, plus a fixed overhead. */
export function eventBytes(event: KvEvent): number {
  return kvBytes(event.kv) + (event.prevKv === undefined ? 0 : kvBytes(event.prevKv));
}

/** The sum of `eventBytes` over `events`. */
export function eventsBytes(events: readonly KvEvent[]): number {
  let total = 0;
  for (const event of events) total += eventBytes(event);
  return total;
}

function kvBytes(kv: KeyValue): number {
  return kv.key.length + kv.value.length + eventKvOverheadBytes;
}
