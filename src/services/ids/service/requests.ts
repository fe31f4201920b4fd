/**
 * Validation of what a client sends the ID service, shared by HTTP and gRPC so both refuse the
 * same inputs with the same messages. Pure functions; each throws IdRequestError (400 /
 * INVALID_ARGUMENT) on bad input.
 */

import { assert, isSynodError } from '../../../base/index.js';
import { idBatchMax } from '../id-generator.js';
import { validateAllocation } from '../segment-store.js';
import { invalidRequest } from './request-status.js';

/** The default of `batchCountMax`: ids one request may ask for. */
export const batchCountMaxDefault = 1_000;
/** The largest id a decode request may name: 64 bits, the widest layout a decoder may have. */
export const decodeIdMax = 2n ** 64n - 1n;

/** A request for ids: one (`count` null, the single mode) or a batch of `count`. */
export interface IdsRequest {
  readonly tag: string;
  /** Null for the single mode, which answers one id rather than a list. */
  readonly count: number | null;
}

/**
 * Refuses a tag a segment store would refuse (validateAllocation: non-empty, at most 128 UTF-8
 * bytes, no "/"), so a tag is checked once, at the edge, whatever generator serves it.
 */
export function validateTag(tag: string): void {
  try {
    validateAllocation(tag, 1);
  } catch (error) {
    if (!isSynodError(error, 'SYNOD_INVALID_ARGUMENT')) throw error;
    throw invalidRequest(error.message.replace('a segment tag', 'a tag'));
  }
}

/** Refuses a batch size outside [1, countMax]. */
export function validateCount(count: number, countMax: number): void {
  assert(countMax >= 1 && countMax <= idBatchMax, 'validateCount: countMax within idBatchMax');
  if (!Number.isSafeInteger(count) || count < 1 || count > countMax) {
    throw invalidRequest(`count must be a whole number in [1, ${countMax}]`);
  }
}

/** The count of `?count=N` as sent: plain decimal digits, no sign, no leading zero. */
export function parseCountText(text: string, countMax: number): number {
  // Seven digits cover idBatchMax; a longer run is refused before Number() rounds it.
  if (!/^[1-9][0-9]{0,6}$/.test(text)) {
    throw invalidRequest(`count must be a whole number in [1, ${countMax}]`);
  }
  const count = Number(text);
  validateCount(count, countMax);
  return count;
}

/**
 * The id of a decode request: canonical decimal (no sign, no leading zero) of at most 64 bits.
 * Numeric ids travel as decimal strings everywhere in the service (see ids.proto).
 */
export function parseIdText(text: string): bigint {
  if (!/^(0|[1-9][0-9]{0,19})$/.test(text)) {
    throw invalidRequest('an id is a decimal whole number without sign or leading zeros');
  }
  const id = BigInt(text);
  if (id > decodeIdMax) throw invalidRequest(`an id is at most ${decodeIdMax} (64 bits)`);
  assert(id >= 0n, 'parseIdText: a non-negative id');
  return id;
}
