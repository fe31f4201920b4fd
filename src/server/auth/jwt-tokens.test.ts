import { createHmac, sign } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { isSynodError } from '../../base/index.js';
import type { AuthChange, AuthStore } from '../../kv/index.js';
import { rejectsAsInvalidToken, storeWith } from './auth-test-kit.js';
import { jwtSignMethods, type JwtSignMethod } from './auth-token-option.js';
import { jwtKeysFor, keyPairFor } from './jwt-test-kit.js';
import { JwtTokenProvider, jwtTokenBytesMax, signJwt, verifyJwt } from './jwt-tokens.js';

const claims = { username: 'alice', revision: 7, exp: 1_000 };
const segment = (value: object) => Buffer.from(JSON.stringify(value)).toString('base64url');

const invalid = rejectsAsInvalidToken;

describe('JWT tokens', () => {
  it.each(jwtSignMethods)('%s: round trip, in the form etcd issues', (method: JwtSignMethod) => {
    const keys = jwtKeysFor(method);
    const token = signJwt(keys, claims);
    const [header, payload] = token.split('.') as [string, string];
    expect(JSON.parse(Buffer.from(header, 'base64url').toString())).toEqual({ alg: method, typ: 'JWT' });
    expect(Buffer.from(payload, 'base64url').toString()).toBe('{"exp":1000,"revision":7,"username":"alice"}');
    expect(verifyJwt(keys, token, 999_999)).toEqual(claims);
    const verifier = jwtKeysFor(method, { verifyOnly: !method.startsWith('HS') });
    expect(verifyJwt(verifier, token, 0)).toEqual(claims);
    const stranger = jwtKeysFor(method, { pair: keyPairFor(method, { other: true }) });
    expect(invalid(() => verifyJwt(stranger, token, 0))).toBe(true);
  });

  it('expire at exp, in seconds', () => {
    const keys = jwtKeysFor('ES256');
    const token = signJwt(keys, claims);
    expect(verifyJwt(keys, token, 999_999).exp).toBe(1_000);
    expect(invalid(() => verifyJwt(keys, token, 1_000_000))).toBe(true);
  });

  it('refuse any change to a header, the claims or the signature', () => {
    const keys = jwtKeysFor('ES256');
    const [header, payload, signature] = signJwt(keys, claims).split('.') as [string, string, string];
    const forged = segment({ exp: 1_000, revision: 7, username: 'root' });
    expect(invalid(() => verifyJwt(keys, `${header}.${forged}.${signature}`, 0))).toBe(true);
    const flipped = `${signature[0] === 'A' ? 'B' : 'A'}${signature.slice(1)}`;
    expect(invalid(() => verifyJwt(keys, `${header}.${payload}.${flipped}`, 0))).toBe(true);
    expect(invalid(() => verifyJwt(keys, `${header}.${payload}.${signature}=`, 0))).toBe(true);
    expect(invalid(() => verifyJwt(keys, `${header}.${payload}.${signature}.`, 0))).toBe(true);
    const withCrit = segment({ alg: 'ES256', typ: 'JWT', crit: ['exp'] });
    expect(invalid(() => verifyJwt(keys, `${withCrit}.${payload}.${signature}`, 0))).toBe(true);
    for (const junk of ['', '..', 'a.b.c', 'a.b', '{}.{}.{}', `${header}.${payload}`]) {
      expect(invalid(() => verifyJwt(keys, junk, 0))).toBe(true);
    }
  });

  it('accept only the configured algorithm: never none, never HMAC under the public key', () => {
    const keys = jwtKeysFor('RS256');
    const payload = segment(claims);
    const none = segment({ alg: 'none', typ: 'JWT' });
    expect(invalid(() => verifyJwt(keys, `${none}.${payload}.`, 0))).toBe(true);
    const otherRsa = signJwt(jwtKeysFor('RS512'), claims);
    expect(invalid(() => verifyJwt(keys, otherRsa, 0))).toBe(true);
    const pss = signJwt(jwtKeysFor('PS256'), claims);
    expect(invalid(() => verifyJwt(keys, pss, 0))).toBe(true);
    // A header naming another algorithm over a signature good for the configured one: only the
    // alg check refuses it (the header never picks how a signature is checked).
    const rs256 = (header: string) =>
      sign('sha256', Buffer.from(`${header}.${payload}`), keys.signingKey!).toString('base64url');
    const honest = segment({ alg: 'RS256', typ: 'JWT' });
    expect(verifyJwt(keys, `${honest}.${payload}.${rs256(honest)}`, 0)).toEqual(claims);
    const lying = segment({ alg: 'RS512', typ: 'JWT' });
    expect(invalid(() => verifyJwt(keys, `${lying}.${payload}.${rs256(lying)}`, 0))).toBe(true);
    const noAlg = segment({ typ: 'JWT' });
    expect(invalid(() => verifyJwt(keys, `${noAlg}.${payload}.${rs256(noAlg)}`, 0))).toBe(true);
    // The classic confusion: an HS256 token keyed with the PEM of the public key every member has.
    const hs = segment({ alg: 'HS256', typ: 'JWT' });
    const mac = createHmac('sha256', keyPairFor('RS256').publicPem).update(`${hs}.${payload}`).digest('base64url');
    expect(invalid(() => verifyJwt(keys, `${hs}.${payload}.${mac}`, 0))).toBe(true);
  });

  it('refuse claims of the wrong shape, even well signed', () => {
    const keys = jwtKeysFor('HS256');
    for (const bad of [
      { username: '', revision: 1, exp: 1_000 }, { username: 'a', revision: -1, exp: 1_000 },
      { username: 'a', revision: 1.5, exp: 1_000 }, { username: 'a', revision: '1', exp: 1_000 },
      { username: 'a', revision: 1 }, { revision: 1, exp: 1_000 },
    ]) {
      expect(invalid(() => verifyJwt(keys, signJwt(keys, bad as typeof claims), 0))).toBe(true);
    }
  });

  it('refuse a token longer than the bound before decoding it', () => {
    const keys = jwtKeysFor('HS256');
    const long = signJwt(keys, { ...claims, username: 'a'.repeat(jwtTokenBytesMax) });
    expect(long.length).toBeGreaterThan(jwtTokenBytesMax);
    expect(invalid(() => verifyJwt(keys, long, 0))).toBe(true);
    const fits = signJwt(keys, { ...claims, username: 'a'.repeat(256) });
    expect(verifyJwt(keys, fits, 0).username).toHaveLength(256);
  });
});


