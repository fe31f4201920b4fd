/**
 * The HTTP/1.1 side of the client port: `/health` and `/version` as etcd answers them, so load
 * balancers and scripts that probe etcd probe Synod unchanged. Anything else is 404.
 */

import { createServer, type Server } from 'node:http';

/** etcd's API level Synod implements; clients that branch on the server version see 3.4/3.5 behaviour. */
export const etcdVersionReported = { etcdserver: '3.5.0', etcdcluster: '3.5.0' } as const;

/** What the endpoints need to know about the member. */
export interface HealthSource {
  /** The known leader's id, or 0 with none. */
  readonly leaderId: number;
}

/** An HTTP server (not listening: the client port hands it connections). */
export function createHttpEndpoints(source: HealthSource, synodVersion: string): Server {
  return createServer((request, response) => {
    const path = (request.url ?? '/').split('?')[0];
    response.setHeader('content-type', 'application/json');
    if (request.method !== 'GET' && request.method !== 'HEAD') {
      response.writeHead(405).end(JSON.stringify({ message: 'method not allowed' }));
    } else if (path === '/health') {
      const healthy = source.leaderId !== 0;
      response
        .writeHead(healthy ? 200 : 503)
        .end(JSON.stringify({ health: String(healthy), reason: healthy ? '' : 'RAFT NO LEADER' }));
    } else if (path === '/version') {
      response.writeHead(200).end(JSON.stringify({ ...etcdVersionReported, synod: synodVersion }));
    } else {
      response.writeHead(404).end(JSON.stringify({ message: '404 page not found' }));
    }
  });
}
