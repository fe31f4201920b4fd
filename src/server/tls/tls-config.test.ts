/**
 * The TLS flags as an operator meets them: etcd's names and ETCD_* variables, the shape checks of
 * flags.ts, and the one-line SYNOD_INVALID_CONFIG for files that cannot serve, naming the flag
 * and the file. Then the reloader on its own: a changed file set is installed, a broken one is
 * logged and the old material kept.
 */

import { copyFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isSynodError } from '../../base/index.js';
import { parseServerFlags } from '../flags.js';
import { CertificateReloader } from './certificate-reloader.js';
import { makeTestCertificates, type TestCertificates } from './certificate-test-kit.js';
import { startTlsMember } from './tls-test-kit.js';
import { readTlsMaterial, type TlsFiles } from './tls-material.js';

let certs: TestCertificates;
beforeAll(async () => {
  certs = await makeTestCertificates();
});
afterAll(async () => certs.remove());

function rejection(run: () => unknown): string {
  try {
    run();
  } catch (error) {
    if (isSynodError(error, 'SYNOD_INVALID_CONFIG')) return error.message;
    throw error;
  }
  return 'accepted';
}

async function asyncRejection(run: () => Promise<unknown>): Promise<string> {
  try {
    await run();
  } catch (error) {
    if (isSynodError(error, 'SYNOD_INVALID_CONFIG')) return error.message;
    throw error;
  }
  return 'accepted';
}

describe('TLS flags', () => {
  it("reads etcd's flags and variables into each side's files", () => {
    const config = parseServerFlags([
      '--listen-client-urls', 'https://127.0.0.1:2379',
      '--cert-file', '/c.crt', '--key-file', '/c.key', '--trusted-ca-file', '/ca.crt',
      '--client-cert-auth', '--cipher-suites', 'TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256',
    ], {
      ETCD_PEER_CERT_FILE: '/p.crt', ETCD_PEER_KEY_FILE: '/p.key',
      ETCD_PEER_TRUSTED_CA_FILE: '/pca.crt', ETCD_PEER_CLIENT_CERT_AUTH: 'true',
    });
    expect(config.clientTls).toEqual({
      certFile: '/c.crt', keyFile: '/c.key', trustedCaFile: '/ca.crt', clientCertAuth: true, flagPrefix: '',
    });
    expect(config.peerTls).toEqual({
      certFile: '/p.crt', keyFile: '/p.key', trustedCaFile: '/pca.crt', clientCertAuth: true, flagPrefix: 'peer-',
    });
    expect(config.ignoredFlags).toContain('cipher-suites');
    expect(parseServerFlags([], {})).toMatchObject({ clientTls: null, peerTls: null });
  });

  it('takes --client-cert-auth=false over the variable, as a flag beats its variable', () => {
    const argv = ['--cert-file', '/c.crt', '--key-file', '/c.key', '--trusted-ca-file', '/ca.crt'];
    const env = { ETCD_CLIENT_CERT_AUTH: 'true' };
    expect(parseServerFlags([...argv, '--client-cert-auth=false'], env).clientTls?.clientCertAuth).toBe(false);
    expect(parseServerFlags(argv, env).clientTls?.clientCertAuth).toBe(true);
    expect(rejection(() => parseServerFlags([...argv, '--client-cert-auth=maybe'], {})))
      .toBe('--client-cert-auth must be true or false, got "maybe"');
  });

  it('refuses an https:// URL without its certificate, with etcd\'s message', () => {
    expect(rejection(() => parseServerFlags(['--listen-client-urls', 'https://127.0.0.1:2379'], {})))
      .toBe('TLS key/cert (--cert-file, --key-file) must be provided for client url https://127.0.0.1:2379/ with HTTPS scheme');
    expect(rejection(() => parseServerFlags([
      '--listen-peer-urls', 'https://127.0.0.1:2380', '--initial-advertise-peer-urls', 'https://127.0.0.1:2380',
    ], {}))).toBe(
      'TLS key/cert (--peer-cert-file, --peer-key-file) must be provided for peer url https://127.0.0.1:2380/ with HTTPS scheme',
    );
  });

  it('refuses half-given TLS flags', () => {
    expect(rejection(() => parseServerFlags(['--cert-file', '/c.crt'], {})))
      .toBe('--cert-file and --key-file must be given together');
    expect(rejection(() => parseServerFlags(['--cert-file', '/c', '--key-file', '/k', '--client-cert-auth'], {})))
      .toBe('--client-cert-auth needs --trusted-ca-file: the CA that signs the certificates accepted');
    expect(rejection(() => parseServerFlags(['--peer-client-cert-auth'], {})))
      .toBe('--peer-client-cert-auth needs TLS: give --peer-cert-file and --peer-key-file too');
  });
});

