/**
 * The Raft state machine of one node: terms, roles, elections, and the dispatch of messages to the
 * handler of the current role (`step-leader.ts`, `step-candidate.ts`, `step-follower.ts`). It does no
 * I/O: messages go to `msgs`, completed reads to `readStates`, and `RawNode` turns them into a Ready.
 *
 * Internal to src/raft; applications use `RawNode`.
 */

import { assert, mark, type ErrorCode } from '../base/index.js';
import type { PlantedBug, RaftConfig } from './config.js';
import { isTransferContext, newMessage, transferContext, voteResponseType, type MessageFields } from './messages.js';
import { RaftLog } from './raft-log.js';
import { ReadOnly } from './read-only.js';
import { stepCandidate } from './step-candidate.js';
import { stepFollower } from './step-follower.js';
import { stepLeader } from './step-leader.js';
import { ProgressTracker } from './tracker.js';
import type { VoteResult } from './quorum.js';
import type { Entry, Message, MessageType, NodeId, ReadState, Role } from './types.js';
import { noneId } from './types.js';

/** ReadIndex requests a leader holds at once; more are refused (back-pressure to the server). */
export const readIndexPendingMax = 4096;

const termlessTypes = new Set<MessageType>(['prop', 'read-index', 'transfer-leader']);
const voteTypes = new Set<MessageType>(['vote', 'pre-vote', 'vote-resp', 'pre-vote-resp']);

/** A role's message handler. Returns an error code when the message (a proposal) was dropped. */
export type StepHandler = (r: Raft, m: Message) => ErrorCode | null;

/** Which kind of election `campaign` runs. */
export type CampaignKind = 'pre-election' | 'election' | 'transfer';

/** One node's consensus state. */
export class Raft {
  readonly id: NodeId;
  readonly config: RaftConfig;
  readonly log: RaftLog;
  readonly tracker: ProgressTracker;
  readonly readOnly = new ReadOnly(readIndexPendingMax);

  term = 0;
  vote: NodeId = noneId;
  role: Role = 'follower';
  leader: NodeId = noneId;
  /** Set while leadership is being handed to this peer; proposals are refused meanwhile. */
  leadTransferee: NodeId = noneId;
  /** A conf change at an index > applied is in the log; no other may be proposed (thesis §4.1). */
  pendingConfIndex = 0;
  /** Bytes of entries appended by this leader and not yet applied (back-pressure bound). */
  uncommittedBytes = 0;
  /** Reads were queued since the last heartbeat round; the next Ready sends one. */
  readIndexRoundPending = false;
  /** Proposals were appended since the last broadcast; the next Ready sends them. */
  appendBroadcastPending = false;
  /** Read-index requests that arrived before this leader committed an entry of its term. */
  pendingReadIndexMessages: Message[] = [];

  msgs: Message[] = [];
  readStates: ReadState[] = [];

  electionElapsed = 0;
  heartbeatElapsed = 0;
  randomizedElectionTicks = 0;
  /** Ticks since this node started; the leader's lease clock. */
  tickCount = 0;
  /** For lease reads: the newest leader tick each peer acknowledged a heartbeat of. */
  readonly leaseAcks = new Map<NodeId, number>();
  /** Set once this leader sent timeout-now: no lease reads for the rest of its term. */
  leaseRevoked = false;
  /** With lease reads: refuse votes for an election timeout after start, as if a leader were known. */
  startupGuard: boolean;

  stepHandler: StepHandler = stepFollower;

  constructor(config: RaftConfig) {
    this.id = config.id;
    this.config = config;
    this.log = new RaftLog(config.storage, { committedBytesMax: config.committedBytesMax });
    this.tracker = new ProgressTracker(config.inflightMessagesMax);
    const { hardState, confState } = config.storage.initialState();
    this.tracker.reset(confState, this.log.lastIndex() + 1);
    if (hardState.term > 0 || hardState.commit > 0) {
      assert(hardState.commit <= this.log.lastIndex(), `commit ${hardState.commit} beyond last index ${this.log.lastIndex()}`);
      this.term = hardState.term;
      this.vote = config.plantedBug === 'forget-vote-on-restart' ? noneId : hardState.vote;
      this.log.commitTo(hardState.commit);
    }
    if (config.applied > 0) this.log.appliedTo(config.applied);
    this.startupGuard = config.readOnlyOption === 'lease-based';
    this.becomeFollower(this.term, noneId);
  }

