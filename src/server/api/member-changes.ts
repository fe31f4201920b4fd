/**
 * MemberAdd, MemberRemove, MemberUpdate and MemberPromote, decided on the leader: it alone knows
 * which members are reachable and how far each learner's log is, which the guards need. A
 * follower forwards the request to the leader over the peer transport (`memberChangeMethod`),
 * as it forwards lease requests, and returns the leader's answer.
 *
 * Guards, each with etcd's error (docs/errors.md):
 * - add: well-formed, unused peer URLs; at most one learner at a time (etcd's limit). Every
 *   member joins as a Raft learner (src/server/membership.ts), so adding never changes the
 *   quorum; without `--learner` the leader promotes it once it has caught up.
 * - remove: the voters left must still include a quorum of reachable ones, counting the leader
 *   (etcd's strict reconfiguration check), and the last voter cannot go.
 * - promote: only a learner, and only once it is ready (`isLearnerReady` in membership.ts).
 * Raft ids are never reused (the highest ever + 1); the member id derives from the peer URLs,
 * the cluster id and that Raft id, so a re-added member gets a new identity.
 */

import { createHash } from 'node:crypto';
import { SynodError } from '../../base/index.js';
import { isHttpUrl, memberUrlsMax, type MemberChange, type MemberRecord } from '../../kv/index.js';
import type { NodeId } from '../../raft/index.js';
import { isLearnerReady, urlText } from '../membership.js';
import type { RaftNode } from '../node/raft-node.js';
import type { PeerTransport } from '../peer/peer-transport.js';

/** The peer method followers forward membership changes under. */
export const memberChangeMethod = 'member.change';

/** A change a client asked for. Member ids are etcd's (uint64). */
export type MemberChangeRequest =
  | { readonly kind: 'add'; readonly peerUrls: readonly string[]; readonly isLearner: boolean }
  | { readonly kind: 'remove'; readonly memberId: bigint }
  | { readonly kind: 'update'; readonly memberId: bigint; readonly peerUrls: readonly string[] }
  | { readonly kind: 'promote'; readonly memberId: bigint };

/** The members after the change, and for an add the new member. */
export interface MemberChangeOutcome {
  readonly members: readonly MemberRecord[];
  readonly added?: MemberRecord;
}

/** What the changes need of the member. */
export interface MemberChangesOptions {
  readonly node: RaftNode;
  readonly transport: PeerTransport;
  readonly clusterId: bigint;
}

/** Runs membership changes on the leader, forwarding from followers. */
export class MemberChanges {
  readonly #options: MemberChangesOptions;

  constructor(options: MemberChangesOptions) {
    this.#options = options;
    options.transport.handle(memberChangeMethod, async (payload) => {
      const outcome = await this.#onLeader(decodeRequest(payload));
      return encodeOutcome(outcome);
    });
  }

  /** Applies `request` through the leader; resolves once this member has applied it. */
  async change(request: MemberChangeRequest): Promise<MemberChangeOutcome> {
    const { node, transport } = this.#options;
    const leader = node.leaderId;
    if (leader === 0) throw new SynodError('SYNOD_NO_LEADER');
    if (leader === node.id) return this.#onLeader(request);
    const answer = await transport.request(leader, memberChangeMethod, encodeRequest(request));
    return decodeOutcome(answer);
  }

  async #onLeader(request: MemberChangeRequest): Promise<MemberChangeOutcome> {
    const { node } = this.#options;
    if (node.leaderId !== node.id) throw new SynodError('SYNOD_NOT_LEADER');
    const members = node.stateMachine.store.members();
    // A removed member's id answers "member not found", as etcd 3.4's API does.
    switch (request.kind) {
      case 'add': return this.#add(members, request.peerUrls, request.isLearner);
      case 'remove': {
        const member = memberNamed(members, request.memberId);
        if (!member.isLearner) this.#checkQuorumWithout(members, member.raftId);
        return this.#commit({ type: 'remove', nodeId: member.raftId }, { action: 'remove', raftId: member.raftId });
      }
      case 'update': {
        const member = memberNamed(members, request.memberId);
        checkPeerUrls(request.peerUrls);
        return this.#commit(null, { action: 'update', raftId: member.raftId, peerUrls: request.peerUrls });
      }
      case 'promote': {
        const member = memberNamed(members, request.memberId);
        if (!member.isLearner) throw new SynodError('SYNOD_MEMBER_NOT_LEARNER');
        if (!this.#isCaughtUp(member.raftId)) throw new SynodError('SYNOD_LEARNER_NOT_READY');
        return this.#commit({ type: 'add-voter', nodeId: member.raftId }, { action: 'promote', raftId: member.raftId });
      }
    }
  }

