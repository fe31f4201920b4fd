// The segment stores against real backends: a Synod member in this process and a SQLite file.
// Two generators on one tag never share an id, and a generator restarted after close continues
// above everything issued, wasting exactly the unused rest of what it held.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SynodClient } from '../../client/index.js';
import { startInProcessSynod, type ClientTarget } from '../../../test/client/targets.js';
import { SegmentGenerator } from './segment.js';
import { SqlSegmentStore, type SqlSegmentMode } from './segment-sql-store.js';
import type { SegmentStore } from './segment-store.js';
import { SynodSegmentStore } from './segment-synod-store.js';

const idsPerGenerator = 100_000;
const batchIds = 1_000;

/** Draws `idsPerGenerator` ids from each generator, interleaved, and checks them. */
async function drawConcurrently(generators: readonly SegmentGenerator[]): Promise<bigint[][]> {
  const drawn = await Promise.all(generators.map(async (generator) => {
    const ids: bigint[] = [];
    while (ids.length < idsPerGenerator) ids.push(...await generator.nextBatch(batchIds));
    return ids;
  }));
  for (const ids of drawn) {
    for (let i = 1; i < ids.length; i++) expect(ids[i]! > ids[i - 1]!).toBe(true);
  }
  const all = new Set(drawn.flat());
  expect(all.size).toBe(idsPerGenerator * generators.length);
  return drawn;
}

/** Closes a generator mid-segment and checks a successor on a new store starts right after. */
async function restartContinues(openStore: () => Promise<SegmentStore>, tag: string): Promise<void> {
  const firstStore = await openStore();
  const first = new SegmentGenerator({ store: firstStore, tag, step: 500, stepMax: 500 });
  const issued = await first.nextBatch(1_234);
  // Let the preload land, so that what is held at close is exact.
  while (first.fetching) await new Promise((resolve) => setImmediate(resolve));
  const held = first.remaining;
  await first.close();
  await firstStore.close();
  const secondStore = await openStore();
  const second = new SegmentGenerator({ store: secondStore, tag, step: 500, stepMax: 500 });
  const next = await second.next();
  const last = issued.at(-1)!;
  expect(next).toBeGreaterThan(last);
  // The crash wasted exactly what the first generator held, never more.
  expect(next - last - 1n).toBe(held);
  await second.close();
  await secondStore.close();
}

describe('SynodSegmentStore', () => {
  let target: ClientTarget;
  const clients: SynodClient[] = [];
  const client = (): SynodClient => {
    const made = target.client();
    clients.push(made);
    return made;
  };

  beforeAll(async () => {
    target = await startInProcessSynod();
  });
  afterAll(async () => {
    await Promise.allSettled(clients.map((each) => each.close()));
    await target?.stop();
  });

  it('never gives one id to two generators on one tag', async () => {
    const stores = [new SynodSegmentStore({ client: client() }), new SynodSegmentStore({ client: client() })];
    const generators = stores.map((store) => new SegmentGenerator({ store, tag: 'disjoint', step: 1_000, stepMax: 4_000 }));
    await drawConcurrently(generators);
    await Promise.all(generators.map((generator) => generator.close()));
    const end = BigInt((await clients[0]!.get(stores[0]!.keyOf('disjoint')))!.value.toString());
    expect(end).toBeGreaterThan(BigInt(2 * idsPerGenerator));
  });

  it('continues above everything issued after a restart', async () => {
    const shared = client();
    await restartContinues(async () => new SynodSegmentStore({ client: shared }), 'restart');
  });

  it('allocates disjoint ranges under concurrent CAS conflicts', async () => {
    const store = new SynodSegmentStore({ client: client() });
    const ranges = await Promise.all(Array.from({ length: 20 }, () => store.allocate('contended', 10)));
    const starts = ranges.map((range) => range.start).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    expect(starts).toEqual(Array.from({ length: 20 }, (_, i) => BigInt(1 + 10 * i)));
  });
});

describe.each<SqlSegmentMode>(['returning', 'optimistic'])('SqlSegmentStore on SQLite (%s)', (mode) => {
  let directory: string;
  let path: string;
  const open = (): Promise<SqlSegmentStore> => SqlSegmentStore.open({ target: { kind: 'sqlite', path }, mode });

  beforeAll(async () => {
    directory = await mkdtemp(join(tmpdir(), 'synod-segments-'));
    path = join(directory, 'segments.db');
  });
  afterAll(async () => {
    await rm(directory, { recursive: true, force: true });
  });

  it('never gives one id to two generators on one tag (two connections)', async () => {
    const stores = [await open(), await open()];
    const generators = stores.map((store) => new SegmentGenerator({ store, tag: 'disjoint', step: 1_000, stepMax: 4_000 }));
    await drawConcurrently(generators);
    await Promise.all(generators.map((generator) => generator.close()));
    await Promise.all(stores.map((store) => store.close()));
  });

  it('continues above everything issued after a restart', async () => {
    await restartContinues(open, 'restart');
  });

  it('allocates disjoint ranges under concurrent attempts', async () => {
    const store = await open();
    const ranges = await Promise.all(Array.from({ length: 20 }, () => store.allocate('contended', 10)));
    const starts = ranges.map((range) => range.start).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    expect(starts).toEqual(Array.from({ length: 20 }, (_, i) => BigInt(1 + 10 * i)));
    await store.close();
  });
});
