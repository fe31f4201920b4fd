/**
 * The id generators that live in an external store, against real servers: Leaf's segment table
 * on PostgreSQL (both update modes, concurrent generators, a crash restart), the PostgreSQL ticket
 * adapter (two sequences standing for two ticket databases, including a crash restart and a
 * database that cannot be reached) on a throwaway PostgreSQL 15, and Redis INCR on a throwaway
 * redis-server without persistence — concurrent generators on one key, batch ranges, blocks —
 * and, asserted as documented behaviour, the ids it repeats after a restart without persistence.
 */

import pg from 'pg';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { isSynodError } from '../../src/base/index.js';
import { RedisIncrGenerator } from '../../src/services/ids/redis-incr.js';
import { SegmentGenerator } from '../../src/services/ids/segment.js';
import { SqlSegmentStore, type SqlSegmentMode } from '../../src/services/ids/segment-sql-store.js';
import {
  PostgresTicketDatabase, TicketGenerator, type TicketDatabase,
} from '../../src/services/ids/ticket.js';
import { firstNonRisingIndex, rejectionOf, waitFor } from '../support/lock-waits.js';
import { startPostgres, type PostgresServer } from '../support/postgres-server.js';
import { startRedisServer, type RedisServer } from '../support/redis-servers.js';

/** The ids of `ids` with `id ≡ residue (mod modulus)`, in their order. */
function streamOf(ids: readonly bigint[], modulus: bigint, residue: bigint): bigint[] {
  return ids.filter((id) => id % modulus === residue);
}

describe('PostgresTicketDatabase', () => {
  let server: PostgresServer;
  let admin: pg.Pool;
  const opened: TicketDatabase[] = [];

  /** A ticket database: a sequence per tag under `prefix`, spaced by `offset` of `increment`. */
  async function database(prefix: string, offset: number, increment = 2): Promise<TicketDatabase> {
    const created = await PostgresTicketDatabase.open({
      target: { connectionString: server.connectionString }, offset, increment,
      sequencePrefix: prefix, name: `postgres:${prefix}`,
    });
    opened.push(created);
    return created;
  }

  beforeAll(async () => {
    server = await startPostgres();
    admin = new pg.Pool({ connectionString: server.connectionString, max: 2 });
    admin.on('error', () => undefined);
  });
  afterEach(async () => {
    await Promise.allSettled(opened.splice(0).map((each) => each.close()));
  });
  afterAll(async () => {
    await admin?.end();
    await server?.stop();
  });

  it('gives two sequences disjoint streams, each increasing, under concurrent calls', async () => {
    const generator = new TicketGenerator({
      databases: [await database('disjoint_a_', 1), await database('disjoint_b_', 2)],
      tag: 'orders',
    });
    const concurrent = await Promise.all(Array.from({ length: 400 }, () => generator.next()));
    const batches = await Promise.all([generator.nextBatch(500), generator.nextBatch(500)]);
    const ids = [...concurrent, ...batches.flat()];
    expect(new Set(ids).size).toBe(ids.length);
    expect(streamOf(ids, 2n, 1n).length + streamOf(ids, 2n, 0n).length).toBe(ids.length);
    expect(generator.stats.taken).toEqual([700, 700]);
    // Each batch is one generate_series round trip over one sequence: consecutive in its stream.
    for (const batch of batches) {
      expect(batch.every((id, index) => index === 0 || id === batch[index - 1]! + 2n)).toBe(true);
    }
    // Sequential calls see each database's stream strictly increase.
    const sequential: bigint[] = [];
    for (let index = 0; index < 40; index++) sequential.push(await generator.next());
    expect(firstNonRisingIndex(streamOf(sequential, 2n, 1n))).toBe(-1);
    expect(firstNonRisingIndex(streamOf(sequential, 2n, 0n))).toBe(-1);
    const sequences = await admin.query(`SELECT sequencename, start_value, increment_by ` +
      `FROM pg_sequences WHERE sequencename LIKE 'disjoint_%' ORDER BY sequencename`);
    expect(sequences.rows).toEqual([
      { sequencename: 'disjoint_a_orders', start_value: '1', increment_by: '2' },
      { sequencename: 'disjoint_b_orders', start_value: '2', increment_by: '2' },
    ]);
  });

  it('refuses a sequence that exists with another spacing', async () => {
    const databases = [await database('spacing_', 1)];
    const first = new TicketGenerator({ databases, tag: 'orders' });
    await first.next();
    const moved = await database('spacing_', 2);
    const error = await rejectionOf(moved.take('orders', 1));
    expect(isSynodError(error, 'SYNOD_INVALID_ARGUMENT')).toBe(true);
  });

  it('serves from the other sequence while one database cannot be reached', async () => {
    const unreachable = await PostgresTicketDatabase.open({
      // Port 1 on loopback: connection refused at once.
      target: { connectionString: 'postgresql://postgres@127.0.0.1:1/postgres' },
      offset: 1, increment: 2, sequencePrefix: 'down_a_',
    });
    opened.push(unreachable);
    const generator = new TicketGenerator({
      databases: [unreachable, await database('down_b_', 2)], tag: 'orders',
    });
    const ids: bigint[] = [];
    for (let index = 0; index < 10; index++) ids.push(await generator.next());
    expect(ids).toEqual(Array.from({ length: 10 }, (_, index) => 2n + 2n * BigInt(index)));
    expect(generator.stats.failures).toEqual([1, 0]);
  });

  it('continues above every id handed out after a crash restart (nextval is durable)', async () => {
    const databases = [await database('crash_a_', 1), await database('crash_b_', 2)];
    const before = new TicketGenerator({ databases, tag: 'orders' });
    const first: bigint[] = [];
    for (let index = 0; index < 50; index++) first.push(await before.next());
    first.push(...await before.nextBatch(100));
    // SIGQUIT: no checkpoint, the restart replays the WAL.
    await server.restart({ shutdown: 'immediate' });
    const after = new TicketGenerator({ databases, tag: 'orders' });
    const second: bigint[] = [];
    await waitFor(async () => {
      try {
        second.push(await after.next());
        return true;
      } catch (error) {
        if (!isSynodError(error, 'SYNOD_ID_STORE_UNAVAILABLE')) throw error;
        return false;
      }
    }, { deadlineMs: 20_000, intervalMs: 50 });
    for (let index = 0; index < 50; index++) second.push(await after.next());
    for (const residue of [1n, 0n]) {
      const highest = streamOf(first, 2n, residue).reduce((a, b) => (a > b ? a : b));
      expect(streamOf(second, 2n, residue).every((id) => id > highest)).toBe(true);
    }
  });
});

