/**
 * etcd's HTTP/JSON gateway (grpc-gateway v1, as etcd 3.5 serves it on the client port):
 * `POST /v3/kv/range` and the other routes of routes.ts, `/v3beta/…` rewritten to `/v3/…`.
 *
 * Decision: like etcd's own gateway (embed/serve.go `registerGateway`), this is a gRPC client of
 * the member's own client port over loopback, using the stubs' (de)serializers from
 * `loadEtcdProto`. Every rule the gRPC API applies (validation, size limits, error statuses and
 * messages, auth once it lands) therefore applies to HTTP once, with no second implementation
 * that could drift. The cost is a loopback hop and a JSON conversion per request; the gateway is
 * for people, scripts and browsers, not for throughput.
 *
 * The HTTP shape follows grpc-gateway v1.16 (etcd 3.5):
 * - JSON as json-codec.ts describes; any Content-Type is read as JSON, as etcd does.
 * - A unary call answers 200 with the response object. A stream (Watch, LeaseKeepAlive, Snapshot,
 *   Observe) answers newline-delimited `{"result":{…}}` objects; a stream that fails ends with
 *   `{"error":{"grpc_code","http_code","message","http_status"}}`. The HTTP status is sent with
 *   the first message, so a stream that fails at once answers with the error's status.
 * - A client-streaming body is a sequence of JSON objects, each sent as soon as it is complete;
 *   the end of the body half-closes the call (a watch stays open; a keep-alive ends, as in etcd).
 * - Errors are `{"error":msg,"code":grpcCode,"message":msg}` with grpc-gateway's HTTP status for
 *   the code (`httpStatusOfGrpcCode`). An unknown path is 404 and a known one with another method
 *   than POST is 405, both in plain text like Go's `http.Error`; OPTIONS answers 200 (etcd's CORS
 *   preflight), and every answer carries etcd's default CORS headers.
 * - `Authorization` is passed as the `token` metadata (etcd reads the token there);
 *   `Grpc-Metadata-<key>` headers are passed as `<key>` (e.g. `hasleader`).
 *
 * Bounds (where etcd's gateway has none): a request body, or one request of a streamed body, may
 * hold `gatewayBodyBytesMax(maxRequestBytes)` bytes — a request at --max-request-bytes written as
 * base64 JSON, plus a margin; a larger one is 413. At most `gatewayRequestsInflightMax` requests
 * are served at once and at most `gatewayBodyBytesBufferedMax` body bytes are buffered across
 * them; beyond either the answer is 429. Bodies that are not JSON, or JSON that does not fit the
 * message, are 400 (etcd's gateway answers a stream's malformed first request with 500, code 2;
 * Synod answers 400, code 3, as for unary calls).
 */

import type { IncomingMessage, ServerResponse } from 'node:http';
import { STATUS_CODES } from 'node:http';
import {
  Client, Metadata, credentials, status as GrpcStatus, type ChannelCredentials,
  type ClientDuplexStream, type ClientReadableStream, type ServiceError, type StatusObject,
} from '@grpc/grpc-js';
import type { MethodDefinition, ProtobufTypeDefinition } from '@grpc/proto-loader';
import { assert, SynodError } from '../../base/index.js';
import { maxRequestBytesDefault } from '../flags.js';
import { loadEtcdProto, type EtcdProto } from '../grpc/proto.js';
import { GatewayJsonCodec, type JsonObject } from './json-codec.js';
import { JsonValueSplitter, parseJsonBody, type SplitResult } from './json-text.js';
import { gatewayRoutes, rewriteGatewayPath } from './routes.js';

/** The metadata key that marks a call made by the gateway (see `gatewayMetadataOf`). */
export const gatewayCallMetadataKey = 'synod-gateway';

/** Added to a body's bound beyond the base64 size of --max-request-bytes: JSON field names. */
export const gatewayBodyMarginBytes = 64 * 1024;
/** Gateway requests (unary or streaming) served at once; more are answered 429. */
export const gatewayRequestsInflightMax = 1024;
/** Body bytes buffered across every gateway request at once; beyond, 429. */
export const gatewayBodyBytesBufferedMax = 64 * 1024 * 1024;

/**
 * The largest body (or streamed request) the gateway reads: `maxRequestBytes` of binary data as
 * base64 takes 4/3 as many characters, plus `gatewayBodyMarginBytes` of JSON around it. The gRPC
 * server still applies --max-request-bytes itself ("etcdserver: request is too large").
 */
