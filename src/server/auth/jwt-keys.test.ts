import { execFile } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isSynodError } from '../../base/index.js';
import { parseAuthTokenOption, type JwtSignMethod, type JwtTokenOption } from './auth-token-option.js';
import { jwtKeyFileBytesMax, jwtKeysOf, readJwtKeys } from './jwt-keys.js';
import { keyPairFor, pemOf } from './jwt-test-kit.js';
import { signJwt, verifyJwt } from './jwt-tokens.js';
import { openTokenProvider } from './token-provider.js';

const run = promisify(execFile);

function refusal(fn: () => unknown): string {
  try {
    fn();
  } catch (error) {
    if (isSynodError(error, 'SYNOD_INVALID_CONFIG')) return error.message;
    throw error;
  }
  return 'accepted';
}

const material = (signMethod: JwtSignMethod, keys: { publicPem?: string | Buffer; privatePem?: string | Buffer }) => ({
  signMethod,
  publicKey: keys.publicPem === undefined ? null : { bytes: Buffer.from(keys.publicPem), file: 'pub.pem' },
  privateKey: keys.privatePem === undefined ? null : { bytes: Buffer.from(keys.privatePem), file: 'priv.pem' },
});

describe('JWT keys', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'synod-jwt-keys-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });
  const option = (text: string) => parseAuthTokenOption(text) as JwtTokenOption;

  it('name the option and the file when one is missing, empty, too large or not a key', async () => {
    await writeFile(join(dir, 'empty'), '');
    await writeFile(join(dir, 'large'), Buffer.alloc(jwtKeyFileBytesMax + 1, 65));
    await writeFile(join(dir, 'junk'), 'not a key\n');
    const read = (keys: string) => refusal(() => readJwtKeys(option(`jwt,sign-method=ES256,${keys}`)));
    expect(read(`pub-key=${dir}/absent`)).toBe(`--auth-token pub-key=${dir}/absent: cannot be read (ENOENT)`);
    expect(read(`priv-key=${dir}/empty`)).toBe(`--auth-token priv-key=${dir}/empty: is empty`);
    expect(read(`priv-key=${dir}/large`)).toMatch(/large: larger than 65536 bytes/);
    expect(read(`priv-key=${dir}/junk`)).toMatch(/junk: is not an unencrypted PEM private key/);
    expect(read(`pub-key=${dir}/junk`)).toMatch(/junk: is not a PEM public key/);
    expect(read(`pub-key=${dir}`)).toMatch(/cannot be read \(EISDIR\)/);
  });

  it('refuse a key that does not fit the sign method', () => {
    const rsa = keyPairFor('RS256');
    const p384 = keyPairFor('ES384');
    const small = pemOf(generateKeyPairSync('rsa', { modulusLength: 1024 }));
    const ed448 = pemOf(generateKeyPairSync('ed448'));
    const unfit = (method: JwtSignMethod, keys: { publicPem?: Buffer; privatePem?: Buffer }) =>
      refusal(() => jwtKeysOf(material(method, keys)));
    expect(unfit('ES256', { publicPem: rsa.publicPem })).toMatch(/ES256 needs an EC key, this one is rsa/);
    expect(unfit('ES256', { privatePem: p384.privatePem }))
      .toMatch(/ES256 needs a key on curve prime256v1, this one is on secp384r1/);
    expect(unfit('EdDSA', { publicPem: p384.publicPem })).toMatch(/EdDSA needs an Ed25519 key/);
    expect(unfit('EdDSA', { publicPem: ed448.publicPem })).toMatch(/this one is ed448/);
    expect(unfit('RS256', { publicPem: p384.publicPem })).toMatch(/RS256 needs an RSA key/);
    expect(unfit('PS256', { privatePem: small.privatePem }))
      .toMatch(/PS256 needs an RSA key of at least 2048 bits, this one has 1024/);
    expect(unfit('HS256', { privatePem: Buffer.alloc(31, 1) }))
      .toMatch(/HS256 needs a secret of at least 32 bytes, this one has 31/);
    expect(unfit('HS512', { privatePem: Buffer.alloc(63, 1) })).toMatch(/at least 64 bytes/);
  });

  it('refuse halves of two different pairs, and a private key handed out as the public one', () => {
    const mine = keyPairFor('ES256');
    const other = keyPairFor('ES256', { other: true });
    expect(refusal(() => jwtKeysOf(material('ES256', { publicPem: other.publicPem, privatePem: mine.privatePem }))))
      .toBe('--auth-token pub-key=pub.pem: is not the public half of priv-key=priv.pem');
    expect(refusal(() => jwtKeysOf(material('ES256', { publicPem: mine.privatePem })))).toMatch(/holds a private key/);
  });

  it('derive the public key from a lone private key; a lone public key verifies only', () => {
    const pair = keyPairFor('EdDSA');
    const signer = jwtKeysOf(material('EdDSA', { privatePem: pair.privatePem }));
    const verifier = jwtKeysOf(material('EdDSA', { publicPem: pair.publicPem }));
    expect(verifier.signingKey).toBeNull();
    const claims = { username: 'u', revision: 1, exp: 10 };
    expect(verifyJwt(verifier, signJwt(signer, claims), 0)).toEqual(claims);
  });

  it('load the keys that the openssl commands of docs/operations.md make', async () => {
    const key = join(dir, 'jwt.key');
    const pub = join(dir, 'jwt.pub');
    const secret = join(dir, 'jwt.secret');
    await run('openssl', ['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', key]);
    await run('openssl', ['pkey', '-in', key, '-pubout', '-out', pub]);
    await run('openssl', ['rand', '-out', secret, '64']);
    const signer = openTokenProvider(option(`jwt,pub-key=${pub},priv-key=${key},sign-method=ES256,ttl=10m`));
    const verifier = openTokenProvider(option(`jwt,pub-key=${pub},sign-method=ES256`));
    expect([signer.canIssue, verifier.canIssue]).toEqual([true, false]);
    expect(openTokenProvider(option(`jwt,priv-key=${secret},sign-method=HS512`)).canIssue).toBe(true);
    const rsaKey = join(dir, 'rsa.key');
    await run('openssl', ['genpkey', '-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048', '-out', rsaKey]);
    expect(openTokenProvider(option(`jwt,priv-key=${rsaKey},sign-method=PS384`)).kind).toBe('jwt');
  });
});
