/**
 * By-hand micro-benchmark of the durable log (fsync-bound):
 * `npx tsx src/storage/raft-log-store.bench.ts`.
 * Sequential persists of 1, 64 and 512 64-byte entries; concurrent single-entry persists (group
 * commit); and the cost of reads and of the open-time tail scan.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import type { Entry } from '../raft/types.js';
import { RaftLogStore } from './raft-log-store.js';

const entryBytes = 64;
const runMs = 2000;

function batch(from: number, count: number): Entry[] {
  const entries: Entry[] = [];
  for (let index = from; index < from + count; index++) {
    entries.push({ term: 1, index, type: 'normal', data: new Uint8Array(entryBytes) });
  }
  return entries;
}

function append(store: RaftLogStore, entries: Entry[]): Promise<void> {
  return store.persist({ snapshot: null, entries, hardState: null });
}

async function sequential(store: RaftLogStore, batchEntries: number): Promise<void> {
  const start = performance.now();
  let persists = 0;
  while (performance.now() - start < runMs) {
    await append(store, batch(store.lastIndex() + 1, batchEntries));
    persists++;
  }
  const seconds = (performance.now() - start) / 1000;
  const rate = persists / seconds;
  const entriesRate = (rate * batchEntries).toFixed(0);
  console.log(`batch ${batchEntries}: ${rate.toFixed(0)} persists/s, ${entriesRate} entries/s`);
}

async function concurrent(store: RaftLogStore, inflight: number): Promise<void> {
  const start = performance.now();
  let persists = 0;
  while (performance.now() - start < runMs) {
    const first = store.lastIndex() + 1;
    const writes: Promise<void>[] = [];
    for (let i = 0; i < inflight; i++) writes.push(append(store, batch(first + i, 1)));
    await Promise.all(writes);
    persists += inflight;
  }
  const rate = persists / ((performance.now() - start) / 1000);
  console.log(`${inflight} concurrent single-entry persists: ${rate.toFixed(0)} persists/s`);
}

function reads(store: RaftLogStore): void {
  const last = store.lastIndex();
  const count = 100_000;
  let start = performance.now();
  for (let i = 0; i < count; i++) store.lastIndex();
  console.log(`lastIndex(): ${(((performance.now() - start) * 1000) / count).toFixed(2)} µs`);
  start = performance.now();
  for (let i = 0; i < count; i++) store.term(last - (i % 1000));
  console.log(`term(i): ${(((performance.now() - start) * 1000) / count).toFixed(2)} µs`);
  start = performance.now();
  for (let i = 0; i < count / 100; i++) store.entries(last - 99, last + 1, Infinity);
  const entriesMicroseconds = ((performance.now() - start) * 1000) / (count / 100);
  console.log(`entries(100 entries): ${entriesMicroseconds.toFixed(1)} µs`);
}

async function main(): Promise<void> {
  const path = mkdtempSync(join(tmpdir(), 'synod-log-bench-'));
  try {
    let store = await RaftLogStore.open({ path });
    for (const batchEntries of [1, 64, 512]) await sequential(store, batchEntries);
    for (const inflight of [8, 64]) await concurrent(store, inflight);
    reads(store);
    const total = store.lastIndex();
    await store.close();
    for (const tailScanEntriesMax of [4096, total]) {
      const start = performance.now();
      store = await RaftLogStore.open({ path, tailScanEntriesMax });
      const ms = performance.now() - start;
      const scanned = store.openReport.scannedEntries;
      console.log(`open, ${total} entries held, ${scanned} scanned: ${ms.toFixed(1)} ms`);
      await store.close();
    }
  } finally {
    rmSync(path, { recursive: true, force: true });
  }
}

await main();