export function gatewayBodyBytesMax(maxRequestBytes: number): number {
  return Math.ceil((maxRequestBytes * 4) / 3) + gatewayBodyMarginBytes;
}

/**
 * grpc-gateway v1.16's HTTPStatusFromCode: 400 for InvalidArgument, FailedPrecondition and
 * OutOfRange (etcd 3.4's older grpc-gateway answered FailedPrecondition with 412), 401, 403, 404,
 * 408 (Canceled), 409 (AlreadyExists, Aborted), 429 (ResourceExhausted), 501 (Unimplemented),
 * 503 (Unavailable), 504 (DeadlineExceeded), 500 otherwise.
 */
export function httpStatusOfGrpcCode(code: number): number {
  switch (code) {
    case GrpcStatus.OK: return 200;
    case GrpcStatus.CANCELLED: return 408;
    case GrpcStatus.INVALID_ARGUMENT:
    case GrpcStatus.FAILED_PRECONDITION:
    case GrpcStatus.OUT_OF_RANGE: return 400;
    case GrpcStatus.DEADLINE_EXCEEDED: return 504;
    case GrpcStatus.NOT_FOUND: return 404;
    case GrpcStatus.ALREADY_EXISTS:
    case GrpcStatus.ABORTED: return 409;
    case GrpcStatus.PERMISSION_DENIED: return 403;
    case GrpcStatus.UNAUTHENTICATED: return 401;
    case GrpcStatus.RESOURCE_EXHAUSTED: return 429;
    case GrpcStatus.UNIMPLEMENTED: return 501;
    case GrpcStatus.UNAVAILABLE: return 503;
    default: return 500;
  }
}

/** Options of `new Gateway`. */
export interface GatewayOptions {
  /**
   * The member's own client port as a gRPC target (`127.0.0.1:2379`), read at the first request:
   * the port is known only once it listens.
   */
  readonly target: () => string;
  /** etcd's --max-request-bytes (default 1.5 MiB); bounds bodies (`gatewayBodyBytesMax`). */
  readonly maxRequestBytes?: number;
  /** The loaded protos; loaded at the first request when absent. */
  readonly proto?: EtcdProto;
  /**
   * How to reach the port: insecure by default; TLS credentials when the port serves TLS
   * (`listenClientUrl` makes them; see `setCredentials` for certificate reloads).
   */
  readonly credentials?: ChannelCredentials;
  /** More grpc-js channel options for the gateway's client (e.g. the TLS server name). */
  readonly channelOptions?: Readonly<Record<string, string | number>>;
}

/** One route resolved against the loaded protos. */
interface ResolvedRoute {
  readonly method: MethodDefinition<object, object>;
  readonly requestType: string;
  readonly responseType: string;
}

/** What the gateway has once the protos are loaded and the client is made. */
interface GatewayBackend {
  readonly client: Client;
  readonly codec: GatewayJsonCodec;
  readonly routes: ReadonlyMap<string, ResolvedRoute>;
}

/** The status of a failed call as the gateway answers it. */
interface CallFailure {
  readonly code: number;
  readonly message: string;
}

const corsHeaders = Object.freeze({
  'access-control-allow-methods': 'POST, GET, OPTIONS, PUT, DELETE',
  'access-control-allow-origin': '*',
  'access-control-allow-headers': 'accept, content-type, authorization',
});

const jsonContentType = 'application/json';
const metadataKeyLegal = /^[0-9a-z_.-]+$/;
const metadataValueLegal = /^[ -~]*$/;

/** etcd's gateway on one client port; `serve` answers one HTTP request under /v3/ or /v3beta/. */
export class Gateway {
  readonly #target: () => string;
  readonly #maxRequestBytes: number;
  readonly #bodyBytesMax: number;
  #proto: EtcdProto | null;
  #credentials: ChannelCredentials;
  readonly #channelOptions: Readonly<Record<string, string | number>>;
  #backend: GatewayBackend | null = null;
  #requestsInflight = 0;
  #bodyBytesBuffered = 0;
  #closed = false;

