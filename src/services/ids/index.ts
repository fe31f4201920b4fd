/**
 * `synod/ids`: global ids behind one interface (IdGenerator) — segments (Leaf-segment / Tinyid)
 * in Synod or SQL, Snowflake with worker ids leased from Synod and Leaf's clock guard, a ring
 * buffer for bursts, UUID v4 and v7, Flickr ticket databases and Redis INCR — and the ID service
 * that serves them over HTTP and gRPC. docs/ids.md says which to use when.
 */

export { idBatchMax, type IdGenerator, type IdGeneratorKind } from './id-generator.js';
export {
  MemorySegmentStore, SegmentStoreError, segmentFirstId, segmentStepMax, segmentTagBytesMax,
  validateAllocation, type Segment, type SegmentStore,
} from './segment-store.js';
export {
  SegmentGenerator, segmentStepDefault, segmentStepMaxDefault, segmentTargetMsDefault,
  type SegmentClock, type SegmentGeneratorOptions,
} from './segment.js';
export {
  SynodSegmentStore, synodSegmentPrefixDefault, type SynodSegmentStoreOptions,
} from './segment-synod-store.js';
export {
  SqlSegmentStore, sqlSegmentTableDefault,
  type SqlSegmentMode, type SqlSegmentStoreOptions, type SqlSegmentTarget,
} from './segment-sql-store.js';
export {
  SnowflakeDecimalCursor, SnowflakeLayout, snowflakeEpochMsDefault, snowflakeLayoutDefault,
  type SnowflakeLayoutOptions, type SnowflakeParts,
} from './snowflake-layout.js';
export {
  SnowflakeGenerator, snowflakeReservationAheadMsDefault, snowflakeRollbackWaitMsMaxDefault,
  type SnowflakeClock, type SnowflakeGeneratorOptions, type SnowflakeStats,
} from './snowflake.js';
export {
  staticWorkerGrant, type StaticWorkerGrantOptions, type WorkerGrant,
} from './worker-grant.js';
export {
  leaseWorkerId, snowflakePrefixBase, workerLeaseTtlSecondsDefault,
  type LeasedWorkerGrant, type WorkerClock, type WorkerLeaseOptions,
} from './worker-lease.js';
export { leaseSnowflakeGenerator, type LeasedSnowflakeOptions } from './leased-snowflake.js';
export {
  RingBufferGenerator, ringPaddingFactorDefault, ringSizeDefault, type RingBufferGeneratorOptions,
} from './ring-buffer.js';
export {
  UuidV4Generator, UuidV7Generator, uuidPattern, uuidV7Timestamp,
  type UuidClock, type UuidV7GeneratorOptions,
} from './uuid.js';
export {
  PostgresTicketDatabase, SqliteTicketDatabase, TicketGenerator,
  type PostgresTicketDatabaseOptions, type PostgresTicketTarget, type SqliteTicketDatabaseOptions,
  type TicketDatabase, type TicketGeneratorOptions,
} from './ticket.js';
export {
  RedisIncrGenerator, RedisSegmentStore, redisIdKeyPrefixDefault,
  type RedisIncrGeneratorOptions, type RedisIncrTarget,
} from './redis-incr.js';
export * from './service/index.js';
