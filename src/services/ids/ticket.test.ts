// Ticket servers over SQLite files in a temp directory: two "databases" (two files, offsets 1
// and 2 of increment 2) give disjoint, interleaved streams that each increase; a closed adapter
// is skipped and the other serves; every adapter failing is one typed error; a restart continues
// without repeats; the spacing is validated where it is configured and where it is stored.
import Database from 'better-sqlite3';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SynodError, isSynodError } from '../../base/index.js';
import {
  SqliteTicketDatabase, TicketGenerator, type TicketDatabase, type TicketGeneratorOptions,
} from './ticket.js';

let directory: string;
const opened: TicketDatabase[] = [];

beforeEach(async () => {
  directory = await mkdtemp(join(tmpdir(), 'synod-tickets-'));
});
afterEach(async () => {
  await Promise.allSettled(opened.splice(0).map((database) => database.close()));
  await rm(directory, { recursive: true, force: true });
});

async function sqlite(file: string, offset: number, increment = 2): Promise<SqliteTicketDatabase> {
  const path = join(directory, file);
  const database = await SqliteTicketDatabase.open({ path, offset, increment });
  opened.push(database);
  return database;
}

/** A clock the test moves by hand. */
class ManualClock {
  ms = 0;
  nowMs(): number {
    return this.ms;
  }
}

function generatorOf(
  databases: readonly TicketDatabase[], options: Partial<TicketGeneratorOptions> = {},
): TicketGenerator {
  return new TicketGenerator({ databases, tag: 'orders', ...options });
}

async function draw(generator: TicketGenerator, count: number): Promise<bigint[]> {
  const ids: bigint[] = [];
  for (let index = 0; index < count; index++) ids.push(await generator.next());
  return ids;
}

function isIncreasing(ids: readonly bigint[]): boolean {
  return ids.every((id, index) => index === 0 || id > ids[index - 1]!);
}

/** The error `promise` rejects with; throws if it resolves. */
async function rejectionOf(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error('expected a rejection');
}

/** A database the test controls: answers what `answer` returns, or waits for `release`. */
class FakeDatabase implements TicketDatabase {
  readonly name: string;
  readonly pending: (() => void)[] = [];
  gated = false;
  constructor(readonly offset: number, readonly increment: number,
    readonly answer: (count: number) => bigint[]) {
    this.name = `fake:${offset}`;
  }

  async take(_tag: string, count: number): Promise<bigint[]> {
    if (this.gated) await new Promise<void>((resolve) => this.pending.push(resolve));
    return this.answer(count);
  }

  async close(): Promise<void> {}
}

describe('TicketGenerator over SQLite files', () => {
  it('interleaves two databases into disjoint streams that each increase', async () => {
    const generator = generatorOf([await sqlite('a.db', 1), await sqlite('b.db', 2)]);
    const ids = await draw(generator, 200);
    const odd = ids.filter((id) => id % 2n === 1n);
    const even = ids.filter((id) => id % 2n === 0n);
    expect(new Set(ids).size).toBe(200);
    // Round-robin: calls alternate between the databases.
    expect(ids.slice(0, 6)).toEqual([1n, 2n, 3n, 4n, 5n, 6n]);
    expect(odd).toHaveLength(100);
    expect(even).toHaveLength(100);
    expect(isIncreasing(odd) && isIncreasing(even)).toBe(true);
    expect(generator.stats.taken).toEqual([100, 100]);
  });

  it('takes a batch whole from one database, and keeps its table one row', async () => {
    const generator = generatorOf([await sqlite('a.db', 1), await sqlite('b.db', 2)]);
    const first = await generator.nextBatch(50);
    const second = await generator.nextBatch(50);
    expect(first).toEqual(Array.from({ length: 50 }, (_, index) => 1n + 2n * BigInt(index)));
    expect(second).toEqual(Array.from({ length: 50 }, (_, index) => 2n + 2n * BigInt(index)));
    expect(await generator.next()).toBe(101n);
    expect(await generator.nextBatch(0)).toEqual([]);
    const file = new Database(join(directory, 'a.db'), { readonly: true });
    try {
      expect(file.prepare('SELECT count(*) AS rows FROM synod_ticket_orders').get())
        .toEqual({ rows: 1 });
    } finally {
      file.close();
    }
  });

  it('skips a failed database for the backoff, serving every call from the other', async () => {
    const clock = new ManualClock();
    const a = await sqlite('a.db', 1);
    const generator = generatorOf([a, await sqlite('b.db', 2)], { clock, failureBackoffMs: 1_000 });
    expect(await draw(generator, 2)).toEqual([1n, 2n]);
    await a.close();
    const during = await draw(generator, 6);
    expect(during).toEqual([4n, 6n, 8n, 10n, 12n, 14n]);
    // Tried once, then skipped until the backoff passes.
    expect(generator.stats.failures).toEqual([1, 0]);
    expect(generator.databasesUp).toBe(1);
    clock.ms += 1_000;
    expect(generator.databasesUp).toBe(2);
    await draw(generator, 2);
    expect(generator.stats.failures).toEqual([2, 0]);
  });

  it('fails with SYNOD_ID_STORE_UNAVAILABLE, every cause attached, when all fail', async () => {
    const [a, b] = [await sqlite('a.db', 1), await sqlite('b.db', 2)];
    const generator = generatorOf([a, b]);
    await a.close();
    await b.close();
    const error = await rejectionOf(generator.next());
    expect(isSynodError(error, 'SYNOD_ID_STORE_UNAVAILABLE')).toBe(true);
    const cause = (error as Error).cause as AggregateError;
    expect(cause).toBeInstanceOf(AggregateError);
    expect(cause.errors.map((each: unknown) => isSynodError(each, 'SYNOD_ID_STORE_UNAVAILABLE')))
      .toEqual([true, true]);
    // Every database backing off is tried anyway rather than failing untried.
    const again = await rejectionOf(generator.next());
    expect(isSynodError(again, 'SYNOD_ID_STORE_UNAVAILABLE')).toBe(true);
    expect(generator.stats.failures).toEqual([2, 2]);
  });

  it('continues after a restart without repeating an id', async () => {
    const before = generatorOf([await sqlite('a.db', 1), await sqlite('b.db', 2)]);
    const first = [...await draw(before, 21), ...await before.nextBatch(30)];
    await before.close();
    await Promise.all(opened.splice(0).map((database) => database.close()));
    const after = generatorOf([await sqlite('a.db', 1), await sqlite('b.db', 2)]);
    const second = [...await draw(after, 21), ...await after.nextBatch(30)];
    const seen = new Set(first);
    expect(second.some((id) => seen.has(id))).toBe(false);
    const highest = (ids: readonly bigint[], parity: bigint): bigint =>
      ids.filter((id) => id % 2n === parity).reduce((a, b) => (a > b ? a : b), 0n);
    const lowest = (ids: readonly bigint[], parity: bigint): bigint =>
      ids.filter((id) => id % 2n === parity).reduce((a, b) => (a < b ? a : b));
    expect(lowest(second, 1n) > highest(first, 1n)).toBe(true);
    expect(lowest(second, 0n) > highest(first, 0n)).toBe(true);
  });

  it('refuses ids past 2^63 - 1 as SYNOD_ID_SPACE_EXHAUSTED', async () => {
    const generator = generatorOf([await sqlite('a.db', 1)]);
    await generator.next();
    const file = new Database(join(directory, 'a.db'));
    file.prepare("UPDATE sqlite_sequence SET seq = ? WHERE name = 'synod_ticket_orders'")
      .run(2n ** 62n);
    file.close();
    const error = await rejectionOf(generator.next());
    expect(isSynodError(error, 'SYNOD_ID_SPACE_EXHAUSTED')).toBe(true);
  });

  it('refuses a file reopened with another spacing', async () => {
    const generator = generatorOf([await sqlite('a.db', 1)]);
    await generator.next();
    const moved = await sqlite('a.db', 2);
    const error = await rejectionOf(moved.take('orders', 1));
    expect(isSynodError(error, 'SYNOD_INVALID_ARGUMENT')).toBe(true);
    expect((error as Error).message).toMatch(/offset 1 and increment 2, not 2 and 2/);
  });
});