  constructor(options: GatewayOptions) {
    const maxRequestBytes = options.maxRequestBytes ?? maxRequestBytesDefault;
    if (!Number.isSafeInteger(maxRequestBytes) || maxRequestBytes <= 0) {
      throw new SynodError('SYNOD_INVALID_CONFIG', `gateway: maxRequestBytes ${maxRequestBytes}`);
    }
    this.#target = options.target;
    this.#maxRequestBytes = maxRequestBytes;
    this.#bodyBytesMax = gatewayBodyBytesMax(maxRequestBytes);
    this.#proto = options.proto ?? null;
    this.#credentials = options.credentials ?? credentials.createInsecure();
    this.#channelOptions = options.channelOptions ?? {};
  }

  /** The largest body or streamed request read, in bytes. */
  get bodyBytesMax(): number {
    return this.#bodyBytesMax;
  }

  /** Requests being served now. */
  get requestsInflight(): number {
    return this.#requestsInflight;
  }

  /** Answers one request whose path is under /v3/ or /v3beta/. Never throws for any input. */
  serve(request: IncomingMessage, response: ServerResponse): void {
    for (const [name, value] of Object.entries(corsHeaders)) response.setHeader(name, value);
    const path = rewriteGatewayPath((request.url ?? '/').split('?')[0]!);
    if (request.method === 'OPTIONS') {
      response.writeHead(200).end();
      return;
    }
    if (!gatewayRoutes.has(path)) return plainError(response, 404, 'Not Found');
    if (request.method !== 'POST') return plainError(response, 405, 'Method Not Allowed');
    if (this.#closed) {
      return jsonError(response, { code: GrpcStatus.UNAVAILABLE, message: 'gateway: closing' });
    }
    if (this.#requestsInflight >= gatewayRequestsInflightMax) {
      const message = `gateway: more than ${gatewayRequestsInflightMax} requests in flight`;
      return jsonError(response, { code: GrpcStatus.RESOURCE_EXHAUSTED, message });
    }
    this.#requestsInflight++;
    response.once('close', () => this.#requestsInflight--);
    const backend = this.#open();
    const route = backend.routes.get(path);
    assert(route !== undefined, `route ${path} resolves against the loaded protos`);
    const exchange = new Exchange({ gateway: this, backend, route, request, response });
    if (route.method.requestStream) exchange.serveClientStream();
    else exchange.serveSingleRequest();
  }

  /**
   * Dials with `next` from now on (a reloaded client certificate): the current client is closed
   * and the next request opens a new one. Calls in flight on the old client may be cut.
   */
  setCredentials(next: ChannelCredentials): void {
    this.#credentials = next;
    const backend = this.#backend;
    if (backend === null) return;
    this.#backend = null;
    backend.client.close();
  }

  /** Closes the gRPC client; requests after this are answered 503. */
  close(): void {
    this.#closed = true;
    this.#backend?.client.close();
  }

  /** Takes `bytes` from the shared body budget; false (and nothing taken) when it is spent. */
  reserveBodyBytes(bytes: number): boolean {
    assert(bytes >= 0, 'a reservation is not negative');
    if (this.#bodyBytesBuffered + bytes > gatewayBodyBytesBufferedMax) return false;
    this.#bodyBytesBuffered += bytes;
    return true;
  }

  /** Gives back bytes taken by `reserveBodyBytes`. */
  releaseBodyBytes(bytes: number): void {
    this.#bodyBytesBuffered -= bytes;
    assert(this.#bodyBytesBuffered >= 0, 'body bytes released at most once');
  }

  #open(): GatewayBackend {
    if (this.#backend !== null) return this.#backend;
    const proto = this.#proto ?? loadEtcdProto();
    this.#proto = proto;
    const target = this.#target();
    assert(target !== '', 'the client port listens before it serves the gateway');
    // Responses may be as large as the server sends (etcd's gateway dials with MaxInt32).
    const client = new Client(target, this.#credentials, {
      ...this.#channelOptions,
      'grpc.max_receive_message_length': -1,
      'grpc.max_send_message_length': -1,
    });
    const codec = GatewayJsonCodec.of(proto.packageDefinition);
    const routes = new Map<string, ResolvedRoute>();
    for (const [path, { service, method }] of gatewayRoutes) {
      routes.set(path, resolveRoute(proto, codec, service, method));
    }
    this.#backend = { client, codec, routes };
    return this.#backend;
  }

  /** Fixed for the gateway's life; read by each exchange. */
  get limits(): { readonly bodyBytesMax: number; readonly maxRequestBytes: number } {
    return { bodyBytesMax: this.#bodyBytesMax, maxRequestBytes: this.#maxRequestBytes };
  }
}

function resolveRoute(
  proto: EtcdProto, codec: GatewayJsonCodec, service: string, method: string,
): ResolvedRoute {
  const definition = proto.packageDefinition[service];
  assert(definition !== undefined && !('format' in definition), `${service} is a loaded service`);
  const methodDefinition = definition[method] as MethodDefinition<object, object> | undefined;
  assert(methodDefinition !== undefined, `${service} has a method ${method}`);
  const packageName = service.slice(0, service.lastIndexOf('.'));
  const typeName = (definition: ProtobufTypeDefinition): string => {
    const name = `${packageName}.${(definition.type as { name: string }).name}`;
    assert(codec.hasMessage(name), `${name} is a loaded message`);
    return name;
  };
  return {
    method: methodDefinition,
    requestType: typeName(methodDefinition.requestType),
    responseType: typeName(methodDefinition.responseType),
  };
}

/** Everything one HTTP request needs while it is served. */
interface ExchangeFields {
  readonly gateway: Gateway;
  readonly backend: GatewayBackend;
  readonly route: ResolvedRoute;
  readonly request: IncomingMessage;
  readonly response: ServerResponse;
}

/**
 * One HTTP request and the gRPC call it becomes. It holds body bytes from the gateway's budget
 * while it buffers them and gives them back when its response closes.
 */
class Exchange {
  readonly #fields: ExchangeFields;
  #bytesReserved = 0;
  #answered = false;

  constructor(fields: ExchangeFields) {
    this.#fields = fields;
    fields.response.once('close', () => this.#reserveTo(0));
  }

  /** Unary and server-streaming calls: the whole body is one request. */
  serveSingleRequest(): void {
    const { request, gateway } = this.#fields;
    const { bodyBytesMax } = gateway.limits;
    const declared = Number(request.headers['content-length'] ?? 0);
    if (declared > bodyBytesMax) return this.#bodyTooLarge();
    const chunks: Buffer[] = [];
    let received = 0;
    const onData = (chunk: Buffer): void => {
      received += chunk.length;
      if (received > bodyBytesMax) return stop(() => this.#bodyTooLarge());
      if (!this.#reserveTo(received)) return stop(() => this.#budgetSpent());
      chunks.push(chunk);
    };
    const stop = (answer: () => void): void => {
      request.off('data', onData);
      request.off('end', onEnd);
      chunks.length = 0;
      this.#reserveTo(0);
      answer();
    };
    const onEnd = (): void => {
      const decoded = this.#decode(Buffer.concat(chunks, received).toString('utf8'));
      chunks.length = 0;
      this.#reserveTo(0);
      if (decoded !== null) this.#call(decoded);
    };
    request.on('data', onData);
    request.on('end', onEnd);
    request.on('error', () => {});
  }

  /** Watch and LeaseKeepAlive: each JSON object of the body is sent as it completes. */
  serveClientStream(): void {
    const { request, backend, route, gateway } = this.#fields;
    const splitter = new JsonValueSplitter(gateway.limits.bodyBytesMax);
    let call: ClientDuplexStream<object, object> | null = null;
    let sent = 0;
    let stopped = false;
    const open = (): ClientDuplexStream<object, object> => {
      const method = route.method;
      call = backend.client.makeBidiStreamRequest(
        method.path, method.requestSerialize, method.responseDeserialize, this.#metadata(),
      );
      this.#forward(call);
      call.on('drain', () => request.resume());
      return call;
    };
    const consume = (result: SplitResult): void => {
      for (const text of result.values) {
        if (stopped) return;
        const message = sent === 0 ? this.#decode(text) : this.#decodeQuietly(text);
        if (message === null) return stopSending();
        sent++;
        if (!(call ?? open()).write(message)) request.pause();
      }
      if (result.error === null || stopped) return;
      if (sent > 0) return stopSending();
      stopped = true;
      request.off('data', onData);
      if (result.error.tooLarge) this.#bodyTooLarge();
      else this.#answerError({ code: GrpcStatus.INVALID_ARGUMENT, message: result.error.message });
    };
    // Like grpc-gateway: a bad request after the first ends the sending side, not the stream.
    const stopSending = (): void => {
      if (stopped) return;
      stopped = true;
      request.off('data', onData);
      request.resume();
      // With no call open, the first request failed and was answered 400 already.
      if (call !== null) (call as ClientDuplexStream<object, object>).end();
    };
    const onData = (chunk: Buffer): void => {
      // The splitter takes nothing after its error; a chunk may already be on its way.
      if (stopped) return;
      consume(splitter.push(chunk));
      if (!stopped && !this.#reserveTo(splitter.pendingBytes)) {
        stopped = true;
        request.off('data', onData);
        if (call === null) this.#budgetSpent();
        else (call as ClientDuplexStream<object, object>).end();
      }
    };
    request.on('data', onData);
    request.on('error', () => {});
    request.on('end', () => {
      if (!stopped) consume(splitter.end());
      this.#reserveTo(0);
      if (stopped) return;
      stopped = true;
      (call ?? open()).end();
    });
  }

  /** Parses and converts one request; answers 400 and returns null when it does not fit. */
  #decode(text: string): Record<string, unknown> | null {
    const parsed = parseJsonBody(text);
    const decoded = parsed.ok
      ? this.#fields.backend.codec.decodeRequest(this.#fields.route.requestType, parsed.value)
      : parsed;
    if (decoded.ok) return decoded.message;
    this.#answerError({ code: GrpcStatus.INVALID_ARGUMENT, message: decoded.message });
    return null;
  }

  /** As `#decode`, for a streamed request after the first: the stream has answered already. */
  #decodeQuietly(text: string): Record<string, unknown> | null {
    const parsed = parseJsonBody(text);
    if (!parsed.ok) return null;
    const { backend, route } = this.#fields;
    const decoded = backend.codec.decodeRequest(route.requestType, parsed.value);
    return decoded.ok ? decoded.message : null;
  }

  #call(message: Record<string, unknown>): void {
    const { backend, route, response } = this.#fields;
    const method = route.method;
    if (method.responseStream) {
      this.#forward(backend.client.makeServerStreamRequest(
        method.path, method.requestSerialize, method.responseDeserialize, message, this.#metadata(),
      ));
      return;
    }
    const call = backend.client.makeUnaryRequest(
      method.path, method.requestSerialize, method.responseDeserialize, message, this.#metadata(),
      (error: ServiceError | null, value?: object) => {
        if (response.destroyed) return;
        if (error !== null) return this.#answerError(failureOf(error));
        assert(value !== undefined, 'a successful unary call has a response');
        const json = backend.codec.encodeResponse(route.responseType, value);
        this.#answer(200, JSON.stringify(json));
      },
    );
    response.once('close', () => call.cancel());
  }

  /** Writes a stream's messages as they come, then its end or its error. */
  #forward(call: ClientReadableStream<object>): void {
    const { backend, route, response } = this.#fields;
    let status: StatusObject | null = null;
    let ended = false;
    const finish = (): void => {
      if (status === null || !ended || response.destroyed) return;
      if (status.code === GrpcStatus.OK) {
        if (!response.headersSent) this.#streamHead(200);
        response.end();
        return;
      }
      const failure = { code: status.code, message: status.details };
      if (!response.headersSent) this.#streamHead(httpStatusOfGrpcCode(failure.code));
      response.end(JSON.stringify({ error: streamErrorOf(failure) }));
    };
    call.on('data', (message: object) => {
      if (response.destroyed) return;
      if (!response.headersSent) this.#streamHead(200);
      const result: JsonObject = backend.codec.encodeResponse(route.responseType, message);
      if (!response.write(`${JSON.stringify({ result })}\n`)) {
        call.pause();
        response.once('drain', () => call.resume());
      }
    });
    call.on('status', (received: StatusObject) => {
      status = received;
      finish();
    });
    call.on('end', () => {
      ended = true;
      finish();
    });
    call.on('error', () => {}); // The status carries it.
    response.once('close', () => call.cancel());
  }