describe.each<SqlSegmentMode>(['returning', 'optimistic'])('SqlSegmentStore on PostgreSQL (%s)', (mode) => {
  let server: PostgresServer;
  const stores: SqlSegmentStore[] = [];
  const generators: SegmentGenerator[] = [];

  async function generator(tag: string): Promise<SegmentGenerator> {
    const store = await SqlSegmentStore.open({
      target: { kind: 'postgres', connectionString: server.connectionString }, mode,
      table: `segments_${mode}`,
    });
    stores.push(store);
    const created = new SegmentGenerator({ store, tag, step: 100, stepMax: 400 });
    generators.push(created);
    return created;
  }

  beforeAll(async () => {
    server = await startPostgres();
  });
  afterEach(async () => {
    await Promise.allSettled(generators.splice(0).map((each) => each.close()));
    await Promise.allSettled(stores.splice(0).map((each) => each.close()));
  });
  afterAll(async () => {
    await server?.stop();
  });

  it('never gives one id to two of four concurrent generators on one tag', async () => {
    const all = await Promise.all(['a', 'b', 'c', 'd'].map(async () => {
      const each = await generator('orders');
      const ids: bigint[] = [];
      while (ids.length < 5_000) ids.push(...await each.nextBatch(250));
      expect(firstNonRisingIndex(ids)).toBe(-1);
      return ids;
    }));
    expect(new Set(all.flat()).size).toBe(20_000);
  });

  it('continues above every id handed out after a crash restart', async () => {
    const before = await generator('restart');
    const first = await before.nextBatch(1_000);
    await server.restart({ shutdown: 'immediate' });
    const after = await generator('restart');
    let second: bigint[] = [];
    await waitFor(async () => {
      try {
        second = await after.nextBatch(500);
        return true;
      } catch (error) {
        if (!isSynodError(error, 'SYNOD_ID_STORE_UNAVAILABLE')) throw error;
        return false;
      }
    }, { deadlineMs: 20_000, intervalMs: 50 });
    const highest = first.reduce((a, b) => (a > b ? a : b));
    expect(second.every((id) => id > highest)).toBe(true);
  });
});

