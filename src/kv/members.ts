/**
 * The cluster's members as replicated state (etcd's membership store): each member's id, name,
 * peer and client URLs and whether it is a learner, plus the ids of removed members, which may
 * never come back. Records live in the `meta` bucket under `member/` and `member-removed/` + the
 * member's Raft node id (u64, big-endian), so they travel in every snapshot and a member that
 * joins late learns them from the log or a snapshot like everything else. Each member has two ids:
 * etcd's 64-bit member id, which clients see, and the small Raft node id the consensus core
 * uses; Raft ids are never reused, so a removed member cannot come back under its old identity.
 *
 * Changes come from the log only: the Raft conf-change entries that add, remove and promote
 * members carry a `member` command in their context, and members publish their own name and
 * client URLs with an `attributes` command once they serve (etcd's publish). Applying a change
 * that no longer fits the table (a second add of one id, a change to a removed member) is an
 * expected outcome with a stable code, identical on every replica.
 */

import { assert, SynodError } from '../base/index.js';
import type { Backend, BackendWrite } from './backend.js';
import { prefixEnd } from './bytes.js';

/** Largest Raft node id a member may have (a safe integer). */
export const raftIdMax = 2 ** 52 - 1;
/** Most members a cluster may have (voters and learners). */
export const membersMax = 15;
/** Most peer or client URLs one member may list. */
export const memberUrlsMax = 8;

/** One member as the cluster knows it. */
export interface MemberRecord {
  /** The consensus core's node id: a positive integer, never reused. */
  readonly raftId: number;
  /** etcd's member id: a non-zero uint64. */
  readonly memberId: bigint;
  /** etcd's --name; empty until the member publishes it. */
  readonly name: string;
  readonly peerUrls: readonly string[];
  /** Empty until the member publishes them. */
  readonly clientUrls: readonly string[];
  readonly isLearner: boolean;
  /**
   * A learner the leader promotes to voter once it has caught up (`member add` without
   * `--learner`: the member joins as a learner first; src/server/membership.ts).
   */
  readonly promoteWhenReady?: boolean;
}

/** A change to the members, as applied from the log. */
export type MemberChange =
  | { readonly action: 'add'; readonly member: MemberRecord }
  | { readonly action: 'remove'; readonly raftId: number }
  | { readonly action: 'promote'; readonly raftId: number }
  | { readonly action: 'update'; readonly raftId: number; readonly peerUrls: readonly string[] }
  | {
    readonly action: 'attributes'; readonly raftId: number;
    readonly name: string; readonly clientUrls: readonly string[];
  };

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const memberPrefix = encoder.encode('member/');
const removedPrefix = encoder.encode('member-removed/');
/** The `meta` bucket prefixes the table owns (a restore replaces everything under them). */
export const memberTableKeyPrefixes: readonly Uint8Array[] = Object.freeze([memberPrefix, removedPrefix]);

/** Whether `id` can be a member's Raft node id. */
export function isRaftId(id: unknown): id is number {
  return typeof id === 'number' && Number.isSafeInteger(id) && id > 0 && id <= raftIdMax;
}

/** The members, mirrored in memory from the meta bucket. */
export class MemberTable {
  readonly #members = new Map<number, MemberRecord>();
  #version = 0;
  /** Removed members: Raft id → etcd member id (0n if recorded before ids were kept). */
  readonly #removed = new Map<number, bigint>();

  /** Loads the table from `backend`; a malformed record is SYNOD_STORAGE_CORRUPT. */
  static load(backend: Backend): MemberTable {
    const table = new MemberTable();
    for (const entry of backend.scan('meta', { start: memberPrefix, end: prefixEnd(memberPrefix) })) {
      const member = decodeRecord(entry.value);
      if (idOfKey(entry.key, memberPrefix) !== member.raftId) throw corrupt('member key and record disagree');
      table.#members.set(member.raftId, member);
    }
    for (const entry of backend.scan('meta', { start: removedPrefix, end: prefixEnd(removedPrefix) })) {
      const value = entry.value;
      const memberId = value.length === 8 ? new DataView(value.buffer, value.byteOffset, 8).getBigUint64(0) : 0n;
      table.#removed.set(idOfKey(entry.key, removedPrefix), memberId);
    }
    return table;
  }

  /** Counts the changes applied to this table since it was loaded (followers skip work on it). */
  get version(): number {
    return this.#version;
  }

