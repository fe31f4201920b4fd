/**
 * The connection of one `synod ctl` invocation: @grpc/grpc-js clients over Synod's protos, one
 * HTTP/2 channel per endpoint, dialled lazily. Behaviour composes around one dispatch
 * (`#dispatch`, a single call on a single endpoint with the command timeout as its gRPC deadline):
 *
 * - dial: an endpoint is used only once its channel is READY within `--dial-timeout`; one that
 *   refuses or times out is skipped, so every call, read or write, goes to the first reachable
 *   endpoint (nothing was sent to the skipped one);
 * - failover: a read that fails UNAVAILABLE moves on to the next endpoint, as etcd's Go client
 *   retries reads only on Unavailable; a write is never resent, since it may have been applied;
 * - auth: with credentials (`--user`), the first call first sends Authenticate (failing over
 *   like a read) and every call then carries the token in `token` metadata, as clientv3 does;
 *   a server that answers "authentication is not enabled" gets no token, as clientv3 ignores
 *   that answer. A unary call refused for its token (invalid, from an old auth revision, or
 *   missing) authenticates again and is sent once more, as clientv3's retry interceptor does:
 *   the server refused it before doing anything, so resending even a write is safe.
 */

import { readFileSync } from 'node:fs';
import {
  Client, Metadata, connectivityState, credentials, status, type ChannelCredentials,
  type ClientDuplexStream, type ClientReadableStream, type MethodDefinition, type ServiceError,
} from '@grpc/grpc-js';
import { assert } from '../../base/index.js';
import type { EtcdProto, ServiceName } from '../../server/grpc/proto.js';
import { CtlCommandError } from './command.js';
import type { GlobalConfig, TlsFiles } from './global-flags.js';

/** Whether a call may be retried on another endpoint after it was sent. */
export type CallKind = 'read' | 'write';

/** One unary call. */
export interface UnaryCall {
  readonly service: ServiceName;
  readonly method: string;
  readonly request: object;
  readonly kind: CallKind;
  /** Send to this endpoint only (endpoint status, defrag, hashkv), with no failover. */
  readonly endpoint?: string;
}

/** One streaming call, on the first reachable endpoint. */
export interface StreamCall {
  readonly service: ServiceName;
  readonly method: string;
  /** Extra request metadata (`hasleader` for watches). */
  readonly metadata?: Readonly<Record<string, string>>;
  /** Absolute deadline; none for watches and keep-alives, which run until stopped. */
  readonly deadline?: Date;
}

/** Who `--user` authenticates as; both non-empty (clientv3 skips Authenticate otherwise). */
export interface Credentials {
  readonly name: string;
  readonly password: string;
}

/** The server's answers (etcd's rpctypes) that clientv3 meets by authenticating again. */
const tokenRefusals: ReadonlySet<string> = new Set([
  'etcdserver: invalid auth token',
  'etcdserver: revision of auth store is old',
  'etcdserver: user name is empty',
]);

/** Authenticate's answer when auth is off: no token, and no error (clientv3's dial). */
const authNotEnabled = 'etcdserver: authentication is not enabled';

/** The grpc-js channel options of every client. */
const channelOptions = Object.freeze({
  // etcdctl accepts responses up to MaxInt32 bytes (large ranges, snapshot chunks).
  'grpc.max_receive_message_length': 2 ** 31 - 1,
  'grpc.max_send_message_length': 2 ** 31 - 1,
});

/** `host:port` of an endpoint written as `host:port` or as a URL, and whether it asks for TLS. */
export function endpointAddress(
  endpoint: string,
): { readonly address: string; readonly secure: boolean } {
  const match = /^(https?):\/\/([^/]+)/.exec(endpoint);
  if (match === null) return { address: endpoint, secure: false };
  return { address: match[2]!, secure: match[1] === 'https' };
}

/**
 * The channel credentials for `config`: TLS when TLS files are given or an endpoint is
 * `https://`, else plaintext (h2c), as etcdctl. A file that cannot be read is a CtlCommandError
 * naming it; malformed PEM is one too.
 */
export function channelCredentials(
  config: Pick<GlobalConfig, 'tls' | 'endpoints'>,
  readFile: (path: string) => Buffer = readFileSync,
): ChannelCredentials {
  const secure = config.endpoints.some((endpoint) => endpointAddress(endpoint).secure);
  if (config.tls === null && !secure) return credentials.createInsecure();
  const files: TlsFiles = config.tls ?? {};
  const read = (path: string | undefined): Buffer | null => {
    if (path === undefined) return null;
    try {
      return readFile(path);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      const reason = code === 'ENOENT' ? 'no such file or directory' : (error as Error).message;
      throw new CtlCommandError(`open ${path}: ${reason}`);
    }
  };
  const [ca, key, cert] = [read(files.cacert), read(files.key), read(files.cert)];
  // Node accepts a CA bundle without a single certificate and fails only at the handshake.
  const certificates = [['cacert', files.cacert, ca], ['cert', files.cert, cert]] as const;
  for (const [flag, path, pem] of certificates) {
    if (pem !== null && !pem.includes('-----BEGIN CERTIFICATE-----')) {
      throw new CtlCommandError(`invalid TLS files: --${flag} ${path} holds no PEM certificate`);
    }
  }
  try {
    return credentials.createSsl(ca, key, cert);
  } catch (error) {
    throw new CtlCommandError(`invalid TLS files: ${(error as Error).message}`);
  }
}

