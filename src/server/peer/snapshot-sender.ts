/**
 * Sends one Raft snapshot message to a peer on a connection of its own: hello (purpose
 * `snapshot`), one Raft frame, then wait for the peer's acknowledgement. The outcome is reported
 * exactly once: `finish` on the acknowledgement, `failure` on any error, close or timeout, after
 * which the leader's Raft probes the follower again.
 */

import type { Socket } from 'node:net';
import type { Logger } from 'pino';
import type { Message, NodeId } from '../../raft/index.js';
import { encodeFrame, frameKinds, FrameDecoder } from './frame.js';
import { encodeHello } from './hello.js';
import { encodeMessages } from './message-codec.js';
import type { PeerAddress } from './peer-link.js';
import { connectedEventOf, dialPeer, type PeerTls } from './peer-tls.js';

/** How long sending one snapshot may take, end to end. */
export const snapshotSendTimeoutMs = 5 * 60_000;

/** Options of `sendSnapshot`. */
export interface SnapshotSend {
  readonly address: PeerAddress;
  readonly message: Message;
  readonly selfId: NodeId;
  readonly clusterId: bigint;
  readonly onDone: (outcome: 'finish' | 'failure') => void;
  readonly logger: Logger;
  /** This member's peer certificate, for an https:// peer. */
  readonly tls: PeerTls | null;
}

/** Starts sending; returns the socket so the transport can destroy it on close. */
export function sendSnapshot(send: SnapshotSend): Socket {
  const { address, message } = send;
  const socket = dialPeer(address, send.tls);
  let done = false;
  const finish = (outcome: 'finish' | 'failure', why: string): void => {
    if (done) return;
    done = true;
    clearTimeout(timer);
    socket.destroy();
    const index = message.snapshot?.metadata.index;
    send.logger.info({ peer: message.to, index, outcome, why }, 'snapshot sent');
    send.onDone(outcome);
  };
  const timer = setTimeout(() => finish('failure', 'timed out'), snapshotSendTimeoutMs);
  timer.unref();
  socket.once(connectedEventOf(socket), () => {
    const hello = encodeHello({
      clusterId: send.clusterId, from: send.selfId, to: message.to, purpose: 'snapshot',
    });
    socket.write(encodeFrame(frameKinds.hello, hello));
    socket.write(encodeFrame(frameKinds.raft, encodeMessages([message])));
  });
  const decoder = new FrameDecoder(1024);
  socket.on('data', (chunk: Buffer) => {
    try {
      decoder.push(chunk);
      const frames = decoder.drain();
      if (frames.some((frame) => frame.kind === frameKinds.response)) finish('finish', 'acknowledged');
    } catch {
      finish('failure', 'malformed acknowledgement');
    }
  });
  socket.on('error', (error) => finish('failure', error.message));
  socket.on('close', () => finish('failure', 'connection closed'));
  return socket;
}
