/**
 * The servers behind each lock backend for one benchmark run, started fresh on loopback and
 * stopped after: a single Synod or etcd member (etcd's flags, its own data directory), Redis,
 * three independent Redis servers for Redlock, a throwaway PostgreSQL cluster, a SQLite file.
 * Each says how to reach it (the spec the benchmark's contenders open) and, where the backend has
 * one, the server fault its safety case injects.
 */

import type { LockBackendKind } from '../../src/client/locks/lock.js';
import type { EtcdProto } from '../../src/server/grpc/proto.js';
import { startTarget, stopTarget } from '../../test/support/etcdctl-harness.js';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startPostgres } from '../../test/support/postgres-server.js';
import { startRedisServer, startRedisServers } from '../../test/support/redis-servers.js';
import { closeSharedPools } from './backend-spec.js';
import type { LockBackendSpec } from './backend-spec.js';
import type { LockFault } from './safety.js';

/** The TTL of locks in the throughput cells: long enough that no grant expires mid-run. */
export const benchTtlMs = 10_000;
/** The TTL in the safety cases: short, so a frozen holder outlives it quickly. */
export const safetyTtlMs = 2_000;

/** One backend's servers, running. */
export interface LockServer {
  readonly kind: LockBackendKind;
  readonly spec: LockBackendSpec;
  readonly safetySpec: LockBackendSpec;
  /** The server-side fault of its safety case; null when it has none (SQLite has no server). */
  readonly fault: { readonly fault: LockFault; readonly inject: () => Promise<void> } | null;
  stop(): Promise<void>;
}

type Starter = (context: { proto: EtcdProto }) => Promise<LockServer>;

function etcdApiServer(kind: 'synod' | 'etcd'): Starter {
  return async () => {
    const target = await startTarget(kind);
    const endpoints = [`127.0.0.1:${target.clientPort}`];
    return {
      kind,
      spec: { kind, endpoints, ttlMs: benchTtlMs },
      safetySpec: { kind, endpoints, ttlMs: safetyTtlMs },
      // The leader-kill case runs on a three-member cluster of its own (bench/locks.ts).
      fault: null,
      stop: () => stopTarget(target),
    };
  };
}

/** One redis-server without persistence; its fault is a restart that comes back empty. */
const redisServer: Starter = async () => {
  const server = await startRedisServer();
  return {
    kind: 'redis',
    spec: { kind: 'redis', url: server.url, ttlMs: benchTtlMs },
    safetySpec: { kind: 'redis', url: server.url, ttlMs: safetyTtlMs },
    fault: { fault: 'primary-restart', inject: () => server.restart() },
    stop: () => server.stop(),
  };
};

/** Three independent redis-servers; the fault restarts one of them (empty). */
const redlockServers: Starter = async () => {
  const servers = await startRedisServers(3);
  const urls = servers.map((server) => server.url);
  return {
    kind: 'redlock',
    spec: { kind: 'redlock', urls, ttlMs: benchTtlMs },
    safetySpec: { kind: 'redlock', urls, ttlMs: safetyTtlMs },
    fault: { fault: 'primary-restart', inject: () => servers[0]!.restart() },
    stop: async () => void (await Promise.all(servers.map((server) => server.stop()))),
  };
};

/** A throwaway PostgreSQL 15 cluster (fsync on); the fault is a restart while a lock is held. */
const postgresServer: Starter = async () => {
  const server = await startPostgres();
  const { connectionString } = server;
  return {
    kind: 'postgres',
    spec: { kind: 'postgres', connectionString, ttlMs: benchTtlMs },
    safetySpec: { kind: 'postgres', connectionString, ttlMs: safetyTtlMs },
    fault: { fault: 'server-restart', inject: () => server.restart() },
    stop: async () => {
      await closeSharedPools();
      await server.stop();
    },
  };
};

/** A SQLite file in a temporary directory; no server, so no server fault. */
const sqliteFile: Starter = async () => {
  const directory = await mkdtemp(join(tmpdir(), 'synod-bench-sqlite-'));
  const path = join(directory, 'locks.db');
  return {
    kind: 'sqlite',
    spec: { kind: 'sqlite', path, ttlMs: benchTtlMs },
    safetySpec: { kind: 'sqlite', path, ttlMs: safetyTtlMs },
    fault: null,
    stop: () => rm(directory, { recursive: true, force: true }),
  };
};

/** How to start each backend's servers. */
export const lockServers: Readonly<Record<LockBackendKind, Starter>> = {
  synod: etcdApiServer('synod'),
  etcd: etcdApiServer('etcd'),
  redis: redisServer,
  redlock: redlockServers,
  postgres: postgresServer,
  sqlite: sqliteFile,
};