describe('TicketGenerator validation and bounds', () => {
  const odd = (count: number): bigint[] => Array.from({ length: count }, (_, index) =>
    1n + 2n * BigInt(index));

  it('validates offsets and increments: in range, one increment, distinct offsets', async () => {
    const cases: [number, number][][] = [
      [], [[0, 2]], [[3, 2]], [[1, 2], [2, 3]], [[1, 2], [1, 2]], [[1, 1.5]], [[1, 2_000]],
    ];
    for (const spacings of cases) {
      const databases = spacings.map(([offset, increment]) =>
        new FakeDatabase(offset, increment, odd));
      let error: unknown;
      try {
        generatorOf(databases);
      } catch (caught) {
        error = caught;
      }
      expect(isSynodError(error, 'SYNOD_INVALID_ARGUMENT'), JSON.stringify(spacings)).toBe(true);
    }
    const path = join(directory, 'x.db');
    await expect(SqliteTicketDatabase.open({ path, offset: 3, increment: 2 }))
      .rejects.toMatchObject({ code: 'SYNOD_INVALID_ARGUMENT' });
    expect(() => generatorOf([new FakeDatabase(1, 1, odd)], { tag: 'no/slash' }))
      .toThrowError(expect.objectContaining({ code: 'SYNOD_INVALID_ARGUMENT' }));
  });

  it('never hands out a ticket outside its database spacing', async () => {
    const wrong = new FakeDatabase(1, 2, (count) => odd(count).map((id) => id + 1n));
    const right = new FakeDatabase(2, 2, (count) => odd(count).map((id) => id + 1n));
    const generator = generatorOf([wrong, right]);
    expect(await generator.next()).toBe(2n);
    expect(generator.stats.failures).toEqual([1, 0]);
  });

  it('refuses calls beyond waitersMax, and calls once closed', async () => {
    const gated = new FakeDatabase(1, 1, (count) => odd(count));
    gated.gated = true;
    const generator = generatorOf([gated], { waitersMax: 2 });
    const waiting = [generator.next(), generator.nextBatch(2)];
    const refused = await rejectionOf(generator.next());
    expect(isSynodError(refused, 'SYNOD_ID_WAITERS_EXHAUSTED')).toBe(true);
    for (const release of gated.pending.splice(0)) release();
    expect(await Promise.all(waiting)).toEqual([1n, [1n, 3n]]);
    await generator.close();
    const closed = await rejectionOf(generator.next());
    expect(closed).toBeInstanceOf(SynodError);
    expect((closed as SynodError).code).toBe('SYNOD_ID_GENERATOR_CLOSED');
  });
});
