/**
 * `RawNode`: the consensus core's public surface. A thread-unsafe, synchronous object: every call
 * runs to completion, performs no I/O and reads no clock. A driver feeds it ticks, messages and
 * proposals, and handles each `Ready` as `ready.ts` describes before calling `advance`.
 */

import { assert, mark, SynodError } from '../base/index.js';
import { applyConfChange, decodeConfChange, encodeConfChange, validateConfChange } from './confchange.js';
import { validateConfig, type RaftConfigInput } from './config.js';
import { isLocalMessage, isResponseMessage, newMessage } from './messages.js';
import { Raft } from './raft.js';
import type { Ready } from './ready.js';
import { bcastAppend, bcastHeartbeat, maybeSendAppend, sendTimeoutNow } from './replication.js';
import type { Status } from './status.js';
import { releasePendingReadIndexMessages } from './step-leader.js';
import type { ConfChange, Entry, HardState, Message, NodeId, SoftState } from './types.js';
import { noneId } from './types.js';

/** Message types a node may send before its Ready is persisted, if their term is already durable. */
const earlyTypes = new Set(['app', 'heartbeat', 'snap', 'timeout-now']);

/** One Raft node. */
export class RawNode {
  readonly #raft: Raft;
  #prevSoftState: SoftState;
  /** The hard state last handed out in a Ready. */
  #prevHardState: HardState;
  /** The hard state known durable (handed out in a Ready that was advanced). */
  #durableHardState: HardState;
  #outstanding: Ready | null = null;

  /** Starts (or restarts) a node from `config.storage`; throws SYNOD_INVALID_CONFIG on bad config. */
  constructor(input: RaftConfigInput) {
    this.#raft = new Raft(validateConfig(input));
    this.#prevSoftState = this.#softState();
    this.#prevHardState = this.#hardState();
    this.#durableHardState = this.#prevHardState;
  }

  /** This node's id. */
  get id(): NodeId {
    return this.#raft.id;
  }

  /** Advances the logical clock by one tick (elections and heartbeats count ticks). */
  tick(): void {
    this.#raft.tick();
  }

  /** Starts an election now, as if the election timeout had elapsed. */
  campaign(): void {
    this.#raft.step(newMessage({ type: 'hup', to: this.id, from: this.id }));
  }

  /**
   * Proposes `data` for the log. Throws SYNOD_NO_LEADER when no leader is known and
   * SYNOD_PROPOSAL_DROPPED when the leader refuses (transfer in progress, back-pressure). Success
   * means only that the proposal was queued: it commits when it appears in `committedEntries`.
   */
  propose(data: Uint8Array): void {
    this.#propose({ term: 0, index: 0, type: 'normal', data });
  }

  /** Proposes a membership change. Throws as `propose`, or SYNOD_INVALID_CONF_CHANGE. */
  proposeConfChange(change: ConfChange): void {
    validateConfChange(this.#raft.tracker.voters, change);
    this.#propose({ term: 0, index: 0, type: 'conf-change', data: encodeConfChange(change) });
  }

  #propose(entry: Entry): void {
    const code = this.#raft.step(newMessage({ type: 'prop', to: this.id, from: this.id, entries: [entry] }));
    if (code !== null) throw new SynodError(code);
  }

  /**
   * Asks for a linearizable read point. When confirmed, a `ReadState` with this `context` appears in a
   * later Ready. Throws SYNOD_NO_LEADER or SYNOD_READ_INDEX_BUSY. Contexts must be unique while pending.
   */
  readIndex(context: Uint8Array): void {
    const code = this.#raft.step(newMessage({ type: 'read-index', to: this.id, from: noneId, context }));
    if (code !== null) throw new SynodError(code);
  }

  /** Asks the leader to hand leadership to `transferee` (thesis §3.10). */
  transferLeader(transferee: NodeId): void {
    this.#raft.step(newMessage({ type: 'transfer-leader', to: this.id, from: transferee }));
  }

  /**
   * Handles a message from a peer. Local message types throw SYNOD_STEP_LOCAL_MESSAGE (a driver bug);
   * responses from non-members are dropped.
   */
  step(message: Message): void {
    if (isLocalMessage(message.type)) throw new SynodError('SYNOD_STEP_LOCAL_MESSAGE', `cannot step local message ${message.type}`);
    if (isResponseMessage(message.type) && !this.#raft.tracker.progress.has(message.from)) {
      mark('response dropped: sender not a member');
      return;
    }
    this.#raft.step(message);
  }

