/**
 * Counter: a shared integer in one key (Curator's DistributedAtomicLong), updated by
 * compare-and-swap. The key holds the value as a decimal string, an absent key reads as 0.
 *
 * `add` reads the key, then writes the new value in a Txn that holds only if the key's mod
 * revision is still the one read (create revision 0 when it was absent). When another writer got
 * there first, the Txn's else branch returns the key as it is now, so the next attempt costs one
 * round trip, not two. Attempts are bounded: after `retriesMax` conflicts in a row `add` rejects
 * with SYNOD_STM_RETRIES_EXHAUSTED, having changed nothing. Values are bigints, without bound
 * other than the key's size.
 */

import { SynodError, assert } from '../../base/index.js';
import type { SynodClient } from '../client.js';
import { invalidArgument } from '../errors.js';
import type { KeyValue } from '../kv-types.js';
import type { CallOptions } from '../transport.js';
import { compare, op } from '../txn.js';

/** Conflicts `add` retries by default before giving up. */
export const counterRetriesMaxDefault = 100;

/** Options of a Counter. */
export interface CounterOptions {
  /** Conflicting attempts retried before SYNOD_STM_RETRIES_EXHAUSTED; default 100. */
  readonly retriesMax?: number;
}

function valueOf(kv: KeyValue | null | undefined): bigint {
  if (kv === null || kv === undefined) return 0n;
  const text = kv.value.toString();
  if (!/^-?\d+$/.test(text)) {
    throw invalidArgument(`counter ${kv.key.toString()} holds a non-integer`);
  }
  return BigInt(text);
}

/** A shared bigint counter at `key`. */
export class Counter {
  readonly client: SynodClient;
  readonly key: string;
  readonly retriesMax: number;

  constructor(client: SynodClient, key: string, options: CounterOptions = {}) {
    const retriesMax = options.retriesMax ?? counterRetriesMaxDefault;
    if (key === '') throw invalidArgument('a counter key must not be empty');
    if (!Number.isSafeInteger(retriesMax) || retriesMax < 0) {
      throw invalidArgument('retriesMax must be a non-negative whole number');
    }
    this.client = client;
    this.key = key;
    this.retriesMax = retriesMax;
  }

  /** The current value (0n when the key does not exist). */
  async get(options?: CallOptions): Promise<bigint> {
    return valueOf(await this.client.get(this.key, options));
  }

  /** Adds `delta` atomically; resolves to the value after this caller's addition. */
  async add(delta: bigint, options: CallOptions = {}): Promise<bigint> {
    if (typeof delta !== 'bigint') throw invalidArgument('delta must be a bigint');
    let current = await this.client.get(this.key, options);
    for (let attempt = 0; attempt <= this.retriesMax; attempt++) {
      const next = valueOf(current) + delta;
      const unchanged = current === null
        ? compare.createRevision(this.key, '==', 0n)
        : compare.modRevision(this.key, '==', current.modRevision);
      const result = await this.client.txn()
        .if(unchanged)
        .then(op.put(this.key, next.toString()))
        .else(op.get(this.key))
        .commit(options);
      if (result.succeeded) return next;
      const now = result.responses[0];
      assert(now?.kind === 'range', 'counter: the else branch reads the key');
      current = now.range.kvs[0] ?? null;
    }
    const detail = `counter ${this.key}: ${this.retriesMax + 1} conflicting attempts`;
    throw new SynodError('SYNOD_STM_RETRIES_EXHAUSTED', detail);
  }

  /** Adds 1; resolves to the new value. */
  increment(options?: CallOptions): Promise<bigint> {
    return this.add(1n, options);
  }
}