  /** Every member, by Raft id. */
  list(): MemberRecord[] {
    return [...this.#members.values()].sort((a, b) => a.raftId - b.raftId);
  }

  get(raftId: number): MemberRecord | undefined {
    return this.#members.get(raftId);
  }

  /** Whether `raftId` was a member's and it was removed (it may never be reused). */
  isRemoved(raftId: number): boolean {
    return this.#removed.has(raftId);
  }

  /** Whether etcd member id `memberId` belonged to a removed member. */
  isRemovedMemberId(memberId: bigint): boolean {
    for (const removed of this.#removed.values()) if (removed === memberId) return true;
    return false;
  }

  /** The largest Raft id any member ever had (removed ones included), or 0. */
  raftIdHighest(): number {
    return Math.max(0, ...this.#members.keys(), ...this.#removed.keys());
  }

  /**
   * Applies `change` to the table and returns the backend writes that record it. Throws the
   * expected errors (SYNOD_MEMBER_*) without changing anything.
   */
  apply(change: MemberChange): BackendWrite[] {
    const writes = this.#writesOf(change);
    this.#version += 1;
    return writes;
  }

  #writesOf(change: MemberChange): BackendWrite[] {
    switch (change.action) {
      case 'add': {
        const member = change.member;
        checkRecord(member);
        if (this.#removed.has(member.raftId)) throw new SynodError('SYNOD_MEMBER_REMOVED');
        const existing = [...this.#members.values()];
        if (this.#members.has(member.raftId) || existing.some((m) => m.memberId === member.memberId)) {
          throw new SynodError('SYNOD_MEMBER_EXISTS');
        }
        if (this.isRemovedMemberId(member.memberId)) throw new SynodError('SYNOD_MEMBER_REMOVED');
        if (this.#members.size >= membersMax) {
          throw new SynodError('SYNOD_INVALID_MEMBERSHIP', `a cluster has at most ${membersMax} members`);
        }
        this.#checkPeerUrlsFree(member.peerUrls, member.raftId);
        return this.#put(member);
      }
      case 'remove': {
        const member = this.#existing(change.raftId);
        this.#members.delete(change.raftId);
        this.#removed.set(change.raftId, member.memberId);
        const value = new Uint8Array(8);
        new DataView(value.buffer).setBigUint64(0, member.memberId);
        return [
          { bucket: 'meta', key: keyOf(memberPrefix, change.raftId) },
          { bucket: 'meta', key: keyOf(removedPrefix, change.raftId), value },
        ];
      }
      case 'promote': {
        const member = this.#existing(change.raftId);
        if (!member.isLearner) throw new SynodError('SYNOD_MEMBER_NOT_LEARNER');
        return this.#put({ ...member, isLearner: false, promoteWhenReady: false });
      }
      case 'update': {
        const member = this.#existing(change.raftId);
        const updated = { ...member, peerUrls: [...change.peerUrls] };
        checkRecord(updated);
        this.#checkPeerUrlsFree(updated.peerUrls, member.raftId);
        return this.#put(updated);
      }
      case 'attributes': {
        const member = this.#existing(change.raftId);
        const updated = { ...member, name: change.name, clientUrls: [...change.clientUrls] };
        checkRecord(updated);
        return this.#put(updated);
      }
    }
  }

  #existing(id: number): MemberRecord {
    const member = this.#members.get(id);
    if (member === undefined) {
      throw new SynodError(this.#removed.has(id) ? 'SYNOD_MEMBER_REMOVED' : 'SYNOD_MEMBER_NOT_FOUND');
    }
    return member;
  }

  #checkPeerUrlsFree(peerUrls: readonly string[], self: number): void {
    for (const other of this.#members.values()) {
      if (other.raftId === self) continue;
      if (other.peerUrls.some((url) => peerUrls.includes(url))) throw new SynodError('SYNOD_PEER_URL_EXISTS');
    }
  }

  #put(member: MemberRecord): BackendWrite[] {
    this.#members.set(member.raftId, member);
    return [{ bucket: 'meta', key: keyOf(memberPrefix, member.raftId), value: encodeRecord(member) }];
  }
}

/** Throws SYNOD_INVALID_MEMBERSHIP unless `member` is well formed. */
export function checkRecord(member: MemberRecord): void {
  const invalid = (why: string): never => {
    throw new SynodError('SYNOD_INVALID_MEMBERSHIP', why);
  };
  if (!isRaftId(member.raftId)) invalid('raft id out of range');
  if (typeof member.memberId !== 'bigint' || member.memberId <= 0n || BigInt.asUintN(64, member.memberId) !== member.memberId) {
    invalid('member id must be a non-zero uint64');
  }
  if (typeof member.name !== 'string' || member.name.length > 256) invalid('member name too long');
  for (const urls of [member.peerUrls, member.clientUrls]) {
    if (!Array.isArray(urls) || urls.length > memberUrlsMax) invalid(`at most ${memberUrlsMax} URLs`);
    for (const url of urls) if (!isHttpUrl(url)) throw new SynodError('SYNOD_INVALID_MEMBER_URL');
  }
  if (member.peerUrls.length === 0) throw new SynodError('SYNOD_INVALID_MEMBER_URL');
  if (typeof member.isLearner !== 'boolean') invalid('isLearner must be a boolean');
  if (member.promoteWhenReady !== undefined && typeof member.promoteWhenReady !== 'boolean') {
    invalid('promoteWhenReady must be a boolean');
  }
}

/** Whether `text` is an http(s) URL of a host and port, as member URLs must be. */
export function isHttpUrl(text: unknown): text is string {
  if (typeof text !== 'string' || text.length > 512) return false;
  try {
    const url = new URL(text);
    return (url.protocol === 'http:' || url.protocol === 'https:') && url.hostname !== '';
  } catch {
    return false;
  }
}

/** The bytes of a member record (JSON: membership changes are rare and small). */
export function encodeRecord(member: MemberRecord): Uint8Array {
  return encoder.encode(JSON.stringify({
    raftId: member.raftId, memberId: member.memberId.toString(), name: member.name, peerUrls: member.peerUrls, clientUrls: member.clientUrls,
    isLearner: member.isLearner,
  }));
}

/** Parses `encodeRecord`'s bytes; malformed input is SYNOD_STORAGE_CORRUPT. */
export function decodeRecord(bytes: Uint8Array): MemberRecord {
  let value: unknown;
  try {
    value = JSON.parse(decoder.decode(bytes));
  } catch {
    throw corrupt('member record is not JSON');
  }
  const stored = value as Omit<MemberRecord, 'memberId'> & { memberId?: unknown };
  let record: MemberRecord;
  try {
    record = { ...stored, memberId: BigInt(String(stored.memberId)) };
    checkRecord(record);
  } catch {
    throw corrupt('malformed member record');
  }
  return {
    raftId: record.raftId, memberId: record.memberId, name: record.name, peerUrls: [...record.peerUrls],
    clientUrls: [...record.clientUrls], isLearner: record.isLearner,
    ...(record.promoteWhenReady === true ? { promoteWhenReady: true } : {}),
  };
}

/** The bytes of a change in a log entry: JSON, with the add's member id as decimal text. */
export function encodeMemberChange(change: MemberChange): Uint8Array {
  const body = change.action === 'add'
    ? { ...change, member: { ...change.member, memberId: change.member.memberId.toString() } }
    : change;
  return encoder.encode(JSON.stringify(body));
}

/** Parses `encodeMemberChange`'s bytes; its fields are checked again when applied. */
export function decodeMemberChange(bytes: Uint8Array): MemberChange {
  let value: unknown;
  try {
    value = JSON.parse(decoder.decode(bytes));
  } catch {
    throw corrupt('member change is not JSON');
  }
  const change = value as { action?: unknown; member?: { memberId?: unknown } };
  if (!['add', 'remove', 'promote', 'update', 'attributes'].includes(change.action as string)) {
    throw corrupt('unknown member change');
  }
  if (change.action !== 'add') return value as MemberChange;
  const memberId = change.member?.memberId;
  if (typeof memberId !== 'string' || !/^\d{1,20}$/.test(memberId)) throw corrupt('malformed member id');
  return { ...(value as MemberChange & { action: 'add' }), member: { ...(change.member as MemberRecord), memberId: BigInt(memberId) } };
}

function keyOf(prefix: Uint8Array, id: number): Uint8Array {
  assert(isRaftId(id), 'raft id in range');
  const key = new Uint8Array(prefix.length + 8);
  key.set(prefix);
  new DataView(key.buffer).setBigUint64(prefix.length, BigInt(id));
  return key;
}

function idOfKey(key: Uint8Array, prefix: Uint8Array): number {
  if (key.length !== prefix.length + 8) throw corrupt('malformed member key');
  const id = Number(new DataView(key.buffer, key.byteOffset, key.byteLength).getBigUint64(prefix.length));
  if (!isRaftId(id)) throw corrupt('raft id out of range');
  return id;
}

function corrupt(detail: string): SynodError {
  return new SynodError('SYNOD_STORAGE_CORRUPT', `kv: ${detail}`);
}
