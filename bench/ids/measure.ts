/**
 * How the ids benchmark measures one generator in this process: a throughput phase that calls
 * `next()` in a tight loop and reads the clock only every `chunkCalls` calls (reading it per id
 * would cost about as much as a Snowflake id), then a latency phase that times each call on its
 * own, for the p99 of a single `next()` — the figure that shows whether a refill ever blocks a
 * caller. Promises are awaited only when `next()` returns one, as a real caller would.
 *
 * Both phases yield to the event loop (setImmediate) every `chunkCalls` calls, as a server does
 * between requests: background work (a segment's preload, a ring's fill) completes only when the
 * caller yields, so a loop that never yields would measure a caller no real application is.
 */

import { setImmediate as yieldTurn } from 'node:timers/promises';

/** Anything with a `next()` that may answer synchronously: our generators and the reference one. */
export interface DrawSource {
  next(): unknown;
}

/** One generator's figures. */
export interface DrawFigures {
  readonly ids_per_sec: number;
  readonly p99_us: number;
  /** Calls in the latency phase that took over a millisecond. */
  readonly calls_over_1ms: number;
}

/** Calls between two clock reads and two yields to the event loop. */
const chunkCalls = 1_024;

function isPromise(value: unknown): value is Promise<unknown> {
  return typeof value === 'object' && value !== null && typeof (value as Promise<unknown>).then === 'function';
}

/** Ids per second over `durationMs` of back-to-back `next()` calls. */
async function throughput(source: DrawSource, durationMs: number): Promise<number> {
  let drawn = 0;
  let sink = 0;
  const startedMs = performance.now();
  const endMs = startedMs + durationMs;
  let nowMs = startedMs;
  while (nowMs < endMs) {
    for (let i = 0; i < chunkCalls; i++) {
      const id = source.next();
      // Keep the result observable so the loop cannot be optimised away.
      if (isPromise(id)) await id;
      else if (id === undefined) sink++;
    }
    drawn += chunkCalls;
    await yieldTurn();
    nowMs = performance.now();
  }
  if (sink > 0) throw new Error('a generator returned undefined');
  return drawn / ((nowMs - startedMs) / 1_000);
}

/** The 99th percentile of `calls` individually timed `next()` calls, in microseconds. */
async function latency(source: DrawSource, calls: number): Promise<{ p99Us: number; over1ms: number }> {
  const samples = new Float64Array(calls);
  for (let i = 0; i < calls; i++) {
    const startedMs = performance.now();
    const id = source.next();
    if (isPromise(id)) await id;
    samples[i] = performance.now() - startedMs;
    if (i % chunkCalls === chunkCalls - 1) await yieldTurn();
  }
  samples.sort();
  let over1ms = 0;
  for (const sample of samples) if (sample > 1) over1ms++;
  const p99Ms = samples[Math.min(calls - 1, Math.floor(calls * 0.99))]!;
  return { p99Us: p99Ms * 1_000, over1ms };
}

/** Both phases for one source. */
export async function measureSource(
  source: DrawSource, options: { readonly durationMs: number; readonly latencyCalls: number },
): Promise<DrawFigures> {
  // A short warm-up, so the throughput phase measures optimised code.
  await throughput(source, Math.min(200, options.durationMs / 4));
  const idsPerSec = await throughput(source, options.durationMs);
  const { p99Us, over1ms } = await latency(source, options.latencyCalls);
  return {
    ids_per_sec: Math.round(idsPerSec),
    p99_us: Math.round(p99Us * 100) / 100,
    calls_over_1ms: over1ms,
  };
}