  /**
   * Starts a streamed answer. A stream may stay silent for long (a watch on a quiet key), so the
   * client port's idle timeout is lifted for this connection, which closes after the stream.
   */
  #streamHead(statusCode: number): void {
    const { request, response } = this.#fields;
    request.socket.setTimeout(0);
    response.writeHead(statusCode, { 'content-type': jsonContentType, connection: 'close' });
  }

  /** Adjusts this request's share of the body budget to `bytes`; false when it cannot grow. */
  #reserveTo(bytes: number): boolean {
    const gateway = this.#fields.gateway;
    if (bytes > this.#bytesReserved && !gateway.reserveBodyBytes(bytes - this.#bytesReserved)) {
      return false;
    }
    if (bytes < this.#bytesReserved) gateway.releaseBodyBytes(this.#bytesReserved - bytes);
    this.#bytesReserved = bytes;
    return true;
  }

  #metadata(): Metadata {
    return gatewayMetadataOf(this.#fields.request);
  }

  #bodyTooLarge(): void {
    const { bodyBytesMax, maxRequestBytes } = this.#fields.gateway.limits;
    this.#discardBody();
    const message = `gateway: request body larger than ${bodyBytesMax} bytes ` +
      `(--max-request-bytes ${maxRequestBytes} as base64 JSON)`;
    this.#answer(413, errorBody({ code: GrpcStatus.RESOURCE_EXHAUSTED, message }));
  }

  #budgetSpent(): void {
    this.#discardBody();
    const message = `gateway: more than ${gatewayBodyBytesBufferedMax} body bytes buffered`;
    this.#answerError({ code: GrpcStatus.RESOURCE_EXHAUSTED, message });
  }

  /** Lets the rest of an unread body drain unbuffered, and closes the connection afterwards. */
  #discardBody(): void {
    this.#fields.response.setHeader('connection', 'close');
    this.#fields.request.resume();
  }

  #answerError(failure: CallFailure): void {
    this.#answer(httpStatusOfGrpcCode(failure.code), errorBody(failure));
  }

  #answer(statusCode: number, body: string): void {
    const response = this.#fields.response;
    if (this.#answered || response.headersSent || response.destroyed) return;
    this.#answered = true;
    response.writeHead(statusCode, {
      'content-type': jsonContentType, 'content-length': Buffer.byteLength(body),
    }).end(body);
  }
}

