/**
 * The MVCC key-value store: etcd's mvcc package (server/mvcc/kvstore.go) with its lessor's state,
 * over a `Backend`. Reads are methods that change nothing; every write runs in one `WriteTxn`,
 * returns the response and the events it produced (for a watch hub), and commits one backend batch.
 * Requests are checked before any change, so an expected error (a thrown `SynodError`) leaves the
 * store as it was.
 */

import { assert, SynodError } from '../base/index.js';
import type { Backend, BackendWrite } from './backend.js';
import { prefixEnd } from './bytes.js';
import { ByteWriter } from './codec.js';
import type { Lease, LeaseLimits } from './lease-table.js';
import { defaultLeaseLimits } from './lease-table.js';
import { MemoryBackend } from './memory-backend.js';
import { MemberTable, type MemberChange, type MemberRecord } from './members.js';
import { AuthStore, type AuthChange } from './auth-store.js';
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

/** etcd's `AlarmType` values that can be raised (NONE is the "every type" filter of GET). */
export type AlarmType = 'NOSPACE' | 'CORRUPT';

/** etcd's `AlarmMember`: alarm `alarm` raised by (or on behalf of) member `memberId`. */
export interface AlarmMember {
  /** A uint64 member ID; any value is accepted, as etcd's alarm store does. */
  readonly memberId: bigint;
  readonly alarm: AlarmType;
}

/** The auth store's revision after an auth change. */
export interface AuthChangeResponse {
  readonly header: ResponseHeader;
  readonly authRevision: number;
}

/** The members after a membership change. */
export interface MemberChangeResponse {
  readonly header: ResponseHeader;
  readonly members: MemberRecord[];
}

/** etcd's `AlarmResponse` minus the wire: the alarms the request touched or listed. */
export interface AlarmResponse {
  readonly header: ResponseHeader;
  readonly alarms: AlarmMember[];
}

/**
 * Alarms live in the `meta` bucket under `alarm/` + member ID (u64) + type code (etcd's enum
 * number), rather than in a bucket of their own, so snapshots and backends made before alarms
 * existed read as "no alarms" without a format change.
 */
const alarmKeyPrefix = new TextEncoder().encode('alarm/');
const alarmTypeCodes: Readonly<Record<AlarmType, number>> = Object.freeze({
  NOSPACE: 1,
  CORRUPT: 2,
});

/** The MVCC store. Not reentrant; one caller applies commands in log order. */
export class MvccStore {
  readonly #state: MvccState;
  readonly #txnOpsMax: number;
  readonly #leaseLimits: LeaseLimits;
  /** Raised alarms by `alarmMapKey`; mirrors the `alarm/` entries of the meta bucket. */
  readonly #alarms: Map<string, AlarmMember>;
  /** The cluster's members; mirrors the `member/` entries of the meta bucket. */
  readonly #members: MemberTable;
  /** Users, roles and permissions; mirrors the `auth/` entries of the meta bucket. */
  readonly #auth: AuthStore;
  #leaseIdNext: bigint;

