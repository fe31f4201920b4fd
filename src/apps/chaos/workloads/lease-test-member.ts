/**
 * Test kit for the watch, lease and lock workloads: one real Synod member from `startServer`
 * (temporary data directory, client port 0) and the clock the workloads record with. Lives in a
 * `lease-` file only because of file ownership in this folder.
 */

import { mkdtemp, rm } from 'node:fs/promises';
import { connect, createServer, type AddressInfo, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { pino } from 'pino';
import { createGrpcServer } from '../../../server/api/grpc-server.js';
import { parseServerFlags } from '../../../server/flags.js';
import { loadEtcdProto, type EtcdProto } from '../../../server/grpc/proto.js';
import { startServer } from '../../../server/server.js';
import { etcdServices } from '../../../server/services.js';
import type { EtcdEndpoint } from './lease-etcd-client.js';

/** A running single-member cluster. */
export interface TestMember {
  readonly proto: EtcdProto;
  readonly endpoint: EtcdEndpoint;
  /** Ms since the member started: the workloads' `nowMs`. */
  readonly nowMs: () => number;
  close(): Promise<void>;
}

/** Starts a member and waits until it has elected itself. */
export async function startTestMember(): Promise<TestMember> {
  const proto = loadEtcdProto();
  const dataDir = await mkdtemp(join(tmpdir(), 'synod-chaos-workload-'));
  const config = parseServerFlags([
    '--data-dir', dataDir, '--listen-client-urls', 'http://127.0.0.1:0',
  ], {});
  const server = await startServer({
    config, logger: pino({ level: 'silent' }), grpc: createGrpcServer({ proto }),
    registerServices: etcdServices(proto), synodVersion: '0.0.0-test',
  });
  await new Promise<void>((resolve) => {
    if (server.node.isLeader) return resolve();
    const unsubscribe = server.node.onSoftState(() => {
      if (!server.node.isLeader) return;
      unsubscribe();
      resolve();
    });
  });
  const clientUrl = `http://127.0.0.1:${server.clientPort}`;
  const startedAtMs = performance.now();
  return {
    proto,
    endpoint: { name: 'member-1', clientUrl },
    nowMs: () => Math.round((performance.now() - startedAtMs) * 1000) / 1000,
    close: async () => {
      await server.close();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}

/** A TCP proxy in front of a member whose connections a test can cut at will. */
export interface ResettableProxy {
  readonly endpoint: EtcdEndpoint;
  /** Destroys every open connection (both sides); new ones are still accepted. */
  reset(): void;
  close(): Promise<void>;
}

/** Starts a proxy on port 0 forwarding to `target` (an `http://host:port` client URL). */
export async function startResettableProxy(target: EtcdEndpoint): Promise<ResettableProxy> {
  const url = new URL(target.clientUrl);
  const sockets = new Set<Socket>();
  const track = (socket: Socket): void => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => socket.destroy());
  };
  const server = createServer((client) => {
    const upstream = connect(Number(url.port), url.hostname);
    track(client);
    track(upstream);
    client.pipe(upstream).pipe(client);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const reset = (): void => {
    for (const socket of sockets) socket.destroy();
  };
  return {
    endpoint: { name: `${target.name}-proxy`, clientUrl: `http://127.0.0.1:${port}` },
    reset,
    close: async () => {
      reset();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