  /** The transport failed to deliver to `id`: the leader stops streaming to it and probes. */
  reportUnreachable(id: NodeId): void {
    this.#raft.step(newMessage({ type: 'unreachable', to: this.id, from: id }));
  }

  /** The transport finished (or failed) sending a snapshot to `id`. */
  reportSnapshot(id: NodeId, outcome: 'finish' | 'failure'): void {
    this.#raft.step(newMessage({ type: 'snapshot-status', to: this.id, from: id, reject: outcome === 'failure' }));
  }

  /** Whether `ready()` has anything to hand out. */
  hasReady(): boolean {
    const r = this.#raft;
    if (this.#outstanding !== null) return false;
    if (r.msgs.length > 0 || r.readStates.length > 0) return true;
    if (r.readIndexRoundPending || r.appendBroadcastPending) return true;
    if (r.log.hasNextUnstableEntries() || r.log.unstable.nextSnapshot() !== null) return true;
    if (r.log.hasNextCommittedEntries()) return true;
    if (!softStateEqual(this.#softState(), this.#prevSoftState)) return true;
    return !hardStateEqual(this.#hardState(), this.#prevHardState);
  }

  /** Hands out the next batch of work. Only one Ready may be outstanding: `advance` it first. */
  ready(): Ready {
    assert(this.#outstanding === null, 'ready() called again before advance()');
    const r = this.#raft;
    this.#flushBatches();
    const softState = this.#softState();
    const hardState = this.#hardState();
    const hardStateChanged = !hardStateEqual(hardState, this.#prevHardState);
    const entries = r.log.nextUnstableEntries();
    const committedEntries = r.log.nextCommittedEntries();
    const { earlyMessages, messages } = this.#splitMessages(r.msgs);
    const rd: Ready = {
      softState: softStateEqual(softState, this.#prevSoftState) ? null : softState,
      hardState: hardStateChanged ? hardState : null,
      entries,
      snapshot: r.log.unstable.nextSnapshot(),
      committedEntries,
      earlyMessages,
      messages,
      readStates: r.readStates,
      mustSync: entries.length > 0 || hardState.term !== this.#prevHardState.term || hardState.vote !== this.#prevHardState.vote,
    };
    r.msgs = [];
    r.readStates = [];
    r.log.unstable.acceptInProgress();
    if (committedEntries.length > 0) r.log.acceptApplying(committedEntries[committedEntries.length - 1]!.index);
    this.#prevSoftState = softState;
    this.#prevHardState = hardState;
    this.#outstanding = rd;
    return rd;
  }

  /** Sends what proposals and reads since the last Ready have batched up. */
  #flushBatches(): void {
    const r = this.#raft;
    if (r.appendBroadcastPending) {
      r.appendBroadcastPending = false;
      if (r.role === 'leader') bcastAppend(r);
    }
    if (r.readIndexRoundPending) {
      r.readIndexRoundPending = false;
      if (r.role === 'leader') bcastHeartbeat(r, null);
    }
  }

  #splitMessages(msgs: readonly Message[]): { earlyMessages: Message[]; messages: Message[] } {
    const earlyMessages: Message[] = [];
    const messages: Message[] = [];
    const durableTerm = this.#durableHardState.term;
    const ackBeforePersist = this.#raft.bug('ack-before-persist');
    for (const m of msgs) {
      const early = m.term === 0 || (earlyTypes.has(m.type) && m.term === durableTerm) || (ackBeforePersist && m.type === 'app-resp');
      (early ? earlyMessages : messages).push(m);
    }
    return { earlyMessages, messages };
  }

  /** Reports that `ready` was handled: persisted, sent and applied. */
  advance(ready: Ready): void {
    assert(ready === this.#outstanding, 'advance() of a Ready that is not the outstanding one');
    this.#outstanding = null;
    const r = this.#raft;
    if (ready.snapshot !== null) {
      r.log.unstable.stableSnapTo(ready.snapshot.metadata.index);
      r.log.appliedTo(ready.snapshot.metadata.index);
    }
    if (ready.entries.length > 0) {
      const last = ready.entries[ready.entries.length - 1]!;
      r.log.unstable.stableTo(last.index, last.term);
    }
    if (ready.hardState !== null) this.#durableHardState = ready.hardState;
    if (ready.committedEntries.length > 0) this.#onApplied(ready.committedEntries);
    if (r.role === 'leader') this.#selfAcknowledge();
  }

  #onApplied(entries: readonly Entry[]): void {
    const r = this.#raft;
    let bytes = 0;
    for (const entry of entries) {
      bytes += entry.data.length;
      if (entry.type === 'conf-change') this.#applyConfChangeEntry(entry);
    }
    r.log.appliedTo(entries[entries.length - 1]!.index);
    if (r.role === 'leader') r.uncommittedBytes = Math.max(0, r.uncommittedBytes - bytes);
  }

  /** The leader counts its own log toward commit only once durable (thesis §10.2.1). */
  #selfAcknowledge(): void {
    const r = this.#raft;
    const self = r.tracker.progress.get(r.id);
    if (self === undefined) return;
    if (self.maybeUpdate(r.log.durableLastIndex()) && r.maybeCommit()) {
      releasePendingReadIndexMessages(r);
      bcastAppend(r);
    }
  }

  #applyConfChangeEntry(entry: Entry): void {
    const r = this.#raft;
    let change: ConfChange;
    try {
      change = decodeConfChange(entry.data);
    } catch {
      mark('conf change skipped: malformed');
      return;
    }
    if (!applyConfChange(r.tracker, change, r.log.lastIndex() + 1)) {
      mark('conf change skipped: would remove all voters');
      return;
    }
    if (r.leadTransferee === change.nodeId && change.type !== 'add-voter') r.leadTransferee = noneId;
    if (r.role !== 'leader') return;
    if (!r.tracker.voters.has(r.id)) {
      this.#stepDownAfterRemoval();
      return;
    }
    // The quorum changed: the commit index may move. Otherwise only new peers need a probe.
    if (r.maybeCommit()) {
      releasePendingReadIndexMessages(r);
      bcastAppend(r);
    } else {
      for (const id of r.tracker.membersSorted()) if (id !== r.id) maybeSendAppend(r, id, { sendIfEmpty: false });
    }
  }

  /** A leader removed (or demoted) hands off to the most caught-up voter and steps down (thesis §4.2.2). */
  #stepDownAfterRemoval(): void {
    const r = this.#raft;
    mark('leader removed: stepping down');
    let best: NodeId = noneId;
    let bestMatch = -1;
    for (const id of r.tracker.votersSorted()) {
      const match = r.tracker.progress.get(id)!.match;
      if (match > bestMatch) {
        best = id;
        bestMatch = match;
      }
    }
    if (best !== noneId && bestMatch === r.log.lastIndex()) sendTimeoutNow(r, best);
    r.becomeFollower(r.term, noneId);
  }

  /** A snapshot of the node's state for drivers, operators and checks. */
  status(): Status {
    const r = this.#raft;
    let progress: Map<NodeId, ReturnType<NonNullable<Status['progress']>['get']> & object> | null = null;
    if (r.role === 'leader') {
      progress = new Map();
      for (const [id, p] of r.tracker.progress) progress.set(id, p.toStatus());
    }
    return {
      id: r.id,
      term: r.term,
      vote: r.vote,
      commit: r.log.committed,
      applied: r.log.applied,
      lastIndex: r.log.lastIndex(),
      role: r.role,
      leader: r.leader,
      leadTransferee: r.leadTransferee,
      confState: r.tracker.confState(),
      progress,
    };
  }

  #softState(): SoftState {
    return { leader: this.#raft.leader, role: this.#raft.role };
  }

  #hardState(): HardState {
    return { term: this.#raft.term, vote: this.#raft.vote, commit: this.#raft.log.committed };
  }
}

function softStateEqual(a: SoftState, b: SoftState): boolean {
  return a.leader === b.leader && a.role === b.role;
}

function hardStateEqual(a: HardState, b: HardState): boolean {
  return a.term === b.term && a.vote === b.vote && a.commit === b.commit;
}