function failureOf(error: ServiceError): CallFailure {
  return { code: error.code, message: error.details };
}

/** grpc-gateway's error body (internal.Error through JSONPb: zero values omitted). */
function errorBody(failure: CallFailure): string {
  const text = failure.message === '' ? {} : { error: failure.message };
  return JSON.stringify({
    ...text, ...(failure.code === 0 ? {} : { code: failure.code }),
    ...(failure.message === '' ? {} : { message: failure.message }),
  });
}

/** grpc-gateway's internal.StreamError, as a failed stream's last line carries it. */
function streamErrorOf(failure: CallFailure): JsonObject {
  const httpCode = httpStatusOfGrpcCode(failure.code);
  return {
    grpc_code: failure.code,
    http_code: httpCode,
    ...(failure.message === '' ? {} : { message: failure.message }),
    http_status: STATUS_CODES[httpCode] ?? '',
  };
}

function jsonError(response: ServerResponse, failure: CallFailure): void {
  response.writeHead(httpStatusOfGrpcCode(failure.code), { 'content-type': jsonContentType })
    .end(errorBody(failure));
}

/** Go's http.Error, which grpc-gateway answers routing errors with. */
function plainError(response: ServerResponse, statusCode: number, text: string): void {
  response.writeHead(statusCode, {
    'content-type': 'text/plain; charset=utf-8', 'x-content-type-options': 'nosniff',
  }).end(`${text}\n`);
}

/** The call's metadata: `Authorization` as `token`, `Grpc-Metadata-<key>` as `<key>`. */
export function gatewayMetadataOf(request: Pick<IncomingMessage, 'headers'>): Metadata {
  const metadata = new Metadata();
  // The gateway dials with the member's own certificate; this marks its calls so the auth
  // interceptor never takes that certificate's name for the HTTP caller (etcd's
  // grpcgateway-accept check). A client that sends it itself only loses its certificate identity.
  metadata.set(gatewayCallMetadataKey, '1');
  const authorization = request.headers.authorization;
  if (authorization !== undefined && metadataValueLegal.test(authorization)) {
    metadata.set('token', authorization);
  }
  for (const [name, value] of Object.entries(request.headers)) {
    if (!name.startsWith('grpc-metadata-') || value === undefined) continue;
    const key = name.slice('grpc-metadata-'.length);
    if (!metadataKeyLegal.test(key) || key.endsWith('-bin') || key.startsWith('grpc-')) continue;
    for (const each of Array.isArray(value) ? value : [value]) {
      if (metadataValueLegal.test(each)) metadata.add(key, each);
    }
  }
  return metadata;
}
