/**
 * The SDK's one dispatch: a unary call on one endpoint, with the call's deadline and abort signal.
 * Everything else composes around it (STYLE: "client behaviour composes from small wrappers"):
 *
 * - readiness: a call goes only to an endpoint whose channel is READY; one that does not connect
 *   within `dialTimeoutMs` is passed over, so nothing was sent to it;
 * - failover and retry: a call that fails in a way that proves it was not applied (never sent,
 *   `etcdserver: no leader`, `too many requests`) is retried on the next endpoint after a
 *   jittered backoff, until its deadline; an idempotent call (reads, keep-alive, status) is also
 *   retried after any UNAVAILABLE, as etcd's Go client does. A write whose outcome is unknown is
 *   never resent;
 * - auth: with credentials, the first call authenticates and every call carries the token; a call
 *   refused for its token (expired, from an old auth revision) authenticates again and is resent
 *   once, since the server refused it before doing anything.
 * - balancing: `pinned` keeps to the endpoint that last answered; `round-robin` starts each
 *   call on the next endpoint.
 */

import {
  Client, Metadata, connectivityState, credentials, status, type ChannelCredentials,
  type ClientDuplexStream, type ClientReadableStream, type MethodDefinition, type ServiceError,
} from '@grpc/grpc-js';
import { SynodError, assert } from '../base/index.js';
import { loadEtcdProto, type EtcdProto, type ServiceName } from '../server/grpc/proto.js';
import { fromServiceError, isServiceError } from './errors.js';
import type { Endpoint, Pem, ResolvedClientOptions } from './options.js';

/** Per-call choices a caller may make. */
export interface CallOptions {
  /** Overrides the client's `callTimeoutMs` for this call. */
  readonly timeoutMs?: number;
  /** Aborting cancels the call; the promise rejects with the signal's reason. */
  readonly signal?: AbortSignal;
}

/** One unary call as the API modules describe it. */
export interface UnaryRequest {
  readonly service: ServiceName;
  readonly method: string;
  readonly request: object;
  /** True when sending it twice is harmless (reads, keep-alives); see the module comment. */
  readonly idempotent: boolean;
}

/** grpc-js's text when a call never got a transport: no byte of it left the client. */
const neverSentPrefix = 'No connection established';
/** Server answers that refuse a request before anything was proposed. */
const refusedUnapplied: ReadonlySet<string> = new Set(['etcdserver: no leader', 'etcdserver: too many requests']);
/** Server answers that clientv3 meets by authenticating again. */
const tokenRefusals: ReadonlySet<string> = new Set([
  'etcdserver: invalid auth token',
  'etcdserver: revision of auth store is old',
  'etcdserver: user name is empty',
]);
const authNotEnabled = 'etcdserver: authentication is not enabled';
/** Backoff between attempts: doubles from the first to the cap, with full jitter. */
const retryBackoffFirstMs = 25;
const retryBackoffMaxMs = 1000;
/** Channel options: responses as large as etcd allows (big ranges, snapshots). */
const channelOptions = Object.freeze({
  'grpc.max_receive_message_length': 2 ** 31 - 1,
  'grpc.max_send_message_length': 2 ** 31 - 1,
  'grpc.keepalive_time_ms': 30_000,
  'grpc.keepalive_timeout_ms': 10_000,
});

let sharedProto: EtcdProto | null = null;
/** The protos, parsed once per process: every client shares them. */
function proto(): EtcdProto {
  sharedProto ??= loadEtcdProto();
  return sharedProto;
}

/** The calls of one client: channels per endpoint, failover, retries, auth. */
export class Transport {
  readonly options: ResolvedClientOptions;
  readonly #channels = new Map<string, Client>();
  readonly #credentials: ChannelCredentials;
  #preferred = 0;
  #token: Promise<string | null> | null = null;
  #closed = false;

  constructor(options: ResolvedClientOptions) {
    this.options = options;
    this.#credentials = channelCredentialsOf(options);
  }

  /** Whether `close()` was called. */
  get closed(): boolean {
    return this.#closed;
  }

  /** Sends `call` per the module comment; rejects with a SynodError or the signal's reason. */
  async unary<Response>(call: UnaryRequest, options: CallOptions = {}): Promise<Response> {
    const deadlineMs = Date.now() + (options.timeoutMs ?? this.options.callTimeoutMs);
    let token = await this.#authToken(deadlineMs, options.signal);
    let reauthenticated = false;
    for (let attempt = 0; ; attempt++) {
      this.#ensureOpen();
      options.signal?.throwIfAborted();
      const endpoint = await this.#readyEndpoint(deadlineMs, options.signal, attempt);
      try {
        return await this.#dispatch<Response>(endpoint, call, token, deadlineMs, options.signal);
      } catch (error) {
        options.signal?.throwIfAborted();
        if (!isServiceError(error)) throw error;
        if (tokenRefusals.has(error.details) && this.options.auth !== null && !reauthenticated) {
          reauthenticated = true;
          this.#token = null;
          token = await this.#authToken(deadlineMs, options.signal);
          continue;
        }
        if (!retryable(error, call.idempotent) || Date.now() >= deadlineMs) {
          throw fromServiceError(error, endpoint.text);
        }
        this.#demote(endpoint);
        await backoff(attempt, deadlineMs, options.signal);
      }
    }
  }