/** The message a gRPC error prints as: the server's own text, or etcdctl's for local ends. */
export function serviceErrorMessage(error: ServiceError): string {
  if (error.code === status.DEADLINE_EXCEEDED) return 'context deadline exceeded';
  if (error.code === status.CANCELLED && error.details === 'Cancelled on client') {
    return 'context canceled';
  }
  return error.details === '' ? status[error.code] ?? `gRPC status ${error.code}` : error.details;
}

/** True for an error a gRPC call rejected with (it carries a numeric status `code`). */
export function isServiceError(error: unknown): error is ServiceError {
  return error instanceof Error && typeof (error as Partial<ServiceError>).code === 'number' &&
    (error as Partial<ServiceError>).metadata !== undefined;
}

/** An endpoint that did not become READY; the next one is tried. */
class EndpointUnreachable extends CtlCommandError {
  override readonly name = 'EndpointUnreachable';
}

/** A method's path and codecs, from the loaded protos. */
type Method = MethodDefinition<object, object>;

/** The endpoints of one invocation; `close()` ends every channel it opened. */
export class Connection {
  readonly #config: GlobalConfig;
  readonly #proto: EtcdProto;
  readonly #clients = new Map<string, Promise<Client>>();
  #credentials: ChannelCredentials | null = null;
  /** Index in `endpoints` of the endpoint that last answered; tried first. */
  #preferred = 0;
  /** Resolves the credentials once (a prompt asks once); null: no `--user`. */
  readonly #credentialsSource: () => Promise<Credentials | null>;
  #userCredentials: Promise<Credentials | null> | null = null;
  /** The token every call carries, once authenticated; null: none (no user, or auth off). */
  #token: Promise<string | null> | null = null;

  constructor(options: {
    readonly config: GlobalConfig;
    readonly proto: EtcdProto;
    /** Called at most once, when the first call is made. */
    readonly credentials?: () => Promise<Credentials | null>;
  }) {
    assert(options.config.endpoints.length > 0, 'at least one endpoint');
    this.#config = options.config;
    this.#proto = options.proto;
    this.#credentialsSource = options.credentials ?? (async () => null);
  }

  /** One unary call with failover (see the module comment); rejects with the last error. */
  async unary<Response>(call: UnaryCall): Promise<Response> {
    try {
      return await this.#unaryOnce<Response>(call, await this.#authToken());
    } catch (error) {
      if (!(await this.#refusedForToken(error))) throw error;
      this.#token = this.#authenticate();
      return this.#unaryOnce<Response>(call, await this.#token);
    }
  }

  /** Opens a bidirectional stream on the first reachable endpoint. */
  async bidiStream<Request, Response>(
    call: StreamCall,
  ): Promise<ClientDuplexStream<Request, Response>> {
    const method = this.#method(call.service, call.method);
    const metadata = this.#metadata(await this.#authToken(), call.metadata);
    const client = await this.#failover(async (each) => each, () => false);
    return client.makeBidiStreamRequest(
      method.path, method.requestSerialize, method.responseDeserialize, metadata,
      callOptions(call),
    ) as unknown as ClientDuplexStream<Request, Response>;
  }

  /** Opens a server stream (`Snapshot`) on the first reachable endpoint. */
  async serverStream<Response>(
    call: StreamCall & { readonly request: object },
  ): Promise<ClientReadableStream<Response>> {
    const method = this.#method(call.service, call.method);
    const metadata = this.#metadata(await this.#authToken(), call.metadata);
    const client = await this.#failover(async (each) => each, () => false);
    return client.makeServerStreamRequest(
      method.path, method.requestSerialize, method.responseDeserialize, call.request, metadata,
      callOptions(call),
    ) as unknown as ClientReadableStream<Response>;
  }

  /** Dials `endpoint` now (a later call to it then measures only its round trip). */
  async connect(endpoint: string): Promise<void> {
    await this.#client(endpoint);
  }

  /** Closes every channel. */
  async close(): Promise<void> {
    const clients = await Promise.allSettled(this.#clients.values());
    for (const each of clients) if (each.status === 'fulfilled') each.value.close();
    this.#clients.clear();
  }

  #unaryOnce<Response>(call: UnaryCall, token: string | null): Promise<Response> {
    if (call.endpoint !== undefined) {
      const { endpoint } = call;
      return this.#client(endpoint).then((client) => this.#dispatch<Response>(client, call, token));
    }
    return this.#failover((client) => this.#dispatch<Response>(client, call, token),
      (error) => call.kind === 'read' && isUnavailable(error));
  }

  /** The token of this invocation, authenticating on first use. */
  #authToken(): Promise<string | null> {
    this.#token ??= this.#authenticate();
    return this.#token;
  }

