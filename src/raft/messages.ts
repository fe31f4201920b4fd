/** Building messages with every field present, so peers never see `undefined`. */

import type { Message, MessageType, NodeId } from './types.js';

const emptyBytes = new Uint8Array(0);

/** The fields a caller sets; the rest default to zero or empty. */
export type MessageFields = Partial<Message> & { type: MessageType; to: NodeId; from: NodeId };

/** A complete message from `fields`. */
export function newMessage(fields: MessageFields): Message {
  return {
    term: 0,
    logTerm: 0,
    index: 0,
    entries: [],
    commit: 0,
    reject: false,
    rejectHint: 0,
    snapshot: null,
    context: emptyBytes,
    leaseTick: 0,
    ...fields,
  };
}

/** Message types a node generates for itself; `step` rejects them from the network. */
export function isLocalMessage(type: MessageType): boolean {
  return type === 'hup' || type === 'beat' || type === 'check-quorum' || type === 'unreachable' || type === 'snapshot-status';
}

/** Responses: their sender must be a known peer for the leader to act on them. */
export function isResponseMessage(type: MessageType): boolean {
  return type === 'app-resp' || type === 'vote-resp' || type === 'heartbeat-resp' || type === 'unreachable' || type === 'pre-vote-resp';
}

/** The response type matching a vote request type. */
export function voteResponseType(type: 'vote' | 'pre-vote'): 'vote-resp' | 'pre-vote-resp' {
  return type === 'vote' ? 'vote-resp' : 'pre-vote-resp';
}

/** Context bytes marking a campaign started by leadership transfer (etcd's campaignTransfer). */
export const transferContext = new TextEncoder().encode('transfer');

/** True when `context` equals `transferContext`. */
export function isTransferContext(context: Uint8Array): boolean {
  return bytesEqual(context, transferContext);
}

/** Byte-wise equality. */
export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** A map key for opaque context bytes. */
export function bytesKey(bytes: Uint8Array): string {
  let key = '';
  for (const byte of bytes) key += byte.toString(16).padStart(2, '0');
  return key;
}
