/**
 * The shared client port over a real single-member RaftNode: the etcd3 client's gRPC and HTTP/1.1
 * probes on one listener, and connections that never show a protocol closed without disturbing
 * the others.
 */

import { connect, createServer, type Socket } from 'node:net';
import { connect as connectHttp2 } from 'node:http2';
import type { Server as GrpcServer } from '@grpc/grpc-js';
import { Etcd3 } from 'etcd3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createGrpcServer, createInsecureInjector, shutdownServer } from '../api/grpc-server.js';
import { createKvService } from '../api/kv-service.js';
import { startLeader } from '../api/single-member-test-kit.js';
import { loadEtcdProto } from '../grpc/proto.js';
import type { RaftNode } from '../node/raft-node.js';
import { ClientPort, listenClientUrl, MemberMetrics, metricsContentType } from './index.js';
import { createHttpEndpoints } from '../http-endpoints.js';

const proto = loadEtcdProto();
const ids = { clusterId: 0xcafen, memberId: 0xbeefn };

interface Harness {
  readonly node: RaftNode;
  readonly grpc: GrpcServer;
  readonly port: ClientPort;
  readonly client: Etcd3;
  readonly base: string;
}

/** Resolves once the peer closes `socket`, with everything it sent first. */
function untilClosed(socket: Socket): Promise<string> {
  const chunks: Buffer[] = [];
  socket.on('data', (chunk: Buffer) => chunks.push(chunk));
  socket.on('error', () => {});
  return new Promise((resolve) => {
    socket.once('close', () => resolve(Buffer.concat(chunks).toString('latin1')));
  });
}

function connected(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () => resolve(socket));
    socket.once('error', reject);
  });
}

