/**
 * The client port's TLS split on its own, with stand-in servers on both sides: ALPN sends h2 to
 * the HTTP/2 sink and http/1.1 to the HTTP/1.1 server; with no ALPN the decrypted first bytes
 * decide. With client-cert-auth the verified CN is recorded on the connection, refused
 * handshakes leave nothing behind, and a connection that never finishes its handshake is closed
 * at the preface deadline.
 */

import { readFile } from 'node:fs/promises';
import { createServer as createHttpServer } from 'node:http';
import { connect as connectHttp2, createServer as createHttp2Server } from 'node:http2';
import { connect as connectTcp } from 'node:net';
import { connect as connectTls, type ConnectionOptions, type TLSSocket } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { clientCommonNameOfSocket, readTlsMaterial } from '../tls/index.js';
import { makeTestCertificates, type TestCertificates } from '../tls/certificate-test-kit.js';
import { httpsRequest, requestOutcome } from '../tls/tls-test-kit.js';
import { ClientPort } from './client-port.js';

let certs: TestCertificates;
beforeAll(async () => {
  certs = await makeTestCertificates();
});
afterAll(async () => certs.remove());

/** A TLS client port whose HTTP/1.1 side answers with the caller's CN and the ALPN it got. */
async function listenTls(options: { prefaceTimeoutMs?: number } = {}): Promise<ClientPort> {
  const material = await readTlsMaterial({
    certFile: certs.server.cert, keyFile: certs.server.key, trustedCaFile: certs.ca,
    clientCertAuth: true, flagPrefix: '',
  });
  const http1 = createHttpServer((request, response) => {
    const socket = request.socket as TLSSocket;
    response.end(JSON.stringify({ commonName: clientCommonNameOfSocket(socket), alpn: socket.alpnProtocol }));
  });
  const http2 = createHttp2Server();
  http2.on('stream', (stream) => {
    stream.respond({ ':status': 200 });
    stream.end('h2');
  });
  return ClientPort.listen({
    host: '127.0.0.1', port: 0, http1,
    http2: { injectConnection: (connection) => http2.emit('connection', connection) },
    tls: { material, clientCertAuth: true },
    ...options,
  });
}

/** One HTTP/2 GET over `connection`'s TLS socket; resolves with the body. */
function http2Get(port: number, tls: ConnectionOptions): Promise<string> {
  return new Promise((resolve, reject) => {
    const session = connectHttp2(`https://127.0.0.1:${port}`, {
      createConnection: () => connectTls({ host: '127.0.0.1', port, ...tls }),
    });
    session.on('error', reject);
    const stream = session.request({ ':path': '/' });
    let body = '';
    stream.on('data', (chunk: Buffer) => (body += chunk.toString()));
    stream.on('end', () => {
      session.close();
      resolve(body);
    });
    stream.on('error', reject);
    stream.end();
  });
}

describe('client port over TLS', () => {
  let port: ClientPort;
  let alice: ConnectionOptions;
  beforeAll(async () => {
    port = await listenTls();
    const ca = await readFile(certs.ca);
    alice = { ca, cert: await readFile(certs.alice.cert), key: await readFile(certs.alice.key) };
  });
  afterAll(async () => port.close());

  it('records the verified CN for HTTP/1.1 chosen by ALPN or by the first bytes', async () => {
    const peeked = await httpsRequest({ port: port.port, path: '/', tls: alice });
    expect(JSON.parse(peeked.body)).toEqual({ commonName: 'alice', alpn: false });
    const negotiated = await httpsRequest({ port: port.port, path: '/', tls: { ...alice, ALPNProtocols: ['h2', 'http/1.1'] } });
    expect(JSON.parse(negotiated.body)).toEqual({ commonName: 'alice', alpn: 'http/1.1' });
  });

  it('hands HTTP/2 to the HTTP/2 side, negotiated by ALPN or shown by its preface', async () => {
    expect(await http2Get(port.port, { ...alice, ALPNProtocols: ['h2'] })).toBe('h2');
    expect(await http2Get(port.port, alice)).toBe('h2');
  });

  it('refuses untrusted clients and forgets their connections', async () => {
    const ca = alice.ca!;
    const mallory = { ca, cert: await readFile(certs.mallory.cert), key: await readFile(certs.mallory.key) };
    expect(await requestOutcome(port.port, { ca })).toBe('refused');
    expect(await requestOutcome(port.port, mallory)).toBe('refused');
    await expect.poll(() => port.undecidedConnections).toBe(0);
  });

  it('closes a connection that never finishes its handshake at the preface deadline', async () => {
    const impatient = await listenTls({ prefaceTimeoutMs: 200 });
    try {
      const socket = connectTcp(impatient.port, '127.0.0.1');
      socket.on('error', () => {});
      await new Promise((resolve) => socket.once('connect', resolve));
      await expect.poll(() => impatient.undecidedConnections).toBe(1);
      await new Promise((resolve) => socket.once('close', resolve));
      await expect.poll(() => impatient.undecidedConnections).toBe(0);
    } finally {
      await impatient.close();
    }
  });
});
