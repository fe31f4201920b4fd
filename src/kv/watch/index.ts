/** The watch hub: etcd Watch semantics over the MVCC store, pure and synchronous. */
export { WatchHub } from './watch-hub.js';
export type { WatchCreateRequest, WatchFilter, WatchResponse } from './types.js';
export { watchCancelReasons } from './types.js';
export {
  requestBytesMax, watchStreamsMaxDefault, watchersPerStreamMaxDefault,
  watchBufferBytesMaxDefault, eventKvOverheadBytes, watchHubLimits,
  type WatchHubOptions, type WatchHubLimits,
} from './limits.js';
export { readHistory, type RevisionEvents, type HistoryQuery } from './history.js';
export { splitEvents } from './responses.js';
