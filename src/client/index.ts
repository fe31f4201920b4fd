/**
 * `synod/client`: a typed etcd v3 client for Synod and etcd, its coordination recipes, and the
 * lock backends behind one `LockBackend` interface. docs/client.md is the guide.
 */

export { SynodClient, type EndpointStatus, type Member } from './client.js';
export {
  CompactedError, EtcdServerError, LeaseLostError, LockBackendError, LockTimeoutError,
} from './errors.js';
export type {
  Bytes, DeleteOptions, DeleteResult, KeyRange, KeyValue, PutOptions, PutResult, RangeOptions,
  RangeResult, ResponseHeader, SortTarget,
} from './kv-types.js';
export { prefixEnd } from './kv-types.js';
export { LeaseKeepAlive, type LeaseGrant, type LeaseTimeToLive } from './lease.js';
export type { Balancing, ClientAuthOptions, ClientOptions, ClientTlsOptions, Pem } from './options.js';
export type { CallOptions } from './transport.js';
export { compare, op, type Compare, type CompareOperator, type Op, type OpResult, type TxnBuilder, type TxnResult } from './txn.js';
export type { WatchBatch, WatchEvent, WatchOptions, Watcher } from './watch.js';
export type { AcquireOptions, HeldLock, LockBackend, LockBackendKind } from './locks/lock.js';
export { SynodError, isSynodError, type ErrorCode } from '../base/index.js';
// recipes: session, mutexes; the lock backends
export { Session, type SessionOptions } from './recipes/session.js';
export { Mutex, lockNameBytesMax } from './recipes/mutex.js';
export { ReentrantMutex } from './recipes/reentrant-mutex.js';
export { EtcdLockBackend, type EtcdLockBackendOptions } from './locks/etcd-lock.js';
export { ReadWriteLock, Semaphore, semaphorePermitsMax } from './recipes/ranked-locks.js';
export { acquireAll, multiLockNamesMax, type HeldLocks } from './recipes/multi-lock.js';
// recipes: election, barriers, queues, counter, stm, cache
export {
  Election, Leadership, electionNameBytesMax, type CampaignOptions, type ElectionLeader,
} from './recipes/election.js';
export { LeaderLatch, type LeaderLatchOptions } from './recipes/leader-latch.js';
export { Barrier, DoubleBarrier, doubleBarrierParticipantsMax } from './recipes/barrier.js';
export { PriorityQueue, Queue, queuePriorityMax } from './recipes/queue.js';
export { Counter, counterRetriesMaxDefault, type CounterOptions } from './recipes/counter.js';
export { runStm, stmKeysMax, stmRetriesMaxDefault, type Stm, type StmIsolation, type StmOptions } from './recipes/stm.js';
export {
  PrefixCache, PrefixCacheChangeEvent, prefixCacheKeysMaxDefault, type PrefixCacheClient, type PrefixCacheOptions,
} from './recipes/prefix-cache.js';
// lock backends outside the cluster (their drivers are optional peer dependencies)
export { RedisLockBackend, type RedisLockConnectOptions } from './locks/redis-lock.js';
export { RedlockBackend, type RedlockConnectOptions } from './locks/redlock.js';
export { PostgresLockBackend, type PostgresLockBackendOptions, type PostgresLockMode } from './locks/postgres-lock.js';
export { SqliteLockBackend, type SqliteLockBackendOptions, type SqliteLockMode } from './locks/sqlite-lock.js';
