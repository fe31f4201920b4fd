/**
 * The etcdserverpb.Watch messages as proto-loader hands them over (grpc/proto.ts: `keepCase`,
 * int64 as decimal strings, enums as names, `defaults`, `oneofs`), decoded into the watch hub's
 * requests, and the hub's responses encoded back with the full header.
 *
 * Malformed fields follow etcd where etcd has a defined behaviour (an unknown filter is ignored,
 * a request with no member set is skipped, a cancel of an unknown id does nothing) and are refused
 * with INVALID_ARGUMENT where etcd would silently do something surprising: a negative
 * start_revision (etcd replays from the oldest revision it has) or a negative watch_id (it would
 * collide with the -1 of failed creates and progress responses).
 */

import type { WatchCreateRequest, WatchFilter, WatchResponse } from '../../kv/index.js';
import { safeIntegerOf } from './kv-decode.js';
import {
  encodeHeader, encodeKeyValue, type HeaderSource, type WireKeyValue, type WireResponseHeader,
} from './kv-encode.js';
import { invalidArgument } from './status.js';

/** `WatchCreateRequest` on the wire. */
export interface WireWatchCreateRequest {
  readonly key: Buffer;
  readonly range_end: Buffer;
  readonly start_revision: string;
  readonly progress_notify: boolean;
  readonly filters: readonly (string | number)[];
  readonly prev_kv: boolean;
  readonly watch_id: string;
  readonly fragment: boolean;
}

/** `WatchRequest` on the wire: `request_union` names the oneof member that is set. */
export interface WireWatchRequest {
  readonly request_union?: 'create_request' | 'cancel_request' | 'progress_request';
  readonly create_request?: WireWatchCreateRequest | null;
  readonly cancel_request?: { readonly watch_id: string } | null;
  readonly progress_request?: object | null;
}

/** `mvccpb.Event` on the wire. */
export interface WireEvent {
  readonly type: 'PUT' | 'DELETE';
  readonly kv: WireKeyValue;
  readonly prev_kv?: WireKeyValue;
}

/** `WatchResponse` on the wire. */
export interface WireWatchResponse {
  readonly header: WireResponseHeader;
  readonly watch_id: string;
  readonly created: boolean;
  readonly canceled: boolean;
  readonly compact_revision: string;
  readonly cancel_reason: string;
  readonly fragment: boolean;
  readonly events: readonly WireEvent[];
}

/** One decoded `WatchRequest`; `ignored` is a request etcd skips (no member set, bad cancel id). */
export type WatchCommand =
  | { readonly type: 'create'; readonly request: WatchCreateRequest }
  | { readonly type: 'cancel'; readonly watchId: number }
  | { readonly type: 'progress' }
  | { readonly type: 'ignored' };

const filterNames: readonly WatchFilter[] = ['NOPUT', 'NODELETE'];

/** Decodes one request; a field etcd's types allow but Synod refuses is INVALID_ARGUMENT. */
export function decodeWatchRequest(wire: WireWatchRequest): WatchCommand {
  switch (wire.request_union) {
    case 'create_request':
      if (wire.create_request == null) return { type: 'ignored' };
      return { type: 'create', request: decodeCreateRequest(wire.create_request) };
    case 'cancel_request': {
      const watchId = cancelIdOf(wire.cancel_request?.watch_id);
      return watchId === undefined ? { type: 'ignored' } : { type: 'cancel', watchId };
    }
    case 'progress_request':
      return { type: 'progress' };
    default:
      // etcd's recvLoop skips a request with no member set rather than failing the stream.
      return { type: 'ignored' };
  }
}

function decodeCreateRequest(wire: WireWatchCreateRequest): WatchCreateRequest {
  const startRevision = safeIntegerOf(wire.start_revision, 'start_revision');
  if (startRevision < 0) {
    throw invalidArgument(`start_revision ${startRevision} is negative; use 0 for the next one`);
  }
  const watchId = safeIntegerOf(wire.watch_id, 'watch_id');
  if (watchId < 0) {
    throw invalidArgument(`watch_id ${watchId} is negative; use 0 to have the server assign one`);
  }
  return {
    key: new Uint8Array(wire.key),
    rangeEnd: new Uint8Array(wire.range_end),
    startRevision,
    progressNotify: wire.progress_notify,
    filters: filtersOf(wire.filters),
    prevKv: wire.prev_kv,
    watchId,
    fragment: wire.fragment,
  };
}

/** etcd's filtersFromRequest: known filters by name or number; unknown values are ignored. */
function filtersOf(wire: readonly (string | number)[]): WatchFilter[] {
  const filters = new Set<WatchFilter>();
  for (const value of wire) {
    const name = typeof value === 'number'
      ? filterNames[value]
      : filterNames.find((known) => known === value);
    if (name !== undefined) filters.add(name);
  }
  return [...filters];
}

/** A cancel's watch id, or undefined when no watcher can have it (then the cancel does nothing). */
function cancelIdOf(text: string | undefined): number | undefined {
  const value = BigInt(text ?? '0');
  if (value < 0n || value > BigInt(Number.MAX_SAFE_INTEGER)) return undefined;
  return Number(value);
}

/** Encodes one hub response with the full header at the response's revision. */
export function encodeWatchResponse(
  source: HeaderSource,
  response: WatchResponse,
): WireWatchResponse {
  return {
    header: encodeHeader(source, response.header.revision),
    watch_id: response.watchId.toString(),
    created: response.created,
    canceled: response.canceled,
    compact_revision: response.compactRevision.toString(),
    cancel_reason: response.cancelReason,
    fragment: response.fragment,
    events: response.events.map((event) => event.prevKv === undefined
      ? { type: event.type, kv: encodeKeyValue(event.kv) }
      : { type: event.type, kv: encodeKeyValue(event.kv), prev_kv: encodeKeyValue(event.prevKv) }),
  };
}
