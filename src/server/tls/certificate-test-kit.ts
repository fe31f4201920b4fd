/**
 * Test kit: throwaway certificates made with `openssl` in a temp directory (EC P-256, valid for
 * two days). Two CAs: the cluster's (`ca`) and a foreign one (`foreignCa`). Every leaf has SAN
 * IP:127.0.0.1 and DNS:localhost; `server`, `server2` and `intruder` are good for both server and
 * client use (a member presents its certificate both ways, on peer links and from the gateway).
 */

import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** A certificate and its key, as files. */
export interface CertificateFiles {
  readonly cert: string;
  readonly key: string;
}

/** Every file the kit made, and `remove()` to delete them. */
export interface TestCertificates {
  readonly directory: string;
  /** The cluster's CA certificate (trusted CA file). */
  readonly ca: string;
  /** Another CA, which the cluster does not trust. */
  readonly foreignCa: string;
  /** CN=server, signed by `ca`. */
  readonly server: CertificateFiles;
  /** CN=server-2, signed by `ca` (the certificate a reload installs). */
  readonly server2: CertificateFiles;
  /** CN=alice, a client certificate signed by `ca`. */
  readonly alice: CertificateFiles;
  /** CN=mallory, a client certificate signed by `foreignCa`. */
  readonly mallory: CertificateFiles;
  /** CN=intruder, server and client, signed by `foreignCa`. */
  readonly intruder: CertificateFiles;
  remove(): Promise<void>;
}

const extensions = `
[both]
subjectAltName = IP:127.0.0.1, DNS:localhost
extendedKeyUsage = serverAuth, clientAuth
[client]
subjectAltName = IP:127.0.0.1, DNS:localhost
extendedKeyUsage = clientAuth
`;

const ecKey = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];

async function makeCa(directory: string, name: string): Promise<CertificateFiles> {
  const files = { cert: join(directory, `${name}.crt`), key: join(directory, `${name}.key`) };
  await run('openssl', [
    'req', '-x509', ...ecKey, '-keyout', files.key, '-out', files.cert, '-days', '2',
    '-subj', `/CN=${name}`,
  ]);
  return files;
}

async function makeLeaf(options: {
  directory: string; name: string; commonName: string; ca: CertificateFiles; section: 'both' | 'client';
}): Promise<CertificateFiles> {
  const { directory, name } = options;
  const files = { cert: join(directory, `${name}.crt`), key: join(directory, `${name}.key`) };
  const request = join(directory, `${name}.csr`);
  await run('openssl', [
    'req', '-new', ...ecKey, '-keyout', files.key, '-out', request, '-subj', `/CN=${options.commonName}`,
  ]);
  await run('openssl', [
    'x509', '-req', '-in', request, '-CA', options.ca.cert, '-CAkey', options.ca.key,
    '-CAcreateserial', '-out', files.cert, '-days', '2',
    '-extfile', join(directory, 'extensions.cnf'), '-extensions', options.section,
  ]);
  return files;
}

/** Makes the certificates in a new temp directory. */
export async function makeTestCertificates(): Promise<TestCertificates> {
  const directory = await mkdtemp(join(tmpdir(), 'synod-tls-'));
  await writeFile(join(directory, 'extensions.cnf'), extensions);
  const [ca, foreignCa] = await Promise.all([makeCa(directory, 'ca'), makeCa(directory, 'foreign-ca')]);
  const leaf = (name: string, commonName: string, signer: CertificateFiles, section: 'both' | 'client') =>
    makeLeaf({ directory, name, commonName, ca: signer, section });
  // One CA's leaves at a time: each signing updates that CA's serial file.
  const server = await leaf('server', 'server', ca, 'both');
  const server2 = await leaf('server2', 'server-2', ca, 'both');
  const alice = await leaf('alice', 'alice', ca, 'client');
  const mallory = await leaf('mallory', 'mallory', foreignCa, 'client');
  const intruder = await leaf('intruder', 'intruder', foreignCa, 'both');
  return {
    directory, ca: ca.cert, foreignCa: foreignCa.cert, server, server2, alice, mallory, intruder,
    remove: () => rm(directory, { recursive: true, force: true }),
  };
}
