/**
 * Key permissions as etcd's auth store checks them (server/auth/range_perm_cache.go): a role
 * grants READ, WRITE or READWRITE on a key, or on `[key, rangeEnd)`, `rangeEnd` `"\0"` meaning
 * every key from `key` on. A request on one key is allowed when some granted interval holds it; a
 * request on a range is allowed only when the union of the granted intervals covers the whole
 * range (adjacent and overlapping grants merge), so no key of the range escapes the check. Pure.
 */

import { compareBytes, isUnboundedEnd } from './bytes.js';

/** What a permission allows. */
export type PermissionType = 'READ' | 'WRITE' | 'READWRITE';

/** One granted permission, as etcd's authpb.Permission. */
export interface KeyPermission {
  readonly permType: PermissionType;
  readonly key: Uint8Array;
  /** Empty: `key` alone. `"\0"`: every key from `key` on. Else the exclusive end. */
  readonly rangeEnd: Uint8Array;
}

/** A half-open interval of keys; `end` null is unbounded. */
interface KeyInterval {
  readonly start: Uint8Array;
  readonly end: Uint8Array | null;
}

/** The interval a key and range end name (a single key is `[key, key + "\0")`). */
function intervalOf(key: Uint8Array, rangeEnd: Uint8Array): KeyInterval {
  if (rangeEnd.length === 0) {
    const end = new Uint8Array(key.length + 1);
    end.set(key);
    return { start: key, end };
  }
  return { start: key, end: isUnboundedEnd(rangeEnd) ? null : rangeEnd };
}

/** `a` ≤ `b` for interval ends, null being +∞. */
function endAtMost(a: Uint8Array | null, b: Uint8Array | null): boolean {
  if (b === null) return true;
  if (a === null) return false;
  return compareBytes(a, b) <= 0;
}

/** Whether `permType` satisfies a check for `wanted` (READWRITE satisfies both). */
function grants(permType: PermissionType, wanted: 'READ' | 'WRITE'): boolean {
  return permType === 'READWRITE' || permType === wanted;
}

/**
 * Whether `permissions` allow `wanted` access to `key` (with `rangeEnd` empty) or to the range
 * `[key, rangeEnd)` (`"\0"`: unbounded).
 */
export function permitsRange(
  permissions: readonly KeyPermission[],
  request: { readonly key: Uint8Array; readonly rangeEnd: Uint8Array; readonly wanted: 'READ' | 'WRITE' },
): boolean {
  const wanted = intervalOf(request.key, request.rangeEnd);
  // An empty or inverted range names no key; like etcd's interval check, it is not granted.
  if (wanted.end !== null && compareBytes(wanted.end, wanted.start) <= 0) return false;
  const granted = permissions
    .filter((permission) => grants(permission.permType, request.wanted))
    .map((permission) => intervalOf(permission.key, permission.rangeEnd))
    .sort((a, b) => compareBytes(a.start, b.start));
  // Walk the grants in start order, extending the covered prefix of the wanted interval.
  let coveredTo: Uint8Array | null = wanted.start;
  for (const interval of granted) {
    if (coveredTo === null) return true;
    if (compareBytes(interval.start, coveredTo) > 0) break; // A gap before this grant.
    if (!endAtMost(interval.end, coveredTo)) coveredTo = interval.end;
    if (endAtMost(wanted.end, coveredTo)) return true;
  }
  return coveredTo === null || endAtMost(wanted.end, coveredTo);
}
