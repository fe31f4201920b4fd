import { describe, expect, it } from 'vitest';
import { rejectsAsInvalidToken } from './auth-test-kit.js';
import { issueToken, newTokenKey, verifyToken } from './tokens.js';

const invalid = rejectsAsInvalidToken;

describe('auth tokens', () => {
  it('carry the user and revision until they expire, under their key only', () => {
    const key = newTokenKey();
    const token = issueToken(key, { user: 'alice', revision: 7, password: 'fp', expiresAtMs: 10_000 });
    expect(verifyToken(key, token, 9_999)).toEqual({ user: 'alice', revision: 7, password: 'fp', expiresAtMs: 10_000 });
    expect(invalid(() => verifyToken(key, token, 10_000))).toBe(true);
    expect(invalid(() => verifyToken(newTokenKey(), token, 0))).toBe(true);
    expect(invalid(() => verifyToken(null, token, 0))).toBe(true);
  });

  it('refuses any change to the payload or signature, and junk', () => {
    const key = newTokenKey();
    const token = issueToken(key, { user: 'alice', revision: 1, password: 'fp', expiresAtMs: 10_000 });
    const [payload, signature] = token.split('.') as [string, string];
    const forged = Buffer.from(JSON.stringify({ u: 'root', r: 1, p: 'fp', e: 10_000, n: 'x' })).toString('base64url');
    expect(invalid(() => verifyToken(key, `${forged}.${signature}`, 0))).toBe(true);
    expect(invalid(() => verifyToken(key, `${payload}.${signature.slice(1)}`, 0))).toBe(true);
    for (const junk of ['', '.', 'abc', 'a.b', 'x'.repeat(5000)]) expect(invalid(() => verifyToken(key, junk, 0))).toBe(true);
  });
});
