/**
 * Software transactional memory over the KV store: etcd's `concurrency.NewSTM`.
 *
 * `runStm(client, apply)` runs `apply` against a transaction object: its reads go to the store
 * (each key read once per attempt and then repeated from memory), its writes are buffered, and
 * when `apply` returns they are committed in one Txn whose compares fail if what was read has
 * changed. On a conflict `apply` runs again from the start, at most `retriesMax` more times, and
 * then `runStm` rejects with SYNOD_STM_RETRIES_EXHAUSTED. `apply` must therefore have no effects
 * outside the STM; its result is returned from the attempt that committed.
 *
 * Isolation levels, as etcd's:
 * - `serializable-snapshot` (etcd's default): every read is made at the revision of the first
 *   read, so `apply` sees one snapshot; the commit fails if any key read has changed since, or
 *   any key written was changed after the snapshot.
 * - `serializable`: reads at the first read's revision; the commit fails if a key read changed.
 * - `repeatable-read`: each key is read at the latest revision when first read; the commit fails
 *   if a key read changed.
 * - `read-committed`: reads as `repeatable-read`, commits without compares (no conflicts).
 *
 * In the serializable levels a conflicting commit reads every key of the read set in its else
 * branch, and the next attempt starts from those values at that revision (etcd's prefetch), which
 * saves a round trip per key. A pinned read whose revision was compacted meanwhile counts as a
 * conflict. Reads are linearizable (etcd's serializable levels read from the local member at the
 * pinned revision, which a lagging member could refuse as a future revision).
 *
 * Bounds: a transaction reads and writes at most `stmKeysMax` keys each (etcd's default
 * --max-txn-ops, which also caps the compares), refused with SYNOD_TOO_MANY_OPS.
 */

import { SynodError, assert, isSynodError } from '../../base/index.js';
import type { SynodClient } from '../client.js';
import { invalidArgument } from '../errors.js';
import { toBuffer, type Bytes, type KeyValue } from '../kv-types.js';
import { compare, op, type Compare, type Op } from '../txn.js';

/** How conflicts are detected; see the module comment. */
export type StmIsolation =
  | 'serializable-snapshot' | 'serializable' | 'repeatable-read' | 'read-committed';

/** Keys one transaction may read, and separately write (etcd's default max-txn-ops). */
export const stmKeysMax = 128;
/** Conflicting attempts retried by default. */
export const stmRetriesMaxDefault = 32;

/** Options of `runStm`. */
export interface StmOptions {
  /** Default 'serializable-snapshot', etcd's default. */
  readonly isolation?: StmIsolation;
  /** Conflicting attempts retried before SYNOD_STM_RETRIES_EXHAUSTED; default 32. */
  readonly retriesMax?: number;
  /** Aborts the reads and stops before the next attempt; a commit in flight is not interrupted. */
  readonly signal?: AbortSignal;
}

/** What `apply` reads and writes through. */
export interface Stm {
  /** The key's value as UTF-8 text (this transaction's own write if any), or null when absent. */
  get(key: string): Promise<string | null>;
  /** The key's value as bytes, or null when absent. */
  getBytes(key: string): Promise<Buffer | null>;
  /** The key's mod revision as read by this transaction (0n when absent); ignores own writes. */
  rev(key: string): Promise<bigint>;
  /** Buffers a put, committed with the transaction. */
  put(key: string, value: Bytes, options?: { readonly lease?: bigint }): void;
  /** Buffers a delete, committed with the transaction. */
  del(key: string): void;
}

type Write =
  | { readonly kind: 'put'; readonly value: Buffer; readonly lease: bigint | undefined }
  | { readonly kind: 'delete' };

/** The read set a failed serializable commit returned, as of `revision`. */
interface Prefetch {
  readonly revision: bigint;
  readonly kvs: ReadonlyMap<string, KeyValue | null>;
}

/** A commit's outcome: on a conflict, what the next attempt should start from. */
type CommitOutcome =
  | { readonly committed: true }
  | { readonly committed: false; readonly prefetch: Prefetch | null };

