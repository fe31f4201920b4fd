/**
 * What Authenticate hands out and every request presents: one interface for etcd's two kinds of
 * auth token (`--auth-token`), so the Auth service and the auth interceptor never know which is in
 * use. Synod's signed tokens (`simple`, tokens.ts) and etcd's JWT tokens (`jwt,…`, jwt-tokens.ts)
 * both implement it; `openTokenProvider` picks one from the validated flag at startup.
 *
 * Both calls take the auth store as this member applied it, rather than binding a provider to
 * the member: each kind decides for itself what makes a token stale (a password fingerprint for
 * signed tokens, the auth revision for JWT, as etcd does), and both stay pure apart from the clock
 * the caller passes in.
 */

import type { AuthStore, AuthUser } from '../../kv/index.js';
import type { AuthTokenOption } from './auth-token-option.js';
import { readJwtKeys } from './jwt-keys.js';
import { JwtTokenProvider } from './jwt-tokens.js';
import { SignedTokenProvider } from './tokens.js';

/** Who a token is issued to, and against what. */
export interface TokenRequest {
  /** The auth store as this member applied it (its revision; the signed tokens' key). */
  readonly store: AuthStore;
  /** The user whose password was just checked. */
  readonly user: AuthUser;
  /** Wall-clock ms since the epoch. */
  readonly nowMs: number;
}

/** What a presented token is checked against. */
export interface TokenCheck {
  /** The auth store as this member applied it. */
  readonly store: AuthStore;
  /** Wall-clock ms since the epoch. */
  readonly nowMs: number;
}

/** Issues and checks one kind of auth token. Both calls are synchronous: they run per request. */
export interface TokenProvider {
  /** etcd's name for the kind (`--auth-token`'s first word). */
  readonly kind: 'simple' | 'jwt';
  /** False on a verify-only member (JWT with only a public key): `issue` always throws there. */
  readonly canIssue: boolean;
  /**
   * A token for `request.user`. Throws SYNOD_AUTH_VERIFY_ONLY on a member that can check tokens
   * but holds no key to sign them (JWT with only a public key).
   */
  issue(request: TokenRequest): string;
  /**
   * The name of the user `token` speaks for, if it is well-formed, signed under this provider's
   * key, not expired at `check.nowMs` and still current for `check.store`; otherwise throws
   * SYNOD_AUTH_INVALID_TOKEN, on which clients authenticate again.
   */
  verify(token: string, check: TokenCheck): string;
}

/**
 * The provider `option` asks for. Reads and validates JWT key files; a missing, unreadable or
 * unfitting key is SYNOD_INVALID_CONFIG naming the option and the file (jwt-keys.ts).
 */
export function openTokenProvider(option: AuthTokenOption): TokenProvider {
  if (option.kind === 'simple') return new SignedTokenProvider();
  return new JwtTokenProvider({ keys: readJwtKeys(option), ttlMs: option.ttlMs });
}
