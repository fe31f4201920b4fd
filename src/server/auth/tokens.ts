/**
 * Auth tokens every member can check without asking another: `payload.signature`, both base64url,
 * the payload naming the user, the auth store revision the token was issued at and when it
 * expires, signed with HMAC-SHA256 under the key the auth store holds (a fresh random key with each
 * `auth enable`, replicated like any other auth state).
 *
 * Decision: etcd's simple tokens live in each member's memory and are spread by proposing the
 * authentication through Raft; signed tokens give the same behaviour to clients (an opaque string,
 * `invalid auth token` when it expired or is unknown, `revision of auth store is old` once users,
 * roles or permissions changed, upon which clients authenticate again) with no Raft round per
 * login and nothing to bound per token. Expiry uses the members' wall clocks, so a token is good
 * for its TTL give or take the clock skew between members. A token is a bearer credential: with
 * TLS off it travels in clear text, as etcd's does.
 */

import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { SynodError } from '../../base/index.js';

/** How long a token is good for: etcd's simple-token TTL. */
export const tokenTtlMsDefault = 300_000;
/** Longest token accepted (a client cannot make the server hash megabytes). */
export const tokenBytesMax = 1024;

/** Who a valid token speaks for. */
export interface TokenClaims {
  readonly user: string;
  /** The auth store's revision when the token was issued. */
  readonly revision: number;
  /** Wall-clock expiry, ms since the epoch. */
  readonly expiresAtMs: number;
}

/** A fresh signing key, for the `enable` change (base64). */
export function newTokenKey(): string {
  return randomBytes(32).toString('base64');
}

function sign(key: string, payload: string): Buffer {
  return createHmac('sha256', Buffer.from(key, 'base64')).update(payload).digest();
}

/** Issues a token for `claims` under `key`. */
export function issueToken(key: string, claims: TokenClaims): string {
  const payload = Buffer.from(JSON.stringify({
    u: claims.user, r: claims.revision, e: claims.expiresAtMs, n: randomBytes(6).toString('base64url'),
  })).toString('base64url');
  return `${payload}.${sign(key, payload).toString('base64url')}`;
}

/**
 * The claims of `token` if it is signed under `key` and not expired at `nowMs`; else
 * SYNOD_AUTH_INVALID_TOKEN. The caller checks the revision against the store's.
 */
export function verifyToken(key: string | null, token: string, nowMs: number): TokenClaims {
  const invalid = () => new SynodError('SYNOD_AUTH_INVALID_TOKEN');
  if (key === null || token.length > tokenBytesMax) throw invalid();
  const dot = token.indexOf('.');
  if (dot <= 0) throw invalid();
  const payload = token.slice(0, dot);
  const signature = Buffer.from(token.slice(dot + 1), 'base64url');
  const expected = sign(key, payload);
  if (signature.length !== expected.length || !timingSafeEqual(signature, expected)) throw invalid();
  let claims: { u?: unknown; r?: unknown; e?: unknown };
  try {
    claims = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as typeof claims;
  } catch {
    throw invalid();
  }
  const { u, r, e } = claims;
  if (typeof u !== 'string' || typeof r !== 'number' || typeof e !== 'number' || e <= nowMs) throw invalid();
  return { user: u, revision: r, expiresAtMs: e };
}