function tooManyKeys(what: string): SynodError {
  const detail = `software transaction: more than ${stmKeysMax} keys ${what}`;
  return new SynodError('SYNOD_TOO_MANY_OPS', detail);
}

/** One attempt of `apply`: its read set, write set and pinned revision. */
class StmAttempt implements Stm {
  readonly #client: SynodClient;
  readonly #isolation: StmIsolation;
  readonly #signal: AbortSignal | undefined;
  readonly #reads = new Map<string, Promise<KeyValue | null>>();
  readonly #writes = new Map<string, Write>();
  readonly #prefetch: ReadonlyMap<string, KeyValue | null>;
  /** Serializable levels: the revision every read is made at, fixed by the first read. */
  #pinned: Promise<bigint> | null = null;
  #finished = false;
  /** A read at the pinned revision found it compacted: the attempt is a conflict. */
  pinnedRevisionCompacted = false;

  constructor(client: SynodClient, options: {
    isolation: StmIsolation; signal: AbortSignal | undefined; prefetch: Prefetch | null;
  }) {
    this.#client = client;
    this.#isolation = options.isolation;
    this.#signal = options.signal;
    this.#prefetch = options.prefetch?.kvs ?? new Map();
    // The prefetched values are the store at one revision: the next attempt's snapshot.
    if (options.prefetch !== null && this.#serializable) {
      this.#pinned = Promise.resolve(options.prefetch.revision);
    }
  }

