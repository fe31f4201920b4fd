/**
 * The HTTP/1.1 endpoints etcd answers on the client port and on `--listen-metrics-urls`:
 * `/health` and `/version` as etcd 3.5 answers them, so load balancers and scripts that probe etcd
 * probe Synod unchanged, and `/metrics` in the Prometheus text format. Anything else is 404.
 */

import { createServer, type Server } from 'node:http';

/**
 * etcd's API level Synod implements; clients that branch on the server version see 3.4/3.5
 * behaviour.
 */
export const etcdVersionReported = { etcdserver: '3.5.0', etcdcluster: '3.5.0' } as const;

/** What the endpoints need to know about the member. */
export interface HealthSource {
  /** The known leader's id, or 0 with none. */
  readonly leaderId: number;
}

/** What `/metrics` answers with. */
export interface MetricsExposition {
  /** The Content-Type of `render`'s text. */
  readonly contentType: string;
  /** The exposition text, read now. */
  render(): Promise<string>;
}

/** Options of `createHttpEndpoints`. */
export interface HttpEndpointsOptions {
  readonly health: HealthSource;
  /** Synod's own version, reported beside etcd's in /version. */
  readonly synodVersion: string;
  /** Serves /metrics; without it /metrics is 404. */
  readonly metrics?: MetricsExposition;
}

/** An HTTP server (not listening: the caller listens or feeds it connections). */
export function createHttpEndpoints(options: HttpEndpointsOptions): Server {
  return createServer((request, response) => {
    const path = (request.url ?? '/').split('?')[0];
    response.setHeader('content-type', 'application/json');
    if (request.method !== 'GET' && request.method !== 'HEAD') {
      response.writeHead(405).end(JSON.stringify({ message: 'method not allowed' }));
    } else if (path === '/health') {
      const healthy = options.health.leaderId !== 0;
      response
        .writeHead(healthy ? 200 : 503)
        .end(JSON.stringify({ health: String(healthy), reason: healthy ? '' : 'RAFT NO LEADER' }));
    } else if (path === '/version') {
      const version = { ...etcdVersionReported, synod: options.synodVersion };
      response.writeHead(200).end(JSON.stringify(version));
    } else if (path === '/metrics' && options.metrics !== undefined) {
      const metrics = options.metrics;
      metrics.render().then(
        (text) => response.writeHead(200, { 'content-type': metrics.contentType }).end(text),
        (error: unknown) => response
          .writeHead(500, { 'content-type': 'text/plain; charset=utf-8' })
          .end(`metrics: ${error instanceof Error ? error.message : String(error)}\n`),
      );
    } else {
      response.writeHead(404).end(JSON.stringify({ message: '404 page not found' }));
    }
  });
}