  private constructor(state: MvccState, options: MvccStoreOptions, leaseIdNext: bigint) {
    this.#state = state;
    this.#alarms = loadAlarms(state.backend);
    this.#members = MemberTable.load(state.backend);
    this.#auth = AuthStore.load(state.backend);
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
    return Math.max(0, this.#state.compactRevision);
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

  /**
   * Runs `body`, which applies commands, as one backend batch (see `Backend.batch`): their writes
   * are committed together when it returns. If `body` throws, the backend may have dropped what
   * the store's memory holds, so this store must be discarded (the server stops and reopens).
   */
  batch<T>(body: () => T): T {
    assert(this.#state.appliedIndexPending === undefined, 'a batch starts between commands');
    const result = this.#state.backend.batch(body);
    assert(this.#state.appliedIndexPending === undefined, 'a batch ends between commands');
    return result;
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

  /**
   * etcd's Alarm GET: the raised alarms of type `alarm` (every type if unset), ordered by member
   * ID, then type, so every replica answers alike (etcd's order follows Go map iteration).
   */
  alarms(alarm?: AlarmType): AlarmMember[] {
    const listed = [...this.#alarms.values()]
      .filter((raised) => alarm === undefined || raised.alarm === alarm);
    return listed.sort((a, b) => {
      if (a.memberId !== b.memberId) return a.memberId < b.memberId ? -1 : 1;
      return alarmTypeCodes[a.alarm] - alarmTypeCodes[b.alarm];
    });
  }

  /** Whether any member has raised `alarm`. */
  hasAlarm(alarm: AlarmType): boolean {
    for (const raised of this.#alarms.values()) if (raised.alarm === alarm) return true;
    return false;
  }

  /**
   * etcd's Alarm ACTIVATE. Like etcd 3.4 it answers the alarm even when it was already raised;
   * raising it again writes nothing. The revision does not change: alarms are not keys.
   */
  alarmActivate(member: AlarmMember): AlarmResponse {
    checkAlarmMember(member);
    const mapKey = alarmMapKey(member);
    if (!this.#alarms.has(mapKey)) {
      const value = Uint8Array.of(alarmTypeCodes[member.alarm]);
      commitWrites(this.#state, [{ bucket: 'meta', key: alarmKey(member), value }]);
      this.#alarms.set(mapKey, { memberId: member.memberId, alarm: member.alarm });
    }
    return { header: { revision: this.#state.currentRevision }, alarms: [member] };
  }

  /** etcd's Alarm DEACTIVATE: answers the alarm if it was raised, nothing otherwise. */
  alarmDeactivate(member: AlarmMember): AlarmResponse {
    checkAlarmMember(member);
    const header = { revision: this.#state.currentRevision };
    const mapKey = alarmMapKey(member);
    if (!this.#alarms.has(mapKey)) return { header, alarms: [] };
    commitWrites(this.#state, [{ bucket: 'meta', key: alarmKey(member) }]);
    this.#alarms.delete(mapKey);
    return { header, alarms: [member] };
  }

  /** The auth store, for reads (Authenticate, permission checks, UserGet…) between applies. */
  get auth(): AuthStore {
    return this.#auth;
  }

  /** Applies an auth change and answers the auth store's new revision. */
  authChange(change: AuthChange): AuthChangeResponse {
    commitWrites(this.#state, this.#auth.apply(change));
    return { header: { revision: this.#state.currentRevision }, authRevision: this.#auth.revision };
  }

  /** Changes applied to the member table since this store was opened. */
  get membersVersion(): number {
    return this.#members.version;
  }

  /** The cluster's members, by id. */
  members(): MemberRecord[] {
    return this.#members.list();
  }

  /** The largest Raft id any member ever had, removed ones included (0 if none). */
  raftIdHighest(): number {
    return this.#members.raftIdHighest();
  }

  /** Whether etcd member id `memberId` belonged to a member that was removed. */
  isRemovedMemberId(memberId: bigint): boolean {
    return this.#members.isRemovedMemberId(memberId);
  }

  /** Whether `id` belonged to a member that was removed. */
  isRemovedMember(id: number): boolean {
    return this.#members.isRemoved(id);
  }

  /**
   * Applies a membership change (members.ts) and answers the members after it. The revision does
   * not change: members are not keys.
   */
  memberChange(change: MemberChange): MemberChangeResponse {
    const writes = this.#members.apply(change);
    commitWrites(this.#state, writes);
    return { header: { revision: this.#state.currentRevision }, members: this.#members.list() };
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

function checkAlarmMember(member: AlarmMember): void {
  assert(BigInt.asUintN(64, member.memberId) === member.memberId, 'alarm member ID is a uint64');
  assert(alarmTypeCodes[member.alarm] !== undefined, 'alarm type is NOSPACE or CORRUPT');
}

function alarmMapKey(member: AlarmMember): string {
  return `${member.memberId}/${member.alarm}`;
}

function alarmKey(member: AlarmMember): Uint8Array {
  const key = new Uint8Array(alarmKeyPrefix.length + 9);
  key.set(alarmKeyPrefix);
  const view = new DataView(key.buffer);
  view.setBigUint64(alarmKeyPrefix.length, member.memberId);
  view.setUint8(alarmKeyPrefix.length + 8, alarmTypeCodes[member.alarm]);
  return key;
}

/** The alarms recorded in `backend`; an entry that is not one `alarmKey` wrote is corrupt. */
function loadAlarms(backend: Backend): Map<string, AlarmMember> {
  const alarms = new Map<string, AlarmMember>();
  const end = prefixEnd(alarmKeyPrefix);
  for (const entry of backend.scan('meta', { start: alarmKeyPrefix, end })) {
    const key = entry.key;
    const code = key.length === alarmKeyPrefix.length + 9 ? key[key.length - 1] : undefined;
    const alarm = (Object.keys(alarmTypeCodes) as AlarmType[])
      .find((type) => alarmTypeCodes[type] === code);
    if (alarm === undefined) {
      throw new SynodError('SYNOD_STORAGE_CORRUPT', 'kv: malformed alarm entry in meta bucket');
    }
    const view = new DataView(key.buffer, key.byteOffset, key.byteLength);
    const member = { memberId: view.getBigUint64(alarmKeyPrefix.length), alarm };
    alarms.set(alarmMapKey(member), member);
  }
  return alarms;
}
