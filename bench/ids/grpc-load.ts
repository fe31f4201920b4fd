/**
 * Closed-loop gRPC load on the ID service's `Next`: `concurrency` callers on one channel (HTTP/2
 * multiplexes them), each sending its next call when the last one answered, for `durationMs`.
 * Same figures as the HTTP load, so the two protocols compare in one table.
 */

import { credentials, makeClientConstructor, type Client, type ServiceError } from '@grpc/grpc-js';
import { loadIdsServiceDefinition } from '../../src/services/ids/service/index.js';
import { runClosedLoop, type LoadFigures } from './http-load.js';

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
  try {
    return await runClosedLoop(next, options);
  } finally {
    client.close();
  }
}
