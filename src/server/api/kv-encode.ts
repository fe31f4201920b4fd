/**
 * Encoding of the kv layer's responses as etcdserverpb messages for proto-loader: int64 and uint64
 * fields as decimal strings (exact beyond 2^53), bytes as Buffers. Every top-level response carries
 * the full header {cluster_id, member_id, revision, raft_term}; a txn's sub-responses carry only
 * `header.revision`, as etcd's do (etcd-api.md §0).
 */

import type {
  DeleteRangeResponse, KeyValue, PutResponse, RangeResponse, ResponseOp, TxnResponse,
} from '../../kv/index.js';

/** `etcdserverpb.ResponseHeader` on the wire. */
export interface WireResponseHeader {
  readonly cluster_id: string;
  readonly member_id: string;
  readonly revision: string;
  readonly raft_term: string;
}

/** `mvccpb.KeyValue` on the wire. */
export interface WireKeyValue {
  readonly key: Buffer;
  readonly create_revision: string;
  readonly mod_revision: string;
  readonly version: string;
  readonly value: Buffer;
  readonly lease: string;
}

/** What the header needs besides the revision; the ids are stable non-zero uint64 values. */
export interface HeaderSource {
  readonly clusterId: bigint;
  readonly memberId: bigint;
  /** The member's current Raft term. */
  readonly raftTerm: number;
}

/** The full header of a top-level response at `revision`. */
export function encodeHeader(source: HeaderSource, revision: number): WireResponseHeader {
  return {
    cluster_id: source.clusterId.toString(),
    member_id: source.memberId.toString(),
    revision: revision.toString(),
    raft_term: source.raftTerm.toString(),
  };
}

/** A txn sub-response's header: the revision only. */
function revisionHeader(revision: number): Partial<WireResponseHeader> {
  return { revision: revision.toString() };
}

function bufferOf(bytes: Uint8Array): Buffer {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** Encodes one KeyValue. */
export function encodeKeyValue(kv: KeyValue): WireKeyValue {
  return {
    key: bufferOf(kv.key),
    create_revision: kv.createRevision.toString(),
    mod_revision: kv.modRevision.toString(),
    version: kv.version.toString(),
    value: bufferOf(kv.value),
    lease: kv.lease.toString(),
  };
}

/** The body of a RangeResponse, without its header. */
function rangeBody(response: RangeResponse): object {
  return {
    kvs: response.kvs.map(encodeKeyValue),
    more: response.more,
    count: response.count.toString(),
  };
}

function putBody(response: PutResponse): object {
  return response.prevKv === undefined ? {} : { prev_kv: encodeKeyValue(response.prevKv) };
}

function deleteRangeBody(response: DeleteRangeResponse): object {
  return {
    deleted: response.deleted.toString(),
    prev_kvs: response.prevKvs.map(encodeKeyValue),
  };
}

function txnBody(response: TxnResponse): object {
  return { succeeded: response.succeeded, responses: response.responses.map(encodeResponseOp) };
}

function encodeResponseOp(op: ResponseOp): object {
  if ('responseRange' in op) {
    const response = op.responseRange;
    const header = revisionHeader(response.header.revision);
    return { response_range: { header, ...rangeBody(response) } };
  }
  if ('responsePut' in op) {
    const response = op.responsePut;
    const header = revisionHeader(response.header.revision);
    return { response_put: { header, ...putBody(response) } };
  }
  if ('responseDeleteRange' in op) {
    const response = op.responseDeleteRange;
    const header = revisionHeader(response.header.revision);
    return { response_delete_range: { header, ...deleteRangeBody(response) } };
  }
  const response = op.responseTxn;
  const header = revisionHeader(response.header.revision);
  return { response_txn: { header, ...txnBody(response) } };
}

/** Encodes a top-level RangeResponse. */
export function encodeRangeResponse(source: HeaderSource, response: RangeResponse): object {
  return { header: encodeHeader(source, response.header.revision), ...rangeBody(response) };
}

/** Encodes a top-level PutResponse. */
export function encodePutResponse(source: HeaderSource, response: PutResponse): object {
  return { header: encodeHeader(source, response.header.revision), ...putBody(response) };
}

/** Encodes a top-level DeleteRangeResponse. */
export function encodeDeleteRangeResponse(
  source: HeaderSource,
  response: DeleteRangeResponse,
): object {
  return { header: encodeHeader(source, response.header.revision), ...deleteRangeBody(response) };
}

/** Encodes a top-level TxnResponse. */
export function encodeTxnResponse(source: HeaderSource, response: TxnResponse): object {
  return { header: encodeHeader(source, response.header.revision), ...txnBody(response) };
}
