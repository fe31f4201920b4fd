/**
 * The post-processing of a Range, as etcd's applier does it (server/etcdserver/apply.go, Range):
 * `count` is every key in the span at the revision; then the min/max revision filters, the sort,
 * the limit (`more` when more matched than the limit) and `keys_only`. Pure.
 */

import { compareBytes } from './bytes.js';
import type { KeyValue, RangeRequest, SortTarget } from './types.js';

/** The kvs, `more` and `count` of a range response, given the kvs in the span in key order. */
export interface RangeSelection {
  readonly kvs: KeyValue[];
  readonly more: boolean;
  readonly count: number;
}

/** Applies `request`'s filters, sort, limit, keys_only and count_only to key-ascending `inSpan`. */
export function selectRange(inSpan: readonly KeyValue[], request: RangeRequest): RangeSelection {
  const count = inSpan.length;
  if (request.countOnly === true) return { kvs: [], more: false, count };
  const limit = request.limit ?? 0;
  let kvs = inSpan.filter((kv) => passesFilters(kv, request));
  // etcd fetches only limit + 1 keys (in key order) unless the raw sort order or a filter forces
  // a full fetch, so a non-KEY target with order NONE sorts just that prefix. Kept for fidelity.
  if (limit > 0 && !fetchesAll(request)) kvs = kvs.slice(0, limit + 1);
  kvs = sortKvs(kvs, request);
  const more = limit > 0 && kvs.length > limit;
  if (more) kvs = kvs.slice(0, limit);
  if (request.keysOnly === true) kvs = kvs.map((kv) => ({ ...kv, value: new Uint8Array(0) }));
  return { kvs, more, count };
}

/** etcd's condition for fetching every key before sorting and truncating. */
function fetchesAll(request: RangeRequest): boolean {
  const { sortOrder = 'NONE', minModRevision = 0, maxModRevision = 0 } = request;
  const { minCreateRevision = 0, maxCreateRevision = 0 } = request;
  return sortOrder !== 'NONE' || minModRevision !== 0 || maxModRevision !== 0 ||
    minCreateRevision !== 0 || maxCreateRevision !== 0;
}

function passesFilters(kv: KeyValue, request: RangeRequest): boolean {
  const { minModRevision = 0, maxModRevision = 0, minCreateRevision = 0, maxCreateRevision = 0 } =
    request;
  if (minModRevision > 0 && kv.modRevision < minModRevision) return false;
  if (maxModRevision > 0 && kv.modRevision > maxModRevision) return false;
  if (minCreateRevision > 0 && kv.createRevision < minCreateRevision) return false;
  if (maxCreateRevision > 0 && kv.createRevision > maxCreateRevision) return false;
  return true;
}

/**
 * Sorts per etcd: order NONE with target KEY keeps key order; a non-KEY target with order NONE
 * sorts ascending. The sort is stable, so ties stay in key order either way (etcd leaves ties
 * unspecified).
 */
function sortKvs(kvs: KeyValue[], request: RangeRequest): KeyValue[] {
  const target = request.sortTarget ?? 'KEY';
  let order = request.sortOrder ?? 'NONE';
  if (order === 'NONE' && target !== 'KEY') order = 'ASCEND';
  if (order === 'NONE') return kvs;
  const compare = comparators[target];
  const sign = order === 'DESCEND' ? -1 : 1;
  return [...kvs].sort((a, b) => sign * compare(a, b));
}

const comparators: Record<SortTarget, (a: KeyValue, b: KeyValue) => number> = {
  KEY: (a, b) => compareBytes(a.key, b.key),
  VERSION: (a, b) => a.version - b.version,
  CREATE: (a, b) => a.createRevision - b.createRevision,
  MOD: (a, b) => a.modRevision - b.modRevision,
  VALUE: (a, b) => compareBytes(a.value, b.value),
};
