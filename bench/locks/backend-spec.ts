/**
 * How the lock benchmark and safety runs name a backend to open, as plain data, so a child
 * process (a contender that will be paused) can open the same backend as the parent. One
 * factory, `openLockBackend`, turns a spec into a `LockBackend`.
 */

import { SynodClient } from '../../src/client/client.js';
import { EtcdLockBackend } from '../../src/client/locks/etcd-lock.js';
import type { LockBackend } from '../../src/client/locks/lock.js';
import { RedisLockBackend } from '../../src/client/locks/redis-lock.js';
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
    default:
      throw new Error(`lock backend ${spec.kind} is not wired into the benchmark yet`);
  }
}
