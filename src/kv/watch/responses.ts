/**
 * Building `WatchResponse`s: the control replies and the event responses of one revision, split
 * into fragments when the watcher asked for it (etcd's watch server `sendFragments`,
 * server/etcdserver/api/v3rpc/watch.go). Pure.
 */

import { assert } from '../../base/index.js';
import type { KvEvent } from '../types.js';
import type { RevisionEvents } from './history.js';
import type { WatchResponse } from './types.js';
import { eventBytes } from './watcher.js';

const noEvents: readonly KvEvent[] = Object.freeze([]);

/** A response with every field at its proto3 default but the ones given. */
export function watchResponse(fields: Partial<WatchResponse> & { revision: number;
  watchId: number; }): WatchResponse {
  const { revision, ...rest } = fields;
  return {
    header: { revision }, created: false, canceled: false, compactRevision: 0, cancelReason: '',
    fragment: false, events: noEvents, ...rest,
  };
}

/**
 * The responses carrying one revision's events: one, or with `fragment` several of at most
 * `fragmentBytesMax` event bytes each (one event always goes whole), all but the last marked
 * `fragment = true`.
 */
export function eventResponses(group: RevisionEvents, options: { watchId: number;
  fragment: boolean; fragmentBytesMax: number; }): WatchResponse[] {
  const { watchId } = options;
  const revision = group.revision;
  if (!options.fragment) return [watchResponse({ revision, watchId, events: group.events })];
  const parts = splitEvents(group.events, options.fragmentBytesMax);
  return parts.map((events, index) => watchResponse({
    revision, watchId, events, fragment: index < parts.length - 1,
  }));
}

/** Splits `events` in order into runs of at most `bytesMax` bytes (≥ 1 event each). */
export function splitEvents(events: readonly KvEvent[], bytesMax: number): KvEvent[][] {
  assert(events.length > 0 && bytesMax >= 1, 'splitEvents: bad arguments');
  const parts: KvEvent[][] = [[]];
  let bytes = 0;
  for (const event of events) {
    const size = eventBytes(event);
    if (parts.at(-1)!.length > 0 && bytes + size > bytesMax) {
      parts.push([]);
      bytes = 0;
    }
    parts.at(-1)!.push(event);
    bytes += size;
  }
  assert(parts.reduce((sum, part) => sum + part.length, 0) === events.length, 'split lost events');
  return parts;
}
