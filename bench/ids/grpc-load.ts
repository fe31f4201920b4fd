/**
 * Closed-loop gRPC load on the ID service's `Next`: `concurrency` callers on one channel (HTTP/2
 * multiplexes them), each sending its next call when the last one answered, for `durationMs`.
 * Same figures as the HTTP load, so the two protocols compare in one table.
 */

import { credentials, makeClientConstructor, type Client, type ServiceError } from '@grpc/grpc-js';
import { loadIdsServiceDefinition } from '../../src/services/ids/service/index.js';
import type { LoadFigures } from './http-load.js';

type NextMethod = (
  request: { tag: string; count: number },
  callback: (error: ServiceError | null, response: { ids: string[] }) => void,
) => void;

/** Runs the load against `address` (host:port); any failed call fails the run. */
export async function runGrpcLoad(
  address: string,
  request: { readonly tag: string; readonly count: number },
  options: { readonly concurrency: number; readonly durationMs: number },
): Promise<LoadFigures> {
  const IdsClient = makeClientConstructor(loadIdsServiceDefinition(), 'Ids');
  const client = new IdsClient(address, credentials.createInsecure()) as unknown as Client & { Next: NextMethod };
  const next = (): Promise<void> => new Promise((resolve, reject) => {
    client.Next({ tag: request.tag, count: request.count }, (error, response) => {
      if (error !== null) reject(error);
      else if (response.ids.length !== Math.max(1, request.count)) reject(new Error('short answer'));
      else resolve();
    });
  });
  const latenciesMs: number[] = [];
  const startedMs = performance.now();
  const endMs = startedMs + options.durationMs;
  try {
    await Promise.all(Array.from({ length: options.concurrency }, async () => {
      while (performance.now() < endMs) {
        const sentMs = performance.now();
        await next();
        latenciesMs.push(performance.now() - sentMs);
      }
    }));
  } finally {
    client.close();
  }
  const elapsedS = (performance.now() - startedMs) / 1_000;
  latenciesMs.sort((a, b) => a - b);
  const p99Ms = latenciesMs[Math.min(latenciesMs.length - 1, Math.floor(latenciesMs.length * 0.99))] ?? 0;
  return {
    requests_per_sec: Math.round(latenciesMs.length / elapsedS),
    p99_ms: Math.round(p99Ms * 100) / 100,
    requests: latenciesMs.length,
  };
}