const setup: AuthChange[] = [
  { action: 'userAdd', name: 'root', passwordHash: 'r' },
  { action: 'userGrantRole', user: 'root', role: 'root' },
  { action: 'userAdd', name: 'alice', passwordHash: 'a' },
  { action: 'roleAdd', name: 'reader' },
  { action: 'enable' },
];

describe('JwtTokenProvider', () => {
  const provider = new JwtTokenProvider({ keys: jwtKeysFor('ES256'), ttlMs: 300_000 });
  const issue = (store: AuthStore, nowMs = 0) => provider.issue({ store, user: store.user('alice')!, nowMs });
  const check = (store: AuthStore, token: string, nowMs = 0) => {
    try {
      return provider.verify(token, { store, nowMs });
    } catch (error) {
      if (isSynodError(error)) return error.code;
      throw error;
    }
  };

  it('issues tokens that last the ttl and name the user', () => {
    const store = storeWith(setup);
    const token = issue(store, 10_000);
    expect(verifyJwt(jwtKeysFor('ES256'), token, 0)).toEqual({ username: 'alice', revision: store.revision, exp: 310 });
    expect(check(store, token, 309_999)).toBe('alice');
    expect(check(store, token, 310_000)).toBe('SYNOD_AUTH_INVALID_TOKEN');
  });

  it('goes stale on any auth change: user deleted, password changed, auth enabled anew, a role', () => {
    for (const change of [
      { action: 'userDelete', name: 'alice' }, { action: 'userChangePassword', name: 'alice', passwordHash: 'b' },
      { action: 'enable' }, { action: 'userGrantRole', user: 'alice', role: 'reader' },
    ] satisfies AuthChange[]) {
      const store = storeWith(setup);
      const token = issue(store);
      expect(check(store, token)).toBe('alice');
      store.apply(change);
      expect(check(store, token)).toBe('SYNOD_AUTH_INVALID_TOKEN');
      if (store.user('alice') !== undefined) expect(check(store, issue(store))).toBe('alice');
    }
  });

  it('accepts a token from a member ahead of this one, if the user exists here', () => {
    const ahead = storeWith([...setup, { action: 'roleAdd', name: 'writer' }]);
    const behind = storeWith(setup);
    expect(check(behind, issue(ahead))).toBe('alice');
    const bob = storeWith([...setup, { action: 'userAdd', name: 'bob', passwordHash: 'b' }]);
    const bobToken = provider.issue({ store: bob, user: bob.user('bob')!, nowMs: 0 });
    expect(check(behind, bobToken)).toBe('SYNOD_AUTH_INVALID_TOKEN');
  });

  it('on a verify-only member, checks tokens and refuses to issue them', () => {
    const store = storeWith(setup);
    const verifyOnly = new JwtTokenProvider({ keys: jwtKeysFor('ES256', { verifyOnly: true }), ttlMs: 300_000 });
    expect(verifyOnly.canIssue).toBe(false);
    expect(verifyOnly.verify(issue(store), { store, nowMs: 0 })).toBe('alice');
    let refusal: unknown;
    try {
      verifyOnly.issue({ store, user: store.user('alice')!, nowMs: 0 });
    } catch (error) {
      refusal = error;
    }
    expect(isSynodError(refusal, 'SYNOD_AUTH_VERIFY_ONLY')).toBe(true);
    expect((refusal as Error).message).toBe('auth: token signing attempted with verify-only key');
  });
});
