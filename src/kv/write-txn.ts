/**
 * The mutable state of the MVCC store and the one write transaction that changes it, after etcd's
 * storeTxnWrite (server/mvcc/kvstore_txn.go). Every change of one transaction shares the main
 * revision `current + 1` with sub revisions 0, 1, …; the store's revision moves only if something
 * changed. Reads inside the transaction see its earlier writes. Backend writes are buffered and
 * committed as one atomic batch by `end()`.
 *
 * Callers check requests first (see txn-check.ts and `checkPut`), so nothing fails halfway: a
 * failure after the first change is a bug and asserts.
 */

import { assert, SynodError } from '../base/index.js';
import type { Backend, BackendWrite } from './backend.js';
import type { KeySpan } from './bytes.js';
import { ByteWriter, decodeRecord, encodeRecord } from './codec.js';
import type { KeyIndexTree } from './key-index.js';
import type { LeaseTable } from './lease-table.js';
import { selectRange } from './range-options.js';
import type { Revision } from './revision.js';
import { encodeRevision } from './revision.js';
import type {
  DeleteRangeRequest, DeleteRangeResponse, KeyValue, KvEvent, PutRequest, PutResponse, RangeRequest,
  RangeResponse, ResponseHeader,
} from './types.js';

/** The store's state, shared by the store and its write transactions. */
export interface MvccState {
  readonly backend: Backend;
  readonly index: KeyIndexTree;
  readonly leases: LeaseTable;
  /** The revision of the last change; 1 for an empty store. */
  currentRevision: number;
  /** Reads below this revision fail with SYNOD_COMPACTED; -1 before any compaction (etcd). */
  compactRevision: number;
  /** The Raft index of the last command whose effects the backend holds; 0 if none. */
  appliedIndex: number;
  /** The Raft index of the command being applied, written with its next batch; else undefined. */
  appliedIndexPending: number | undefined;
}

/**
 * Commits `writes` as one batch, adding the pending applied index so a command's effects and the
 * record that it was applied become durable together (etcd's consistent index). Commits nothing
 * when there is nothing to write.
 */
export function commitWrites(state: MvccState, writes: BackendWrite[]): void {
  if (state.appliedIndexPending !== undefined) {
    assert(state.appliedIndexPending > state.appliedIndex, 'applied index must grow');
    const value = new ByteWriter().u64(state.appliedIndexPending).finish();
    writes.push({ bucket: 'meta', key: metaKeys.appliedIndex, value });
    state.appliedIndex = state.appliedIndexPending;
    state.appliedIndexPending = undefined;
  }
  if (writes.length > 0) state.backend.commit(writes);
}

/** Meta bucket keys. */
export const metaKeys = Object.freeze({
  currentRevision: new TextEncoder().encode('currentRevision'),
  compactRevision: new TextEncoder().encode('compactRevision'),
  leaseIdNext: new TextEncoder().encode('leaseIdNext'),
  appliedIndex: new TextEncoder().encode('appliedIndex'),
});

/**
 * The revision a read resolves to: `requested ≤ 0` means `viewRevision`; above it is
 * SYNOD_FUTURE_REVISION, below the compaction point SYNOD_COMPACTED.
 */
export function resolveReadRevision(
  state: MvccState, revisions: { requested: number; viewRevision: number },
): number {
  const { requested, viewRevision } = revisions;
  if (requested <= 0) return viewRevision;
  if (requested > viewRevision) throw new SynodError('SYNOD_FUTURE_REVISION');
  if (requested < state.compactRevision) throw new SynodError('SYNOD_COMPACTED');
  return requested;
}

/** Reads the value stored under `revision` from the backend; it must be a put. */
export function readCommitted(state: MvccState, revision: Revision): KeyValue {
  const bytes = state.backend.get('key', encodeRevision(revision));
  assert(bytes !== undefined, 'index points at a revision missing from the backend');
  const record = decodeRecord(bytes, revision.main);
  assert(record.kind === 'put', 'index resolved a read to a tombstone');
  return record.kv;
}

/** The live kvs in `span` as of `atMain`, in key order, read through `read`. */
export function kvsInSpan(
  state: MvccState, span: KeySpan, atMain: number, read: (revision: Revision) => KeyValue,
): KeyValue[] {
  const kvs: KeyValue[] = [];
  for (const keyIndex of state.index.range(span)) {
    const revision = keyIndex.revisionAt(atMain);
    if (revision !== undefined) kvs.push(read(revision));
  }
  return kvs;
}

/** The span of a request: `rangeEnd` defaults to empty (the single key). */
export function spanOf(request: { key: Uint8Array; rangeEnd?: Uint8Array }): KeySpan {
  return { key: request.key, rangeEnd: request.rangeEnd ?? new Uint8Array(0) };
}

/** One write transaction over `MvccState`. Use once: changes, then `end()`. */
export class WriteTxn {
  readonly #state: MvccState;
  /** The main revision every change of this transaction gets. */
  readonly main: number;
  #sub = 0;
  #ended = false;
  readonly #pending = new Map<string, KeyValue>();
  readonly #writes: BackendWrite[] = [];
  readonly #events: KvEvent[] = [];

  constructor(state: MvccState) {
    this.#state = state;
    this.main = state.currentRevision + 1;
  }

  /** True once the transaction has changed a key. */
  get changed(): boolean {
    return this.#sub > 0;
  }

  /** The revision reads see: the new one once something changed, otherwise the store's. */
  get viewRevision(): number {
    return this.changed ? this.main : this.main - 1;
  }

  /**
   * The header of a response made now: the view revision, as etcd's storeTxnWrite reports it (a
   * range or a delete that changed nothing before any write reports the store's revision).
   */
  header(): ResponseHeader {
    return { revision: this.viewRevision };
  }

