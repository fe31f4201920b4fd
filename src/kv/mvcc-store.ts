/**
 * The MVCC key-value store: etcd's mvcc package (server/mvcc/kvstore.go) with its lessor's state,
 * over a `Backend`. Reads are methods that change nothing; every write runs in one `WriteTxn`,
 * returns the response and the events it produced (for a watch hub), and commits one backend batch.
 * Requests are checked before any change, so an expected error (a thrown `SynodError`) leaves the
 * store as it was.
 */

import { assert, SynodError } from '../base/index.js';
import type { Backend, BackendWrite } from './backend.js';
import { ByteWriter } from './codec.js';
import type { Lease, LeaseLimits } from './lease-table.js';
import { defaultLeaseLimits } from './lease-table.js';
import { MemoryBackend } from './memory-backend.js';
import { selectRange } from './range-options.js';
import { encodeRevision } from './revision.js';
import { loadState } from './store-load.js';
import { applyTxn } from './txn.js';
import {
  checkDeleteRangeRequest, checkPutRequest, checkRangeRequest, checkTxnRequest, txnOpsMaxDefault,
} from './txn-check.js';
import type {
  DeleteRangeRequest, DeleteRangeResponse, KvEvent, PutRequest, PutResponse, RangeRequest,
  RangeResponse, ResponseHeader, TxnRequest, TxnResponse,
} from './types.js';
import type { MvccState } from './write-txn.js';
import {
  commitWrites, kvsInSpan, metaKeys, readCommitted, resolveReadRevision, spanOf, WriteTxn,
} from './write-txn.js';

/** Options of `MvccStore.open`; unset fields take etcd's defaults. */
export interface MvccStoreOptions {
  /** Where revisions are kept; a fresh `MemoryBackend` if unset. Opened as found. */
  readonly backend?: Backend;
  /** The most compares, success ops or failure ops per txn (etcd's --max-txn-ops, 128). */
  readonly txnOpsMax?: number;
  readonly leaseLimits?: LeaseLimits;
}

/** A write's response and the events it produced, in revision order. */
export interface WriteResult<Response> {
  readonly response: Response;
  readonly events: KvEvent[];
}

/** etcd's `LeaseGrantResponse` (its `error` string is carried by a thrown SynodError instead). */
export interface LeaseGrantResponse {
  readonly header: ResponseHeader;
  readonly id: bigint;
  readonly ttlSeconds: number;
}

/**
 * etcd's `LeaseTimeToLiveResponse` minus the clock: `grantedTtlSeconds` is what was granted, and
 * the remaining `TTL` is the server's to compute from its lease clock. An unknown lease gives
 * `grantedTtlSeconds = -1` and no keys, as etcd answers TTL -1 without an error.
 */
export interface LeaseTimeToLiveResponse {
  readonly header: ResponseHeader;
  readonly id: bigint;
  readonly grantedTtlSeconds: number;
  readonly keys: Uint8Array[];
}

/** The MVCC store. Not reentrant; one caller applies commands in log order. */
export class MvccStore {
  readonly #state: MvccState;
  readonly #txnOpsMax: number;
  readonly #leaseLimits: LeaseLimits;
  #leaseIdNext: bigint;

