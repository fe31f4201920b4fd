/**
 * The first frame on every peer connection. It names the cluster and both ends, so a member
 * started with another `--initial-cluster` or token, or a stray client, is refused at once
 * (SYNOD_PEER_PROTOCOL) instead of injecting messages into the wrong group.
 */

import type { NodeId } from '../../raft/index.js';
import { peerProtocolError, WireReader, WireWriter } from './wire-buffer.js';

const magic = 0x53594e44; // "SYND"
/** Bumped when the peer wire changes incompatibly; members refuse other versions. */
export const peerProtocolVersion = 1;

/** Longest `fromPeerUrl` accepted. */
const fromPeerUrlBytesMax = 512;

/** What a connection is for. */
export type ConnectionPurpose = 'messages' | 'snapshot';

/** The hello's fields. */
export interface Hello {
  readonly clusterId: bigint;
  readonly from: NodeId;
  readonly to: NodeId;
  readonly purpose: ConnectionPurpose;
  /**
   * The dialer's own peer URL, when it knows it. A member that has just joined learns the
   * leader's address from it (invitation.ts): it cannot answer the leader before it has replayed
   * the membership from the log, and cannot get the log before it answers.
   */
  readonly fromPeerUrl?: string;
}

/** The payload of a hello frame. */
export function encodeHello(hello: Hello): Uint8Array {
  return new WireWriter(64)
    .u32(magic)
    .u8(peerProtocolVersion)
    .text(hello.clusterId.toString(16))
    .uint(hello.from)
    .uint(hello.to)
    .u8(hello.purpose === 'messages' ? 0 : 1)
    .text(hello.fromPeerUrl ?? '')
    .finish();
}

/** Decodes and checks a hello payload's shape (not who sent it). */
export function decodeHello(payload: Uint8Array): Hello {
  const reader = new WireReader(payload);
  if (reader.u32() !== magic) throw peerProtocolError('not a Synod peer');
  const version = reader.u8();
  if (version !== peerProtocolVersion) {
    throw peerProtocolError(`peer speaks protocol ${version}, this member ${peerProtocolVersion}`);
  }
  const clusterText = reader.text();
  if (!/^[0-9a-f]{1,16}$/.test(clusterText)) throw peerProtocolError('malformed cluster id');
  const from = reader.uint();
  const to = reader.uint();
  const purposeCode = reader.u8();
  if (purposeCode > 1) throw peerProtocolError(`unknown connection purpose ${purposeCode}`);
  const fromPeerUrl = reader.done ? '' : reader.text();
  if (fromPeerUrl.length > fromPeerUrlBytesMax) throw peerProtocolError('peer URL too long');
  reader.end();
  const purpose: ConnectionPurpose = purposeCode === 0 ? 'messages' : 'snapshot';
  return {
    clusterId: BigInt(`0x${clusterText}`), from, to, purpose,
    ...(fromPeerUrl === '' ? {} : { fromPeerUrl }),
  };
}
