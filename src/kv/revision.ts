/**
 * MVCC revisions as etcd defines them: `main` is the store revision a txn commits at (an empty
 * store is at 1, the first write gets 2); `sub` orders the changes within that txn from 0.
 * Revisions are the keys of the backend's `key` bucket, encoded so byte order is revision order.
 */

import { assert } from '../base/index.js';

/** One change's position in history. Invariant: `main ≥ 1`, `sub ≥ 0`, both safe integers. */
export interface Revision {
  readonly main: number;
  readonly sub: number;
}

/** Encoded size of a revision: big-endian `main` then `sub`, 8 bytes each. */
export const revisionBytes = 16;

/** Orders revisions by `main`, then `sub`. */
export function compareRevisions(a: Revision, b: Revision): number {
  return a.main !== b.main ? a.main - b.main : a.sub - b.sub;
}

/** Encodes `revision` so that unsigned byte order equals revision order. */
export function encodeRevision(revision: Revision): Uint8Array {
  assert(Number.isSafeInteger(revision.main) && revision.main >= 1, 'revision main out of range');
  assert(Number.isSafeInteger(revision.sub) && revision.sub >= 0, 'revision sub out of range');
  const bytes = new Uint8Array(revisionBytes);
  const view = new DataView(bytes.buffer);
  view.setBigUint64(0, BigInt(revision.main));
  view.setBigUint64(8, BigInt(revision.sub));
  return bytes;
}

/** Decodes the output of `encodeRevision`. */
export function decodeRevision(bytes: Uint8Array): Revision {
  assert(bytes.length === revisionBytes, 'revision: wrong encoded length');
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return { main: Number(view.getBigUint64(0)), sub: Number(view.getBigUint64(8)) };
}
