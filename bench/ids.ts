/**
 * `npm run bench -- ids [--json] [--duration-ms N]`: global ID generation. Every generator of
 * `synod/ids` in this process, beside `@sapphire/snowflake` (the npm ecosystem's common
 * Snowflake), each measured the same way (ids/measure.ts: ids per second in a tight loop, then
 * the p99 of single calls); then the ID service (`synod ids` in this process, in front of a Synod
 * member process) under closed-loop HTTP and gRPC load, single ids and batches of 100.
 *
 * Snowflake rows also report their layout's ceiling (4,096 ids per millisecond with 12 sequence
 * bits) and the share of it reached, and every Snowflake row counts repeated ids in a million
 * drawn back to back: a generator that does not wait for the next millisecond when its sequence
 * runs out repeats ids there. Segment rows report the segments fetched during the run, so "p99
 * while refilling" is visibly while refilling. With --json the last line is exactly one JSON
 * object: {"results":[…],"service":[…]}.
 */

import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Snowflake as SapphireSnowflake } from '@sapphire/snowflake';
import { pino } from 'pino';
import { startIds } from '../src/apps/ids-cli.js';
import {
  RingBufferGenerator, SegmentGenerator, SnowflakeGenerator, SqlSegmentStore, SqliteTicketDatabase,
  SynodSegmentStore, TicketGenerator, UuidV4Generator, UuidV7Generator, RedisIncrGenerator,
  snowflakeLayoutDefault, staticWorkerGrant,
} from '../src/services/ids/index.js';
import { startProcessTarget, type ClientTarget } from '../test/client/targets.js';
import { startRedisServer, type RedisServer } from '../test/support/redis-servers.js';
import { runGrpcLoad } from './ids/grpc-load.js';
import { runHttpLoad } from './ids/http-load.js';
import { measureSource, type DrawSource } from './ids/measure.js';

/** What every generator row reports; Snowflake and segment rows add their own fields. */
interface ResultRow {
  readonly generator: string;
  readonly ids_per_sec: number;
  readonly p99_us: number;
  readonly [extra: string]: number | string;
}

interface ServiceRow {
  readonly mode: 'single' | 'batch';
  readonly protocol: 'http' | 'grpc';
  readonly tag: string;
  readonly requests_per_sec: number;
  readonly ids_per_sec: number;
  readonly p99_ms: number;
}

/** A generator under test: its draw source, what to add to its row, and how to close it. */
interface OpenedCase {
  readonly source: DrawSource;
  readonly extra?: () => Record<string, number | string>;
  close(): Promise<void>;
}

interface GeneratorCase {
  readonly generator: string;
  open(): Promise<OpenedCase | null>;
}

const latencyCalls = 200_000;
const serviceConcurrency = 16;
const batchCount = 100;
const duplicateSampleIds = 1_000_000;
const snowflakeCeilingPerSec = 2 ** snowflakeLayoutDefault.sequenceBits * 1_000;

function log(line: string): void {
  process.stderr.write(`${line}\n`);
}

/** Repeated ids among `count` drawn back to back (sorted, then neighbours compared). */
function duplicatesIn(next: () => bigint, count: number): number {
  const ids = new BigInt64Array(count);
  for (let i = 0; i < count; i++) ids[i] = next();
  ids.sort();
  let repeated = 0;
  for (let i = 1; i < count; i++) if (ids[i] === ids[i - 1]) repeated++;
  return repeated;
}

function snowflakeExtra(idsPerSec: number): Record<string, number> {
  return {
    ceiling_ids_per_sec: snowflakeCeilingPerSec,
    of_ceiling: Math.round((idsPerSec / snowflakeCeilingPerSec) * 1_000) / 1_000,
  };
}

/** The generator cases; those needing a server get it from `servers`. */
function generatorCases(servers: { synod: ClientTarget; redis: RedisServer | null; dir: string }): GeneratorCase[] {
  const syncSnowflake = (workerId: number) =>
    new SnowflakeGenerator({ grant: staticWorkerGrant({ datacenterId: 0, workerId }) });
  return [
    {
      generator: 'snowflake',
      async open() {
        const generator = syncSnowflake(1);
        const repeated = duplicatesIn(() => generator.next() as bigint, duplicateSampleIds);
        return { source: generator, extra: () => ({ duplicates_in_1m: repeated }), close: () => generator.close() };
      },
    },
    {
      generator: 'snowflake-string',
      async open() {
        const generator = syncSnowflake(2);
        return { source: { next: () => generator.nextString() }, close: () => generator.close() };
      },
    },
    {
      generator: '@sapphire/snowflake',
      async open() {
        const snowflake = new SapphireSnowflake(snowflakeLayoutDefault.epochMs);
        const repeated = duplicatesIn(() => snowflake.generate(), duplicateSampleIds);
        return {
          source: { next: () => snowflake.generate() },
          extra: () => ({ duplicates_in_1m: repeated }),
          close: async () => undefined,
        };
      },
    },
    {
      generator: 'ringbuffer',
      async open() {
        const ring = new RingBufferGenerator({ source: syncSnowflake(3) });
        await ring.warm();
        return { source: ring, extra: () => ({ fill_batches: ring.stats.fillBatches }), close: () => ring.close() };
      },
    },
    {
      generator: 'segment',
      async open() {
        const client = servers.synod.client();
        const store = new SynodSegmentStore({ client, prefix: 'bench/ids/segment' });
        const generator = new SegmentGenerator({ store, tag: `bench-${Date.now()}` });
        await generator.nextBatch(1);
        return {
          source: generator,
          extra: () => ({ segments_fetched: generator.stats.segmentsFetched, waits: generator.stats.waits }),
          close: async () => {
            await generator.close();
            client.close();
          },
        };
      },
    },
    {
      generator: 'segment-sqlite',
      async open() {
        const store = await SqlSegmentStore.open({ target: { kind: 'sqlite', path: join(servers.dir, 'segments.db') } });
        const generator = new SegmentGenerator({ store, tag: 'bench' });
        await generator.nextBatch(1);
        return {
          source: generator,
          extra: () => ({ segments_fetched: generator.stats.segmentsFetched, waits: generator.stats.waits }),
          close: async () => {
            await generator.close();
            await store.close();
          },
        };
      },
    },
    {
      generator: 'uuidv4',
      async open() {
        const generator = new UuidV4Generator();
        return { source: generator, close: () => generator.close() };
      },
    },
    {
      generator: 'uuidv7',
      async open() {
        const generator = new UuidV7Generator();
        return { source: generator, close: () => generator.close() };
      },
    },
    {
      generator: 'ticket-sqlite',
      async open() {
        const database = await SqliteTicketDatabase.open({ path: join(servers.dir, 'tickets.db'), offset: 1, increment: 1 });
        const generator = new TicketGenerator({ databases: [database], tag: 'bench' });
        return {
          source: generator,
          close: async () => {
            await generator.close();
            await database.close();
          },
        };
      },
    },
    {
      generator: 'redis-incr',
      async open() {
        if (servers.redis === null) return null;
        const generator = await RedisIncrGenerator.connect({ target: { url: servers.redis.url }, tag: 'bench' });
        return { source: generator, close: () => generator.close() };
      },
    },
  ];
}

