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

function notWired(kind: LockBackendKind): Starter {
  return async () => {
    throw new Error(`lock backend ${kind}: its servers are not wired into the benchmark yet`);
  };
}

/** How to start each backend's servers. */
export const lockServers: Readonly<Record<LockBackendKind, Starter>> = {
  synod: etcdApiServer('synod'),
  etcd: etcdApiServer('etcd'),
  redis: notWired('redis'),
  redlock: notWired('redlock'),
  postgres: notWired('postgres'),
  sqlite: notWired('sqlite'),
};
