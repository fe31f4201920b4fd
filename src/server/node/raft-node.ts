/**
 * `RaftNode`: the driver loop of one Synod member. It owns the consensus core (`RawNode`) and runs
 * it over real I/O: the durable log (`RaftLogStore`), the KV state machine, the watch hub and a
 * transport. It handles one `Ready` at a time in the order src/raft/ready.ts states: early
 * messages, persist, messages, install the snapshot and apply committed entries, serve read states,
 * `advance`. Ticks, peers' messages, proposals and reads are stepped into the core at once, also
 * while a persist is awaited; the loop picks up their effects in the next Ready.
 *
 * Proposals. `propose` tags the command with a request id (proposal-codec.ts) and waits until
 * *this* member applies the entry with that id. On a follower the core forwards the proposal to the
 * leader; the follower applies every committed entry, so its waiter resolves when the entry reaches
 * it. When leadership changes, pending proposals keep waiting, as in etcd: an entry appended under
 * the old leader may still be committed by the new one, so failing it early could report a write
 * as failed that later applies. A proposal that is lost (overwritten by a new leader, or forwarded
 * to a leader that died) fails after `requestTimeoutMs` with an outcome-unknown error.
 *
 * Time. Everything is counted in ticks of `tickIntervalMs`: elections, heartbeats and request
 * timeouts (`ceil(requestTimeoutMs / tickIntervalMs)` ticks). Ticks come from an injected
 * `TickScheduler`, or from calls to `tick()` (`ticker: 'manual'`, for tests and the simulator).
 */

import { assert, isSynodError, mark, SynodError } from '../../base/index.js';
import type { ApplyResult, Command, KvStateMachine, WatchHub } from '../../kv/index.js';
import { KvStateMachine as KvStateMachineClass } from '../../kv/index.js';
import { RawNode } from '../../raft/index.js';
import type {
  ConfChange, ConfState, Entry, Message, NodeId, Ready, Role, Snapshot, SoftState,
} from '../../raft/index.js';
import { snapshotDataBytesMax, type RaftLogStore } from '../../storage/index.js';
import { ReadyPersister } from './ready-persister.js';
import { deferred, rethrowLater, type Deferred } from './deferred.js';
import {
  leaderChangedDuringRead, nodeStopped, requestTimedOut, tooManyProposals, tooManyReads,
} from './node-errors.js';
import {
  decodeProposal, encodeProposal, proposalOfEntry, RequestIdGenerator,
} from './proposal-codec.js';
import { ReadBatches } from './read-batches.js';
import {
  requestTimeoutMsDefault, snapshotCatchUpEntriesDefault, snapshotCountDefault, pendingProposalsMax,
  readWaitersMax, validateOptions, type NodeTimings, type RaftNodeOptions, type TickScheduler,
  type Transport,
} from './raft-node-options.js';

export {
  intervalTickScheduler, pendingProposalsMax, readWaitersMax, requestTimeoutMsDefault,
  snapshotCatchUpEntriesDefault, snapshotCountDefault, type NodeTimings, type RaftNodeOptions,
  type TickScheduler, type Transport,
} from './raft-node-options.js';

interface ProposalWaiter {
  readonly waiter: Deferred<ApplyResult>;
  readonly deadlineTick: number;
}

