/**
 * The open-time check of the log's structure and tail. LMDB commits cannot tear, so a bad record at
 * the end of the log means outside damage; we verify the last `tailScanEntriesMax` records and
 * report the corrupt suffix (if any) for the store to truncate. Damage that is not a suffix — a bad
 * record below a good one, a missing or stray key — cannot be explained by a lost tail write and
 * throws SYNOD_STORAGE_CORRUPT.
 */

import type { Database } from 'lmdb';
import { assert, SynodError } from '../base/index.js';
import { decodeEntry, logKey, logKeyIndex, type LogBounds } from './record-codec.js';

/** Inputs of `scanTail`. */
export interface TailScanRequest {
  /** The `log` database. */
  readonly log: Database<Buffer, Buffer>;
  /** The verified bounds record. */
  readonly bounds: LogBounds;
  /** Records verified at most, counting back from the last index. ≥ 1. */
  readonly tailScanEntriesMax: number;
}

/** Outcome of `scanTail`. */
export interface TailScanResult {
  /** First index of the corrupt suffix, or null if the tail verified. */
  readonly truncatedFrom: number | null;
  /** Records verified. */
  readonly scannedEntries: number;
}

/** Verifies the log's key range and its tail; see the module comment. */
export function scanTail(request: TailScanRequest): TailScanResult {
  const { log, bounds, tailScanEntriesMax } = request;
  assert(tailScanEntriesMax >= 1, 'tailScanEntriesMax ≥ 1');
  checkKeyRange(log, bounds);
  const scanLo = Math.max(bounds.dummyIndex + 1, bounds.lastIndex - tailScanEntriesMax + 1);
  let validTop: number | null = null;
  let laterTerm = Infinity;
  for (let index = bounds.lastIndex; index >= scanLo; index--) {
    const record = log.getBinary(logKey(index));
    if (record === undefined) throw corrupt(index, 'is missing');
    let term: number;
    try {
      term = decodeEntry(record, index).term;
    } catch (error) {
      if (validTop === null) continue; // Still inside the corrupt suffix.
      throw error;
    }
    if (term > laterTerm) throw corrupt(index + 1, `has a term below its predecessor's ${term}`);
    validTop ??= index;
    laterTerm = term;
  }
  const scannedEntries = Math.max(0, bounds.lastIndex - scanLo + 1);
  if (validTop === null && scannedEntries > 0) {
    // Every scanned record is bad: the damage may reach further down than we looked.
    if (scanLo > bounds.dummyIndex + 1) throw corrupt(scanLo, 'and all records above are corrupt');
    return { truncatedFrom: scanLo, scannedEntries };
  }
  if (scanLo === bounds.dummyIndex + 1 && bounds.dummyTerm > laterTerm) {
    throw corrupt(scanLo, `has a term below the compaction point's ${bounds.dummyTerm}`);
  }
  const truncatedFrom = validTop === null || validTop === bounds.lastIndex ? null : validTop + 1;
  return { truncatedFrom, scannedEntries };
}

/** The log's keys must be exactly `(dummyIndex, lastIndex]`: checks the ends and the count. */
function checkKeyRange(log: Database<Buffer, Buffer>, bounds: LogBounds): void {
  const expected = bounds.lastIndex - bounds.dummyIndex;
  const count = log.getKeysCount();
  if (count !== expected) {
    throw new SynodError(
      'SYNOD_STORAGE_CORRUPT',
      `storage log holds ${count} records, meta/log-bounds says ${expected}`,
    );
  }
  if (expected === 0) return;
  for (const key of log.getKeys({ limit: 1 })) {
    const index = logKeyIndex(key);
    if (index !== bounds.dummyIndex + 1) throw corrupt(index, 'is below the log');
  }
  for (const key of log.getKeys({ limit: 1, reverse: true })) {
    const index = logKeyIndex(key);
    if (index !== bounds.lastIndex) throw corrupt(index, 'is beyond the log');
  }
}

function corrupt(index: number, why: string): SynodError {
  return new SynodError('SYNOD_STORAGE_CORRUPT', `storage record log/${index} ${why}`);
}
