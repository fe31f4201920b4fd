/**
 * Load and waiting helpers for the process-cluster tests: a writer that records what was
 * acknowledged, and `eventually`, which retries a probe with a bound on each attempt.
 */

import type { Etcd3 } from 'etcd3';

/** How long one attempt of `eventually` may take (a call to a member that is down may hang). */
const attemptPatienceMs = 1_000;

/** `promise`, or a rejection once `ms` pass. */
export function patiently<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const expiry = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
  });
  return Promise.race([promise, expiry]).finally(() => clearTimeout(timer));
}

/** Retries `attempt` every 25 ms until it returns a value, or throws after `deadlineMs`. */
export async function eventually<T>(what: string, deadlineMs: number, attempt: () => Promise<T | undefined>): Promise<T> {
  const deadline = performance.now() + deadlineMs;
  let lastError: unknown = null;
  while (performance.now() < deadline) {
    try {
      const value = await patiently(attempt(), attemptPatienceMs);
      if (value !== undefined) return value;
    } catch (error) {
      lastError = error;
    }
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  throw new Error(`${what}: not within ${deadlineMs} ms (last error: ${String(lastError)})`);
}

export interface Writer {
  readonly acknowledged: Map<string, string>;
  stop(): Promise<void>;
}

/** How long a writer waits on one put before moving on (a put to a dead member may hang). */
const putPatienceMs = 1_000;
/** Pause after a failed put before the next one. */
const failureBackoffMs = 20;

/**
 * Puts unique keys through `client` one after another until stopped; records what was
 * acknowledged, also if the acknowledgement arrives after the writer moved on.
 */
export function startWriter(id: string, client: Etcd3): Writer {
  const acknowledged = new Map<string, string>();
  let running = true;
  const loop = (async () => {
    for (let sequence = 0; running; sequence++) {
      const key = `load/${id}/${sequence}`;
      const value = `${id}:${sequence}`;
      let failed = false;
      const put = client.put(key).value(value).then(
        () => void acknowledged.set(key, value),
        // Not acknowledged: the outcome is unknown, so the check neither expects nor forbids
        // it. Keep going; the member may be electing or gone.
        () => {
          failed = true;
        },
      );
      let timer: NodeJS.Timeout | undefined;
      const patience = new Promise<void>((resolve) => {
        timer = setTimeout(resolve, putPatienceMs);
      });
      await Promise.race([put, patience]);
      clearTimeout(timer);
      // A dead member refuses at once; back off so the loop never starves the event loop.
      if (failed) await new Promise((resolve) => setTimeout(resolve, failureBackoffMs));
    }
  })();
  return {
    acknowledged,
    stop: async () => {
      running = false;
      await loop;
    },
  };
}

