/**
 * The HTTP/1.1 endpoints etcd answers on the client port and on `--listen-metrics-urls`:
 * `/health` and `/version` as etcd 3.5 answers them, `/livez` and `/readyz` as etcd 3.5.11 does,
 * so load balancers and scripts that probe etcd probe Synod unchanged, and `/metrics` in the
 * Prometheus text format. With a gateway (client ports only), `/v3/…` and `/v3beta/…` are
 * etcd's JSON gateway (gateway/). Anything else is 404.
 */

import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AlarmType } from '../kv/mvcc-store.js';
import { isGatewayPath } from './gateway/routes.js';

/**
 * etcd's API level Synod implements; clients that branch on the server version see 3.4/3.5
 * behaviour.
 */
export const etcdVersionReported = { etcdserver: '3.5.0', etcdcluster: '3.5.0' } as const;

/** What the endpoints need to know about the member (a RaftNode is one). */
export interface HealthSource {
  /** The known leader's id, or 0 with none. */
  readonly leaderId: number;
  /** The applied state, whose alarms /readyz reads; without it no alarm is seen. */
  readonly stateMachine?: { readonly store: { hasAlarm(alarm: AlarmType): boolean } };
}

/** Serves the JSON gateway's paths (`Gateway` in gateway/gateway.ts). */
export interface GatewayHandler {
  serve(request: IncomingMessage, response: ServerResponse): void;
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
  /**
   * etcd's --max-request-bytes, which bounds the gateway's request bodies (default 1.5 MiB);
   * `listenClientUrl` reads it when it makes the gateway.
   */
  readonly maxRequestBytes?: number;
  /** Serves /v3/ and /v3beta/; without it they are unknown paths. `listenClientUrl` sets it. */
  readonly gateway?: GatewayHandler;
}

/** An HTTP server (not listening: the caller listens or feeds it connections). */
export function createHttpEndpoints(options: HttpEndpointsOptions): Server {
  return createServer((request, response) => {
    const [path = '/', query = ''] = (request.url ?? '/').split('?');
    if (options.gateway !== undefined && isGatewayPath(path)) {
      options.gateway.serve(request, response);
      return;
    }
    response.setHeader('content-type', 'application/json');
    const probe = probeOf(path);
    if (request.method !== 'GET' && request.method !== 'HEAD') {
      response.writeHead(405).end(JSON.stringify({ message: 'method not allowed' }));
    } else if (probe !== null) {
      answerProbe(response, runProbe(probe, options.health, new URLSearchParams(query)));
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

/** One check of /livez or /readyz: its etcd name and why it fails now, or null when it passes. */
interface ProbeCheck {
  readonly name: string;
  readonly failure: (health: HealthSource) => string | null;
}

const leaderKnown: ProbeCheck = {
  name: 'linearizable_read',
  failure: (health) => (health.leaderId === 0 ? 'etcdserver: no leader' : null),
};
// Synod's serializable reads are local to the process: if it answers HTTP, they are served.
const serializableRead: ProbeCheck = { name: 'serializable_read', failure: () => null };

function alarmCheck(name: string, alarm: AlarmType): ProbeCheck {
  return {
    name,
    failure: (health) => (health.stateMachine?.store.hasAlarm(alarm) === true
      ? `alarm activated: ${alarm}` : null),
  };
}

/**
 * etcd 3.5.11's probes (etcdhttp/health.go), in a fixed order (etcd's is a Go map's). /livez:
 * the process serves. /readyz: no CORRUPT alarm, no NOSPACE alarm (a Synod addition: a member out
 * of space takes no writes), and a known leader, which stands in for etcd's linearizable read
 * (a ReadIndex round) and needs no round trip.
 */
const probes: Readonly<Record<'livez' | 'readyz', readonly ProbeCheck[]>> = Object.freeze({
  livez: [serializableRead],
  readyz: [
    alarmCheck('data_corruption', 'CORRUPT'), alarmCheck('no_space', 'NOSPACE'),
    serializableRead, leaderKnown,
  ],
});

/** A probe path: `/livez`, `/readyz`, or one check of them (`/readyz/data_corruption`). */
interface ProbeRequest {
  readonly checks: readonly ProbeCheck[];
  /** Only the named check runs, and `exclude` does not apply. */
  readonly single: boolean;
}

function probeOf(path: string): ProbeRequest | null {
  const [, root, name, ...rest] = path.split('/');
  if ((root !== 'livez' && root !== 'readyz') || rest.length > 0) return null;
  if (name === undefined) return { checks: probes[root], single: false };
  const check = probes[root].find((each) => each.name === name);
  return check === undefined ? null : { checks: [check], single: true };
}

interface ProbeOutcome {
  readonly healthy: boolean;
  /** etcd's per-check lines: `[+]name ok` or `[-]name failed: reason`. */
  readonly report: string;
  readonly verbose: boolean;
}

function runProbe(probe: ProbeRequest, health: HealthSource, query: URLSearchParams): ProbeOutcome {
  const excluded = new Set(probe.single ? [] : query.getAll('exclude'));
  let healthy = true;
  let report = '';
  for (const check of probe.checks) {
    if (excluded.has(check.name)) continue;
    const failure = check.failure(health);
    if (failure !== null) healthy = false;
    report += failure === null ? `[+]${check.name} ok\n` : `[-]${check.name} failed: ${failure}\n`;
  }
  return { healthy, report, verbose: query.has('verbose') };
}

/** As etcd: 200 `ok` (after the report when `?verbose`), or 503 with the report, in plain text. */
function answerProbe(response: ServerResponse, outcome: ProbeOutcome): void {
  response.setHeader('content-type', 'text/plain; charset=utf-8');
  response.setHeader('x-content-type-options', 'nosniff');
  if (!outcome.healthy) {
    response.writeHead(503).end(`${outcome.report}\n`);
  } else {
    response.writeHead(200).end(`${outcome.verbose ? outcome.report : ''}ok\n`);
  }
}
