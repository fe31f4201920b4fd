/**
 * Auth tokens every member can check without asking another: `payload.signature`, both base64url,
 * the payload naming the user, a fingerprint of the user's password hash, the auth store revision
 * it was issued at and when it expires, signed with HMAC-SHA256 under the key the auth store holds
 * (a fresh random key with each `auth enable`, replicated like any other auth state).
 *
 * Decision: etcd's simple tokens live in each member's memory and are spread by proposing the
 * authentication through Raft; signed tokens behave the same for clients — an opaque string that
 * stops working (`invalid auth token`) when it expires, when its user is deleted or its password
 * changes (the fingerprint no longer matches), or when auth is enabled anew — with no Raft round
 * per login and nothing to bound per token. As with etcd's simple tokens, permissions are those
 * of the user's roles at the time of each request, so a role change applies at once. Expiry uses
 * the members' wall clocks, so a token is good for its TTL give or take the clock skew between
 * members. A token is a bearer credential: with TLS off it travels in clear text, as etcd's does.
 *
 * `SignedTokenProvider` serves them for `--auth-token simple`, the default.
 */

import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { SynodError } from '../../base/index.js';
import type { TokenCheck, TokenProvider, TokenRequest } from './token-provider.js';

/** How long a token is good for: etcd's simple-token TTL. */
export const tokenTtlMsDefault = 300_000;
/** Longest token accepted (a client cannot make the server hash megabytes). */
export const tokenBytesMax = 1024;

/** Who a valid token speaks for. */
export interface TokenClaims {
  readonly user: string;
  /** The auth store's revision when the token was issued. */
  readonly revision: number;
  /** `passwordFingerprint` of the user's password hash when the token was issued. */
  readonly password: string;
  /** Wall-clock expiry, ms since the epoch. */
  readonly expiresAtMs: number;
}

/** A short digest of a stored password hash (or of none), which a token carries. */
export function passwordFingerprint(passwordHash: string | null): string {
  return createHash('sha256').update(passwordHash ?? '').digest('base64url').slice(0, 16);
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
    u: claims.user, r: claims.revision, p: claims.password, e: claims.expiresAtMs,
    n: randomBytes(6).toString('base64url'),
  })).toString('base64url');
  return `${payload}.${sign(key, payload).toString('base64url')}`;
}

/**
 * The claims of `token` if it is signed under `key` and not expired at `nowMs`; else
 * SYNOD_AUTH_INVALID_TOKEN. The caller checks the user and the password fingerprint.
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
  let claims: { u?: unknown; r?: unknown; p?: unknown; e?: unknown };
  try {
    claims = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as typeof claims;
  } catch {
    throw invalid();
  }
  const { u, r, p, e } = claims;
  if (typeof u !== 'string' || typeof r !== 'number' || typeof p !== 'string' || typeof e !== 'number') throw invalid();
  if (e <= nowMs) throw invalid();
  return { user: u, revision: r, password: p, expiresAtMs: e };
}

/** Synod's signed tokens (`--auth-token simple`) as a TokenProvider. */
export class SignedTokenProvider implements TokenProvider {
  readonly kind = 'simple';
  readonly canIssue = true;
  readonly #ttlMs: number;

  /** `ttlMs`: how long an issued token is good for (etcd's simple-token TTL by default). */
  constructor(options: { readonly ttlMs?: number } = {}) {
    this.#ttlMs = options.ttlMs ?? tokenTtlMsDefault;
  }

  issue(request: TokenRequest): string {
    const key = request.store.tokenKey;
    // Only a store that was never enabled lacks a key, and Authenticate needs auth enabled.
    if (key === null) throw new SynodError('SYNOD_AUTH_FAILED');
    return issueToken(key, {
      user: request.user.name, revision: request.store.revision,
      password: passwordFingerprint(request.user.passwordHash),
      expiresAtMs: request.nowMs + this.#ttlMs,
    });
  }

  verify(token: string, check: TokenCheck): string {
    const claims = verifyToken(check.store.tokenKey, token, check.nowMs);
    const user = check.store.user(claims.user);
    if (user === undefined || passwordFingerprint(user.passwordHash) !== claims.password) {
      throw new SynodError('SYNOD_AUTH_INVALID_TOKEN');
    }
    return claims.user;
  }
}