/** One Synod member's Raft loop. Single-threaded: every method runs on the event loop. */
export class RaftNode {
  readonly #raw: RawNode;
  readonly #store: RaftLogStore;
  readonly #persister: ReadyPersister;
  readonly #transport: Transport;
  readonly #ticker: 'manual' | TickScheduler;
  readonly #tickIntervalMs: number;
  readonly #requestTimeoutTicks: number;
  readonly #restore: (data: Uint8Array) => KvStateMachine;
  readonly #snapshotCount: number;
  readonly #snapshotCatchUpEntries: number;
  readonly #flushStateMachine: () => Promise<void>;
  #snapshotIndex: number;
  #snapshotting = false;
  readonly #onFatal: (error: unknown) => void;
  readonly #timings: NodeTimings | undefined;
  /** While set, committed entries wait in `#heldEntries` (`withAppliesHeld`). */
  #appliesHeld: Promise<void> | null = null;
  readonly #heldEntries: Entry[] = [];
  /** A hold ended: the loop applies what it held, even if no Ready is pending. */
  #heldReleased = false;
  readonly #ids: RequestIdGenerator;
  readonly #proposals = new Map<string, ProposalWaiter>();
  readonly #reads: ReadBatches;
  #machine: KvStateMachine;
  #watchHub: WatchHub | null;
  #appliedIndex: number;
  #term: number;
  #softState: SoftState = { leader: 0, role: 'follower' };
  #tickCount = 0;
  #cancelTicker: (() => void) | null = null;
  #started = false;
  #stopped = false;
  #failure: unknown = null;
  #draining = false;
  #drainDone: Promise<void> = Promise.resolve();
  #snapshotDone: Promise<void> = Promise.resolve();
  readonly #appliedListeners = new Set<(appliedIndex: number) => void>();
  readonly #softStateListeners = new Set<(softState: SoftState) => void>();