  /** True when this planted bug is switched on (planted-bug tests only). */
  bug(name: PlantedBug): boolean {
    return this.config.plantedBug === name;
  }

  /** Can this node campaign: a voter with no snapshot pending. */
  promotable(): boolean {
    return this.tracker.voters.has(this.id) && this.log.unstable.snapshot === null;
  }

  /**
   * Queues a message; `from` defaults to us and `term` to ours, except for forwarded proposals and
   * reads (term 0: local to the leader) and vote traffic (which names its term explicitly).
   */
  send(fields: Omit<MessageFields, 'from'> & { from?: NodeId }): void {
    const explicitTerm = termlessTypes.has(fields.type) || voteTypes.has(fields.type);
    const message = newMessage({ from: this.id, ...fields, term: explicitTerm ? (fields.term ?? 0) : (fields.term ?? this.term) });
    assert(message.to !== this.id, `sending ${message.type} to self`);
    if (voteTypes.has(message.type)) assert(message.term !== 0, `${message.type} without a term`);
    this.msgs.push(message);
  }

  // ---- roles ---------------------------------------------------------------------------------

  #reset(term: number): void {
    if (this.term !== term) {
      this.term = term;
      this.vote = noneId;
    }
    this.leader = noneId;
    this.electionElapsed = 0;
    this.heartbeatElapsed = 0;
    this.randomizedElectionTicks = this.config.electionTicks + this.config.random.int(this.config.electionTicks);
    this.leadTransferee = noneId;
    this.tracker.resetVotes();
    const next = this.log.lastIndex() + 1;
    for (const [id, progress] of this.tracker.progress) {
      progress.becomeProbe();
      progress.match = id === this.id ? this.log.durableLastIndex() : 0;
      progress.next = next;
      progress.probeSent = false;
      progress.recentActive = id === this.id;
      if (id === this.id) progress.becomeReplicate();
    }
    this.pendingConfIndex = 0;
    this.uncommittedBytes = 0;
    this.readOnly.reset();
    this.readIndexRoundPending = false;
    this.appendBroadcastPending = false;
    this.pendingReadIndexMessages = [];
    this.leaseAcks.clear();
    this.leaseRevoked = false;
  }

  becomeFollower(term: number, leader: NodeId): void {
    this.stepHandler = stepFollower;
    this.#reset(term);
    this.leader = leader;
    this.role = 'follower';
  }

  becomePreCandidate(): void {
    assert(this.role !== 'leader', 'leader cannot become pre-candidate');
    // A pre-candidate keeps its term and vote; it only asks whether it could win (thesis §9.6).
    this.stepHandler = stepCandidate;
    this.tracker.resetVotes();
    this.leader = noneId;
    this.role = 'pre-candidate';
  }

  becomeCandidate(): void {
    assert(this.role !== 'leader', 'leader cannot become candidate');
    this.stepHandler = stepCandidate;
    this.#reset(this.term + 1);
    this.vote = this.id;
    this.role = 'candidate';
  }

  becomeLeader(): void {
    assert(this.role === 'candidate', `only a candidate becomes leader, not a ${this.role}`);
    this.stepHandler = stepLeader;
    this.#reset(this.term);
    this.leader = this.id;
    this.role = 'leader';
    // Conf changes in the log when elected may be uncommitted; none may be proposed until all of
    // them are applied (see confchange.ts).
    this.pendingConfIndex = this.log.lastIndex();
    // The empty entry commits everything before it once it commits (paper §5.4.2, thesis §3.6.2).
    const appended = this.appendEntries([{ term: 0, index: 0, type: 'normal', data: new Uint8Array() }]);
    assert(appended, 'a new leader must accept its empty entry');
  }

  // ---- time --------------------------------------------------------------------------------

  /** Advances the logical clock one tick. */
  tick(): void {
    this.tickCount++;
    if (this.role === 'leader') this.#tickHeartbeat();
    else this.#tickElection();
  }

  #tickElection(): void {
    this.electionElapsed++;
    if (this.startupGuard && this.electionElapsed >= this.config.electionTicks) this.startupGuard = false;
    if (this.promotable() && this.electionElapsed >= this.randomizedElectionTicks) {
      this.electionElapsed = 0;
      this.step(newMessage({ type: 'hup', to: this.id, from: this.id }));
    }
  }

  #tickHeartbeat(): void {
    this.heartbeatElapsed++;
    this.electionElapsed++;
    if (this.electionElapsed >= this.config.electionTicks) {
      this.electionElapsed = 0;
      if (this.config.checkQuorum) this.step(newMessage({ type: 'check-quorum', to: this.id, from: this.id }));
      if (this.role === 'leader' && this.leadTransferee !== noneId) {
        mark('leader transfer aborted: timed out');
        this.leadTransferee = noneId;
      }
    }
    if (this.role !== 'leader') return;
    if (this.heartbeatElapsed >= this.config.heartbeatTicks) {
      this.heartbeatElapsed = 0;
      this.step(newMessage({ type: 'beat', to: this.id, from: this.id }));
    }
  }

  // ---- the step dispatcher -------------------------------------------------------------------

  /** Handles one message (paper figure 2's "rules for all servers", then the role's rules). */
  step(m: Message): ErrorCode | null {
    if (m.term > this.term) {
      if (this.#ignoreHigherTermMessage(m)) return null;
    } else if (m.term !== 0 && m.term < this.term) {
      this.#onLowerTermMessage(m);
      return null;
    }
    switch (m.type) {
      case 'hup':
        this.#onHup();
        return null;
      case 'vote':
      case 'pre-vote':
        this.#onVoteRequest(m);
        return null;
      default:
        return this.stepHandler(this, m);
    }
  }

  /** Returns true when the higher-term message must be dropped; otherwise adopts its term if due. */
  #ignoreHigherTermMessage(m: Message): boolean {
    if (m.type === 'vote' || m.type === 'pre-vote') {
      const force = isTransferContext(m.context);
      const inLease = this.config.checkQuorum && (this.startupGuard || (this.leader !== noneId && this.electionElapsed < this.config.electionTicks));
      if (!force && inLease) {
        // A leader is alive as far as we know: a disruptive candidate must not depose it (thesis §4.2.3).
        mark('vote ignored: leader lease');
        return true;
      }
    }
    if (m.type === 'pre-vote') return false; // Pre-votes never change our term.
    if (m.type === 'pre-vote-resp' && !m.reject) return false; // The term bumps when we win the pre-vote.
    if (m.type === 'app' || m.type === 'heartbeat' || m.type === 'snap') this.becomeFollower(m.term, m.from);
    else this.becomeFollower(m.term, noneId);
    return false;
  }

  #onLowerTermMessage(m: Message): void {
    if (m.type === 'heartbeat' || m.type === 'app') {
      // A stale leader: tell it our term so it steps down (paper §5.1: reply with the current term).
      // etcd does this only with pre-vote or check-quorum, counting on the higher-term node to
      // campaign; a node that cannot campaign (a learner, a demoted voter) never would, and would
      // stay cut off from the log forever (found by the simulator).
      mark('stale leader told the new term');
      this.send({ type: 'app-resp', to: m.from });
    } else if (m.type === 'pre-vote' || m.type === 'vote') {
      // Reject with our term, so the candidate adopts it and its next campaign can reach us. A
      // silent drop (etcd's choice for votes) starved elections when the only node with the higher
      // term could not win on its own (found by the simulator, seed 18374).
      mark('stale vote request rejected');
      this.send({ type: voteResponseType(m.type), to: m.from, term: this.term, reject: true });
    }
  }

  #onHup(): void {
    if (this.role === 'leader') return;
    if (!this.promotable()) {
      mark('campaign refused: not promotable');
      return;
    }
    if (this.#hasUnappliedConfChanges()) {
      // Our membership may be about to change; campaigning on a stale one could split the quorum.
      mark('campaign refused: unapplied conf change');
      return;
    }
    this.campaign(this.config.preVote ? 'pre-election' : 'election');
  }

  #hasUnappliedConfChanges(): boolean {
    if (this.log.applied >= this.log.committed) return false;
    const entries = this.log.slice(this.log.applied + 1, this.log.committed + 1, Number.MAX_SAFE_INTEGER);
    return entries.some((entry) => entry.type === 'conf-change');
  }

  #onVoteRequest(m: Message): void {
    const canVote =
      this.vote === m.from ||
      (this.vote === noneId && this.leader === noneId) ||
      (m.type === 'pre-vote' && m.term > this.term);
    const upToDate = this.log.isUpToDate(m.index, m.logTerm) || this.bug('vote-without-log-check');
    if (canVote && upToDate) {
      // A granted vote echoes the candidate's term: for pre-votes ours may be lower (thesis §9.6).
      this.send({ type: voteResponseType(m.type as 'vote' | 'pre-vote'), to: m.from, term: m.term });
      if (m.type === 'vote') {
        this.electionElapsed = 0;
        this.vote = m.from;
      }
    } else {
      mark(canVote ? 'vote rejected: stale log' : 'vote rejected: already voted or leader known');
      this.send({ type: voteResponseType(m.type as 'vote' | 'pre-vote'), to: m.from, term: this.term, reject: true });
    }
  }

  // ---- elections -----------------------------------------------------------------------------

  /** Starts a (pre-)election; a single-voter cluster wins at once. */
  campaign(kind: CampaignKind): void {
    let term: number;
    let type: 'vote' | 'pre-vote';
    if (kind === 'pre-election') {
      this.becomePreCandidate();
      type = 'pre-vote';
      term = this.term + 1; // Ask as if we had started the next term, without starting it.
    } else {
      this.becomeCandidate();
      type = 'vote';
      term = this.term;
    }
    if (this.poll(this.id, true) === 'won') {
      if (kind === 'pre-election') this.campaign('election');
      else this.becomeLeader();
      return;
    }
    const context = kind === 'transfer' ? transferContext : new Uint8Array();
    for (const id of this.tracker.votersSorted()) {
      if (id === this.id) continue;
      this.send({ type, to: id, term, index: this.log.lastIndex(), logTerm: this.log.lastTerm(), context });
    }
  }

  /** Records a vote and returns the election's outcome. */
  poll(from: NodeId, granted: boolean): VoteResult {
    this.tracker.recordVote(from, granted);
    return this.tracker.tallyVotes();
  }

  // ---- log -------------------------------------------------------------------------------------

  /**
   * Leader: assigns term and index to `entries` and appends them. Returns false (appending nothing)
   * when the uncommitted-bytes bound would be exceeded.
   */
  appendEntries(template: readonly Entry[]): boolean {
    let bytes = 0;
    for (const entry of template) bytes += entry.data.length;
    if (this.uncommittedBytes > 0 && bytes > 0 && this.uncommittedBytes + bytes > this.config.uncommittedBytesMax) {
      mark('proposal dropped: uncommitted bytes bound');
      return false;
    }
    const lastIndex = this.log.lastIndex();
    const entries = template.map((entry, i) => ({ term: this.term, index: lastIndex + 1 + i, type: entry.type, data: entry.data }));
    this.log.append(entries);
    this.uncommittedBytes += bytes;
    return true;
  }

  /** Leader: commits what a quorum holds (only an entry of this term commits; paper figure 8). */
  maybeCommit(): boolean {
    return this.log.maybeCommit(this.tracker.committed(), this.term, this.config.plantedBug);
  }

  /** Whether this leader has committed an entry of its own term (needed before ReadIndex). */
  committedEntryInCurrentTerm(): boolean {
    return this.log.term(this.log.committed) === this.term;
  }

  /** Queues a completed read, locally or back to the follower that forwarded it. */
  respondToReadIndex(request: Message, index: number): void {
    if (request.from === noneId || request.from === this.id) {
      this.readStates.push({ index, context: request.context });
    } else {
      this.send({ type: 'read-index-resp', to: request.from, index, context: request.context });
    }
  }

}
