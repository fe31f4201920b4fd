/**
 * One member on an https:// client URL, as the npm etcd3 test suite runs etcd: only --cert-file
 * and --key-file, the client trusting the CA. gRPC (etcd3: put, get, a watch), /health and the
 * JSON gateway over TLS on the same port, and a certificate replaced on disk served to the next
 * handshake without a restart.
 */

import { copyFile, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Etcd3 } from 'etcd3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeTestCertificates, type TestCertificates } from './certificate-test-kit.js';
import { base64, handshake, httpsRequest, startTlsMember } from './tls-test-kit.js';

let certs: TestCertificates;
beforeAll(async () => {
  certs = await makeTestCertificates();
});
afterAll(async () => certs.remove());

describe('client port over TLS (https:// --listen-client-urls)', () => {
  it('serves etcd3, /health and the JSON gateway over TLS, and reloads a replaced certificate', async () => {
    const cert = join(certs.directory, 'member.crt');
    const key = join(certs.directory, 'member.key');
    await copyFile(certs.server.cert, cert);
    await copyFile(certs.server.key, key);
    const { server, stop } = await startTlsMember({
      flags: ['--listen-client-urls', 'https://127.0.0.1:0', '--cert-file', cert, '--key-file', key],
      certificateCheckIntervalMs: 50,
    });
    const ca = await readFile(certs.ca);
    const port = server.clientPort;
    const client = new Etcd3({ hosts: `https://127.0.0.1:${port}`, credentials: { rootCertificate: ca } });
    try {
      // HTTP/1.1 without ALPN (Node's https): classified by its first bytes after the handshake.
      await expect.poll(async () => (await httpsRequest({ port, path: '/health', tls: { ca } })).status).toBe(200);
      expect(JSON.parse((await httpsRequest({ port, path: '/health', tls: { ca } })).body)).toEqual({ health: 'true', reason: '' });

      await client.put('greeting').value('hello');
      expect(await client.get('greeting').string()).toBe('hello');
      const watcher = await client.watch().key('watched').create();
      const seen = new Promise<string>((resolve) => watcher.once('put', (kv) => resolve(kv.value.toString())));
      await client.put('watched').value('v1');
      expect(await seen).toBe('v1');
      await watcher.cancel();

      // A client offering both protocols (curl, browsers) is given HTTP/1.1: the server's order.
      const alpn = { ca, ALPNProtocols: ['h2', 'http/1.1'] };
      expect((await handshake(port, alpn)).alpn).toBe('http/1.1');
      expect((await handshake(port, { ca, ALPNProtocols: ['h2'] })).alpn).toBe('h2');
      const put = await httpsRequest({
        port, path: '/v3/kv/put', method: 'POST', tls: alpn,
        body: JSON.stringify({ key: base64('gateway'), value: base64('over tls') }),
      });
      expect(put.status).toBe(200);
      const range = await httpsRequest({
        port, path: '/v3/kv/range', method: 'POST', tls: { ca }, body: JSON.stringify({ key: base64('greeting') }),
      });
      expect(JSON.parse(range.body)).toMatchObject({ kvs: [{ key: base64('greeting'), value: base64('hello') }], count: '1' });
      expect(await client.get('gateway').string()).toBe('over tls');

      expect((await handshake(port, { ca })).commonName).toBe('server');
      // The key first: until the certificate follows, the pair does not validate and the old one stays.
      await copyFile(certs.server2.key, key);
      await copyFile(certs.server2.cert, cert);
      await expect.poll(async () => (await handshake(port, { ca })).commonName, { timeout: 5_000 }).toBe('server-2');
      // Connections made before keep working; new ones get the new certificate.
      expect(await client.get('greeting').string()).toBe('hello');
      const again = new Etcd3({ hosts: `https://127.0.0.1:${port}`, credentials: { rootCertificate: ca } });
      expect(await again.get('gateway').string()).toBe('over tls');
      again.close();
      const afterReload = await httpsRequest({
        port, path: '/v3/kv/range', method: 'POST', tls: { ca }, body: JSON.stringify({ key: base64('watched') }),
      });
      expect(JSON.parse(afterReload.body)).toMatchObject({ count: '1' });
    } finally {
      client.close();
      await stop();
    }
  });
});