  get #serializable(): boolean {
    return this.#isolation === 'serializable' || this.#isolation === 'serializable-snapshot';
  }

  async get(key: string): Promise<string | null> {
    return (await this.getBytes(key))?.toString() ?? null;
  }

  async getBytes(key: string): Promise<Buffer | null> {
    const write = this.#writes.get(key);
    if (write !== undefined) return write.kind === 'put' ? write.value : null;
    return (await this.#read(key))?.value ?? null;
  }

  async rev(key: string): Promise<bigint> {
    return (await this.#read(key))?.modRevision ?? 0n;
  }

  put(key: string, value: Bytes, options: { readonly lease?: bigint } = {}): void {
    this.#write(key, { kind: 'put', value: Buffer.from(toBuffer(value)), lease: options.lease });
  }

  del(key: string): void {
    this.#write(key, { kind: 'delete' });
  }

  /** Commits the buffered writes; on a conflict, what the next attempt should start from. */
  async commit(): Promise<CommitOutcome> {
    this.#finished = true;
    const keys = [...this.#reads.keys()];
    const kvs = await Promise.all(this.#reads.values());
    const compares: Compare[] = this.#isolation === 'read-committed'
      ? []
      : keys.map((key, index) => compare.modRevision(key, '==', kvs[index]?.modRevision ?? 0n));
    if (this.#isolation === 'serializable-snapshot' && this.#pinned !== null) {
      const revision = await this.#pinned;
      for (const key of this.#writes.keys()) {
        compares.push(compare.modRevision(key, '<', revision + 1n));
      }
      if (compares.length > stmKeysMax) throw tooManyKeys('read and written (snapshot compares)');
    }
    const writes: Op[] = [...this.#writes].map(([key, write]) => (write.kind === 'delete'
      ? op.delete(key)
      : op.put(key, write.value, write.lease === undefined ? {} : { lease: write.lease })));
    const rereads = this.#serializable ? keys.map((key) => op.get(key)) : [];
    const result = await this.#client.txn()
      .if(...compares)
      .then(...writes)
      .else(...rereads)
      .commit();
    if (result.succeeded) return { committed: true };
    if (!this.#serializable) return { committed: false, prefetch: null };
    const prefetched = new Map<string, KeyValue | null>();
    keys.forEach((key, index) => {
      const response = result.responses[index];
      assert(response?.kind === 'range', 'stm: the else branch reads every key read');
      prefetched.set(key, response.range.kvs[0] ?? null);
    });
    return { committed: false, prefetch: { revision: result.header.revision, kvs: prefetched } };
  }

  #write(key: string, write: Write): void {
    if (this.#finished) throw invalidArgument('software transaction: written after apply returned');
    if (key === '') throw invalidArgument('software transaction: a key must not be empty');
    if (!this.#writes.has(key) && this.#writes.size >= stmKeysMax) throw tooManyKeys('written');
    this.#writes.set(key, write);
  }

  #read(key: string): Promise<KeyValue | null> {
    const known = this.#reads.get(key);
    if (known !== undefined) return known;
    if (this.#finished) {
      return Promise.reject(invalidArgument('software transaction: read after apply returned'));
    }
    if (this.#reads.size >= stmKeysMax) return Promise.reject(tooManyKeys('read'));
    const read = this.#fetch(key);
    // A read `apply` never awaited must not surface as an unhandled rejection; awaiting it
    // still throws.
    read.catch(() => undefined);
    this.#reads.set(key, read);
    return read;
  }

  async #fetch(key: string): Promise<KeyValue | null> {
    if (this.#prefetch.has(key)) return this.#prefetch.get(key) ?? null;
    const signal = this.#signal === undefined ? {} : { signal: this.#signal };
    if (!this.#serializable) return (await this.#client.range(key, signal)).kvs[0] ?? null;
    if (this.#pinned === null) {
      const first = this.#client.range(key, signal);
      this.#pinned = first.then((result) => result.header.revision);
      this.#pinned.catch(() => undefined);
      return (await first).kvs[0] ?? null;
    }
    const revision = await this.#pinned;
    try {
      return (await this.#client.range(key, { ...signal, revision })).kvs[0] ?? null;
    } catch (error) {
      if (isSynodError(error, 'SYNOD_COMPACTED')) this.pinnedRevisionCompacted = true;
      throw error;
    }
  }
}

/**
 * Runs `apply` as a software transaction and returns its result (see the module comment).
 *
 * ```ts
 * const moved = await runStm(client, async (stm) => {
 *   const from = BigInt((await stm.get('acct/a')) ?? '0');
 *   if (from < 10n) return false;
 *   stm.put('acct/a', String(from - 10n));
 *   stm.put('acct/b', String(BigInt((await stm.get('acct/b')) ?? '0') + 10n));
 *   return true;
 * }, { isolation: 'serializable' });
 * ```
 */
export async function runStm<T>(
  client: SynodClient, apply: (stm: Stm) => T | Promise<T>, options: StmOptions = {},
): Promise<T> {
  const isolation = options.isolation ?? 'serializable-snapshot';
  const retriesMax = options.retriesMax ?? stmRetriesMaxDefault;
  const isolations: readonly string[] =
    ['serializable-snapshot', 'serializable', 'repeatable-read', 'read-committed'];
  if (!isolations.includes(isolation)) {
    throw invalidArgument(`unknown isolation ${String(isolation)}`);
  }
  if (!Number.isSafeInteger(retriesMax) || retriesMax < 0) {
    throw invalidArgument('retriesMax must be a non-negative whole number');
  }
  let prefetch: Prefetch | null = null;
  for (let attempt = 0; attempt <= retriesMax; attempt++) {
    options.signal?.throwIfAborted();
    const stm: StmAttempt = new StmAttempt(client, { isolation, signal: options.signal, prefetch });
    let result: T;
    try {
      result = await apply(stm);
    } catch (error) {
      // Whatever `apply` made of the compacted read, the attempt saw no consistent snapshot.
      if (!stm.pinnedRevisionCompacted) throw error;
      prefetch = null;
      continue;
    }
    const outcome: CommitOutcome = await stm.commit();
    if (outcome.committed) return result;
    prefetch = outcome.prefetch;
  }
  const detail = `software transaction: ${retriesMax + 1} attempts conflicted`;
  throw new SynodError('SYNOD_STM_RETRIES_EXHAUSTED', detail);
}