  /** Validates `options` (SYNOD_INVALID_CONFIG) and restarts the core from `options.store`. */
  constructor(options: RaftNodeOptions) {
    const requestTimeoutMs = options.requestTimeoutMs ?? requestTimeoutMsDefault;
    validateOptions(options, requestTimeoutMs);
    this.#store = options.store;
    this.#transport = options.transport;
    this.#ticker = options.ticker;
    this.#tickIntervalMs = options.tickIntervalMs;
    this.#requestTimeoutTicks = Math.ceil(requestTimeoutMs / options.tickIntervalMs);
    this.#restore = options.restoreStateMachine ?? ((data) => KvStateMachineClass.restore(data));
    this.#snapshotCount = options.snapshotCount ?? snapshotCountDefault;
    this.#snapshotCatchUpEntries = options.snapshotCatchUpEntries ?? snapshotCatchUpEntriesDefault;
    this.#flushStateMachine = options.flushStateMachine ?? (() => Promise.resolve());
    this.#snapshotIndex = options.store.snapshot().metadata.index;
    this.#onFatal = options.onFatal ?? rethrowLater;
    this.#timings = options.timings;
    this.#persister = new ReadyPersister(options.store, options.timings);
    this.#ids = new RequestIdGenerator({ memberId: options.id, random: options.random });
    const incarnation = `${options.id}.${options.random.nextUint32().toString(16)}`;
    this.#reads = new ReadBatches({ waitersMax: readWaitersMax, contextPrefix: incarnation });
    this.#machine = options.stateMachine;
    this.#watchHub = options.watchHub ?? null;
    // The core restarts from the stored snapshot, not from the state machine's applied index, so
    // it replays the membership changes committed since (etcd does the same); `#applyEntry` skips
    // the commands a durable state machine already holds.
    this.#appliedIndex = Math.min(this.#recoverStateMachine(), this.#store.snapshot().metadata.index);
    this.#term = this.#store.initialState().hardState.term;
    this.#raw = new RawNode({
      id: options.id,
      storage: options.store,
      random: options.random,
      electionTicks: options.electionTicks,
      heartbeatTicks: options.heartbeatTicks ?? 1,
      applied: this.#appliedIndex,
    });
  }

  /**
   * Brings the state machine up to where the log can continue it; returns the applied index. A
   * durable state machine normally resumes where it stopped; one that is behind the log's first
   * entry (fresh, or it lost unflushed applies) restarts from the stored snapshot.
   */
  #recoverStateMachine(): number {
    const applied = this.#machine.appliedIndex;
    if (applied + 1 >= this.#store.firstIndex()) return applied;
    const snapshot = this.#store.snapshot();
    assert(snapshot.metadata.index + 1 >= this.#store.firstIndex(), 'the snapshot covers the compacted log');
    this.#installSnapshot(snapshot);
    return snapshot.metadata.index;
  }

  /** This member's id. */
  get id(): NodeId {
    return this.#raw.id;
  }

  /** The known leader's id, or 0 when none is known. */
  get leaderId(): NodeId {
    return this.#softState.leader;
  }

  /** This member's role. */
  get role(): Role {
    return this.#softState.role;
  }

  /** Whether this member leads (as of the last Ready handled). */
  get isLeader(): boolean {
    return this.#softState.role === 'leader';
  }

  /** The current term, as last persisted. */
  get term(): number {
    return this.#term;
  }

  /** The Raft index of the last entry applied (no-ops and membership changes included). */
  get appliedIndex(): number {
    return this.#appliedIndex;
  }

  /** The current state machine. Reads go here; a snapshot install replaces it. */
  get stateMachine(): KvStateMachine {
    return this.#machine;
  }

  /** The watch hub fed by this node's applies, if one was given. */
  get watchHub(): WatchHub | null {
    return this.#watchHub;
  }

  /**
   * Calls `listener(appliedIndex)` after each batch of committed entries (or a snapshot) is applied,
   * once per Ready: the wake-up for watch streams and anything else that follows the state machine.
   * Returns the unsubscribe function. A listener must not throw.
   */
  onApplied(listener: (appliedIndex: number) => void): () => void {
    this.#appliedListeners.add(listener);
    return () => this.#appliedListeners.delete(listener);
  }

  /**
   * Calls `listener(softState)` whenever the known leader or this member's role changes (the lease
   * keeper refreshes lease deadlines when this member becomes leader). Returns the unsubscribe
   * function. A listener must not throw.
   */
  onSoftState(listener: (softState: SoftState) => void): () => void {
    this.#softStateListeners.add(listener);
    return () => this.#softStateListeners.delete(listener);
  }

  /**
   * Asks the leader (this member) to hand leadership to `transferee` (etcd's MoveLeader). Returns
   * at once; watch `leaderId` or `onSoftState` for the outcome. Ignored unless this member leads.
   */
  transferLeadership(transferee: NodeId): void {
    if (this.#stopped) return;
    this.#raw.transferLeader(transferee);
    this.#kick();
  }

  /** Tells the core that `peer` could not be reached, so the leader probes it again gently. */
  reportUnreachable(peer: NodeId): void {
    if (this.#stopped) return;
    this.#raw.reportUnreachable(peer);
  }

  /** Tells the core how sending a snapshot to `peer` ended (etcd's ReportSnapshot). */
  reportSnapshot(peer: NodeId, outcome: 'finish' | 'failure'): void {
    if (this.#stopped) return;
    this.#raw.reportSnapshot(peer, outcome);
    this.#kick();
  }

  /** The consensus core's status: the configuration, progress of peers on the leader, and more. */
  raftStatus(): ReturnType<RawNode['status']> {
    return this.#raw.status();
  }

  /** Starts ticking (unless manual) and handling Readies. Call once. */
  start(): void {
    assert(!this.#started, 'RaftNode started twice');
    this.#started = true;
    if (this.#ticker !== 'manual') {
      this.#cancelTicker = this.#ticker.schedule(() => this.tick(), this.#tickIntervalMs);
    }
    this.#kick();
  }

  /** Advances the logical clock one tick: elections, heartbeats, request timeouts. */
  tick(): void {
    if (this.#stopped) return;
    this.#raw.tick();
    this.#tickCount += 1;
    this.#expire();
    this.#kick();
  }

  /** Starts an election now (operators, tests, a single-member bootstrap). */
  campaign(): void {
    if (this.#stopped) return;
    this.#raw.campaign();
    this.#kick();
  }

  /** Steps a message from a peer. Messages arriving after `stop()` are dropped. */
  receive(message: Message): void {
    if (this.#stopped) return;
    this.#raw.step(message);
    this.#kick();
  }

  /**
   * Proposes `command`; resolves with its outcome once this member applies it. Rejects with
   * SYNOD_NO_LEADER or SYNOD_PROPOSAL_DROPPED (refused by the core, too many pending, timed out
   * with the outcome unknown, or the node stopped).
   */
  propose(command: Command): Promise<ApplyResult> {
    return this.#submit(command, (data) => this.#raw.propose(data));
  }

  /**
   * Proposes the membership change `change` (one server at a time, thesis §4.1) carrying
   * `command` — the member record change — as its context; resolves with the command's outcome
   * once this member applies the entry. Rejects as `propose`, or with
   * SYNOD_MEMBERSHIP_CHANGE_PENDING while the leader still applies an earlier change (or hands
   * over leadership).
   */
  proposeConfChange(change: ConfChange, command: Command): Promise<ApplyResult> {
    return this.#submit(command, (data) => this.#raw.proposeConfChange({ ...change, context: data }), {
      refused: (error) => (error.code === 'SYNOD_PROPOSAL_DROPPED' ? new SynodError('SYNOD_MEMBERSHIP_CHANGE_PENDING') : error),
    });
  }

  /**
   * Tags `command` with a request id, hands the encoded proposal to `step` (which steps it into
   * the core) and waits for it to apply; a refusal by the core rejects at once (through
   * `options.refused`, which may name it better).
   */
  #submit(
    command: Command,
    step: (data: Uint8Array) => void,
    options: { readonly refused?: (error: SynodError) => SynodError } = {},
  ): Promise<ApplyResult> {
    if (this.#stopped) return Promise.reject(nodeStopped());
    if (this.#proposals.size >= pendingProposalsMax) {
      mark('proposal rejected: pendingProposalsMax');
      return Promise.reject(tooManyProposals());
    }
    const { header, requestId } = this.#ids.next();
    try {
      step(encodeProposal(header, command));
    } catch (error) {
      if (!isSynodError(error)) throw error;
      return Promise.reject(options.refused?.(error) ?? error);
    }
    const waiter = deferred<ApplyResult>();
    const deadlineTick = this.#tickCount + this.#requestTimeoutTicks;
    this.#proposals.set(requestId, { waiter, deadlineTick });
    this.#kick();
    return waiter.promise;
  }

  /**
   * Waits until a read of the state machine is linearizable (ReadIndex, thesis §6.4) and resolves
   * with the read index. Callers arriving together share one request (read-batches.ts). Rejects
   * with SYNOD_NO_LEADER (none known, or it changed), SYNOD_READ_INDEX_BUSY, or as `propose`.
   */
  linearizableRead(): Promise<number> {
    if (this.#stopped) return Promise.reject(nodeStopped());
    const read = this.#reads.join(this.#tickCount + this.#requestTimeoutTicks);
    if (read === null) return Promise.reject(tooManyReads());
    this.#kick();
    return read;
  }

  /** Proposals waiting for their entry to apply on this member (etcd_server_proposals_pending). */
  get pendingProposals(): number {
    return this.#proposals.size;
  }

  /** Whether a Ready is being handled (or about to be). */
  get busy(): boolean {
    return this.#draining;
  }

  /** Resolves when no Ready is being handled or snapshot taken (for tests and shutdown). */
  async idle(): Promise<void> {
    while (this.#draining || this.#snapshotting) {
      await this.#drainDone;
      await this.#snapshotDone;
    }
  }

  /**
   * Stops ticking and stepping, rejects every waiter (the node-stopped error), and waits for the
   * Ready in flight to be persisted and advanced. Does not close the store, which the caller owns.
   * Rejects with the loop's failure, if it failed.
   */
  async stop(): Promise<void> {
    if (!this.#stopped) this.#halt(nodeStopped());
    await this.idle();
    if (this.#failure !== null) throw this.#failure;
    await this.#persister.flush();
  }

  #halt(error: SynodError): void {
    this.#stopped = true;
    this.#cancelTicker?.();
    this.#cancelTicker = null;
    for (const { waiter } of this.#proposals.values()) waiter.reject(error);
    this.#proposals.clear();
    this.#reads.failAll(error);
  }

  #expire(): void {
    const tick = this.#tickCount;
    // Insertion order is deadline order: every proposal waits the same number of ticks.
    for (const [requestId, { waiter, deadlineTick }] of this.#proposals) {
      if (deadlineTick > tick) break;
      this.#proposals.delete(requestId);
      waiter.reject(requestTimedOut('proposal'));
    }
    this.#reads.expire(tick, () => requestTimedOut('read'));
  }

  #kick(): void {
    if (!this.#started || this.#stopped || this.#draining) return;
    if (!this.#reads.hasOpen && !this.#raw.hasReady() && !this.#heldReleased) return;
    this.#draining = true;
    this.#drainDone = this.#drain().then(
      () => {
        this.#draining = false;
        // A proposal or read that arrived after the loop last looked, but before this
        // continuation ran, found `#draining` set and did not start a loop: look again.
        this.#kick();
      },
      (error: unknown) => {
        this.#draining = false;
        this.#fail(error);
      },
    );
  }

  /** Handles Readies one at a time until none is pending. Exactly one Ready is outstanding. */
  async #drain(): Promise<void> {
    // Let the current turn's proposals and reads batch into one Ready and one read request.
    await Promise.resolve();
    while (!this.#stopped) {
      this.#submitRead();
      if (this.#heldReleased) {
        this.#heldReleased = false;
        this.#applyCommitted([]);
      }
      if (!this.#raw.hasReady()) return;
      const ready = this.#raw.ready();
      await this.#handleReady(ready);
      this.#raw.advance(ready);
      // After advance: the core has applied this Ready's membership changes, so its
      // configuration is the one at the applied index.
      this.#maybeSnapshot();
    }
  }

  #submitRead(): void {
    const context = this.#reads.submitOpen();
    if (context === null) return;
    try {
      this.#raw.readIndex(context);
    } catch (error) {
      if (!isSynodError(error)) throw error;
      this.#reads.failSubmitted(context, error);
    }
  }

  /** Steps 1–5 of the Ready contract (src/raft/ready.ts); the caller advances. */
  async #handleReady(ready: Ready): Promise<void> {
    if (ready.softState !== null) this.#onSoftState(ready.softState);
    if (ready.earlyMessages.length > 0) this.#transport.send(ready.earlyMessages);
    await this.#persister.persist(ready);
    if (ready.hardState !== null) this.#term = ready.hardState.term;
    if (ready.messages.length > 0) this.#transport.send(ready.messages);
    if (ready.snapshot !== null) {
      // A snapshot replaces the state machine's storage: never under a hold's body.
      while (this.#appliesHeld !== null) await this.#appliesHeld;
      this.#applyCommitted([]);
      this.#installSnapshot(ready.snapshot);
      this.#appliedIndex = ready.snapshot.metadata.index;
    }
    for (const readState of ready.readStates) this.#reads.onReadState(readState);
    this.#applyCommitted(ready.committedEntries, ready.snapshot !== null);
  }

  /**
   * Applies `entries` after any held back, or holds them too while applies are held. One backend
   * commit for the whole batch (etcd's batch transaction): every entry is already durable in the
   * Raft log, which replays whatever a crash drops from the batch.
   */
  #applyCommitted(entries: readonly Entry[], snapshotInstalled = false): void {
    if (this.#appliesHeld !== null) {
      this.#heldEntries.push(...entries);
      this.#reads.onApplied(this.#appliedIndex);
      return;
    }
    const batch = this.#heldEntries.length === 0 ? entries : [...this.#heldEntries.splice(0), ...entries];
    if (batch.length > 0) {
      const startedMs = performance.now();
      this.#machine.batch(() => {
        for (const entry of batch) this.#applyEntry(entry);
      });
      this.#timings?.applied((performance.now() - startedMs) / 1000);
    }
    this.#reads.onApplied(this.#appliedIndex);
    if (snapshotInstalled || batch.length > 0) {
      for (const listener of this.#appliedListeners) listener(this.#appliedIndex);
    }
  }

  /**
   * Runs `body` with applies held: Readies are still persisted and their messages sent, so this
   * member keeps its place (and its leadership) in the cluster, but committed entries wait and the
   * state machine's storage does not change until `body` settles (Maintenance.Defragment copies
   * it meanwhile). Reads of applied state go on; proposals, and linearizable reads whose index is
   * not applied yet, wait for the release, as do snapshots to install. One hold at a time.
   */
  async withAppliesHeld<T>(body: () => Promise<T>): Promise<T> {
    assert(this.#appliesHeld === null, 'one apply hold at a time');
    const released = deferred<void>();
    this.#appliesHeld = released.promise;
    try {
      return await body();
    } finally {
      this.#appliesHeld = null;
      released.resolve();
      this.#heldReleased = true;
      this.#kick();
    }
  }

  #onSoftState(softState: SoftState): void {
    if (softState.leader !== this.#softState.leader) {
      // Read requests in flight to the old leader are dropped by the core; fail them fast.
      this.#reads.failUnconfirmed(leaderChangedDuringRead());
    }
    this.#softState = softState;
    for (const listener of this.#softStateListeners) listener(softState);
  }

  /**
   * Applies one committed entry. Empty normal entries are a new leader's no-op; membership changes
   * are applied by the core in `advance`. Entries a durable state machine already holds are
   * skipped.
   */
  #applyEntry(entry: Entry): void {
    assert(entry.index === this.#appliedIndex + 1, 'committed entries apply in order, no gaps');
    this.#appliedIndex = entry.index;
    const proposal = proposalOfEntry(entry);
    if (proposal === undefined || proposal.length === 0) return;
    if (entry.index <= this.#machine.appliedIndex) return;
    this.#applyProposal(entry.index, proposal);
  }

  /** Applies one proposal's command at `index` and answers its waiter, if this member has it. */
  #applyProposal(index: number, data: Uint8Array): void {
    const { requestId, command } = decodeProposal(data);
    const result = this.#machine.apply(command, { raftIndex: index });
    this.#watchHub?.notify(result.events, this.#machine.store.currentRevision);
    const proposal = this.#proposals.get(requestId);
    if (proposal === undefined) return;
    this.#proposals.delete(requestId);
    proposal.waiter.resolve(result);
  }

  /**
   * Replaces the state machine with the snapshot's. Watchers carry on over the new store: the hub
   * moves them to its unsynced group to catch up from the new history (or cancels those whose
   * next revision was compacted away), as etcd does after restoring a snapshot.
   */
  #installSnapshot(snapshot: Snapshot): void {
    this.#machine = this.#restore(snapshot.data);
    this.#watchHub?.replaceStore(this.#machine.store);
  }

  /**
   * Every `snapshotCount` applied entries: serializes the state machine at the applied index,
   * records it as the log's snapshot, then compacts the log to `snapshotCatchUpEntries` behind it.
   * Runs beside the loop (one at a time); the state is captured synchronously, so later applies
   * do not leak into it. A snapshot too large for the store is skipped, and the log kept.
   */
  #maybeSnapshot(): void {
    const index = this.#appliedIndex;
    if (this.#snapshotting || index - this.#snapshotIndex < this.#snapshotCount) return;
    const data = this.#machine.serialize();
    if (data.length > snapshotDataBytesMax) {
      mark('snapshot skipped: beyond snapshotDataBytesMax');
      this.#snapshotIndex = index;
      return;
    }
    const { voters, learners } = this.#raw.status().confState;
    this.#snapshotting = true;
    this.#snapshotDone = this.#snapshot(index, { voters, learners }, data).then(
      () => {
        this.#snapshotting = false;
      },
      (error: unknown) => {
        this.#snapshotting = false;
        this.#fail(error);
      },
    );
  }

  async #snapshot(index: number, confState: ConfState, data: Uint8Array): Promise<void> {
    try {
      await this.#store.createSnapshot(index, confState, data);
    } catch (error) {
      // A snapshot received from the leader meanwhile is newer; keep it.
      if (!isSynodError(error, 'SYNOD_SNAPSHOT_OUT_OF_DATE')) throw error;
      return;
    }
    this.#snapshotIndex = index;
    mark('snapshot created');
    const compactIndex = index - this.#snapshotCatchUpEntries;
    if (compactIndex < this.#store.firstIndex()) return;
    await this.#flushStateMachine();
    try {
      await this.#store.compact(compactIndex);
    } catch (error) {
      if (!isSynodError(error, 'SYNOD_LOG_COMPACTED')) throw error;
    }
  }

  #fail(error: unknown): void {
    if (this.#failure !== null) return;
    this.#failure = error;
    if (!this.#stopped) this.#halt(nodeStopped());
    this.#onFatal(error);
  }
}
