/**
 * Lease requests a follower forwards to the leader over the peer transport, as etcd forwards
 * LeaseRenew and LeaseTimeToLive over its peer port. The follower side is a `LeaseLeaderClient`
 * that sends to whoever it currently believes leads; the leader side registers the handlers. A
 * lease ID travels as 8 big-endian bytes, an answer as a signed 8-byte count of seconds.
 */

import { SynodError } from '../../base/index.js';
import type { NodeId } from '../../raft/index.js';
import type { PeerTransport } from '../peer/peer-transport.js';
import type { LeaseLeaderClient } from './leader-endpoint.js';

const keepAliveMethod = 'lease.keepAlive';
const timeToLiveMethod = 'lease.timeToLive';

function encodeInt64(value: bigint): Uint8Array {
  const bytes = new Uint8Array(8);
  new DataView(bytes.buffer).setBigInt64(0, BigInt.asIntN(64, value));
  return bytes;
}

function decodeInt64(bytes: Uint8Array): bigint {
  if (bytes.length !== 8) throw new SynodError('SYNOD_PEER_PROTOCOL', 'peer protocol: int64 of 8 bytes');
  return new DataView(bytes.buffer, bytes.byteOffset, 8).getBigInt64(0);
}

/** The follower side: asks the leader known at call time. */
export function leaseLeaderOverPeers(options: {
  readonly transport: PeerTransport;
  readonly leaderId: () => NodeId;
}): LeaseLeaderClient {
  const call = async (method: string, id: bigint): Promise<number> => {
    const leader = options.leaderId();
    if (leader === 0) throw new SynodError('SYNOD_NO_LEADER');
    const answer = await options.transport.request(leader, method, encodeInt64(id));
    return Number(decodeInt64(answer));
  };
  return Object.freeze({
    keepAlive: (id: bigint) => call(keepAliveMethod, id),
    timeToLive: (id: bigint) => call(timeToLiveMethod, id),
  });
}

/** The leader side: answers forwarded requests from `leader` (which rejects unless it leads). */
export function serveLeaseRequestsToPeers(transport: PeerTransport, leader: LeaseLeaderClient): void {
  transport.handle(keepAliveMethod, async (payload) => encodeInt64(BigInt(await leader.keepAlive(decodeInt64(payload)))));
  transport.handle(timeToLiveMethod, async (payload) => encodeInt64(BigInt(await leader.timeToLive(decodeInt64(payload)))));
}
