/**
 * The ID service over HTTP/1.1 and JSON, for a person, a script or a browser:
 *
 * - `GET /v1/ids/{tag}` → `{"tag":"…","id":"…"}`; `GET /v1/ids/{tag}?count=N` →
 *   `{"tag":"…","ids":["…",…]}`. Ids are strings (see id-service.ts).
 * - `GET /v1/decode/{id}` →
 *   `{"id":"…","timestampMs":…,"datacenterId":…,"workerId":…,"sequence":…}`.
 * - `GET /metrics` (Prometheus text), `GET /livez`, `GET /readyz` (plain text, as etcd's probes).
 * - A failure is `{"code":"SYNOD_…","message":"…"}` with the status of request-status.ts
 *   (`code` is null for an internal error).
 *
 * The tag is one path segment, percent-decoded. Issuing ids answers only GET (a HEAD would
 * consume ids nobody sees) and says `cache-control: no-store`, since every GET is a new answer.
 */

import {
  createServer, type IncomingMessage, type Server, type ServerOptions, type ServerResponse,
} from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { assert } from '../../../base/index.js';
import { metricsContentType } from './id-metrics.js';
import type { IdService } from './id-service.js';
import { httpsOptionsOf, type ListenerTls } from './listener-tls.js';
import {
  IdRequestError, failureOf, invalidRequest, requestStatuses, type RequestFailure,
  type RequestStatus,
} from './request-status.js';
import { parseCountText } from './requests.js';

/** The longest request target: a 128-byte tag, percent-encoded, fits thrice over. */
export const urlBytesMax = 1_024;
/** The default of `httpConnectionsMax`. */
export const httpConnectionsMaxDefault = 1_024;
/** Headers must arrive within this; a slow client holds a connection no longer. */
export const httpHeadersTimeoutMs = 10_000;
/** A whole request (a batch waiting for its segment included) must finish within this. */
export const httpRequestTimeoutMs = 30_000;
/** The largest request head Node reads; bounds what one request buffers. */
export const httpHeaderBytesMax = 8_192;

const idsPath = '/v1/ids/';
const decodePath = '/v1/decode/';
const jsonContentType = 'application/json';
const textContentType = 'text/plain; charset=utf-8';

/** Options of `createIdHttpServer`. */
export interface IdHttpServerOptions {
  readonly service: IdService;
  /** Open connections at once; more are dropped by Node on accept. Default 1 024. */
  readonly httpConnectionsMax?: number;
  /** HTTPS with this identity (from `listenerTlsOf`); plain HTTP when absent or null. */
  readonly tls?: ListenerTls | null;
}

/**
 * An HTTP or HTTPS server answering the routes above; the caller listens and closes it. (An
 * https.Server is an http.Server to its callers: same events, same close methods.)
 */
export function createIdHttpServer(options: IdHttpServerOptions): Server {
  const httpOptions: ServerOptions = {
    maxHeaderSize: httpHeaderBytesMax,
    headersTimeout: httpHeadersTimeoutMs,
    requestTimeout: httpRequestTimeoutMs,
  };
  const onRequest = (request: IncomingMessage, response: ServerResponse): void =>
    route(options.service, request, response);
  const tls = options.tls ?? null;
  const server: Server = tls === null
    ? createServer(httpOptions, onRequest)
    : createHttpsServer({ ...httpOptions, ...httpsOptionsOf(tls) }, onRequest);
  server.maxConnections = options.httpConnectionsMax ?? httpConnectionsMaxDefault;
  assert(Number.isSafeInteger(server.maxConnections) && server.maxConnections > 0,
    'httpConnectionsMax is a positive count');
  return server;
}

