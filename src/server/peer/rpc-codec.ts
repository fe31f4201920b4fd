/**
 * Requests one member forwards to another over the peer connection (a follower's lease keep-alive
 * to the leader, say) and their answers. An error answer carries a Synod error code and message,
 * so a forwarded call fails on the caller exactly as it failed on the peer.
 */

import { errorCodes, SynodError, type ErrorCode } from '../../base/index.js';
import { peerProtocolError, WireReader, WireWriter } from './wire-buffer.js';

/** A forwarded request. `id` is unique among the sender's requests in flight. */
export interface PeerRequest {
  readonly id: number;
  readonly method: string;
  readonly payload: Uint8Array;
}

/** The answer to request `id`: a payload, or an error. */
export type PeerResponse =
  | { readonly id: number; readonly ok: true; readonly payload: Uint8Array }
  | { readonly id: number; readonly ok: false; readonly code: string; readonly message: string };

/** Longest method name accepted. */
export const methodNameBytesMax = 64;

export function encodeRequest(request: PeerRequest): Uint8Array {
  return new WireWriter(32 + request.payload.length)
    .u32(request.id).text(request.method).bytes(request.payload).finish();
}

export function decodeRequest(payload: Uint8Array): PeerRequest {
  const reader = new WireReader(payload);
  const id = reader.u32();
  const method = reader.text();
  if (method.length > methodNameBytesMax) throw peerProtocolError('method name too long');
  const body = reader.bytes();
  reader.end();
  return { id, method, payload: body };
}

export function encodeResponse(response: PeerResponse): Uint8Array {
  const writer = new WireWriter(32).u32(response.id).u8(response.ok ? 1 : 0);
  if (response.ok) writer.bytes(response.payload);
  else writer.text(response.code).text(response.message);
  return writer.finish();
}

export function decodeResponse(payload: Uint8Array): PeerResponse {
  const reader = new WireReader(payload);
  const id = reader.u32();
  const ok = reader.u8();
  if (ok > 1) throw peerProtocolError(`boolean ${ok}`);
  if (ok === 1) {
    const body = reader.bytes();
    reader.end();
    return { id, ok: true, payload: body };
  }
  const code = reader.text();
  const message = reader.text();
  reader.end();
  return { id, ok: false, code, message };
}

/** The error an error answer stands for: the peer's own code if Synod knows it. */
export function errorOfResponse(response: PeerResponse & { ok: false }): SynodError {
  if (Object.hasOwn(errorCodes, response.code)) {
    return new SynodError(response.code as ErrorCode, response.message);
  }
  return new SynodError('SYNOD_PEER_UNAVAILABLE', `peer failed: ${response.message}`);
}
