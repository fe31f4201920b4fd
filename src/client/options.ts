/**
 * The client's options: what a caller may pass, validated once, defaults filled in explicitly and
 * the result frozen (STYLE: "Validate configuration once").
 */

import { invalidArgument } from './errors.js';

/** PEM material for TLS; a string is PEM text, a Buffer its bytes. */
export type Pem = string | Uint8Array;

/** TLS towards the endpoints. Any field set, or an `https://` endpoint, turns TLS on. */
export interface ClientTlsOptions {
  /** CA bundle that signs the servers' certificates; default: the system's roots. */
  readonly ca?: Pem;
  /** Client certificate and key, for servers that check client certificates. */
  readonly cert?: Pem;
  readonly key?: Pem;
}

/** A user to authenticate as; every call then carries its token. */
export interface ClientAuthOptions {
  readonly username: string;
  readonly password: string;
}

/** How unary calls are spread over the endpoints. */
export type Balancing = 'pinned' | 'round-robin';

/** What `new SynodClient(options)` accepts. */
export interface ClientOptions {
  /** `host:port`, `http://host:port` or `https://host:port`; at least one. */
  readonly endpoints: readonly string[];
  readonly auth?: ClientAuthOptions;
  readonly tls?: ClientTlsOptions;
  /** Deadline of a unary call, retries included, unless the call sets its own; default 5000. */
  readonly callTimeoutMs?: number;
  /** How long one endpoint may take to connect before the next is tried; default 2000. */
  readonly dialTimeoutMs?: number;
  /**
   * `'pinned'` (default) sends everything to one endpoint until it fails, as etcd's Go client;
   * `'round-robin'` rotates unary calls over the endpoints that are connected.
   */
  readonly balancing?: Balancing;
}

/** Options after validation. */
export interface ResolvedClientOptions {
  readonly endpoints: readonly Endpoint[];
  readonly auth: ClientAuthOptions | null;
  readonly tls: ClientTlsOptions | null;
  readonly callTimeoutMs: number;
  readonly dialTimeoutMs: number;
  readonly balancing: Balancing;
}

/** One endpoint: what the caller wrote, the gRPC target, and whether it asks for TLS. */
export interface Endpoint {
  readonly text: string;
  readonly address: string;
  readonly secure: boolean;
}

/** Endpoints beyond this are refused; a client talks to one cluster. */
export const endpointsMax = 64;
/** The longest deadline a call may ask for (a day); longer is surely a unit mistake. */
export const callTimeoutMsMax = 86_400_000;

/** Parses `host:port` or `scheme://host:port[/]`; throws SYNOD_INVALID_ARGUMENT otherwise. */
export function parseEndpoint(text: string): Endpoint {
  const match = /^(?:(https?):\/\/)?(\[[0-9a-fA-F:]+\]|[^/:\s]+):(\d{1,5})\/?$/.exec(text);
  if (match === null) throw invalidArgument(`endpoint ${JSON.stringify(text)} is not host:port or http(s)://host:port`);
  const port = Number(match[3]);
  if (port < 1 || port > 65_535) throw invalidArgument(`endpoint ${JSON.stringify(text)}: port out of range`);
  return Object.freeze({ text, address: `${match[2]}:${port}`, secure: match[1] === 'https' });
}

function positiveMs(name: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (!Number.isInteger(value) || value <= 0 || value > callTimeoutMsMax) {
    throw invalidArgument(`${name} must be a whole number of milliseconds in 1..${callTimeoutMsMax}`);
  }
  return value;
}

/** Validates `options` and fills the defaults. */
export function resolveClientOptions(options: ClientOptions): ResolvedClientOptions {
  if (!Array.isArray(options.endpoints) || options.endpoints.length === 0) {
    throw invalidArgument('endpoints: at least one endpoint is required');
  }
  if (options.endpoints.length > endpointsMax) throw invalidArgument(`endpoints: at most ${endpointsMax}`);
  const endpoints = options.endpoints.map(parseEndpoint);
  const tls = options.tls ?? null;
  if (endpoints.some((each) => each.secure) && endpoints.some((each) => !each.secure) && tls === null) {
    throw invalidArgument('endpoints: mixing http:// and https:// needs one TLS setting for all');
  }
  const auth = options.auth ?? null;
  if (auth !== null && (auth.username === '' || auth.password === '')) {
    throw invalidArgument('auth: username and password must both be non-empty');
  }
  const balancing = options.balancing ?? 'pinned';
  if (balancing !== 'pinned' && balancing !== 'round-robin') {
    throw invalidArgument(`balancing must be 'pinned' or 'round-robin'`);
  }
  return Object.freeze({
    endpoints: Object.freeze(endpoints),
    auth,
    tls,
    callTimeoutMs: positiveMs('callTimeoutMs', options.callTimeoutMs, 5000),
    dialTimeoutMs: positiveMs('dialTimeoutMs', options.dialTimeoutMs, 2000),
    balancing,
  });
}