describe('readTlsMaterial', () => {
  const files = (overrides: Partial<TlsFiles>): TlsFiles => ({
    certFile: certs.server.cert, keyFile: certs.server.key, trustedCaFile: certs.ca,
    clientCertAuth: false, flagPrefix: '', ...overrides,
  });

  it('reads a certificate, its key and a CA', async () => {
    const material = await readTlsMaterial(files({}));
    expect(material.commonName).toBe('server');
    expect(material.fingerprint256).toMatch(/^([0-9A-F]{2}:){31}[0-9A-F]{2}$/);
  });

  it('names the flag and the file of a missing, garbage or mismatched file', async () => {
    const garbage = join(certs.directory, 'garbage.pem');
    await writeFile(garbage, 'this is not PEM\n');
    const missing = join(certs.directory, 'missing.key');
    expect(await asyncRejection(() => readTlsMaterial(files({ keyFile: missing }))))
      .toBe(`--key-file ${missing}: cannot read the file (ENOENT)`);
    expect(await asyncRejection(() => readTlsMaterial(files({ certFile: garbage }))))
      .toBe(`--cert-file ${garbage}: no PEM certificate in the file`);
    expect(await asyncRejection(() => readTlsMaterial(files({ flagPrefix: 'peer-', keyFile: garbage }))))
      .toMatch(new RegExp(`^--peer-key-file ${garbage}: not a PEM private key \\(`));
    expect(await asyncRejection(() => readTlsMaterial(files({ trustedCaFile: garbage }))))
      .toBe(`--trusted-ca-file ${garbage}: no PEM certificate in the file`);
    expect(await asyncRejection(() => readTlsMaterial(files({ keyFile: certs.alice.key }))))
      .toMatch(new RegExp(`^--cert-file ${certs.server.cert} and --key-file ${certs.alice.key} do not go together \\(.*key values mismatch\\)$`));
  });
});

describe('startServer with TLS flags', () => {
  it('refuses to start on a key file it cannot read, naming the flag and the file', async () => {
    const missing = join(certs.directory, 'no-such.key');
    const started = startTlsMember({
      flags: ['--listen-client-urls', 'https://127.0.0.1:0', '--cert-file', certs.server.cert, '--key-file', missing],
    });
    expect(await asyncRejection(() => started)).toBe(`--key-file ${missing}: cannot read the file (ENOENT)`);
  });
});

describe('CertificateReloader', () => {
  it('installs a changed certificate and keeps the old one when the new files do not validate', async () => {
    const cert = join(certs.directory, 'reload.crt');
    const key = join(certs.directory, 'reload.key');
    await copyFile(certs.server.cert, cert);
    await copyFile(certs.server.key, key);
    const logged: string[] = [];
    const logger = pino({ level: 'info' }, { write: (line: string) => logged.push(line) });
    const reloader = await CertificateReloader.open({
      files: { certFile: cert, keyFile: key, trustedCaFile: null, clientCertAuth: false, flagPrefix: '' },
      logger,
    });
    const installed: string[] = [];
    reloader.onReload((material) => installed.push(material.commonName));
    expect(await reloader.check()).toBe(false);

    await copyFile(certs.server2.cert, cert); // the key still is server's: they do not go together
    expect(await reloader.check()).toBe(false);
    expect(reloader.current.commonName).toBe('server');
    expect(logged.join('')).toContain('TLS files changed but do not validate; keeping the current certificate');

    await copyFile(certs.server2.key, key);
    expect(await reloader.check()).toBe(true);
    expect(reloader.current.commonName).toBe('server-2');
    expect(installed).toEqual(['server-2']);
  });
});
