import { describe, expect, it } from 'vitest';
import { isSynodError } from '../../base/index.js';
import { hashPassword, PasswordVerifier, verifyPassword } from './password.js';

const cheap = { log2N: 10, r: 8, p: 1 };

describe('password hashing', () => {
  it('verifies the password it hashed, and nothing else', async () => {
    const stored = await hashPassword('s3cret', cheap);
    expect(stored).toMatch(/^scrypt\$10\$8\$1\$[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]+$/);
    expect(stored).not.toContain('s3cret');
    expect(await verifyPassword('s3cret', stored)).toBe(true);
    expect(await verifyPassword('s3cret!', stored)).toBe(false);
    expect(await hashPassword('s3cret', cheap)).not.toBe(stored); // A fresh salt each time.
  });

  it('refuses malformed stored hashes and oversized passwords instead of throwing', async () => {
    expect(await verifyPassword('x', 'bcrypt$...')).toBe(false);
    expect(await verifyPassword('x', 'scrypt$99$8$1$AA==$AA==')).toBe(false);
    expect(await verifyPassword('x'.repeat(2000), await hashPassword('x', cheap))).toBe(false);
    await expect(hashPassword('x'.repeat(2000), cheap)).rejects.toThrow(/at most 1024 bytes/);
  });
});

describe('PasswordVerifier', () => {
  it('remembers a success briefly, never a failure, and never across a password change', async () => {
    let now = 0;
    const verifier = new PasswordVerifier({ rememberMs: 1_000, nowMs: () => now });
    const stored = await hashPassword('pw', cheap);
    expect(await verifier.verify('alice', 'pw', stored)).toBe(true);
    expect(await verifier.verify('alice', 'nope', stored)).toBe(false);
    const changed = await hashPassword('pw2', cheap);
    expect(await verifier.verify('alice', 'pw', changed)).toBe(false);
    now = 2_000;
    expect(await verifier.verify('alice', 'pw', stored)).toBe(true);
  });

  it('bounds the verifications waiting, answering SYNOD_AUTH_BUSY beyond', async () => {
    const verifier = new PasswordVerifier({ concurrentMax: 1, waitingMax: 1 });
    const stored = await hashPassword('pw', cheap);
    const outcomes = await Promise.allSettled([1, 2, 3].map((i) => verifier.verify(`u${i}`, 'wrong', stored)));
    expect(outcomes.map((o) => o.status)).toEqual(['fulfilled', 'fulfilled', 'rejected']);
    const rejected = outcomes[2] as PromiseRejectedResult;
    expect(isSynodError(rejected.reason, 'SYNOD_AUTH_BUSY')).toBe(true);
  });
});
