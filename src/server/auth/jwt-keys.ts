/**
 * The keys of `--auth-token jwt,…`, read once at startup and checked against the sign method
 * (etcd server/auth/options.go `Key`), so a member with the wrong key refuses to start rather than
 * failing every Authenticate. Each problem is SYNOD_INVALID_CONFIG naming the option and the file.
 *
 * What fits a method: RS* an RSA key and PS* an RSA or RSA-PSS key, of 2048 bits or more
 * (RFC 7518 §3.3, §3.5); ES256, ES384, ES512 an EC key on P-256, P-384, P-521 (§3.4); EdDSA an
 * Ed25519 key; HS* the raw bytes of `priv-key` as the secret, as etcd uses them (a trailing
 * newline included), at least as long as the hash (§3.2). With both files given they must be one pair; with only
 * `priv-key` the public key is derived from it; with only `pub-key` the member verifies tokens
 * and cannot issue them (etcd's verify-only member). A private key in the `pub-key` file is
 * refused: every member gets that file, so it must not carry the signing key.
 */

import { createPrivateKey, createPublicKey, createSecretKey, type KeyObject } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { SynodError } from '../../base/index.js';
import type { JwtSignMethod, JwtTokenOption } from './auth-token-option.js';

/** How a sign method signs: its key family, hash (null for EdDSA) and, for ECDSA, curve. */
export interface JwsAlgorithm {
  readonly family: 'rsa' | 'rsa-pss' | 'ecdsa' | 'eddsa' | 'hmac';
  readonly hash: 'sha256' | 'sha384' | 'sha512' | null;
  /** OpenSSL's curve name, ECDSA only. */
  readonly curve?: 'prime256v1' | 'secp384r1' | 'secp521r1';
  /** The JWS signature's fixed size in bytes (ECDSA's r‖s, RFC 7518 §3.4), where it has one. */
  readonly signatureBytes?: number;
}

/** Every sign method's algorithm. */
export const jwsAlgorithms: Readonly<Record<JwtSignMethod, JwsAlgorithm>> = Object.freeze({
  RS256: { family: 'rsa', hash: 'sha256' },
  RS384: { family: 'rsa', hash: 'sha384' },
  RS512: { family: 'rsa', hash: 'sha512' },
  PS256: { family: 'rsa-pss', hash: 'sha256' },
  PS384: { family: 'rsa-pss', hash: 'sha384' },
  PS512: { family: 'rsa-pss', hash: 'sha512' },
  ES256: { family: 'ecdsa', hash: 'sha256', curve: 'prime256v1', signatureBytes: 64 },
  ES384: { family: 'ecdsa', hash: 'sha384', curve: 'secp384r1', signatureBytes: 96 },
  ES512: { family: 'ecdsa', hash: 'sha512', curve: 'secp521r1', signatureBytes: 132 },
  EdDSA: { family: 'eddsa', hash: null, signatureBytes: 64 },
  HS256: { family: 'hmac', hash: 'sha256', signatureBytes: 32 },
  HS384: { family: 'hmac', hash: 'sha384', signatureBytes: 48 },
  HS512: { family: 'hmac', hash: 'sha512', signatureBytes: 64 },
});

/** The keys a JWT provider signs and checks with. */
export interface JwtKeys {
  readonly signMethod: JwtSignMethod;
  /** Private (or HMAC secret) key; null on a verify-only member. */
  readonly signingKey: KeyObject | null;
  /** Public key (or the same HMAC secret). */
  readonly verifyingKey: KeyObject;
}

/** The largest key file read (a PEM of an RSA-16384 key is under 13 KiB). */
export const jwtKeyFileBytesMax = 64 * 1024;
/** The smallest RSA modulus accepted (RFC 7518 §3.3). */
export const rsaModulusBitsMin = 2048;

/** Key material as read: PEM text (HS*: raw secret bytes) and where it came from, for messages. */
export interface JwtKeyMaterial {
  readonly signMethod: JwtSignMethod;
  readonly publicKey: { readonly bytes: Buffer; readonly file: string } | null;
  readonly privateKey: { readonly bytes: Buffer; readonly file: string } | null;
}

function invalid(what: string, file: string, problem: string): never {
  throw new SynodError('SYNOD_INVALID_CONFIG', `--auth-token ${what}=${file}: ${problem}`);
}

/** Reads `option`'s key files and checks them (`jwtKeysOf`). */
export function readJwtKeys(option: JwtTokenOption): JwtKeys {
  const read = (what: string, file: string | null) =>
    (file === null ? null : { bytes: readKeyFile(what, file), file });
  return jwtKeysOf({
    signMethod: option.signMethod,
    publicKey: read('pub-key', option.publicKeyFile),
    privateKey: read('priv-key', option.privateKeyFile),
  });
}