  /** Opens a bidirectional stream on a READY endpoint; the caller handles its errors. */
  async bidiStream<Request, Response>(
    service: ServiceName, method: string, signal?: AbortSignal,
  ): Promise<{ stream: ClientDuplexStream<Request, Response>; endpoint: Endpoint }> {
    const deadlineMs = Date.now() + this.options.callTimeoutMs;
    const metadata = this.#metadata(await this.#authToken(deadlineMs, signal));
    metadata.set('hasleader', 'true');
    const endpoint = await this.#readyEndpoint(deadlineMs, signal, 0);
    const definition = methodOf(service, method);
    const stream = this.#channel(endpoint).makeBidiStreamRequest(
      definition.path, definition.requestSerialize, definition.responseDeserialize, metadata, {},
    ) as unknown as ClientDuplexStream<Request, Response>;
    return { stream, endpoint };
  }

  /** Opens a server stream on a READY endpoint; the caller handles its errors. */
  async serverStream<Response>(
    service: ServiceName, method: string, request: object, signal?: AbortSignal,
  ): Promise<ClientReadableStream<Response>> {
    const deadlineMs = Date.now() + this.options.callTimeoutMs;
    const metadata = this.#metadata(await this.#authToken(deadlineMs, signal));
    const endpoint = await this.#readyEndpoint(deadlineMs, signal, 0);
    const definition = methodOf(service, method);
    return this.#channel(endpoint).makeServerStreamRequest(
      definition.path, definition.requestSerialize, definition.responseDeserialize, request, metadata, {},
    ) as unknown as ClientReadableStream<Response>;
  }

  /** Forgets the token (a stream was refused for it); the next call authenticates again. */
  invalidateToken(): void {
    this.#token = null;
  }

  /** Whether `error` refuses a call for its token, so authenticating again may cure it. */
  isTokenRefusal(error: ServiceError): boolean {
    return this.options.auth !== null && tokenRefusals.has(error.details);
  }

  /** Stops preferring `endpoint` (a stream on it broke); the next call starts elsewhere. */
  demote(endpoint: Endpoint): void {
    this.#demote(endpoint);
  }

  /** Closes every channel; calls in flight fail, later ones reject SYNOD_CLIENT_CLOSED. */
  close(): void {
    this.#closed = true;
    for (const channel of this.#channels.values()) channel.close();
    this.#channels.clear();
  }

  #ensureOpen(): void {
    if (this.#closed) throw new SynodError('SYNOD_CLIENT_CLOSED');
  }

  #demote(endpoint: Endpoint): void {
    const index = this.options.endpoints.indexOf(endpoint);
    if (index === this.#preferred) this.#preferred = (index + 1) % this.options.endpoints.length;
  }

  /**
   * The first endpoint, from the preferred one on, whose channel is READY or becomes READY within
   * the dial timeout; it becomes the preferred one. Rejects SYNOD_CLIENT_UNAVAILABLE if none does
   * before the deadline.
   */
  async #readyEndpoint(deadlineMs: number, signal: AbortSignal | undefined, attempt: number): Promise<Endpoint> {
    const { endpoints, balancing, dialTimeoutMs } = this.options;
    if (balancing === 'round-robin' && attempt === 0) this.#preferred = (this.#preferred + 1) % endpoints.length;
    for (let round = 0; ; round++) {
      for (let offset = 0; offset < endpoints.length; offset++) {
        this.#ensureOpen();
        signal?.throwIfAborted();
        const index = (this.#preferred + offset) % endpoints.length;
        const endpoint = endpoints[index]!;
        const untilMs = Math.min(deadlineMs, Date.now() + dialTimeoutMs);
        if (await whenReady(this.#channel(endpoint), untilMs, signal)) {
          this.#preferred = index;
          return endpoint;
        }
        if (Date.now() >= deadlineMs) break;
      }
      if (Date.now() >= deadlineMs) break;
      await backoff(round, deadlineMs, signal);
    }
    const listed = endpoints.map((each) => each.text).join(', ');
    throw new SynodError('SYNOD_CLIENT_UNAVAILABLE', `no endpoint answered before the deadline (${listed})`);
  }

  #channel(endpoint: Endpoint): Client {
    let channel = this.#channels.get(endpoint.text);
    if (channel === undefined) {
      channel = new Client(endpoint.address, this.#credentials, channelOptions);
      this.#channels.set(endpoint.text, channel);
    }
    return channel;
  }

  #metadata(token: string | null): Metadata {
    const metadata = new Metadata();
    if (token !== null) metadata.set('token', token);
    return metadata;
  }

  /** The token calls carry, authenticating on first use; null without credentials or auth. */
  #authToken(deadlineMs: number, signal?: AbortSignal): Promise<string | null> {
    const auth = this.options.auth;
    if (auth === null) return Promise.resolve(null);
    if (this.#token === null) {
      const request = { name: auth.username, password: auth.password };
      const authenticate = { service: 'Auth', method: 'Authenticate', request, idempotent: true } as const;
      const pending = this.#authenticateOnce(authenticate, deadlineMs, signal);
      // A failed attempt is not remembered: the next call authenticates again.
      pending.catch(() => {
        if (this.#token === pending) this.#token = null;
      });
      this.#token = pending;
    }
    return this.#token;
  }

  async #authenticateOnce(call: UnaryRequest, deadlineMs: number, signal?: AbortSignal): Promise<string | null> {
    for (let attempt = 0; ; attempt++) {
      const endpoint = await this.#readyEndpoint(deadlineMs, signal, attempt);
      try {
        const response = await this.#dispatch<{ token: string }>(endpoint, call, null, deadlineMs, signal);
        return response.token === '' ? null : response.token;
      } catch (error) {
        signal?.throwIfAborted();
        if (!isServiceError(error)) throw error;
        if (error.details === authNotEnabled) return null;
        if (!retryable(error, true) || Date.now() >= deadlineMs) throw fromServiceError(error, endpoint.text);
        this.#demote(endpoint);
        await backoff(attempt, deadlineMs, signal);
      }
    }
  }

  #dispatch<Response>(
    endpoint: Endpoint, call: UnaryRequest, token: string | null, deadlineMs: number, signal?: AbortSignal,
  ): Promise<Response> {
    const definition = methodOf(call.service, call.method);
    return new Promise<Response>((resolve, reject) => {
      const onAbort = (): void => {
        pending.cancel();
        reject(signal!.reason);
      };
      const pending = this.#channel(endpoint).makeUnaryRequest(
        definition.path, definition.requestSerialize, definition.responseDeserialize, call.request,
        this.#metadata(token), { deadline: new Date(deadlineMs) },
        (error: ServiceError | null, response?: object) => {
          signal?.removeEventListener('abort', onAbort);
          if (error !== null) reject(error);
          else resolve(response as Response);
        },
      );
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }
}

