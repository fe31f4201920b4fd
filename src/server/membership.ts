/**
 * Runtime membership on a running member: the bootstrap entries of a new cluster, and the keeper
 * that follows the replicated member table (src/kv/members.ts) — it points the peer transport at
 * the current members, publishes this member's name and client URLs (etcd's publish), notices
 * when this member was removed, and, on the leader, promotes learners that were added to become
 * voters once they have caught up.
 *
 * Decisions:
 * - A new cluster starts with one conf-change entry per initial member at indexes 1…n, term 1,
 *   each carrying the member's record, as etcd's bootstrap does; so the membership is a function
 *   of the log alone, and a member that joins later replays it like any other state.
 * - `member add` without `--learner` still adds the member as a Raft learner, with
 *   `promoteWhenReady` set; the leader promotes it once its log is within
 *   `learnerReadyLagEntriesMax` of the leader's. A member that was never started therefore never
 *   counts toward the quorum (etcd's pain point: an added, unstarted voter can stall a cluster).
 */

import type { Logger } from 'pino';
import { isSynodError } from '../base/index.js';
import type { MemberRecord } from '../kv/index.js';
import type { Entry, NodeId, Status } from '../raft/index.js';
import { encodeConfChange } from '../raft/index.js';
import type { ClusterLayout } from './cluster-layout.js';
import { peerAddressOf } from './cluster-layout.js';
import type { RaftNode } from './node/raft-node.js';
import { unclaimedProposal } from './node/proposal-codec.js';
import type { PeerAddress, PeerTransport } from './peer/peer-transport.js';

/** A learner is ready to vote when its log is at most this many entries behind the leader's. */
export const learnerReadyLagEntriesMax = 1_000;
/**
 * Whether the learner `raftId` may vote, from the leader's `status`: it has acknowledged entries
 * (a learner that never answered has match 0; `recentActive` alone is set for every peer when a
 * leader takes over), its log is within `learnerReadyLagEntriesMax` of the leader's, and it holds
 * at least 90% of it (etcd's readyPercent).
 */
export function isLearnerReady(status: Status, raftId: NodeId): boolean {
  const progress = status.progress?.get(raftId);
  if (progress === undefined || progress.match === 0 || !progress.recentActive) return false;
  return status.lastIndex - progress.match <= learnerReadyLagEntriesMax && progress.match >= 0.9 * status.lastIndex;
}

/** How often the keeper retries publishing and checks learners, in ms. */
export const membershipCheckIntervalMs = 500;

/** The entries a new cluster's log starts with: one add-voter per initial member. */
export function bootstrapEntries(layout: ClusterLayout): Entry[] {
  return layout.members.map((member, position) => {
    const record: MemberRecord = {
      raftId: member.raftId, memberId: member.memberId, name: member.name,
      peerUrls: member.peerUrls.map((url) => urlText(url)), clientUrls: [], isLearner: false,
    };
    const context = unclaimedProposal({ type: 'member', change: { action: 'add', member: record } });
    return {
      term: 1, index: position + 1, type: 'conf-change' as const,
      data: encodeConfChange({ type: 'add-voter', nodeId: member.raftId, context }),
    };
  });
}

/** A URL as members record it: `scheme://host:port`, no trailing slash (etcd's text). */
export function urlText(url: URL): string {
  return url.pathname === '/' && url.search === '' && url.hash === '' ? `${url.protocol}//${url.host}` : url.href;
}

/** Options of `MembershipKeeper`. */
export interface MembershipKeeperOptions {
  readonly node: RaftNode;
  readonly transport: PeerTransport;
  readonly selfRaftId: NodeId;
  /** This member's --name and --advertise-client-urls, published into its record. */
  readonly name: string;
  readonly clientUrls: readonly URL[];
  readonly logger: Logger;
  /** Called once when the member table says this member was removed. */
  readonly onRemoved: () => void;
}

/** Follows the member table; see the module comment. */
export class MembershipKeeper {
  readonly #options: MembershipKeeperOptions;
  #timer: NodeJS.Timeout | null = null;
  #unsubscribe: (() => void) | null = null;
  #publishing = false;
  #promoting = false;
  #removed = false;
  /** The table `#reconcile` last acted on. */
  #seen: { store: object | null; version: number } = { store: null, version: -1 };

  constructor(options: MembershipKeeperOptions) {
    this.#options = options;
  }

