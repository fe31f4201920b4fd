/**
 * Bounds of the watch hub, as named constants with their defaults and the validation of the
 * options that override them. Every structure a client can grow is bounded here: streams, watchers
 * per stream, buffered bytes per watcher, pending control replies per stream.
 */

import { assert, SynodError } from '../../base/index.js';

/** etcd's default max request size (1.5 MiB); the default fragment size. */
export const requestBytesMax = 1.5 * 1024 * 1024;
/** Default bound on concurrently open watch streams per hub. */
export const watchStreamsMaxDefault = 10_000;
/** Default bound on live watchers on one stream. */
export const watchersPerStreamMaxDefault = 1_000;
/**
 * Default bound on the event bytes a watcher buffers (`eventBytes`). A revision that arrives while
 * the buffer holds anything and would overflow it is not buffered: the watcher becomes a victim
 * and re-reads it from history later. An empty buffer takes one revision of any size, so a
 * watcher's buffer is bounded by max(this, one revision's events).
 */
export const watchBufferBytesMaxDefault = 4 * requestBytesMax;
/** Fixed per-key-value cost added to key and value lengths when sizing events. */
export const eventKvOverheadBytes = 64;

/** Options of `WatchHub`; unset fields take the defaults above. */
export interface WatchHubOptions {
  readonly streamsMax?: number;
  readonly watchersPerStreamMax?: number;
  readonly watchBufferBytesMax?: number;
  /** Responses of fragmenting watchers carry at most this many event bytes (but ≥ 1 event). */
  readonly fragmentBytesMax?: number;
}

/** Validated, frozen limits. */
export type WatchHubLimits = Readonly<Required<WatchHubOptions>> & {
  /** Pending created/canceled replies per stream; derived from `watchersPerStreamMax`. */
  readonly controlResponsesMax: number;
};

/** Fills defaults and checks `options`; a bad value is SYNOD_INVALID_CONFIG. */
export function watchHubLimits(options: WatchHubOptions = {}): WatchHubLimits {
  const streamsMax = options.streamsMax ?? watchStreamsMaxDefault;
  const watchersPerStreamMax = options.watchersPerStreamMax ?? watchersPerStreamMaxDefault;
  const watchBufferBytesMax = options.watchBufferBytesMax ?? watchBufferBytesMaxDefault;
  const fragmentBytesMax = options.fragmentBytesMax ?? requestBytesMax;
  for (const [name, value] of Object.entries({
    streamsMax, watchersPerStreamMax, watchBufferBytesMax, fragmentBytesMax,
  })) {
    if (!Number.isSafeInteger(value) || value < 1) {
      throw new SynodError('SYNOD_INVALID_CONFIG', `watch: ${name} must be a positive integer`);
    }
  }
  // A create and a cancel reply per watcher slot, twice over, so a client that creates and
  // cancels without reading gets back-pressure only well after its live watchers are replied to.
  const controlResponsesMax = 4 * watchersPerStreamMax;
  assert(controlResponsesMax >= 2 * watchersPerStreamMax, 'control queue below two per watcher');
  return Object.freeze({
    streamsMax, watchersPerStreamMax, watchBufferBytesMax, fragmentBytesMax, controlResponsesMax,
  });
}
