/**
 * A whole member from `startServer`, as `synod server` runs it: the etcd3 client over gRPC and
 * curl-style probes over HTTP/1.1 on the same client URL, /metrics also on the metrics URL, and
 * `close` ending everything.
 */

import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Etcd3 } from 'etcd3';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { createGrpcServer } from '../api/grpc-server.js';
import { parseServerFlags } from '../flags.js';
import { loadEtcdProto } from '../grpc/proto.js';
import { startServer } from '../server.js';
import { etcdServices } from '../services.js';

const proto = loadEtcdProto();

/** A port free a moment ago (the metrics URL has no way to report a port 0 binding). */
function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const probe = createServer().listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as { port: number };
      probe.close(() => resolve(port));
    });
  });
}

describe('startServer: one client port for gRPC and HTTP/1.1', () => {
  const cleanups: (() => Promise<unknown>)[] = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  it('serves etcd3, /health, /version and /metrics, and closes', async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'synod-client-port-server-'));
    cleanups.push(() => rm(dataDir, { recursive: true, force: true }));
    const metricsPort = await freePort();
    const config = parseServerFlags([
      '--data-dir', dataDir, '--listen-client-urls', 'http://127.0.0.1:0',
      '--listen-metrics-urls', `http://127.0.0.1:${metricsPort}`,
    ], {});
    const server = await startServer({
      config, logger: pino({ level: 'silent' }), grpc: createGrpcServer({ proto }),
      registerServices: etcdServices(proto), synodVersion: '0.0.0-test',
    });
    let closed = false;
    cleanups.push(async () => closed || server.close());
    const base = `http://127.0.0.1:${server.clientPort}`;
    const client = new Etcd3({ hosts: `127.0.0.1:${server.clientPort}` });
    cleanups.push(async () => client.close());

    await expect.poll(async () => (await fetch(`${base}/health`)).status).toBe(200);
    expect(await (await fetch(`${base}/health`)).json()).toMatchObject({ health: 'true' });
    expect(await (await fetch(`${base}/version`)).json())
      .toMatchObject({ etcdserver: '3.5.0', etcdcluster: '3.5.0', synod: '0.0.0-test' });
    await client.put('greeting').value('hello');
    expect(await client.get('greeting').string()).toBe('hello');

    for (const url of [`${base}/metrics`, `http://127.0.0.1:${metricsPort}/metrics`]) {
      const text = await (await fetch(url)).text();
      for (const name of [
        'etcd_server_has_leader 1', 'etcd_server_is_leader 1',
        'etcd_server_leader_changes_seen_total 1',
        'etcd_server_proposals_committed_total', 'etcd_server_proposals_applied_total',
        'etcd_mvcc_db_total_size_in_bytes', 'etcd_debugging_mvcc_keys_total 1',
        'process_resident_memory_bytes',
      ]) {
        expect(text).toContain(`\n${name}`);
      }
    }
    expect((await fetch(`http://127.0.0.1:${metricsPort}/health`)).status).toBe(200);

    await server.close();
    closed = true;
    await expect(fetch(`${base}/health`)).rejects.toThrow();
  });
});
