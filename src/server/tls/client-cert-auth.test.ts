/**
 * `--client-cert-auth`: a member that requires client certificates signed by --trusted-ca-file.
 * Clients without one, or with one from another CA, are refused; a client with the right one is
 * served over gRPC and HTTP, the JSON gateway included (it presents the member's certificate),
 * and the certificate's CN is what the accessor reports for its calls. After the member's
 * certificate is replaced on disk, the gateway dials with the new one.
 */

import { copyFile, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Server, ServerInterceptingCall, type ServerInterceptor } from '@grpc/grpc-js';
import { Etcd3 } from 'etcd3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { clientCommonNameOfCall } from './client-identity.js';
import { makeTestCertificates, type TestCertificates } from './certificate-test-kit.js';
import { base64, handshake, httpsRequest, requestOutcome, startTlsMember } from './tls-test-kit.js';

let certs: TestCertificates;
beforeAll(async () => {
  certs = await makeTestCertificates();
});
afterAll(async () => certs.remove());

describe('--client-cert-auth', () => {
  it('refuses clients without a trusted certificate and names the trusted ones by their CN', async () => {
    const callers: (string | null)[] = [];
    const recordCaller: ServerInterceptor = (_method, call) => {
      callers.push(clientCommonNameOfCall(call));
      return new ServerInterceptingCall(call);
    };
    const cert = join(certs.directory, 'auth-member.crt');
    const key = join(certs.directory, 'auth-member.key');
    await copyFile(certs.server.cert, cert);
    await copyFile(certs.server.key, key);
    const { server, stop } = await startTlsMember({
      flags: [
        '--listen-client-urls', 'https://127.0.0.1:0', '--cert-file', cert, '--key-file', key,
        '--trusted-ca-file', certs.ca, '--client-cert-auth',
      ],
      grpc: new Server({ interceptors: [recordCaller] }),
      certificateCheckIntervalMs: 50,
    });
    const port = server.clientPort;
    const ca = await readFile(certs.ca);
    const alice = { ca, cert: await readFile(certs.alice.cert), key: await readFile(certs.alice.key) };
    const mallory = { ca, cert: await readFile(certs.mallory.cert), key: await readFile(certs.mallory.key) };
    const clients: Etcd3[] = [];
    try {
      expect(await requestOutcome(port, { ca })).toBe('refused');
      expect(await requestOutcome(port, mallory)).toBe('refused');
      expect(await requestOutcome(port, alice)).toBe('answered');

      const anonymous = new Etcd3({
        hosts: `https://127.0.0.1:${port}`, credentials: { rootCertificate: ca }, dialTimeout: 1_000,
      });
      clients.push(anonymous);
      await expect(anonymous.get('greeting').string()).rejects.toThrow();
      expect(callers).toEqual([]);

      const trusted = new Etcd3({
        hosts: `https://127.0.0.1:${port}`,
        credentials: { rootCertificate: ca, certChain: alice.cert, privateKey: alice.key },
      });
      clients.push(trusted);
      await trusted.put('greeting').value('hello');
      expect(await trusted.get('greeting').string()).toBe('hello');
      expect(callers.length).toBeGreaterThanOrEqual(2);
      expect(new Set(callers)).toEqual(new Set(['alice']));

      // The gateway's own gRPC client presents the member's certificate (CN=server).
      const range = await httpsRequest({
        port, path: '/v3/kv/range', method: 'POST', tls: alice, body: JSON.stringify({ key: base64('greeting') }),
      });
      expect(range.status).toBe(200);
      expect(JSON.parse(range.body)).toMatchObject({ kvs: [{ value: base64('hello') }] });
      expect(callers.at(-1)).toBe('server');
      expect((await httpsRequest({ port, path: '/health', tls: alice })).status).toBe(200);

      await copyFile(certs.server2.key, key);
      await copyFile(certs.server2.cert, cert);
      await expect.poll(async () => (await handshake(port, alice)).commonName, { timeout: 5_000 }).toBe('server-2');
      // The gateway dials anew with the new certificate on its next request; under load that first
      // dial can race the port's own switch and fail once (a 503), so the request is retried.
      const rangeAfterReload = () => httpsRequest({
        port, path: '/v3/kv/range', method: 'POST', tls: alice, body: JSON.stringify({ key: base64('greeting') }),
      });
      await expect.poll(async () => (await rangeAfterReload()).status, { timeout: 5_000 }).toBe(200);
      expect(callers.at(-1)).toBe('server-2');
    } finally {
      for (const client of clients) client.close();
      await stop();
    }
  });
});