describe('client port: gRPC and HTTP/1.1 on one listener', () => {
  const cleanups: (() => Promise<void>)[] = [];
  let harness: Harness;

  interface Bounds {
    prefaceTimeoutMs?: number;
    undecidedConnectionsMax?: number;
    http1IdleTimeoutMs?: number;
  }

  async function start(options: Bounds = {}) {
    const node = await startLeader('synod-client-port-', cleanups);
    const grpc = createGrpcServer({ proto });
    grpc.addService(proto.services.KV, createKvService({
      node, definition: proto.services.KV, ...ids, maxRequestBytes: 64 * 1024,
    }));
    cleanups.push(() => shutdownServer(grpc));
    const metrics = new MemberMetrics({
      node, memberId: ids.memberId, etcdVersion: '3.5.0', dbSizeBytes: async () => 20480,
    });
    cleanups.push(async () => metrics.dispose());
    const port = await ClientPort.listen({
      host: '127.0.0.1', port: 0, http2: createInsecureInjector(grpc),
      http1: createHttpEndpoints({ health: node, synodVersion: '0.0.0-test', metrics }),
      ...options,
    });
    cleanups.push(() => port.close());
    const client = new Etcd3({ hosts: `127.0.0.1:${port.port}` });
    cleanups.push(async () => client.close());
    harness = { node, grpc, port, client, base: `http://127.0.0.1:${port.port}` };
  }

  beforeEach(() => {
    cleanups.splice(0);
  });

  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  it('serves the etcd3 client and /health, /version, /metrics on the same port', async () => {
    await start();
    const { client, base } = harness;
    await client.put('a').value('1');
    await client.put('b').value('2');
    expect(await client.get('a').string()).toBe('1');

    const health = await fetch(`${base}/health`);
    expect(health.status).toBe(200);
    expect(await health.json()).toEqual({ health: 'true', reason: '' });
    const version = await fetch(`${base}/version`);
    expect(await version.json()).toMatchObject({ etcdserver: '3.5.0', etcdcluster: '3.5.0' });

    const metrics = await fetch(`${base}/metrics`);
    expect(metrics.status).toBe(200);
    expect(metrics.headers.get('content-type')).toBe(metricsContentType);
    const text = await metrics.text();
    expect(text).toMatch(/^etcd_server_has_leader 1$/m);
    expect(text).toMatch(/^etcd_server_is_leader 1$/m);
    expect(text).toMatch(/^etcd_server_leader_changes_seen_total 1$/m);
    expect(text).toMatch(/^# TYPE etcd_server_leader_changes_seen_total counter$/m);
    expect(text).toMatch(/^etcd_debugging_mvcc_keys_total 2$/m);
    expect(text).toMatch(/^etcd_mvcc_db_total_size_in_bytes 20480$/m);
    expect(text).toMatch(/^etcd_server_id\{server_id="beef"\} 1$/m);
    expect(text).toMatch(/^process_resident_memory_bytes \d+$/m);
    const applied = Number(/^etcd_server_proposals_applied_total (\d+)$/m.exec(text)?.[1]);
    const committed = Number(/^etcd_server_proposals_committed_total (\d+)$/m.exec(text)?.[1]);
    expect(applied).toBe(harness.node.appliedIndex);
    expect(committed).toBeGreaterThanOrEqual(applied);
    expect(applied).toBeGreaterThanOrEqual(3);
    expect((await fetch(`${base}/v3/kv/range`)).status).toBe(404);
  });

  it('hands over a preface that arrives a byte at a time', async () => {
    await start();
    // A proxy that dribbles the client's first bytes, so the port must wait and put them back.
    const proxied = await new Promise<{ port: number; close: () => void }>((resolve) => {
      const server = createServer((inbound) => {
          const outbound = connect(harness.port.port, '127.0.0.1');
          let dribbled = 0;
          inbound.on('data', (chunk: Buffer) => {
            inbound.pause();
            void (async () => {
              for (const byte of chunk) {
                outbound.write(Buffer.of(byte));
                if (dribbled++ < 30) await new Promise((done) => setTimeout(done, 2));
              }
              inbound.resume();
            })();
          });
          outbound.pipe(inbound);
          inbound.on('error', () => outbound.destroy());
          outbound.on('error', () => inbound.destroy());
          inbound.on('close', () => outbound.destroy());
        });
      server.listen(0, '127.0.0.1', () => resolve({
        port: (server.address() as { port: number }).port,
        close: () => server.close(),
      }));
    });
    cleanups.push(async () => proxied.close());
    const slowClient = new Etcd3({ hosts: `127.0.0.1:${proxied.port}` });
    cleanups.push(async () => slowClient.close());
    await slowClient.put('k').value('v');
    expect(await slowClient.get('k').string()).toBe('v');
  });

  it('answers garbage with 400 and closes it; other clients are unaffected', async () => {
    await start();
    const { client, port } = harness;
    const garbage = await connected(port.port);
    const reply = untilClosed(garbage);
    garbage.write(Buffer.from([0xde, 0xad, 0xbe, 0xef, 0x0d, 0x0a, 0x0d, 0x0a]));
    expect(await reply).toMatch(/^HTTP\/1\.1 400 /);
    await client.put('still').value('here');
    expect(await client.get('still').string()).toBe('here');
    expect((await fetch(`${harness.base}/health`)).status).toBe(200);
  });

  it('closes a connection that never completes its preface, and one that never sends', async () => {
    await start({ prefaceTimeoutMs: 300 });
    const { client, port } = harness;
    const silent = await connected(port.port);
    const partial = await connected(port.port);
    partial.write('PRI * HTTP/2.0\r\n');
    const silentClosed = untilClosed(silent);
    const partialClosed = untilClosed(partial);
    // Meanwhile both protocols are served.
    await client.put('x').value('1');
    expect((await fetch(`${harness.base}/version`)).status).toBe(200);
    expect(port.undecidedConnections).toBe(2);
    expect(await silentClosed).toBe('');
    expect(await partialClosed).toBe('');
    await expect.poll(() => port.undecidedConnections).toBe(0);
    expect(await client.get('x').string()).toBe('1');
  });

  it('closes an HTTP/1.1 connection that goes silent mid-request', async () => {
    await start({ http1IdleTimeoutMs: 200 });
    const stalled = await connected(harness.port.port);
    const closed = untilClosed(stalled);
    stalled.write('GET /health HTTP/1.1\r\nHost: x\r\n');
    await expect.poll(() => harness.port.undecidedConnections).toBe(0);
    expect((await fetch(`${harness.base}/health`)).status).toBe(200);
    expect(await closed).toBe('');
  });

  it('closes connections beyond undecidedConnectionsMax at accept', async () => {
    await start({ undecidedConnectionsMax: 2 });
    const { port } = harness;
    const first = await connected(port.port);
    const second = await connected(port.port);
    cleanups.push(async () => {
      first.destroy();
      second.destroy();
    });
    const third = await connected(port.port);
    expect(await untilClosed(third)).toBe('');
    expect(port.undecidedConnections).toBe(2);
    // A decided connection frees its place.
    first.write('GET /health HTTP/1.1\r\nHost: x\r\n\r\n');
    await expect.poll(() => port.undecidedConnections).toBe(1);
  });

  it('serves a raw HTTP/2 client and closes everything on close', async () => {
    await start();
    const session = connectHttp2(harness.base);
    session.on('error', () => {});
    const status = await new Promise<string | undefined>((resolve, reject) => {
      const stream = session.request({
        ':method': 'POST', ':path': '/grpc.health.v1.Health/Check',
        'content-type': 'application/grpc', te: 'trailers',
      });
      stream.on('response', () => {});
      stream.on('trailers', (trailers) => resolve(trailers['grpc-status'] as string | undefined));
      stream.on('error', reject);
      stream.end(Buffer.from([0, 0, 0, 0, 0]));
    });
    expect(status).toBe('0');
    const closed = new Promise((resolve) => session.once('close', resolve));
    const idle = await connected(harness.port.port);
    const idleClosed = untilClosed(idle);
    await harness.port.close();
    await shutdownServer(harness.grpc);
    await closed;
    expect(await idleClosed).toBe('');
    await expect(connected(harness.port.port)).rejects.toThrow(/ECONNREFUSED/);
  });

  it('listens on a client URL, its port defaulting as etcd does', async () => {
    const node = await startLeader('synod-client-url-', cleanups);
    const grpc = createGrpcServer({ proto });
    cleanups.push(() => shutdownServer(grpc));
    const port = await listenClientUrl({
      url: new URL('http://127.0.0.1:0'), grpc, endpoints: { health: node, synodVersion: 'x' },
    });
    cleanups.push(() => port.close());
    expect((await fetch(`http://127.0.0.1:${port.port}/health`)).status).toBe(200);
    expect((await fetch(`http://127.0.0.1:${port.port}/metrics`)).status).toBe(404);
  });
});
