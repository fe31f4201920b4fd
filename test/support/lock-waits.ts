/**
 * Waiting helpers for the lock backend tests: poll a condition with a deadline, wait for a lost
 * signal, and capture a rejection. None of them sleeps as synchronisation; each fails the test
 * when its deadline passes.
 */

import { isSynodError } from '../../src/base/index.js';

/** Polls `condition` every `intervalMs` until true; throws after `deadlineMs`. */
export async function waitFor(
  condition: () => boolean | Promise<boolean>,
  options: { deadlineMs?: number; intervalMs?: number } = {},
): Promise<void> {
  const deadlineMs = options.deadlineMs ?? 10_000;
  const startMs = performance.now();
  while (!(await condition())) {
    if (performance.now() - startMs > deadlineMs) {
      throw new Error(`condition not met within ${deadlineMs} ms`);
    }
    await new Promise((resolve) => setTimeout(resolve, options.intervalMs ?? 10));
  }
}

/** Resolves with the abort reason once `signal` aborts; rejects after `deadlineMs`. */
export function abortedWithin(signal: AbortSignal, deadlineMs = 10_000): Promise<unknown> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return resolve(signal.reason);
    const timer = setTimeout(() => {
      reject(new Error(`signal did not abort within ${deadlineMs} ms`));
    }, deadlineMs);
    signal.addEventListener('abort', () => {
      clearTimeout(timer);
      resolve(signal.reason);
    }, { once: true });
  });
}

/** The error `promise` rejects with; throws if it resolves instead. */
export async function rejectionOf(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error('expected a rejection');
}

/** The SynodError code `promise` rejects with; anything else (or resolving) throws. */
export async function rejectionCodeOf(promise: Promise<unknown>): Promise<string> {
  const error = await rejectionOf(promise);
  if (!isSynodError(error)) throw new Error(`expected a SynodError, got ${String(error)}`);
  return error.code;
}

/** The first index where `tokens` fails to rise strictly, or -1 when it rises throughout. */
export function firstNonRisingIndex(tokens: readonly bigint[]): number {
  for (let index = 1; index < tokens.length; index++) {
    if (!(tokens[index]! > tokens[index - 1]!)) return index;
  }
  return -1;
}