function readKeyFile(what: string, file: string): Buffer {
  let bytes: Buffer;
  try {
    if (statSync(file).size > jwtKeyFileBytesMax) {
      invalid(what, file, `larger than ${jwtKeyFileBytesMax} bytes: not a key`);
    }
    bytes = readFileSync(file);
  } catch (error) {
    if (error instanceof SynodError) throw error;
    const reason = (error as NodeJS.ErrnoException).code ?? (error as Error).message;
    invalid(what, file, `cannot be read (${reason})`);
  }
  if (bytes.length === 0) invalid(what, file, 'is empty');
  return bytes;
}

/** Parses and checks key material against its sign method. */
export function jwtKeysOf(material: JwtKeyMaterial): JwtKeys {
  const { signMethod } = material;
  const algorithm = jwsAlgorithms[signMethod];
  if (algorithm.family === 'hmac') {
    const secret = material.privateKey;
    if (secret === null) {
      throw new SynodError('SYNOD_INVALID_CONFIG', `--auth-token: ${signMethod} needs priv-key`);
    }
    const bytesMin = algorithm.signatureBytes!;
    if (secret.bytes.length < bytesMin) {
      invalid('priv-key', secret.file,
        `${signMethod} needs a secret of at least ${bytesMin} bytes, this one has `
        + `${secret.bytes.length}`);
    }
    const key = createSecretKey(secret.bytes);
    return Object.freeze({ signMethod, signingKey: key, verifyingKey: key });
  }
  const privateKey = material.privateKey === null ? null : privateKeyOf(material.privateKey);
  const publicKey = material.publicKey === null ? null : publicKeyOf(material.publicKey);
  for (const [key, what, source] of [
    [privateKey, 'priv-key', material.privateKey], [publicKey, 'pub-key', material.publicKey],
  ] as const) {
    if (key === null || source === null) continue;
    const problem = unfitFor(key, signMethod);
    if (problem !== null) invalid(what, source.file, problem);
  }
  const derived = privateKey === null ? null : createPublicKey(privateKey);
  if (derived !== null && publicKey !== null && !samePublicKey(derived, publicKey)) {
    invalid('pub-key', material.publicKey!.file,
      `is not the public half of priv-key=${material.privateKey!.file}`);
  }
  const verifyingKey = publicKey ?? derived;
  if (verifyingKey === null) {
    const problem = `--auth-token: ${signMethod} needs pub-key or priv-key`;
    throw new SynodError('SYNOD_INVALID_CONFIG', problem);
  }
  return Object.freeze({ signMethod, signingKey: privateKey, verifyingKey });
}

function privateKeyOf(source: { readonly bytes: Buffer; readonly file: string }): KeyObject {
  try {
    return createPrivateKey({ key: source.bytes, format: 'pem' });
  } catch {
    return invalid('priv-key', source.file, 'is not an unencrypted PEM private key');
  }
}

function publicKeyOf(source: { readonly bytes: Buffer; readonly file: string }): KeyObject {
  if (/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(source.bytes.toString('latin1'))) {
    invalid('pub-key', source.file,
      'holds a private key; give its public half (openssl pkey -pubout)');
  }
  try {
    return createPublicKey({ key: source.bytes, format: 'pem' });
  } catch {
    return invalid('pub-key', source.file, 'is not a PEM public key');
  }
}

/** Why `key` cannot serve `signMethod`, or null when it can. */
function unfitFor(key: KeyObject, signMethod: JwtSignMethod): string | null {
  const algorithm = jwsAlgorithms[signMethod];
  const type = key.asymmetricKeyType;
  const details = key.asymmetricKeyDetails;
  switch (algorithm.family) {
    case 'rsa':
    case 'rsa-pss': {
      const types = algorithm.family === 'rsa' ? ['rsa'] : ['rsa', 'rsa-pss'];
      if (type === undefined || !types.includes(type)) {
        return `${signMethod} needs an RSA key, this one is ${type}`;
      }
      const bits = details?.modulusLength ?? 0;
      if (bits >= rsaModulusBitsMin) return null;
      return `${signMethod} needs an RSA key of at least ${rsaModulusBitsMin} bits, `
        + `this one has ${bits}`;
    }
    case 'ecdsa':
      if (type !== 'ec') return `${signMethod} needs an EC key, this one is ${type}`;
      if (details?.namedCurve === algorithm.curve) return null;
      return `${signMethod} needs a key on curve ${algorithm.curve}, `
        + `this one is on ${details?.namedCurve}`;
    case 'eddsa':
      return type === 'ed25519' ? null : `EdDSA needs an Ed25519 key, this one is ${type}`;
    case 'hmac':
      return `${signMethod} takes a secret, not a key pair`;
  }
}

function samePublicKey(a: KeyObject, b: KeyObject): boolean {
  const der = (key: KeyObject) => key.export({ type: 'spki', format: 'der' });
  return der(a).equals(der(b));
}
