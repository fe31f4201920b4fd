/**
 * How a member started with `--initial-cluster-state existing` learns who it is. It cannot work
 * out its member id or the cluster id from its flags: the cluster picked both when `member add`
 * ran. But once the add is applied, the leader dials the new member's peer URL, and its hello
 * (hello.ts) names the cluster and the member it wants to reach. So the new member listens on its
 * peer port, takes the first well-formed `messages` hello as its invitation, and closes the
 * listener; the caller persists both ids and starts the real transport on the same port, where
 * the leader's link reconnects within its backoff.
 *
 * The trust is the one every peer link has: on an https:// peer URL, the dialer's certificate
 * (with --peer-client-cert-auth, verified against --peer-trusted-ca-file) and this member's own,
 * which the leader verifies before it sends the hello (peer-tls.ts); on plain TCP, whoever can
 * reach the peer port is believed to be a member (docs/operations.md says to keep such ports on
 * a private network).
 */

import type { Socket } from 'node:net';
import type { Logger } from 'pino';
import { isSynodError } from '../../base/index.js';
import type { NodeId } from '../../raft/index.js';
import { FrameDecoder, frameKinds } from './frame.js';
import { decodeHello } from './hello.js';
import { createPeerServer, type PeerTls } from './peer-tls.js';

/** The ids an invitation gives the new member. */
export interface Invitation {
  readonly clusterId: bigint;
  /** The id the cluster gave this member at `member add`; also its Raft node id. */
  readonly memberId: NodeId;
  /** The member that dialed (the leader, normally), and its peer URL if it sent one. */
  readonly from: NodeId;
  readonly fromPeerUrl?: string;
}

/** Largest hello frame accepted while waiting. */
const invitationFrameBytesMax = 1024;
/** How often the wait says it is still waiting. */
const waitingLogIntervalMs = 10_000;

/** Listens on `host:port` until a member of a cluster dials in; resolves with its hello's ids. */
export function awaitInvitation(options: {
  readonly host: string;
  readonly port: number;
  readonly logger: Logger;
  readonly signal?: AbortSignal;
  /** Listen with TLS (an https:// --listen-peer-urls); needs `tls`. */
  readonly secure?: boolean;
  /** This member's peer certificate. */
  readonly tls?: PeerTls | null;
}): Promise<Invitation> {
  const sockets = new Set<Socket>();
  return new Promise<Invitation>((resolve, reject) => {
    const finish = (outcome: { invitation: Invitation } | { error: Error }): void => {
      clearInterval(reminder);
      options.signal?.removeEventListener('abort', onAbort);
      for (const socket of sockets) socket.destroy();
      peerServer.dispose();
      server.close(() => ('invitation' in outcome ? resolve(outcome.invitation) : reject(outcome.error)));
    };
    const onAbort = (): void => finish({ error: new Error('stopped while waiting to join') });
    const peerServer = createPeerServer({
      secure: options.secure ?? false, tls: options.tls ?? null, logger: options.logger,
      onConnection: (socket) => onConnection(socket),
    });
    const server = peerServer.server;
    // Every accepted connection, TLS handshakes included, is closed when the wait ends.
    server.on('connection', (socket: Socket) => {
      sockets.add(socket);
      socket.once('close', () => sockets.delete(socket));
    });
    const onConnection = (socket: Socket): void => {
      socket.on('error', () => socket.destroy());
      const decoder = new FrameDecoder(invitationFrameBytesMax);
      socket.on('data', (chunk: Buffer) => {
        try {
          decoder.push(chunk);
          const frame = decoder.next();
          if (frame === null) return;
          const hello = frame.kind === frameKinds.hello ? decodeHello(frame.payload) : null;
          if (hello === null || hello.purpose !== 'messages' || hello.clusterId === 0n) {
            socket.destroy();
            return;
          }
          finish({ invitation: {
            clusterId: hello.clusterId, memberId: hello.to, from: hello.from,
            ...(hello.fromPeerUrl === undefined ? {} : { fromPeerUrl: hello.fromPeerUrl }),
          } });
        } catch (error) {
          if (!isSynodError(error, 'SYNOD_PEER_PROTOCOL')) throw error;
          socket.destroy();
        }
      });
    };
    const reminder = setInterval(() => {
      options.logger.info('waiting for the cluster to contact this member (run `member add` on the cluster first)');
    }, waitingLogIntervalMs);
    reminder.unref();
    options.signal?.addEventListener('abort', onAbort, { once: true });
    server.once('error', (error) => finish({ error }));
    server.listen(options.port, options.host, () => {
      options.logger.info({ port: options.port }, 'joining: waiting for the cluster to contact this member');
    });
  });
}
