/**
 * etcd's JWT auth tokens (server/auth/jwt.go): a JWS in compact form (RFC 7515 §7.1) whose header
 * names the configured algorithm and whose claims are etcd's — `username`, `revision` (the auth
 * store's revision at issue) and `exp` (seconds since the epoch) — signed with the member's key
 * (jwt-keys.ts). Any member holding the public key checks any member's token, with no shared state.
 *
 * A token is stale once the auth store has moved past the revision it carries: etcd's rule
 * (store.go isOpPermitted), and the equivalent of the signed tokens' checks without extra claims,
 * since deleting a user, changing a password and enabling auth anew all bump the revision. So does
 * every other auth change, so a JWT is shorter-lived than a signed token: a role change also ends
 * every session's token, and the next request authenticates again. etcd answers a stale JWT with
 * `revision of auth store is old`, on which Go clients authenticate again and npm etcd3 does not;
 * Synod answers `invalid auth token`, on which both do. A token from a member ahead of this one
 * (a higher revision) is accepted, as in etcd; Authenticate reads the auth store only after a
 * ReadIndex, so no member issues a token already stale on the leader.
 *
 * Checking, in this order, each failure `invalid auth token`: at most `jwtTokenBytesMax`
 * characters; three canonical base64url segments; a header whose `alg` is exactly the configured
 * algorithm (so never `none`, and never an HMAC under a public key) and with no `crit`; a valid
 * signature (HMAC compared in constant time); claims of the right types, `exp` in the future.
 *
 * Decision: hand-written on node:crypto rather than `jose` or `jsonwebtoken`. The interceptor
 * checks every request synchronously (auth-interceptor.ts `authorize`), and jose's verification is
 * asynchronous; jsonwebtoken is synchronous but a dependency tree with a record of algorithm
 * confusion bugs, and neither lets us bound the input before parsing. Only one algorithm, known at
 * startup, is ever accepted, so the JWS compact format needs about a hundred lines here.
 */

import { constants, createHmac, sign, timingSafeEqual, verify, type KeyObject } from 'node:crypto';
import { assert, SynodError } from '../../base/index.js';
import { jwsAlgorithms, type JwsAlgorithm, type JwtKeys } from './jwt-keys.js';
import type { TokenCheck, TokenProvider, TokenRequest } from './token-provider.js';

/**
 * The longest token read. etcd's claims with a 256-byte user name and an RSA-8192 signature take
 * under 3,000 characters; more is not a token of ours and is refused before any decoding.
 */
export const jwtTokenBytesMax = 8192;

/** A JWT's claims, as etcd writes them. */
export interface JwtClaims {
  readonly username: string;
  /** The auth store's revision when the token was issued. */
  readonly revision: number;
  /** Expiry, seconds since the epoch. */
  readonly exp: number;
}

const invalid = (): SynodError => new SynodError('SYNOD_AUTH_INVALID_TOKEN');
const base64url = /^[A-Za-z0-9_-]*$/;

/** Signs `claims` into a compact JWS under `keys` (which must hold a signing key). */
export function signJwt(keys: JwtKeys, claims: JwtClaims): string {
  assert(keys.signingKey !== null, 'signJwt: a verify-only member signs nothing');
  const header = encodeSegment({ alg: keys.signMethod, typ: 'JWT' });
  // Claims in jwt-go's order (sorted), so tokens read the same as etcd's.
  const payload = encodeSegment({
    exp: claims.exp, revision: claims.revision, username: claims.username,
  });
  const input = `${header}.${payload}`;
  const signature = signatureOf(jwsAlgorithms[keys.signMethod], keys.signingKey, input);
  return `${input}.${signature.toString('base64url')}`;
}

/** The claims of `token` if it is a valid JWS under `keys` and not expired at `nowMs`. */
export function verifyJwt(keys: JwtKeys, token: string, nowMs: number): JwtClaims {
  if (token.length > jwtTokenBytesMax) throw invalid();
  const segments = token.split('.');
  if (segments.length !== 3) throw invalid();
  const [headerSegment, payloadSegment, signatureSegment] = segments as [string, string, string];
  const header = decodeSegment(headerSegment);
  if (header.alg !== keys.signMethod || header.crit !== undefined) throw invalid();
  const signature = decodeBytes(signatureSegment);
  const input = `${headerSegment}.${payloadSegment}`;
  if (!signatureHolds({ keys, input, signature })) throw invalid();
  const { username, revision, exp } = decodeSegment(payloadSegment);
  if (typeof username !== 'string' || username === '') throw invalid();
  if (typeof revision !== 'number' || !Number.isSafeInteger(revision) || revision < 0) {
    throw invalid();
  }
  if (typeof exp !== 'number' || !Number.isFinite(exp)) throw invalid();
  if (nowMs >= exp * 1000) throw invalid();
  return { username, revision, exp };
}

