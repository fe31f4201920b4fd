/**
 * One cell of the lock benchmark: `contenders` concurrent callers in this process, each with its
 * own LockBackend instance (its own session or token, sharing the connections the target's factory
 * shares), acquiring and at once releasing one of `names` lock names for `durationMs`. Reports
 * grants per second and the acquire latency (call to grant) percentiles. Nothing else runs in the
 * critical section, so the numbers are the lock's own cost under that contention.
 */

import type { LockBackend } from '../../src/client/locks/lock.js';

/** The measured cell, as the benchmark's JSON reports it. */
export interface ThroughputCell {
  readonly contenders: number;
  readonly names: number;
  readonly acquires_per_sec: number;
  readonly p50_ms: number;
  readonly p99_ms: number;
}

/** Latencies beyond this many are sampled (every other one kept) so memory stays bounded. */
const latencySamplesMax = 200_000;

function percentile(sorted: readonly number[], fraction: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(fraction * sorted.length))]!;
}

/** Runs one cell on backends from `open` (one per contender); closes them after. */
export async function runThroughputCell(options: {
  readonly open: () => Promise<LockBackend>;
  readonly contenders: number;
  readonly names: number;
  readonly durationMs: number;
  readonly namePrefix: string;
}): Promise<ThroughputCell> {
  const backends: LockBackend[] = [];
  for (let i = 0; i < options.contenders; i++) backends.push(await options.open());
  const latencies: number[] = [];
  let grants = 0;
  let keepEvery = 1;
  const startedMs = performance.now();
  const endMs = startedMs + options.durationMs;
  try {
    await Promise.all(backends.map(async (backend, index) => {
      let round = index;
      while (performance.now() < endMs) {
        const name = `${options.namePrefix}-${options.names === 1 ? 0 : (round++ * 7919) % options.names}`;
        const askedMs = performance.now();
        const held = await backend.acquire(name, { timeoutMs: 60_000 });
        const latencyMs = performance.now() - askedMs;
        grants++;
        if (grants % keepEvery === 0) latencies.push(latencyMs);
        if (latencies.length >= latencySamplesMax) {
          latencies.splice(0, latencies.length, ...latencies.filter((_, i) => i % 2 === 0));
          keepEvery *= 2;
        }
        await held.release();
      }
    }));
  } finally {
    await Promise.allSettled(backends.map((backend) => backend.close()));
  }
  const elapsedMs = performance.now() - startedMs;
  latencies.sort((a, b) => a - b);
  const round2 = (value: number): number => Math.round(value * 100) / 100;
  return {
    contenders: options.contenders,
    names: options.names,
    acquires_per_sec: Math.round((grants / elapsedMs) * 1000),
    p50_ms: round2(percentile(latencies, 0.5)),
    p99_ms: round2(percentile(latencies, 0.99)),
  };
}
