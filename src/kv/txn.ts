/**
 * Txn execution after etcd's applier (server/etcdserver/apply.go, Txn, and txn.go in 3.5): first
 * every compare on the chosen path is evaluated against the store as it was when the txn began,
 * nested txns included (etcd's compareToPath); then the chosen ops are checked (key not found,
 * lease not found, read revisions); only then are they executed in order, later ops seeing earlier
 * writes. A txn either applies whole or fails before its first change.
 */

import { assert } from '../base/index.js';
import { compareHolds, zeroKv } from './txn-check.js';
import type { WriteTxn } from './write-txn.js';
import { resolveReadRevision, spanOf } from './write-txn.js';
import type { MvccState } from './write-txn.js';
import type { Compare, RequestOp, ResponseOp, TxnRequest, TxnResponse } from './types.js';

/** The branch taken by a txn and, in order, by each nested txn on that branch. */
interface TxnPath {
  readonly succeeded: boolean;
  readonly nested: TxnPath[];
}

/**
 * Applies a checked `request` (see `checkTxnRequest`) inside `txn`. Each sub-response's header is
 * the view revision right after its op, as etcd reports it; the caller sets the top-level header to
 * the revision the txn ends at.
 */
export function applyTxn(state: MvccState, txn: WriteTxn, request: TxnRequest): TxnResponse {
  assert(!txn.changed, 'a txn starts before any change');
  const path = choosePath(txn, request);
  checkPath(state, txn, request, path);
  return executePath(txn, request, path);
}

function choosePath(txn: WriteTxn, request: TxnRequest): TxnPath {
  const succeeded = (request.compare ?? []).every((comparison) => compareOne(txn, comparison));
  const ops = (succeeded ? request.success : request.failure) ?? [];
  const nested: TxnPath[] = [];
  for (const op of ops) {
    if ('requestTxn' in op) nested.push(choosePath(txn, op.requestTxn));
  }
  return { succeeded, nested };
}

/** etcd's applyCompare: every key in the span must match; a missing key compares as zeros. */
function compareOne(txn: WriteTxn, comparison: Compare): boolean {
  const kvs = txn.kvsInSpan(spanOf(comparison));
  if (kvs.length === 0) {
    // A missing value cannot be told from an empty one, so VALUE on a missing key always fails.
    return comparison.target !== 'VALUE' && compareHolds(comparison, zeroKv(comparison.key));
  }
  return kvs.every((kv) => compareHolds(comparison, kv));
}

function checkPath(state: MvccState, txn: WriteTxn, request: TxnRequest, path: TxnPath): void {
  const ops = (path.succeeded ? request.success : request.failure) ?? [];
  let nestedIndex = 0;
  for (const op of ops) {
    if ('requestRange' in op) {
      const requested = op.requestRange.revision ?? 0;
      resolveReadRevision(state, { requested, viewRevision: txn.viewRevision });
    }
    else if ('requestPut' in op) txn.checkPut(op.requestPut);
    else if ('requestTxn' in op) checkPath(state, txn, op.requestTxn, path.nested[nestedIndex++]!);
  }
}

function executePath(txn: WriteTxn, request: TxnRequest, path: TxnPath): TxnResponse {
  const ops = (path.succeeded ? request.success : request.failure) ?? [];
  let nestedIndex = 0;
  const responses = ops.map((op: RequestOp): ResponseOp => {
    if ('requestRange' in op) return { responseRange: txn.range(op.requestRange) };
    if ('requestPut' in op) return { responsePut: txn.put(op.requestPut) };
    if ('requestDeleteRange' in op) {
      return { responseDeleteRange: txn.deleteRange(op.requestDeleteRange) };
    }
    const nested = path.nested[nestedIndex++];
    assert(nested !== undefined, 'txn path is missing a nested txn');
    return { responseTxn: executePath(txn, op.requestTxn, nested) };
  });
  assert(nestedIndex === path.nested.length, 'txn path has unused nested txns');
  return { header: txn.header(), succeeded: path.succeeded, responses };
}