function route(service: IdService, request: IncomingMessage, response: ServerResponse): void {
  // A GET carries no body; whatever is sent is read and dropped so the connection stays usable.
  request.resume();
  const target = request.url ?? '/';
  if (Buffer.byteLength(target) > urlBytesMax) {
    const status: RequestStatus = { ...requestStatuses.invalidArgument, httpStatus: 414 };
    sendError(response, new IdRequestError('SYNOD_INVALID_ARGUMENT',
      `a request target is at most ${urlBytesMax} bytes`, status));
    return;
  }
  const queryAt = target.indexOf('?');
  const path = queryAt < 0 ? target : target.slice(0, queryAt);
  const query = new URLSearchParams(queryAt < 0 ? '' : target.slice(queryAt + 1));
  const method = request.method ?? 'GET';
  if (path.startsWith(idsPath) || path.startsWith(decodePath)) {
    if (method !== 'GET') {
      sendMethodNotAllowed(response, 'GET');
    } else if (path.startsWith(idsPath)) {
      serveIds(service, path.slice(idsPath.length), query, response);
    } else {
      serveDecode(service, path.slice(decodePath.length), query, response);
    }
  } else if (path === '/metrics' || path === '/livez' || path === '/readyz') {
    if (method !== 'GET' && method !== 'HEAD') sendMethodNotAllowed(response, 'GET, HEAD');
    else serveOperations(service, path, response);
  } else {
    sendError(response, new IdRequestError('SYNOD_INVALID_ARGUMENT', `no route ${path}`,
      requestStatuses.notFound));
  }
}

function serveIds(
  service: IdService, encodedTag: string, query: URLSearchParams, response: ServerResponse,
): void {
  let tag: string;
  let count: number | null;
  try {
    tag = pathSegment(encodedTag);
    count = countOf(query, service.batchCountMax);
  } catch (error) {
    const mode = query.has('count') ? 'batch' : 'single';
    sendFailure(response, service.refuse(error, { protocol: 'http', mode }));
    return;
  }
  service.issue({ tag, count }, 'http').then(
    (ids) => sendJson(response, 200, count === null ? { tag, id: ids[0] } : { tag, ids }),
    (error: unknown) => sendError(response, error),
  );
}

function serveDecode(
  service: IdService, encodedId: string, query: URLSearchParams, response: ServerResponse,
): void {
  let id: string;
  try {
    if ([...query.keys()].length > 0) throw invalidRequest('a decode takes no query parameters');
    id = pathSegment(encodedId);
  } catch (error) {
    sendFailure(response, service.refuse(error, { protocol: 'http', mode: 'decode' }));
    return;
  }
  try {
    const parts = service.decode(id, 'http');
    sendJson(response, 200, { id, ...parts });
  } catch (error) {
    sendError(response, error);
  }
}

function serveOperations(service: IdService, path: string, response: ServerResponse): void {
  if (path === '/metrics') {
    response.writeHead(200, { 'content-type': metricsContentType }).end(service.metrics.render());
  } else if (path === '/livez') {
    response.writeHead(200, { 'content-type': textContentType }).end('ok\n');
  } else {
    void service.readyFailure().then((failure) => {
      response.writeHead(failure === null ? 200 : 503, { 'content-type': textContentType })
        .end(failure === null ? 'ok\n' : `not ready: ${failure}\n`);
    });
  }
}

/** The decoded text of one path segment: no "/" left inside, valid percent-encoding. */
function pathSegment(encoded: string): string {
  if (encoded.includes('/')) throw invalidRequest('a tag or id is one path segment, without "/"');
  try {
    return decodeURIComponent(encoded);
  } catch {
    throw invalidRequest('the path is not valid percent-encoded UTF-8');
  }
}

/** `?count=N` once, or nothing (the single mode); any other parameter is refused. */
function countOf(query: URLSearchParams, countMax: number): number | null {
  const counts = query.getAll('count');
  for (const key of query.keys()) {
    if (key !== 'count') throw invalidRequest(`unknown query parameter ${JSON.stringify(key)}`);
  }
  if (counts.length === 0) return null;
  if (counts.length > 1) throw invalidRequest('count is given once');
  return parseCountText(counts[0]!, countMax);
}

function sendJson(response: ServerResponse, statusCode: number, body: object): void {
  response.writeHead(statusCode, {
    'content-type': jsonContentType,
    'cache-control': 'no-store',
  }).end(JSON.stringify(body));
}

function sendError(response: ServerResponse, error: unknown): void {
  // failureOf rethrows an AssertionFailure: inside a promise callback it becomes an unhandled
  // rejection, which ends the process, as a bug must.
  sendFailure(response, failureOf(error));
}

function sendFailure(response: ServerResponse, failure: RequestFailure): void {
  sendJson(response, failure.status.httpStatus, { code: failure.code, message: failure.message });
}

function sendMethodNotAllowed(response: ServerResponse, allowed: string): void {
  response.setHeader('allow', allowed);
  const status: RequestStatus = { ...requestStatuses.invalidArgument, httpStatus: 405 };
  sendError(response, new IdRequestError('SYNOD_INVALID_ARGUMENT',
    `this path answers ${allowed} only`, status));
}