describe('RedisIncrGenerator', () => {
  let server: RedisServer;
  const opened: RedisIncrGenerator[] = [];
  let tagCounter = 0;
  /** A counter tag no other test uses. */
  const freshTag = (label: string): string => `${label}${(tagCounter += 1)}`;

  async function generator(tag: string, step?: number): Promise<RedisIncrGenerator> {
    const created = await RedisIncrGenerator.connect({ target: { url: server.url }, tag, step });
    opened.push(created);
    return created;
  }

  beforeAll(async () => {
    server = await startRedisServer();
  });
  beforeEach(async () => {
    if (!server.running) await server.restart();
  });
  afterEach(async () => {
    await Promise.allSettled(opened.splice(0).map((each) => each.close()));
  });
  afterAll(async () => {
    await server?.stop();
  });

  it('never gives one id to two of many concurrent generators on one key', async () => {
    const tag = freshTag('shared');
    const generators = await Promise.all(Array.from({ length: 8 }, () => generator(tag)));
    const perGenerator = await Promise.all(generators.map(async (each) => {
      const ids: bigint[] = [];
      const calls = Array.from({ length: 250 }, () => each.next());
      ids.push(...await Promise.all(calls), ...await each.nextBatch(50));
      return ids;
    }));
    const ids = perGenerator.flat();
    expect(ids).toHaveLength(8 * 300);
    expect(new Set(ids).size).toBe(ids.length);
    // Nothing is wasted one id per INCR: together they are exactly 1..2 400.
    const sorted = [...ids].sort((a, b) => (a < b ? -1 : 1));
    expect(sorted[0]).toBe(1n);
    expect(sorted.at(-1)).toBe(2_400n);
  });

  it('answers a batch with one INCRBY: a contiguous range', async () => {
    const tag = freshTag('batch');
    const [a, b] = [await generator(tag), await generator(tag)];
    const ranges = await Promise.all([a.nextBatch(1_000), b.nextBatch(1_000), a.nextBatch(7)]);
    for (const range of ranges) {
      expect(range.every((id, index) => index === 0 || id === range[index - 1]! + 1n)).toBe(true);
    }
    expect(new Set(ranges.flat()).size).toBe(2_007);
  });

  it('hands out blocks of step ids locally, sharing the key with one-id generators', async () => {
    const tag = freshTag('blocks');
    const blocks = await Promise.all([generator(tag, 500), generator(tag, 500)]);
    const single = await generator(tag);
    const ids: bigint[] = [];
    let synchronous = 0;
    for (let round = 0; round < 2_000; round++) {
      for (const each of blocks) {
        const id = each.next();
        if (typeof id === 'bigint') synchronous += 1;
        ids.push(await id);
      }
      if (round % 10 === 0) ids.push(await single.next());
    }
    expect(new Set(ids).size).toBe(ids.length);
    // All but the few calls that waited for a block answered without a round trip.
    expect(synchronous).toBeGreaterThan(3_900);
  });

  it('DOCUMENTED: after a restart without persistence the counter starts over and ids repeat',
    async () => {
      // Redis acknowledges INCR before persisting it (and here never persists): see the
      // durability caveat in redis-incr.ts for the configuration that prevents this.
      const tag = freshTag('restart');
      const before = await generator(tag);
      const first = await before.nextBatch(100);
      expect(first.at(-1)).toBe(100n);
      await server.restart();
      // A process started after the restart (a deploy, another host) cannot know: it repeats.
      const fresh = await generator(tag);
      const second = await fresh.nextBatch(50);
      expect(second).toEqual(first.slice(0, 50));
      // The generator that handed the first ids out notices the counter went back (51 is not
      // above its 100), once it has reconnected, and refuses rather than repeat.
      let refused: unknown;
      await waitFor(async () => {
        refused = await rejectionOf(Promise.resolve(before.next()));
        return isSynodError(refused, 'SYNOD_STORAGE_CORRUPT');
      }, { deadlineMs: 10_000, intervalMs: 20 });
      expect((refused as Error).message).toMatch(/went back/);
    });

  it('fails calls with SYNOD_ID_STORE_UNAVAILABLE while the server is down', async () => {
    const each = await generator(freshTag('down'));
    expect(await each.next()).toBe(1n);
    await server.kill();
    const error = await rejectionOf(Promise.resolve(each.next()));
    expect(isSynodError(error, 'SYNOD_ID_STORE_UNAVAILABLE')).toBe(true);
    expect((error as Error).cause).toBeInstanceOf(Error);
  });
});
