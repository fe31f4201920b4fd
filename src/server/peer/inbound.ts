/**
 * One connection a peer opened to this member. Until the peer's hello arrives only small frames
 * are accepted, so an unknown caller cannot make this member buffer a snapshot-sized frame; a
 * hello naming another cluster, another member or a stranger closes the connection. After it:
 *
 * - on a `messages` connection, Raft batches (checked to be from the caller and to this member)
 *   and forwarded requests, answered on the same connection;
 * - on a `snapshot` connection, exactly one Raft frame holding one `snap` message, acknowledged
 *   once handed to Raft.
 */

import type { Socket } from 'node:net';
import type { Logger } from 'pino';
import { isSynodError, SynodError } from '../../base/index.js';
import type { Message, NodeId } from '../../raft/index.js';
import { encodeFrame, frameKinds, FrameDecoder, type Frame } from './frame.js';
import { decodeHello, type Hello } from './hello.js';
import { decodeMessages } from './message-codec.js';
import { decodeRequest, encodeResponse, type PeerRequest, type PeerResponse } from './rpc-codec.js';
import { peerProtocolError } from './wire-buffer.js';

/** Frames accepted before the hello. */
export const helloFrameBytesMax = 1024;
/** How long a new connection may take to say hello. */
export const helloTimeoutMs = 10_000;
/** Forwarded requests served at once on one connection. */
export const requestsPerConnectionMax = 1024;

/** What the transport gives each inbound connection. */
export interface InboundHandlers {
  readonly selfId: NodeId;
  readonly clusterId: bigint;
  readonly isPeer: (id: NodeId) => boolean;
  readonly frameBytesMax: number;
  readonly logger: Logger;
  readonly onMessages: (messages: Message[]) => void;
  readonly onRequest: (method: string, payload: Uint8Array, from: NodeId) => Promise<Uint8Array>;
}

/** Serves `socket` until it closes. */
export function acceptConnection(socket: Socket, handlers: InboundHandlers): void {
  socket.setNoDelay(true);
  const decoder = new FrameDecoder(helloFrameBytesMax);
  let hello: Hello | null = null;
  let requestsInflight = 0;
  const helloTimer = setTimeout(() => socket.destroy(), helloTimeoutMs);
  helloTimer.unref();
  const onFrame = (frame: Frame): void => {
    if (hello === null) {
      hello = checkHello(frame, handlers);
      clearTimeout(helloTimer);
      decoder.setFrameBytesMax(handlers.frameBytesMax);
      return;
    }
    if (frame.kind === frameKinds.raft) {
      const messages = checkMessages(decodeMessages(frame.payload), hello, handlers.selfId);
      handlers.onMessages(messages);
      if (hello.purpose === 'snapshot') {
        const ack: PeerResponse = { id: 0, ok: true, payload: new Uint8Array(0) };
        socket.end(encodeFrame(frameKinds.response, encodeResponse(ack)));
      }
      return;
    }
    if (frame.kind === frameKinds.request && hello.purpose === 'messages') {
      if (requestsInflight >= requestsPerConnectionMax) throw peerProtocolError('too many requests');
      const request = decodeRequest(frame.payload);
      requestsInflight += 1;
      serveRequest(socket, request, hello.from, handlers).finally(() => {
        requestsInflight -= 1;
      });
      return;
    }
    throw peerProtocolError(`unexpected frame kind ${frame.kind}`);
  };
  socket.on('data', (chunk: Buffer) => {
    try {
      decoder.push(chunk);
      for (let frame = decoder.next(); frame !== null; frame = decoder.next()) onFrame(frame);
    } catch (error) {
      if (!isSynodError(error, 'SYNOD_PEER_PROTOCOL')) throw error;
      handlers.logger.warn({ peer: hello?.from, err: error.message }, 'peer protocol error');
      socket.destroy();
    }
  });
  socket.on('error', () => socket.destroy());
  socket.once('close', () => clearTimeout(helloTimer));
}

function checkHello(frame: Frame, handlers: InboundHandlers): Hello {
  if (frame.kind !== frameKinds.hello) throw peerProtocolError('expected a hello');
  const hello = decodeHello(frame.payload);
  if (hello.clusterId !== handlers.clusterId) {
    throw peerProtocolError(`hello from cluster ${hello.clusterId.toString(16)}, not this one`);
  }
  if (hello.to !== handlers.selfId) throw peerProtocolError(`hello addressed to member ${hello.to}`);
  if (!handlers.isPeer(hello.from)) throw peerProtocolError(`hello from unknown member ${hello.from}`);
  return hello;
}

function checkMessages(messages: Message[], hello: Hello, selfId: NodeId): Message[] {
  for (const message of messages) {
    if (message.from !== hello.from || message.to !== selfId) {
      throw peerProtocolError(`message ${message.from}→${message.to} on a connection from ${hello.from}`);
    }
    if ((message.type === 'snap') !== (hello.purpose === 'snapshot')) {
      throw peerProtocolError(`${message.type} message on a ${hello.purpose} connection`);
    }
  }
  if (hello.purpose === 'snapshot' && messages.length !== 1) {
    throw peerProtocolError('a snapshot connection carries one message');
  }
  return messages;
}

async function serveRequest(
  socket: Socket, request: PeerRequest, from: NodeId, handlers: InboundHandlers,
): Promise<void> {
  let response: PeerResponse;
  try {
    const answer = await handlers.onRequest(request.method, request.payload, from);
    response = { id: request.id, ok: true, payload: answer };
  } catch (error) {
    if (!(error instanceof SynodError)) throw error;
    response = { id: request.id, ok: false, code: error.code, message: error.message };
  }
  if (!socket.destroyed) socket.write(encodeFrame(frameKinds.response, encodeResponse(response)));
}
