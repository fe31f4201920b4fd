/**
 * By-hand micro-benchmark of the MVCC backend: `npx tsx src/storage/kv-backend.bench.ts`.
 * Sequential single-batch commits (a put of a 17-byte revision key with a 128-byte value plus the
 * applied index in `meta`, as one applied command writes) under each `commitSync` policy, and the
 * cost of one `flush()` after a burst of unsynced commits.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { LmdbKvBackend, type CommitSync, type KvBackendWrite } from './kv-backend.js';

const runMs = 2000;
const valueBytes = 128;

function commandWrites(index: number): KvBackendWrite[] {
  const key = Buffer.alloc(17);
  key.writeBigUInt64BE(BigInt(index), 0);
  const applied = Buffer.alloc(8);
  applied.writeBigUInt64BE(BigInt(index), 0);
  return [
    { bucket: 'key', key, value: new Uint8Array(valueBytes).fill(index & 0xff) },
    { bucket: 'meta', key: Buffer.from('appliedIndex'), value: applied },
  ];
}

async function measure(commitSync: CommitSync): Promise<void> {
  const path = mkdtempSync(join(tmpdir(), 'synod-kv-bench-'));
  const backend = LmdbKvBackend.open({ path, commitSync });
  let commits = 0;
  const start = performance.now();
  while (performance.now() - start < runMs) backend.commit(commandWrites(++commits));
  const elapsedMs = performance.now() - start;
  const flushStart = performance.now();
  await backend.flush();
  const flushMs = performance.now() - flushStart;
  await backend.close();
  rmSync(path, { recursive: true, force: true });
  const perSecond = Math.round((commits / elapsedMs) * 1000);
  console.log(`commitSync=${commitSync.padEnd(4)} ${String(perSecond).padStart(7)} commits/s ` +
    `(${commits} in ${elapsedMs.toFixed(0)} ms), then flush() ${flushMs.toFixed(1)} ms`);
}

for (const commitSync of ['full', 'data', 'none'] as const) await measure(commitSync);
