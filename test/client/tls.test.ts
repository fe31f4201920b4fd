/**
 * The SDK over TLS: a member on an https:// client URL is reached with the cluster's CA, with a
 * client certificate where the member checks them, and refused (no endpoint reachable) with a CA
 * that did not sign the server's certificate.
 */

import { readFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SynodClient, isSynodError } from '../../src/client/index.js';
import { makeTestCertificates, type TestCertificates } from '../../src/server/tls/certificate-test-kit.js';
import { startTlsMember } from '../../src/server/tls/tls-test-kit.js';

describe('synod/client over TLS', () => {
  let certificates: TestCertificates;
  const stops: (() => Promise<void>)[] = [];
  beforeAll(async () => {
    certificates = await makeTestCertificates();
  });
  afterAll(async () => {
    for (const stop of stops.reverse()) await stop();
    await certificates?.remove();
  });

  async function member(flags: string[]): Promise<string> {
    const { server, stop } = await startTlsMember({
      flags: ['--listen-client-urls', 'https://127.0.0.1:0', '--cert-file', certificates.server.cert, '--key-file', certificates.server.key, ...flags],
    });
    stops.push(stop);
    return `https://127.0.0.1:${server.clientPort}`;
  }

  it('talks to an https:// endpoint with the cluster CA, and refuses a foreign CA', async () => {
    const endpoint = await member([]);
    await using trusted = new SynodClient({ endpoints: [endpoint], tls: { ca: await readFile(certificates.ca) } });
    await trusted.put('tls/k', 'v');
    expect((await trusted.get('tls/k'))?.value.toString()).toBe('v');
    await using foreign = new SynodClient({ endpoints: [endpoint], tls: { ca: await readFile(certificates.foreignCa) }, callTimeoutMs: 1500 });
    const refused = await foreign.get('tls/k').catch((error) => error);
    expect(isSynodError(refused, 'SYNOD_CLIENT_UNAVAILABLE')).toBe(true);
  });

  it('presents a client certificate to a member that requires one', async () => {
    const endpoint = await member(['--client-cert-auth', '--trusted-ca-file', certificates.ca]);
    const ca = await readFile(certificates.ca);
    await using withCertificate = new SynodClient({
      endpoints: [endpoint],
      tls: { ca, cert: await readFile(certificates.alice.cert), key: await readFile(certificates.alice.key) },
    });
    await withCertificate.put('tls/cert', 'ok');
    expect((await withCertificate.get('tls/cert'))?.value.toString()).toBe('ok');
    await using without = new SynodClient({ endpoints: [endpoint], tls: { ca }, callTimeoutMs: 1500 });
    const refused = await without.get('tls/cert').catch((error) => error);
    expect(refused).toBeInstanceOf(Error);
    expect(isSynodError(refused)).toBe(true);
  });
});
