/**
 * How the lock benchmark and safety runs name a backend to open, as plain data, so a child
 * process (a contender that will be paused) can open the same backend as the parent. One
 * factory, `openLockBackend`, turns a spec into a `LockBackend`.
 */

import { SynodClient } from '../../src/client/client.js';
import { EtcdLockBackend } from '../../src/client/locks/etcd-lock.js';
import type { LockBackend } from '../../src/client/locks/lock.js';
import { PostgresLockBackend } from '../../src/client/locks/postgres-lock.js';
import { RedisLockBackend } from '../../src/client/locks/redis-lock.js';
import { SqliteLockBackend } from '../../src/client/locks/sqlite-lock.js';
import { RedlockBackend } from '../../src/client/locks/redlock.js';

/** A backend to open, with the lock TTL the run uses. */
export type LockBackendSpec =
  | { readonly kind: 'synod' | 'etcd'; readonly endpoints: readonly string[]; readonly ttlMs: number }
  | { readonly kind: 'redis'; readonly url: string; readonly ttlMs: number }
  | { readonly kind: 'redlock'; readonly urls: readonly string[]; readonly ttlMs: number }
  | { readonly kind: 'postgres'; readonly connectionString: string; readonly ttlMs: number }
  | { readonly kind: 'sqlite'; readonly path: string; readonly ttlMs: number };

/** Opens the backend `spec` names; close it when done (it closes what it opened). */
export async function openLockBackend(spec: LockBackendSpec): Promise<LockBackend> {
  switch (spec.kind) {
    case 'synod':
    case 'etcd': {
      const client = new SynodClient({ endpoints: spec.endpoints, callTimeoutMs: 15_000 });
      const backend = await EtcdLockBackend.create(client, { kind: spec.kind, ttlSeconds: Math.max(1, Math.round(spec.ttlMs / 1000)) });
      return closingClient(backend, client);
    }
    default:
      return openOtherBackend(spec);
  }
}

/** A backend whose close also closes the client it was opened on. */
function closingClient(backend: EtcdLockBackend, client: SynodClient): LockBackend {
  const close = async (): Promise<void> => {
    try {
      await backend.close();
    } finally {
      client.close();
    }
  };
  return {
    kind: backend.kind,
    acquire: (name, options) => backend.acquire(name, options),
    tryAcquire: (name) => backend.tryAcquire(name),
    close,
    [Symbol.asyncDispose]: close,
  };
}

async function openOtherBackend(spec: Exclude<LockBackendSpec, { kind: 'synod' | 'etcd' }>): Promise<LockBackend> {
  switch (spec.kind) {
    case 'redis':
      return RedisLockBackend.connect({ url: spec.url, ttlMs: spec.ttlMs });
    case 'redlock':
      return RedlockBackend.connect({ urls: spec.urls, ttlMs: spec.ttlMs });
    case 'postgres':
      return PostgresLockBackend.connect({ pool: await sharedPool(spec.connectionString), ttlMs: spec.ttlMs });
    case 'sqlite':
      return SqliteLockBackend.open({ path: spec.path, ttlMs: spec.ttlMs });
  }
}

/**
 * Connections one process opens to PostgreSQL, shared by all its contenders: a hundred
 * contenders each with their own pool would pass the server's max_connections (100), and an
 * application shares one pool anyway. The lease-row mode holds a connection only per statement.
 */
const sharedPoolConnectionsMax = 20;
const sharedPools = new Map<string, import('pg').Pool>();

async function sharedPool(connectionString: string): Promise<import('pg').Pool> {
  let pool = sharedPools.get(connectionString);
  if (pool === undefined) {
    const { default: pg } = await import('pg');
    pool = new pg.Pool({ connectionString, max: sharedPoolConnectionsMax });
    pool.on('error', () => undefined);
    sharedPools.set(connectionString, pool);
  }
  return pool;
}

/** Ends the shared PostgreSQL pools (after the backends on them are closed). */
export async function closeSharedPools(): Promise<void> {
  const pools = [...sharedPools.values()];
  sharedPools.clear();
  await Promise.allSettled(pools.map((pool) => pool.end()));
}