  private constructor(state: MvccState, options: MvccStoreOptions, leaseIdNext: bigint) {
    this.#state = state;
    this.#txnOpsMax = options.txnOpsMax ?? txnOpsMaxDefault;
    this.#leaseLimits = options.leaseLimits ?? defaultLeaseLimits;
    this.#leaseIdNext = leaseIdNext;
    assert(Number.isSafeInteger(this.#txnOpsMax), 'txnOpsMax must be an integer');
    assert(this.#txnOpsMax >= 1, 'txnOpsMax must be ≥ 1');
    const { ttlSecondsMin, ttlSecondsMax } = this.#leaseLimits;
    assert(ttlSecondsMin >= 1 && ttlSecondsMin <= ttlSecondsMax, 'lease TTL limits out of order');
  }

  /** Opens a store over `options.backend`, rebuilding the key index and leases from it. */
  static open(options: MvccStoreOptions = {}): MvccStore {
    const backend = options.backend ?? new MemoryBackend();
    const loaded = loadState(backend);
    const state: MvccState = {
      backend,
      index: loaded.index,
      leases: loaded.leases,
      currentRevision: loaded.currentRevision,
      compactRevision: loaded.compactRevision,
      appliedIndex: loaded.appliedIndex,
      appliedIndexPending: undefined,
    };
    return new MvccStore(state, options, loaded.leaseIdNext);
  }

  /** The revision of the last change; 1 for an empty store. */
  get currentRevision(): number {
    return this.#state.currentRevision;
  }

  /** The revision of the last compaction; 0 if none. */
  get compactRevision(): number {
    return this.#state.compactRevision;
  }

  /** The Raft index of the last command the backend holds the effects of; 0 if none. */
  get appliedIndex(): number {
    return this.#state.appliedIndex;
  }

  /**
   * Marks the command about to run as Raft entry `index`: the next backend batch records it, so
   * effects and index are durable together. `flushAppliedIndex` records it alone if the command
   * wrote nothing (a read-only txn, a failed request).
   */
  stageAppliedIndex(index: number): void {
    assert(Number.isSafeInteger(index), 'applied index must be an integer');
    assert(index > this.#state.appliedIndex, 'applied index must grow');
    assert(this.#state.appliedIndexPending === undefined, 'an applied index is already staged');
    this.#state.appliedIndexPending = index;
  }

  /** Records a staged applied index that no write has carried yet. */
  flushAppliedIndex(): void {
    commitWrites(this.#state, []);
  }

  /** The backend, for snapshots. */
  get backend(): Backend {
    return this.#state.backend;
  }

  /** etcd's Range. The header carries the current revision even for historical reads. */
  range(request: RangeRequest): RangeResponse {
    checkRangeRequest(request);
    const current = this.#state.currentRevision;
    const atMain = resolveReadRevision(this.#state, {
      requested: request.revision ?? 0,
      viewRevision: current,
    });
    const read = readCommitted.bind(undefined, this.#state);
    const inSpan = kvsInSpan(this.#state, spanOf(request), atMain, read);
    return { header: { revision: current }, ...selectRange(inSpan, request) };
  }

  /** etcd's Put. Always bumps the revision, even when the value is unchanged. */
  put(request: PutRequest): WriteResult<PutResponse> {
    checkPutRequest(request);
    const txn = new WriteTxn(this.#state);
    txn.checkPut(request);
    const response = txn.put(request);
    return { response, events: txn.end().events };
  }

  /** etcd's DeleteRange. Bumps the revision only if a key was deleted. */
  deleteRange(request: DeleteRangeRequest): WriteResult<DeleteRangeResponse> {
    checkDeleteRangeRequest(request);
    const txn = new WriteTxn(this.#state);
    const response = txn.deleteRange(request);
    return { response, events: txn.end().events };
  }

  /** etcd's Txn. Bumps the revision once if any op changed a key. */
  txn(request: TxnRequest): WriteResult<TxnResponse> {
    checkTxnRequest(request, this.#txnOpsMax);
    const txn = new WriteTxn(this.#state);
    const response = applyTxn(this.#state, txn, request);
    const { revision, events } = txn.end();
    return { response: { ...response, header: { revision } }, events };
  }

  /**
   * etcd's Compact: drops every revision superseded at `revision`, keeping each key's value as of
   * it. At or below the last compaction → SYNOD_COMPACTED; above the current revision →
   * SYNOD_FUTURE_REVISION.
   */
  compact(revision: number): { header: ResponseHeader } {
    assert(Number.isSafeInteger(revision), 'compact revision must be an integer');
    if (revision <= this.#state.compactRevision) throw new SynodError('SYNOD_COMPACTED');
    if (revision > this.#state.currentRevision) throw new SynodError('SYNOD_FUTURE_REVISION');
    const writes: BackendWrite[] = [];
    const emptied: Uint8Array[] = [];
    for (const keyIndex of this.#state.index.all()) {
      for (const dropped of keyIndex.compact(revision)) {
        writes.push({ bucket: 'key', key: encodeRevision(dropped) });
      }
      if (keyIndex.isEmpty()) emptied.push(keyIndex.key);
    }
    for (const key of emptied) this.#state.index.remove(key);
    writes.push({ bucket: 'meta', key: metaKeys.compactRevision, value: u64Bytes(revision) });
    commitWrites(this.#state, writes);
    this.#state.compactRevision = revision;
    return { header: { revision: this.#state.currentRevision } };
  }

  /**
   * etcd's LeaseGrant. `id` 0 picks the next free ID from a counter kept in the store, the same on
   * every replica. A TTL below the minimum is raised to it; above the maximum is an error.
   */
  leaseGrant(request: { id: bigint; ttlSeconds: number }): LeaseGrantResponse {
    assert(Number.isSafeInteger(request.ttlSeconds), 'lease TTL must be an integer');
    assert(BigInt.asIntN(64, request.id) === request.id, 'lease ID must be an int64');
    if (request.ttlSeconds > this.#leaseLimits.ttlSecondsMax) {
      throw new SynodError('SYNOD_LEASE_TTL_TOO_LARGE');
    }
    if (request.id !== 0n && this.#state.leases.has(request.id)) {
      throw new SynodError('SYNOD_LEASE_EXISTS');
    }
    const id = request.id !== 0n ? request.id : this.#freeLeaseId();
    const ttlSeconds = Math.max(request.ttlSeconds, this.#leaseLimits.ttlSecondsMin);
    this.#state.leases.grant({ id, ttlSeconds });
    commitWrites(this.#state, [
      { bucket: 'lease', key: leaseKey(id), value: u64Bytes(ttlSeconds) },
      {
        bucket: 'meta',
        key: metaKeys.leaseIdNext,
        value: new ByteWriter().i64(this.#leaseIdNext).finish(),
      },
    ]);
    return { header: { revision: this.#state.currentRevision }, id, ttlSeconds };
  }

  /** etcd's LeaseRevoke: deletes every attached key at one revision, then the lease. */
  leaseRevoke(id: bigint): WriteResult<{ header: ResponseHeader }> {
    if (!this.#state.leases.has(id)) throw new SynodError('SYNOD_LEASE_NOT_FOUND');
    const txn = new WriteTxn(this.#state);
    for (const key of this.#state.leases.keys(id)) txn.deleteRange({ key });
    this.#state.leases.remove(id);
    txn.addBackendWrite({ bucket: 'lease', key: leaseKey(id) });
    const { revision, events } = txn.end();
    return { response: { header: { revision } }, events };
  }

  /** etcd's LeaseTimeToLive, without the remaining TTL (see `LeaseTimeToLiveResponse`). */
  leaseTimeToLive(request: { id: bigint; keys?: boolean }): LeaseTimeToLiveResponse {
    const header = { revision: this.#state.currentRevision };
    const lease = this.#state.leases.get(request.id);
    if (lease === undefined) return { header, id: request.id, grantedTtlSeconds: -1, keys: [] };
    const keys = request.keys === true ? this.#state.leases.keys(request.id) : [];
    return { header, id: request.id, grantedTtlSeconds: lease.ttlSeconds, keys };
  }

  /** etcd's LeaseLeases: every granted lease by ascending ID. */
  leaseLeases(): { header: ResponseHeader; leases: Lease[] } {
    return { header: { revision: this.#state.currentRevision }, leases: this.#state.leases.list() };
  }

  #freeLeaseId(): bigint {
    while (this.#state.leases.has(this.#leaseIdNext)) this.#leaseIdNext++;
    const id = this.#leaseIdNext;
    this.#leaseIdNext++;
    assert(id > 0n && id <= 0x7fff_ffff_ffff_ffffn, 'lease ID counter overflowed int64');
    return id;
  }
}

/** The `lease` bucket key of lease `id`: its int64, big-endian. */
export function leaseKey(id: bigint): Uint8Array {
  return new ByteWriter().i64(id).finish();
}

function u64Bytes(value: number): Uint8Array {
  return new ByteWriter().u64(value).finish();
}
