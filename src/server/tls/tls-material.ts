/**
 * A member's TLS identity read from etcd's flags: the certificate (`--cert-file` or
 * `--peer-cert-file`), its private key and the CA bundle it trusts. Each file is parsed on its
 * own so that a bad one is named, with its flag, in a one-line SYNOD_INVALID_CONFIG; then
 * `createSecureContext` checks that the key belongs to the certificate. The same reading serves
 * the start (where an error stops the member, exit 2) and every reload (where an error is logged
 * and the previous material kept, certificate-reloader.ts). `synod ids` checks its listeners'
 * files (`--listen-cert-file`…) with the same `tlsMaterialOf`.
 */

import { createPrivateKey, X509Certificate } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { createSecureContext, type SecureContext } from 'node:tls';
import { assert, SynodError } from '../../base/index.js';

/** Where one side's TLS identity comes from: the client port's flags or the peers'. */
export interface TlsFiles {
  /** `--cert-file` / `--peer-cert-file`: PEM certificate, optionally followed by its chain. */
  readonly certFile: string;
  /** `--key-file` / `--peer-key-file`: the PEM private key of the certificate. */
  readonly keyFile: string;
  /** `--trusted-ca-file` / `--peer-trusted-ca-file`: PEM CA bundle, or null for none. */
  readonly trustedCaFile: string | null;
  /** `--client-cert-auth` / `--peer-client-cert-auth`: callers must present a certificate. */
  readonly clientCertAuth: boolean;
  /**
   * Prepended to the flag names in messages: '' (client side), 'peer-', or 'listen-' (the
   * listeners of `synod ids`).
   */
  readonly flagPrefix: '' | 'peer-' | 'listen-';
}

/** What a `TlsFiles`' files hold, as read. */
export interface TlsFileContents {
  readonly cert: Buffer;
  readonly key: Buffer;
  /** The trusted CA bundle, or null when `trustedCaFile` is null. */
  readonly ca: Buffer | null;
}

/** The files' contents, validated, and the secure context they make. Immutable. */
export interface TlsMaterial {
  readonly cert: Buffer;
  readonly key: Buffer;
  /** The trusted CA bundle, or null (Node's default roots then verify the other side). */
  readonly ca: Buffer | null;
  /** cert + key + ca, for dialing (tls.connect's `secureContext`). */
  readonly context: SecureContext;
  /** The leaf certificate's subject CN, for logs. */
  readonly commonName: string;
  /** The leaf certificate's SHA-256 fingerprint (colon-separated hex, as Node prints it). */
  readonly fingerprint256: string;
}

const certificateBlock = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

function invalid(message: string): never {
  throw new SynodError('SYNOD_INVALID_CONFIG', message);
}

async function readPem(flag: string, path: string): Promise<Buffer> {
  try {
    return await readFile(path);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? (error as Error).message;
    return invalid(`--${flag} ${path}: cannot read the file (${code})`);
  }
}

/** The certificates of a PEM bundle; at least one, each well-formed. */
function parseCertificates(flag: string, path: string, pem: Buffer): X509Certificate[] {
  const blocks = pem.toString('latin1').match(certificateBlock) ?? [];
  if (blocks.length === 0) invalid(`--${flag} ${path}: no PEM certificate in the file`);
  return blocks.map((block, index) => {
    try {
      return new X509Certificate(block);
    } catch (error) {
      const why = (error as Error).message;
      return invalid(`--${flag} ${path}: certificate ${index + 1} is malformed (${why})`);
    }
  });
}

/** The CN of an X.509 subject as Node prints it (`CN=server\nO=…`), or '' without one. */
export function commonNameOfSubject(subject: string): string {
  const line = subject.split('\n').find((part) => part.startsWith('CN='));
  return line === undefined ? '' : line.slice('CN='.length);
}

/**
 * Reads and validates `files`. Throws SYNOD_INVALID_CONFIG naming the flag and the file: one that
 * cannot be read, or any refusal of `tlsMaterialOf`.
 */
export async function readTlsMaterial(files: TlsFiles): Promise<TlsMaterial> {
  const prefix = files.flagPrefix;
  const cert = await readPem(`${prefix}cert-file`, files.certFile);
  const key = await readPem(`${prefix}key-file`, files.keyFile);
  const ca = files.trustedCaFile === null
    ? null : await readPem(`${prefix}trusted-ca-file`, files.trustedCaFile);
  return tlsMaterialOf(files, { cert, key, ca });
}

/**
 * Validates what `files` hold, read by the caller (`synod ids` reads at parse time, synchronously).
 * Throws SYNOD_INVALID_CONFIG naming the flag and the file: no PEM certificate or a malformed
 * one, a key that is not a private key, or a key that does not belong to the certificate.
 */
export function tlsMaterialOf(files: TlsFiles, contents: TlsFileContents): TlsMaterial {
  assert((files.trustedCaFile === null) === (contents.ca === null), 'a CA bundle iff a CA file');
  const prefix = files.flagPrefix;
  const certFlag = `${prefix}cert-file`;
  const keyFlag = `${prefix}key-file`;
  const caFlag = `${prefix}trusted-ca-file`;
  const { cert, key, ca } = contents;
  const [leaf] = parseCertificates(certFlag, files.certFile, cert);
  assert(leaf !== undefined, 'a parsed bundle holds a certificate');
  try {
    createPrivateKey(key);
  } catch (error) {
    invalid(`--${keyFlag} ${files.keyFile}: not a PEM private key (${(error as Error).message})`);
  }
  if (ca !== null) parseCertificates(caFlag, files.trustedCaFile!, ca);
  let context: SecureContext;
  try {
    context = createSecureContext({ cert, key, ...(ca === null ? {} : { ca }) });
  } catch (error) {
    return invalid(
      `--${certFlag} ${files.certFile} and --${keyFlag} ${files.keyFile} do not go together ` +
      `(${(error as Error).message})`,
    );
  }
  return Object.freeze({
    cert, key, ca, context,
    commonName: commonNameOfSubject(leaf.subject),
    fingerprint256: leaf.fingerprint256,
  });
}

/** The options a TLS server takes from the material (tls.createServer, setSecureContext). */
export function serverContextOptions(
  material: TlsMaterial,
): { cert: Buffer; key: Buffer; ca?: Buffer } {
  const { cert, key, ca } = material;
  return ca === null ? { cert, key } : { cert, key, ca };
}