async function measureGenerators(cases: readonly GeneratorCase[], durationMs: number): Promise<ResultRow[]> {
  const rows: ResultRow[] = [];
  for (const each of cases) {
    const opened = await each.open();
    if (opened === null) {
      log(`ids: ${each.generator}: skipped (its server is not installed)`);
      continue;
    }
    try {
      // Generators with a round trip per id get fewer timed calls, not a longer run.
      const roundTripPerId = each.generator === 'ticket-sqlite' || each.generator === 'redis-incr';
      const figures = await measureSource(opened.source, {
        durationMs, latencyCalls: roundTripPerId ? 2_000 : latencyCalls,
      });
      const row: ResultRow = {
        generator: each.generator, ids_per_sec: figures.ids_per_sec, p99_us: figures.p99_us,
        calls_over_1ms: figures.calls_over_1ms,
        ...(each.generator.includes('snowflake') ? snowflakeExtra(figures.ids_per_sec) : {}),
        ...opened.extra?.(),
      };
      rows.push(row);
      log(`ids: ${JSON.stringify(row)}`);
    } finally {
      await opened.close();
    }
  }
  return rows;
}

async function measureService(synod: ClientTarget, durationMs: number): Promise<ServiceRow[]> {
  const running = await startIds({
    endpoints: [synod.endpoint], listenHttp: { host: '127.0.0.1', port: 0 },
    listenGrpc: { host: '127.0.0.1', port: 0 }, prefix: 'bench/ids/service', step: 1_000,
    tagsMax: 16, batchMax: 1_000, datacenterId: 0,
  }, pino({ level: 'silent' }));
  const rows: ServiceRow[] = [];
  try {
    for (const tag of ['orders', 'snowflake']) {
      for (const mode of ['single', 'batch'] as const) {
        const count = mode === 'batch' ? batchCount : 1;
        const options = { concurrency: serviceConcurrency, durationMs };
        const query = mode === 'batch' ? `?count=${count}` : '';
        const http = await runHttpLoad(new URL(`http://127.0.0.1:${running.server.httpPort}/v1/ids/${tag}${query}`), options);
        const grpc = await runGrpcLoad(`127.0.0.1:${running.server.grpcPort}`, { tag, count: mode === 'batch' ? count : 0 }, options);
        for (const [protocol, figures] of [['http', http], ['grpc', grpc]] as const) {
          const row: ServiceRow = {
            mode, protocol, tag, requests_per_sec: figures.requests_per_sec,
            ids_per_sec: figures.requests_per_sec * count, p99_ms: figures.p99_ms,
          };
          rows.push(row);
          log(`ids: service ${JSON.stringify(row)}`);
        }
      }
    }
  } finally {
    await running.close();
  }
  return rows;
}

export async function runIdsBench(options: { json: boolean; args: string[] }): Promise<void> {
  const { values } = parseArgs({
    args: options.args.filter((arg) => arg !== '--json'),
    options: { 'duration-ms': { type: 'string', default: '2000' } },
    strict: true,
  });
  const durationMs = Number(values['duration-ms']);
  if (!Number.isSafeInteger(durationMs) || durationMs < 100) throw new Error('--duration-ms must be a whole number ≥ 100');
  const dir = await mkdtemp(join(tmpdir(), 'synod-bench-ids-'));
  const synod = await startProcessTarget('synod');
  const redis = await startRedisServer().catch((error: unknown) => {
    log(`ids: no redis-server (${(error as Error).message.split('\n')[0]}); its row is skipped`);
    return null;
  });
  try {
    const results = await measureGenerators(generatorCases({ synod, redis, dir }), durationMs);
    const service = await measureService(synod, durationMs);
    if (options.json) console.log(JSON.stringify({ results, service }));
    else {
      console.table(results);
      console.table(service);
    }
  } finally {
    await redis?.stop();
    await synod.stop();
    await rm(dir, { recursive: true, force: true });
  }
}