  async #add(members: readonly MemberRecord[], requested: readonly string[], isLearner: boolean): Promise<MemberChangeOutcome> {
    checkPeerUrls(requested);
    // The joining member derives its id from its own flag's text the same way (server.ts).
    const peerUrls = requested.map((url) => urlText(new URL(url)));
    if (members.some((member) => member.peerUrls.some((url) => peerUrls.includes(url)))) {
      throw new SynodError('SYNOD_PEER_URL_EXISTS');
    }
    if (members.some((member) => member.isLearner)) throw new SynodError('SYNOD_TOO_MANY_LEARNERS');
    const raftId = this.#options.node.stateMachine.store.raftIdHighest() + 1;
    const member: MemberRecord = {
      raftId, memberId: runtimeMemberId({ peerUrls, clusterId: this.#options.clusterId, raftId }),
      name: '', peerUrls: [...peerUrls], clientUrls: [], isLearner: true,
      ...(isLearner ? {} : { promoteWhenReady: true }),
    };
    const outcome = await this.#commit({ type: 'add-learner', nodeId: raftId }, { action: 'add', member });
    return { ...outcome, added: member };
  }

  /** Proposes (as a conf change when `confChange` is set) and waits for this member to apply it. */
  async #commit(
    confChange: { type: 'add-voter' | 'add-learner' | 'remove'; nodeId: NodeId } | null,
    change: MemberChange,
  ): Promise<MemberChangeOutcome> {
    const { node } = this.#options;
    const command = { type: 'member' as const, change };
    const result = confChange === null ? await node.propose(command) : await node.proposeConfChange(confChange, command);
    if (!result.ok) throw result.error;
    if (result.result.type !== 'member') throw new SynodError('SYNOD_INVALID_MEMBERSHIP', 'unexpected apply result');
    return { members: result.result.response.members };
  }

  /** Whether the voters other than `leaving` include a quorum of reachable ones. */
  #checkQuorumWithout(members: readonly MemberRecord[], leaving: NodeId): void {
    const { node } = this.#options;
    const voters = members.filter((member) => !member.isLearner && member.raftId !== leaving);
    if (voters.length === 0) throw new SynodError('SYNOD_INVALID_MEMBERSHIP', 'cannot remove the last voter');
    const progress = node.raftStatus().progress;
    const reachable = voters.filter((member) => member.raftId === node.id || progress?.get(member.raftId)?.recentActive === true);
    if (reachable.length < Math.floor(voters.length / 2) + 1) throw new SynodError('SYNOD_NOT_ENOUGH_STARTED_MEMBERS');
  }

  #isCaughtUp(raftId: NodeId): boolean {
    return isLearnerReady(this.#options.node.raftStatus(), raftId);
  }
}

/** A runtime-added member's etcd id: from its peer URLs, the cluster and its never-reused Raft id. */
export function runtimeMemberId(options: { peerUrls: readonly string[]; clusterId: bigint; raftId: NodeId }): bigint {
  const text = `member\n${[...options.peerUrls].sort().join('\n')}\n${options.clusterId}\n${options.raftId}`;
  const value = createHash('sha256').update(text).digest().readBigUInt64BE(0);
  return value === 0n ? 1n : value;
}

function memberNamed(members: readonly MemberRecord[], memberId: bigint): MemberRecord {
  const member = members.find((candidate) => candidate.memberId === memberId);
  if (member === undefined) throw new SynodError('SYNOD_MEMBER_NOT_FOUND');
  return member;
}

function checkPeerUrls(peerUrls: readonly string[]): void {
  if (peerUrls.length === 0 || peerUrls.length > memberUrlsMax || !peerUrls.every(isHttpUrl)) {
    throw new SynodError('SYNOD_INVALID_MEMBER_URL');
  }
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

function encodeRequest(request: MemberChangeRequest): Uint8Array {
  return encoder.encode(JSON.stringify(request, (_key, value: unknown) => (typeof value === 'bigint' ? value.toString() : value)));
}

function decodeRequest(payload: Uint8Array): MemberChangeRequest {
  const value = JSON.parse(decoder.decode(payload)) as { kind: string; memberId?: string; peerUrls?: string[]; isLearner?: boolean };
  switch (value.kind) {
    case 'add': return { kind: 'add', peerUrls: value.peerUrls ?? [], isLearner: value.isLearner === true };
    case 'remove': return { kind: 'remove', memberId: BigInt(value.memberId ?? '0') };
    case 'update': return { kind: 'update', memberId: BigInt(value.memberId ?? '0'), peerUrls: value.peerUrls ?? [] };
    case 'promote': return { kind: 'promote', memberId: BigInt(value.memberId ?? '0') };
    default: throw new SynodError('SYNOD_PEER_PROTOCOL', 'unknown member change');
  }
}

function encodeOutcome(outcome: MemberChangeOutcome): Uint8Array {
  return encoder.encode(JSON.stringify(outcome, (_key, value: unknown) => (typeof value === 'bigint' ? `${value}n` : value)));
}

function decodeOutcome(payload: Uint8Array): MemberChangeOutcome {
  return JSON.parse(decoder.decode(payload), (_key, value: unknown) => (
    typeof value === 'string' && /^\d+n$/.test(value) ? BigInt(value.slice(0, -1)) : value
  )) as MemberChangeOutcome;
}
