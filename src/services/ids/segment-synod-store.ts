/**
 * Segments kept in Synod: per tag one key `<prefix>/<tag>` holding, as a decimal string, the end
 * of the last range handed out (Leaf's `max_id`). `allocate` reads the key, then writes
 * `end + step` in a Txn that holds only if the key's mod revision is still the one read (create
 * revision 0 for a tag never allocated). When another allocator got there first, the Txn's else
 * branch returns the key as it is now, so the next attempt costs one round trip, not two.
 *
 * Why a lost answer cannot double-allocate: a range is returned only from a Txn whose answer said
 * `succeeded`. The SDK never resends a Txn whose outcome is unknown (a timeout, a failover); the
 * error reaches the caller, and the caller's retry (SegmentGenerator retries with backoff) starts
 * from a fresh read. If the lost Txn did commit, the key's mod revision moved, so the retry reads
 * the new end and takes the range after it; the lost range is never used by anyone (wasted, not
 * repeated). Resending the very same Txn would be safe too, for the same reason: its compare no
 * longer holds. What would be unsafe is an unconditional put, or treating an unknown outcome as
 * success; neither is done here.
 */

import { assert } from '../../base/index.js';
import type { KeyValue, SynodClient } from '../../client/index.js';
import { compare, op } from '../../client/index.js';
import {
  SegmentStoreError, backoffDelayMs, conflictsExhausted, newJitter, pause, segmentAllocateAttemptsMaxDefault,
  segmentConflictDelayMsDefault, segmentConflictDelayMsMax, segmentFirstId, validateAllocation,
  type Segment, type SegmentStore,
} from './segment-store.js';
import type { Random } from '../../base/index.js';

/** Options of a SynodSegmentStore. */
export interface SynodSegmentStoreOptions {
  /** The client to use; the store does not close it. */
  readonly client: SynodClient;
  /** The key prefix; a tag lives at `<prefix>/<tag>`. Default `synod/ids/segment`. */
  readonly prefix?: string;
  /** Conflicting attempts before SYNOD_STM_RETRIES_EXHAUSTED; default 32. */
  readonly attemptsMax?: number;
  /** Jitter for the pauses between conflicting attempts; default seeded from the OS. */
  readonly random?: Random;
}

/** The default key prefix. */
export const synodSegmentPrefixDefault = 'synod/ids/segment';

function endOf(kv: KeyValue | null | undefined): bigint {
  if (kv === null || kv === undefined) return segmentFirstId;
  const text = kv.value.toString();
  if (!/^\d{1,30}$/.test(text)) {
    throw new SegmentStoreError(`segment key ${kv.key.toString()} does not hold a whole number`);
  }
  return BigInt(text);
}

/** Segments in Synod keys, allocated by compare-and-swap Txns. */
export class SynodSegmentStore implements SegmentStore {
  readonly client: SynodClient;
  readonly prefix: string;
  readonly attemptsMax: number;
  readonly #random: Random;

  constructor(options: SynodSegmentStoreOptions) {
    const prefix = options.prefix ?? synodSegmentPrefixDefault;
    const attemptsMax = options.attemptsMax ?? segmentAllocateAttemptsMaxDefault;
    if (prefix === '' || prefix.endsWith('/')) {
      throw new SegmentStoreError('a segment prefix must be non-empty and not end with "/"');
    }
    assert(Number.isSafeInteger(attemptsMax) && attemptsMax >= 1, 'attemptsMax is a positive integer');
    this.client = options.client;
    this.prefix = prefix;
    this.attemptsMax = attemptsMax;
    this.#random = options.random ?? newJitter();
  }

  /** The key of `tag`. */
  keyOf(tag: string): string {
    return `${this.prefix}/${tag}`;
  }

  async allocate(tag: string, step: number): Promise<Segment> {
    validateAllocation(tag, step);
    const key = this.keyOf(tag);
    let current = await this.client.get(key);
    for (let attempt = 0; attempt < this.attemptsMax; attempt++) {
      const start = endOf(current);
      const end = start + BigInt(step);
      const unchanged = current === null
        ? compare.createRevision(key, '==', 0n)
        : compare.modRevision(key, '==', current.modRevision);
      const result = await this.client.txn()
        .if(unchanged)
        .then(op.put(key, end.toString()))
        .else(op.get(key))
        .commit();
      if (result.succeeded) {
        assert(end > start && start >= segmentFirstId, 'segment: a well-formed range');
        return { start, end };
      }
      const now = result.responses[0];
      assert(now?.kind === 'range', 'segment: the else branch reads the key');
      const next = now.range.kvs[0] ?? null;
      // Negative space: a key that moved must have moved up, or someone rewrote it by hand.
      if (next !== null && endOf(next) < start) {
        throw new SegmentStoreError(`segment key ${key} moved backwards (${start} to ${endOf(next)})`);
      }
      current = next;
      const bounds = { firstMs: segmentConflictDelayMsDefault, maxMs: segmentConflictDelayMsMax };
      await pause(backoffDelayMs(attempt, bounds, this.#random));
    }
    throw conflictsExhausted(tag, this.attemptsMax);
  }

  async close(): Promise<void> {}
}
