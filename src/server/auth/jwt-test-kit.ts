/**
 * Test kit: throwaway JWT keys for every sign method, made with node:crypto (an RSA key takes a
 * moment, so each family's pair is made once per process), as PEM text or as files in a
 * directory, the way an operator hands them to `--auth-token`.
 */

import { generateKeyPairSync, randomBytes, type KeyObject } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { JwtSignMethod } from './auth-token-option.js';
import { jwsAlgorithms, jwtKeysOf, type JwtKeys } from './jwt-keys.js';

/** A key pair as PEM (HS*: the same secret twice). */
export interface PemKeyPair {
  readonly privatePem: Buffer;
  readonly publicPem: Buffer;
}

const pairs = new Map<string, PemKeyPair>();

/** A generated pair as PEM: PKCS#8 and SPKI, what `openssl genpkey` and `pkey -pubout` write. */
export function pemOf(pair: { privateKey: KeyObject; publicKey: KeyObject }): PemKeyPair {
  return {
    privatePem: Buffer.from(pair.privateKey.export({ type: 'pkcs8', format: 'pem' })),
    publicPem: Buffer.from(pair.publicKey.export({ type: 'spki', format: 'pem' })),
  };
}

function generated(family: string): PemKeyPair {
  switch (family) {
    case 'rsa': return pemOf(generateKeyPairSync('rsa', { modulusLength: 2048 }));
    case 'ed25519': return pemOf(generateKeyPairSync('ed25519'));
    case 'hmac': {
      const secret = randomBytes(64);
      return { privatePem: secret, publicPem: secret };
    }
    default: return pemOf(generateKeyPairSync('ec', { namedCurve: family }));
  }
}

/**
 * A key pair that fits `method`, made once per family and curve; `other` asks for a second one,
 * also made once (a stranger's keys).
 */
export function keyPairFor(method: JwtSignMethod, options: { other?: boolean } = {}): PemKeyPair {
  const algorithm = jwsAlgorithms[method];
  const byFamily: Record<string, string> = { 'rsa-pss': 'rsa', eddsa: 'ed25519' };
  const family = algorithm.curve ?? byFamily[algorithm.family] ?? algorithm.family;
  const slot = `${family}${options.other === true ? ' other' : ''}`;
  const cached = pairs.get(slot) ?? generated(family);
  pairs.set(slot, cached);
  return cached;
}

/** Keys for `method`: a signing member's, or with `verifyOnly` one's with the public key alone. */
export function jwtKeysFor(
  method: JwtSignMethod, options: { verifyOnly?: boolean; pair?: PemKeyPair } = {},
): JwtKeys {
  const pair = options.pair ?? keyPairFor(method);
  const hmac = jwsAlgorithms[method].family === 'hmac';
  return jwtKeysOf({
    signMethod: method,
    publicKey: hmac ? null : { bytes: pair.publicPem, file: 'pub.pem' },
    privateKey: options.verifyOnly === true ? null : { bytes: pair.privatePem, file: 'priv.pem' },
  });
}

/** Writes `method`'s key pair into `dir` as `jwt.pub` and `jwt.key`; returns their paths. */
export async function writeJwtKeyFiles(
  dir: string, method: JwtSignMethod,
): Promise<{ publicKeyFile: string; privateKeyFile: string }> {
  const pair = keyPairFor(method);
  const publicKeyFile = join(dir, 'jwt.pub');
  const privateKeyFile = join(dir, 'jwt.key');
  await writeFile(publicKeyFile, pair.publicPem);
  await writeFile(privateKeyFile, pair.privatePem, { mode: 0o600 });
  return { publicKeyFile, privateKeyFile };
}