function encodeSegment(value: object): string {
  return Buffer.from(JSON.stringify(value), 'utf8').toString('base64url');
}

/** The bytes of a segment: strict base64url, canonical (one encoding per value, no padding). */
function decodeBytes(segment: string): Buffer {
  if (!base64url.test(segment)) throw invalid();
  const bytes = Buffer.from(segment, 'base64url');
  if (bytes.toString('base64url') !== segment) throw invalid();
  return bytes;
}

/** A segment's JSON object. */
function decodeSegment(segment: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(decodeBytes(segment).toString('utf8'));
  } catch (error) {
    if (error instanceof SynodError) throw error;
    throw invalid();
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw invalid();
  return value as Record<string, unknown>;
}

function signatureOf(algorithm: JwsAlgorithm, key: KeyObject, input: string): Buffer {
  const data = Buffer.from(input, 'ascii');
  switch (algorithm.family) {
    case 'hmac': return createHmac(algorithm.hash!, key).update(data).digest();
    case 'rsa': return sign(algorithm.hash, data, key);
    case 'rsa-pss':
      return sign(algorithm.hash, data, {
        key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: constants.RSA_PSS_SALTLEN_DIGEST,
      });
    case 'ecdsa': return sign(algorithm.hash, data, { key, dsaEncoding: 'ieee-p1363' });
    case 'eddsa': return sign(null, data, key);
  }
}

/** Whether `signature` signs `input` under `keys`; malformed signatures simply do not. */
function signatureHolds(options: { keys: JwtKeys; input: string; signature: Buffer }): boolean {
  const { keys, input, signature } = options;
  const algorithm = jwsAlgorithms[keys.signMethod];
  const key = keys.verifyingKey;
  const { signatureBytes } = algorithm;
  if (signatureBytes !== undefined && signature.length !== signatureBytes) return false;
  if (algorithm.family === 'hmac') {
    return timingSafeEqual(signature, signatureOf(algorithm, key, input));
  }
  const data = Buffer.from(input, 'ascii');
  try {
    switch (algorithm.family) {
      case 'rsa': return verify(algorithm.hash, data, key, signature);
      case 'rsa-pss':
        // Any salt length, as jwt-go (etcd) accepts; tokens are signed with the hash's length.
        return verify(algorithm.hash, data, {
          key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: constants.RSA_PSS_SALTLEN_AUTO,
        }, signature);
      case 'ecdsa':
        return verify(algorithm.hash, data, { key, dsaEncoding: 'ieee-p1363' }, signature);
      case 'eddsa': return verify(null, data, key, signature);
    }
  } catch {
    return false; // OpenSSL refuses some malformed signatures by throwing, not answering false.
  }
}

/** Options of `JwtTokenProvider`. */
export interface JwtTokenProviderOptions {
  readonly keys: JwtKeys;
  /** How long an issued token is good for, ms. */
  readonly ttlMs: number;
}

/** etcd's JWT tokens as a TokenProvider. */
export class JwtTokenProvider implements TokenProvider {
  readonly kind = 'jwt';
  readonly #keys: JwtKeys;
  readonly #ttlMs: number;

  constructor(options: JwtTokenProviderOptions) {
    const { ttlMs } = options;
    assert(Number.isSafeInteger(ttlMs) && ttlMs >= 1000, 'JwtTokenProvider: ttl under a second');
    this.#keys = options.keys;
    this.#ttlMs = options.ttlMs;
  }

  get canIssue(): boolean {
    return this.#keys.signingKey !== null;
  }

  issue(request: TokenRequest): string {
    if (!this.canIssue) throw new SynodError('SYNOD_AUTH_VERIFY_ONLY');
    return signJwt(this.#keys, {
      username: request.user.name, revision: request.store.revision,
      exp: Math.floor((request.nowMs + this.#ttlMs) / 1000),
    });
  }

  verify(token: string, check: TokenCheck): string {
    const claims = verifyJwt(this.#keys, token, check.nowMs);
    if (claims.revision < check.store.revision) throw invalid();
    if (check.store.user(claims.username) === undefined) throw invalid();
    return claims.username;
  }
}