  start(): void {
    this.#reconcile();
    this.#unsubscribe = this.#options.node.onApplied(() => {
      this.#reconcile();
      // Also after a restart, where the replayed conf changes leave the table as it was loaded.
      this.#campaignIfSoleVoter();
    });
    this.#timer = setInterval(() => this.#check(), membershipCheckIntervalMs);
    this.#timer.unref();
  }

  stop(): void {
    if (this.#timer !== null) clearInterval(this.#timer);
    this.#timer = null;
    this.#unsubscribe?.();
    this.#unsubscribe = null;
  }

  /** The members as the applied table has them. */
  members(): MemberRecord[] {
    return this.#options.node.stateMachine.store.members();
  }

  /**
   * Points the transport at the current members; notices removal; starts a sole voter. Runs after
   * every applied Ready, so it returns at once unless the table changed (or was replaced by a
   * snapshot) since the last time.
   */
  #reconcile(): void {
    const { node, transport, selfRaftId } = this.#options;
    const store = node.stateMachine.store;
    if (store === this.#seen.store && store.membersVersion === this.#seen.version) return;
    this.#seen = { store, version: store.membersVersion };
    const members = this.members();
    const peers = new Map<NodeId, PeerAddress>();
    for (const member of members) {
      if (member.raftId === selfRaftId) continue;
      peers.set(member.raftId, peerAddressOf(new URL(member.peerUrls[0]!)));
    }
    const known = members.some((member) => member.raftId === selfRaftId);
    // A member that joined knows nobody until it has replayed the adds; until then the leader
    // (whose id it cannot know yet) must still be let in.
    transport.acceptUnknownPeers = !known && !this.#removed;
    if (members.length > 0) transport.setPeers(peers);
    if (!this.#removed && node.stateMachine.store.isRemovedMember(selfRaftId)) {
      this.#removed = true;
      transport.acceptUnknownPeers = false;
      this.#options.logger.error('this member was removed from the cluster; it stops serving');
      this.#options.onRemoved();
    }
    this.#campaignIfSoleVoter();
    this.#publish();
  }

  /**
   * A single voter elects itself at once instead of waiting out an election timeout. Deferred,
   * and decided on the core's own configuration: the core applies the conf change that makes
   * this member a voter when the Ready that carried it is advanced, after the apply listeners.
   */
  #campaignIfSoleVoter(): void {
    const { node, selfRaftId } = this.#options;
    if (node.leaderId !== 0) return;
    setImmediate(() => {
      const { voters } = node.raftStatus().confState;
      if (node.leaderId === 0 && voters.length === 1 && voters[0] === selfRaftId) node.campaign();
    });
  }

  #check(): void {
    if (this.#removed) return;
    this.#campaignIfSoleVoter();
    this.#publish();
    if (this.#options.node.leaderId === this.#options.selfRaftId) this.#promoteReadyLearners();
  }

  /** Proposes this member's name and client URLs until its record holds them. */
  #publish(): void {
    const { node, selfRaftId, name } = this.#options;
    if (this.#publishing || node.leaderId === 0) return;
    const self = node.stateMachine.store.members().find((member) => member.raftId === selfRaftId);
    if (self === undefined) return;
    const clientUrls = this.#options.clientUrls.map(urlText);
    if (self.name === name && sameList(self.clientUrls, clientUrls)) return;
    this.#publishing = true;
    node.propose({ type: 'member', change: { action: 'attributes', raftId: selfRaftId, name, clientUrls } })
      .then((result) => {
        if (!result.ok) this.#options.logger.warn({ err: result.error.message }, 'publishing member attributes failed');
      }, (error: unknown) => {
        if (!isSynodError(error)) throw error;
      })
      .finally(() => {
        this.#publishing = false;
      });
  }

  /** The leader promotes learners added as voters once their logs have caught up. */
  #promoteReadyLearners(): void {
    const { node } = this.#options;
    if (this.#promoting) return;
    const status = node.raftStatus();
    const ready = this.members().find((member) =>
      member.isLearner && member.promoteWhenReady === true && isLearnerReady(status, member.raftId));
    if (ready === undefined) return;
    this.#promoting = true;
    node.proposeConfChange(
      { type: 'add-voter', nodeId: ready.raftId },
      { type: 'member', change: { action: 'promote', raftId: ready.raftId } },
    ).then((result) => {
      if (result.ok) this.#options.logger.info({ member: ready.memberId.toString(16) }, 'learner caught up: promoted to voter');
    }, (error: unknown) => {
      if (!isSynodError(error)) throw error;
    }).finally(() => {
      this.#promoting = false;
    });
  }
}

function sameList(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((value, index) => value === b[index]);
}
