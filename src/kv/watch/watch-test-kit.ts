/**
 * Test helpers for the watch hub: a store and hub wired like the state machine wires them, and
 * readable views of responses. Used only by tests.
 */

import { utf8, utf8Text } from '../bytes.js';
import { MvccStore } from '../mvcc-store.js';
import type { KvEvent } from '../types.js';
import type { WatchHubOptions } from './limits.js';
import type { WatchResponse } from './types.js';
import { WatchHub } from './watch-hub.js';

/** A store and a hub notified after every write. */
export class WatchRig {
  readonly store = MvccStore.open();
  readonly hub: WatchHub;

  constructor(options: WatchHubOptions = {}) {
    this.hub = new WatchHub(this.store, options);
  }

  /** Puts `key = value` and notifies; returns the new revision. */
  put(key: string, value: string): number {
    const { events } = this.store.put({ key: utf8(key), value: utf8(value) });
    this.hub.notify(events, this.store.currentRevision);
    return this.store.currentRevision;
  }

  /** Deletes `[key, end)` (or the single key) and notifies. */
  del(key: string, end?: string): number {
    const request = end === undefined
      ? { key: utf8(key) }
      : { key: utf8(key), rangeEnd: utf8(end) };
    const { events } = this.store.deleteRange(request);
    this.hub.notify(events, this.store.currentRevision);
    return this.store.currentRevision;
  }
}

/** A compact spelling of an event: `PUT a=1@2 prev=0` / `DELETE a@3 prev=1`. */
export function describeEvent(event: KvEvent): string {
  const prev = event.prevKv === undefined ? '' : ` prev=${utf8Text(event.prevKv.value)}`;
  const value = event.type === 'PUT' ? `=${utf8Text(event.kv.value)}` : '';
  return `${event.type} ${utf8Text(event.kv.key)}${value}@${event.kv.modRevision}${prev}`;
}

/** The events of `responses` for `watchId`, described, with fragments joined. */
export function eventsFor(responses: readonly WatchResponse[], watchId: number): string[] {
  return responses.filter((response) => response.watchId === watchId)
    .flatMap((response) => response.events.map(describeEvent));
}
