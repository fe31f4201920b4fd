/** Helpers for asserting coded errors in tests. */

import { expect } from 'vitest';
import { isSynodError, type ErrorCode } from '../../src/base/index.js';

/** The code of the SynodError `body` throws, or undefined if it returns; anything else rethrows. */
export function codeOf(body: () => unknown): string | undefined {
  try {
    body();
  } catch (error) {
    if (isSynodError(error)) return error.code;
    throw error;
  }
  return undefined;
}

/** Asserts that `body` throws a SynodError with `code`. */
export function expectCode(body: () => unknown, code: ErrorCode): void {
  let caught: unknown;
  try {
    body();
  } catch (error) {
    caught = error;
  }
  expect(isSynodError(caught, code), `expected ${code}, got ${String(caught)}`).toBe(true);
}