  /** The value under `revision`, including this transaction's own writes. */
  read(revision: Revision): KeyValue {
    const pending = this.#pending.get(`${revision.main}/${revision.sub}`);
    return pending ?? readCommitted(this.#state, revision);
  }

  /** The live value of `key` as this transaction sees it. */
  current(key: Uint8Array): KeyValue | undefined {
    const revision = this.#state.index.get(key)?.revisionAt(this.main);
    return revision === undefined ? undefined : this.read(revision);
  }

  /** Live kvs in `span` as this transaction sees them. */
  kvsInSpan(span: KeySpan): KeyValue[] {
    return kvsInSpan(this.#state, span, this.main, (revision) => this.read(revision));
  }

  /** A Range inside the transaction (the request's key is already checked). */
  range(request: RangeRequest): RangeResponse {
    const atMain = resolveReadRevision(this.#state, {
      requested: request.revision ?? 0,
      viewRevision: this.viewRevision,
    });
    const read = (revision: Revision): KeyValue => this.read(revision);
    const inSpan = kvsInSpan(this.#state, spanOf(request), atMain, read);
    return { header: this.header(), ...selectRange(inSpan, request) };
  }

  /**
   * Expected failures of a Put against the current view: SYNOD_KEY_NOT_FOUND for `ignore_*` on a
   * missing key, SYNOD_LEASE_NOT_FOUND for an unknown lease. Call before the first change.
   */
  checkPut(request: PutRequest): void {
    const ignores = request.ignoreValue === true || request.ignoreLease === true;
    if (ignores && this.current(request.key) === undefined) {
      throw new SynodError('SYNOD_KEY_NOT_FOUND');
    }
    const lease = request.lease ?? 0n;
    if (lease !== 0n && !this.#state.leases.has(lease)) {
      throw new SynodError('SYNOD_LEASE_NOT_FOUND');
    }
  }

  /** A checked Put: writes the key at the next sub revision. */
  put(request: PutRequest): PutResponse {
    this.#assertOpen();
    const previous = this.current(request.key);
    const value = request.ignoreValue === true ? previous?.value : request.value;
    const lease = request.ignoreLease === true ? previous?.lease : request.lease;
    assert(value !== undefined || request.ignoreValue !== true, 'ignore_value on a missing key');
    const revision = this.#nextRevision();
    const kv: KeyValue = {
      key: request.key.slice(),
      createRevision: previous?.createRevision ?? revision.main,
      modRevision: revision.main,
      version: (previous?.version ?? 0) + 1,
      value: (value ?? new Uint8Array(0)).slice(),
      lease: lease ?? 0n,
    };
    this.#state.index.getOrCreate(kv.key).put(revision);
    this.#record(revision, kv);
    this.#moveLease(kv.key, previous?.lease ?? 0n, kv.lease);
    this.#events.push(previous === undefined
      ? { type: 'PUT', kv }
      : { type: 'PUT', kv, prevKv: previous });
    return request.prevKv === true && previous !== undefined
      ? { header: this.header(), prevKv: previous }
      : { header: this.header() };
  }

  /** A checked DeleteRange: tombstones every live key in the span, in key order. */
  deleteRange(request: DeleteRangeRequest): DeleteRangeResponse {
    this.#assertOpen();
    const victims = this.kvsInSpan(spanOf(request));
    for (const previous of victims) {
      const revision = this.#nextRevision();
      this.#state.index.getOrCreate(previous.key).tombstone(revision);
      this.#writes.push({
        bucket: 'key',
        key: encodeRevision(revision),
        value: encodeRecord({ kind: 'tombstone', key: previous.key }),
      });
      this.#moveLease(previous.key, previous.lease, 0n);
      const kv: KeyValue = {
        key: previous.key, createRevision: 0, modRevision: revision.main, version: 0,
        value: new Uint8Array(0), lease: 0n,
      };
      this.#events.push({ type: 'DELETE', kv, prevKv: previous });
    }
    const prevKvs = request.prevKv === true ? victims : [];
    return { header: this.header(), deleted: victims.length, prevKvs };
  }

  /** Adds a non-key write (a lease record) to this transaction's batch. */
  addBackendWrite(write: BackendWrite): void {
    this.#assertOpen();
    this.#writes.push(write);
  }

  /** Commits the batch, moves the store revision if anything changed, and returns the events. */
  end(): { revision: number; events: KvEvent[] } {
    this.#assertOpen();
    this.#ended = true;
    if (this.changed) {
      this.#state.currentRevision = this.main;
      this.#writes.push({
        bucket: 'meta',
        key: metaKeys.currentRevision,
        value: new ByteWriter().u64(this.main).finish(),
      });
    }
    commitWrites(this.#state, this.#writes);
    return { revision: this.#state.currentRevision, events: this.#events };
  }

  #record(revision: Revision, kv: KeyValue): void {
    this.#pending.set(`${revision.main}/${revision.sub}`, kv);
    const value = encodeRecord({ kind: 'put', kv });
    this.#writes.push({ bucket: 'key', key: encodeRevision(revision), value });
  }

  /** Keeps lease attachments in step with a key's live value (etcd's lessor Attach/Detach). */
  #moveLease(key: Uint8Array, from: bigint, to: bigint): void {
    if (from === to) return;
    if (from !== 0n) this.#state.leases.detach(from, key);
    if (to !== 0n) this.#state.leases.attach(to, key);
  }

  #nextRevision(): Revision {
    const revision = { main: this.main, sub: this.#sub };
    this.#sub++;
    return revision;
  }

  #assertOpen(): void {
    assert(!this.#ended, 'write transaction used after end()');
  }
}
