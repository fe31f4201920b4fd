/**
 * etcd's `--auth-token` value (server/auth/store.go decomposeOpts, options.go), checked for shape
 * when the flags are parsed: `simple` (the default: Synod's signed tokens, tokens.ts) or
 * `jwt,pub-key=PATH,priv-key=PATH,sign-method=METHOD,ttl=DURATION` in any order. The key files are
 * read when the member starts (jwt-keys.ts), as the TLS files are.
 *
 * Stricter than etcd, which warns and carries on: an unknown or repeated option, an empty value,
 * options after `simple`, a `pub-key` with an HS* method (HMAC uses `priv-key` alone, as the
 * shared secret) and a ttl under a second or over a year are refused, because each is a typo
 * that would otherwise start a member that cannot sign, or issues tokens that never last.
 */

import { SynodError } from '../../base/index.js';

/** The JWS algorithms etcd's JWT tokens offer (RFC 7518 §3.1; EdDSA is Ed25519, RFC 8037). */
export const jwtSignMethods = [
  'RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA',
  'HS256', 'HS384', 'HS512',
] as const;

/** One of `jwtSignMethods`. */
export type JwtSignMethod = (typeof jwtSignMethods)[number];

/** The JWT part of `--auth-token`. At least one key file is named; HS* names `privateKeyFile`. */
export interface JwtTokenOption {
  readonly kind: 'jwt';
  readonly signMethod: JwtSignMethod;
  /** `pub-key`: PEM public key that checks tokens; null when derived from `privateKeyFile`. */
  readonly publicKeyFile: string | null;
  /** `priv-key`: PEM private key (HS*: the raw secret) that signs; null on a verify-only member. */
  readonly privateKeyFile: string | null;
  /** How long an issued token is good for, ms (a whole number of seconds or more). */
  readonly ttlMs: number;
}

/** A validated `--auth-token`. */
export type AuthTokenOption = { readonly kind: 'simple' } | JwtTokenOption;

/** etcd's JWT ttl when `ttl=` is not given (options.go DefaultTTL). */
export const jwtTtlMsDefault = 300_000;
/** Shortest ttl accepted: `exp` counts seconds, so less would issue tokens already expired. */
export const jwtTtlMsMin = 1_000;
/** Longest ttl accepted. */
export const jwtTtlMsMax = 366 * 24 * 3_600_000;

const jwtOptionNames = ['pub-key', 'priv-key', 'sign-method', 'ttl'] as const;
type JwtOptionName = (typeof jwtOptionNames)[number];

function invalid(message: string): never {
  throw new SynodError('SYNOD_INVALID_CONFIG', `--auth-token: ${message}`);
}

/** Parses `text` (the flag's or ETCD_AUTH_TOKEN's value); problems are SYNOD_INVALID_CONFIG. */
export function parseAuthTokenOption(text: string): AuthTokenOption {
  const [kind, ...pairs] = text.split(',');
  if (kind === 'simple') {
    if (pairs.length > 0) invalid(`"simple" takes no options, got "${text}"`);
    return Object.freeze({ kind: 'simple' });
  }
  if (kind !== 'jwt') invalid(`must be "simple" or "jwt,…", got "${text}"`);
  const options = jwtOptionsOf(pairs);
  const method = options.get('sign-method');
  if (method === undefined) invalid(`jwt needs sign-method=one of ${jwtSignMethods.join('|')}`);
  const signMethod = jwtSignMethods.find((candidate) => candidate === method);
  if (signMethod === undefined) {
    invalid(`unknown sign-method "${method}": use one of ${jwtSignMethods.join(', ')}`);
  }
  const publicKeyFile = options.get('pub-key') ?? null;
  const privateKeyFile = options.get('priv-key') ?? null;
  if (signMethod.startsWith('HS')) {
    if (privateKeyFile === null) invalid(`${signMethod} needs priv-key=PATH, the shared secret`);
    if (publicKeyFile !== null) invalid(`${signMethod} takes no pub-key: HMAC uses priv-key alone`);
  } else if (publicKeyFile === null && privateKeyFile === null) {
    invalid(`${signMethod} needs pub-key=PATH (to verify) and, to issue tokens, priv-key=PATH`);
  }
  const ttl = options.get('ttl');
  const ttlMs = ttl === undefined ? jwtTtlMsDefault : goDurationMs(ttl);
  if (ttlMs < jwtTtlMsMin || ttlMs > jwtTtlMsMax) {
    invalid(`ttl=${ttl} must be between 1s and ${jwtTtlMsMax / 3_600_000}h`);
  }
  return Object.freeze({ kind: 'jwt', signMethod, publicKeyFile, privateKeyFile, ttlMs });
}

/** `name=value` pairs into a map; a pair may hold `=` in its value (a path), not in its name. */
function jwtOptionsOf(pairs: readonly string[]): Map<JwtOptionName, string> {
  const options = new Map<JwtOptionName, string>();
  for (const pair of pairs) {
    const equals = pair.indexOf('=');
    const given = equals < 0 ? pair : pair.slice(0, equals);
    const name = jwtOptionNames.find((candidate) => candidate === given);
    if (name === undefined) {
      invalid(`unknown jwt option "${pair}": use ${jwtOptionNames.join(', ')}`);
    }
    const value = equals < 0 ? '' : pair.slice(equals + 1);
    if (value === '') invalid(`${name}= needs a value`);
    if (options.has(name)) invalid(`${name} is given twice`);
    options.set(name, value);
  }
  return options;
}

const durationUnitsMs: Readonly<Record<string, number>> = {
  ns: 1e-6, us: 1e-3, µs: 1e-3, ms: 1, s: 1_000, m: 60_000, h: 3_600_000,
};

/** Go's time.ParseDuration for the positive durations a ttl takes ("5m", "1h30m", "90s"), in ms. */
function goDurationMs(text: string): number {
  const parts = [...text.matchAll(/(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)/g)];
  if (parts.length === 0 || parts.map((part) => part[0]).join('') !== text) {
    invalid(`ttl=${text} is not a duration like 5m, 90s or 1h30m`);
  }
  const ms = parts.reduce((sum, part) => sum + Number(part[1]) * durationUnitsMs[part[2]!]!, 0);
  return Math.round(ms);
}