/** Whether a failed call may be sent again (see the module comment). */
function retryable(error: ServiceError, idempotent: boolean): boolean {
  if (error.code === status.UNAVAILABLE) {
    if (error.details.startsWith(neverSentPrefix) || refusedUnapplied.has(error.details)) return true;
    return idempotent;
  }
  return error.code === status.RESOURCE_EXHAUSTED && refusedUnapplied.has(error.details);
}

function methodOf(service: ServiceName, method: string): MethodDefinition<object, object> {
  const definition = proto().services[service][method] as MethodDefinition<object, object> | undefined;
  assert(definition !== undefined, `${service}.${method} is defined in the protos`);
  return definition;
}

/** Waits out attempt `attempt`'s backoff, never past the deadline; rejects if aborted. */
function backoff(attempt: number, deadlineMs: number, signal?: AbortSignal): Promise<void> {
  const capMs = Math.min(retryBackoffMaxMs, retryBackoffFirstMs * 2 ** Math.min(attempt, 10));
  const delayMs = Math.min(Math.max(0, deadlineMs - Date.now()), Math.random() * capMs);
  return new Promise<void>((resolve, reject) => {
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(signal!.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, delayMs);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** Resolves true once `channel` is READY, false on a failed attempt or at `untilMs`. */
function whenReady(channel: Client, untilMs: number, signal?: AbortSignal): Promise<boolean> {
  const grpcChannel = channel.getChannel();
  return new Promise<boolean>((resolve) => {
    const check = (): void => {
      if (signal?.aborted) return resolve(false);
      const state = grpcChannel.getConnectivityState(true);
      if (state === connectivityState.READY) return resolve(true);
      if (state === connectivityState.SHUTDOWN || Date.now() >= untilMs) return resolve(false);
      grpcChannel.watchConnectivityState(state, untilMs, (error?: Error) => {
        if (error !== undefined) return resolve(false);
        const next = grpcChannel.getConnectivityState(false);
        // A failed connection attempt passes the endpoint over; the next round retries it.
        if (next === connectivityState.TRANSIENT_FAILURE) return resolve(false);
        check();
      });
    };
    check();
  });
}

function pemBytes(pem: Pem | undefined): Buffer | null {
  if (pem === undefined) return null;
  return typeof pem === 'string' ? Buffer.from(pem) : Buffer.from(pem);
}

/** TLS when asked for (any TLS option, or an https:// endpoint), else plaintext h2c. */
function channelCredentialsOf(options: ResolvedClientOptions): ChannelCredentials {
  const secure = options.endpoints.some((each) => each.secure);
  if (options.tls === null && !secure) return credentials.createInsecure();
  const tls = options.tls ?? {};
  return credentials.createSsl(pemBytes(tls.ca), pemBytes(tls.key), pemBytes(tls.cert));
}

