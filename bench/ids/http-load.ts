/**
 * Closed-loop HTTP load on the ID service: `concurrency` callers, each sending its next request
 * as soon as the last one answered, over keep-alive connections (one per caller), for
 * `durationMs`. Reports requests per second and the p99 of request latency. node:http directly,
 * not fetch: fetch's per-request overhead in Node would be what this measures.
 */

import { Agent, request } from 'node:http';

/** The figures of one load run. */
export interface LoadFigures {
  readonly requests_per_sec: number;
  readonly p99_ms: number;
  readonly requests: number;
}

function get(agent: Agent, url: URL): Promise<void> {
  return new Promise((resolve, reject) => {
    const call = request(url, { agent, method: 'GET' }, (response) => {
      response.resume();
      response.on('end', () => {
        if (response.statusCode === 200) resolve();
        else reject(new Error(`ID service answered ${response.statusCode} for ${url.pathname}${url.search}`));
      });
    });
    call.on('error', reject);
    call.end();
  });
}

/**
 * `concurrency` closed-loop callers of `call` for `durationMs`: each sends its next call when the
 * last one answered. Requests per second and the p99 of call latency; a failed call fails the run.
 */
export async function runClosedLoop(
  call: () => Promise<void>, options: { readonly concurrency: number; readonly durationMs: number },
): Promise<LoadFigures> {
  const latenciesMs: number[] = [];
  const startedMs = performance.now();
  const endMs = startedMs + options.durationMs;
  await Promise.all(Array.from({ length: options.concurrency }, async () => {
    while (performance.now() < endMs) {
      const sentMs = performance.now();
      await call();
      latenciesMs.push(performance.now() - sentMs);
    }
  }));
  const elapsedS = (performance.now() - startedMs) / 1_000;
  latenciesMs.sort((a, b) => a - b);
  const p99Ms = latenciesMs[Math.min(latenciesMs.length - 1, Math.floor(latenciesMs.length * 0.99))] ?? 0;
  return {
    requests_per_sec: Math.round(latenciesMs.length / elapsedS),
    p99_ms: Math.round(p99Ms * 100) / 100,
    requests: latenciesMs.length,
  };
}

/** Runs the load; any non-200 answer fails the run (a benchmark of errors would mislead). */
export async function runHttpLoad(
  url: URL, options: { readonly concurrency: number; readonly durationMs: number },
): Promise<LoadFigures> {
  const agent = new Agent({ keepAlive: true, maxSockets: options.concurrency });
  try {
    return await runClosedLoop(() => get(agent, url), options);
  } finally {
    agent.destroy();
  }
}