  /** Authenticate with the credentials, if any; null when there are none or auth is off. */
  async #authenticate(): Promise<string | null> {
    this.#userCredentials ??= this.#credentialsSource();
    const credentials = await this.#userCredentials;
    if (credentials === null) return null;
    assert(credentials.name !== '' && credentials.password !== '', 'credentials are complete');
    const call: UnaryCall = {
      service: 'Auth', method: 'Authenticate', kind: 'read',
      request: { name: credentials.name, password: credentials.password },
    };
    try {
      const response = await this.#unaryOnce<{ readonly token: string }>(call, null);
      return response.token === '' ? null : response.token;
    } catch (error) {
      if (isServiceError(error) && error.details === authNotEnabled) return null;
      throw error;
    }
  }

  /** Whether `error` is the server refusing a call's token while we have credentials. */
  async #refusedForToken(error: unknown): Promise<boolean> {
    if (!isServiceError(error) || !tokenRefusals.has(error.details)) return false;
    return this.#userCredentials !== null && (await this.#userCredentials) !== null;
  }

  /**
   * Runs `attempt` on the reachable endpoints in turn, the last one that answered first, until
   * it succeeds or fails in a way `retry` does not accept; rejects with the last error.
   */
  async #failover<Result>(
    attempt: (client: Client) => Promise<Result>, retry: (error: unknown) => boolean,
  ): Promise<Result> {
    const { endpoints } = this.#config;
    let lastError: unknown = null;
    for (let offset = 0; offset < endpoints.length; offset++) {
      const index = (this.#preferred + offset) % endpoints.length;
      try {
        const result = await attempt(await this.#client(endpoints[index]!));
        this.#preferred = index;
        return result;
      } catch (error) {
        if (!(error instanceof EndpointUnreachable) && !retry(error)) throw error;
        lastError = error;
      }
    }
    throw lastError;
  }

  #method(service: ServiceName, name: string): Method {
    const method = this.#proto.services[service][name] as Method | undefined;
    assert(method !== undefined, `${service}.${name} is defined in the protos`);
    return method;
  }

  #metadata(token: string | null, extra: Readonly<Record<string, string>> = {}): Metadata {
    const metadata = new Metadata();
    if (token !== null) metadata.set('token', token);
    for (const [key, value] of Object.entries(extra)) metadata.set(key, value);
    return metadata;
  }

  /** The READY client of `endpoint`, dialled once; rejects EndpointUnreachable. */
  #client(endpoint: string): Promise<Client> {
    let pending = this.#clients.get(endpoint);
    if (pending === undefined) {
      this.#credentials ??= channelCredentials(this.#config);
      const { address } = endpointAddress(endpoint);
      const client = new Client(address, this.#credentials, channelOptions);
      const closeOnFailure = (error: unknown): never => {
        client.close();
        throw error;
      };
      pending = dial(client, endpoint, this.#config.dialTimeoutMs)
        .then(() => client, closeOnFailure);
      this.#clients.set(endpoint, pending);
    }
    return pending;
  }

  #dispatch<Response>(client: Client, call: UnaryCall, token: string | null): Promise<Response> {
    const method = this.#method(call.service, call.method);
    const deadline = new Date(Date.now() + this.#config.commandTimeoutMs);
    return new Promise<Response>((resolve, reject) => {
      client.makeUnaryRequest(
        method.path, method.requestSerialize, method.responseDeserialize, call.request,
        this.#metadata(token), { deadline },
        (error: ServiceError | null, response?: object) => {
          if (error !== null) reject(error);
          else resolve(response as Response);
        },
      );
    });
  }
}

/** A read refused as UNAVAILABLE: the only failure worth sending elsewhere. */
function isUnavailable(error: unknown): boolean {
  return isServiceError(error) && error.code === status.UNAVAILABLE;
}

function callOptions(call: StreamCall): { deadline?: Date } {
  return call.deadline === undefined ? {} : { deadline: call.deadline };
}

/** Resolves once `client`'s channel is READY; rejects on a failed attempt or the dial timeout. */
function dial(client: Client, endpoint: string, timeoutMs: number): Promise<void> {
  const channel = client.getChannel();
  const deadline = Date.now() + timeoutMs;
  return new Promise<void>((resolve, reject) => {
    const check = (): void => {
      const state = channel.getConnectivityState(true);
      if (state === connectivityState.READY) return resolve();
      if (state === connectivityState.TRANSIENT_FAILURE || state === connectivityState.SHUTDOWN) {
        return reject(new EndpointUnreachable(`cannot connect to ${endpoint}`));
      }
      channel.watchConnectivityState(state, deadline, (error?: Error) => {
        if (error === undefined) return check();
        reject(new EndpointUnreachable(`cannot connect to ${endpoint}: context deadline exceeded`));
      });
    };
    check();
  });
}
