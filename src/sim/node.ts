/**
 * One simulated server: a `RawNode`, its disk (a `MemoryStorage` that survives crashes) and its
 * key-value state machine (which does not). The driver loop follows the Ready contract of
 * src/raft/ready.ts step by step, and between those steps is where crashes strike: after receiving
 * a Ready, after sending its early messages, after persisting, after sending, after applying. A
 * failed disk write crashes the node before it sends `messages`. A crash loses the RawNode, its
 * unpersisted entries, the state machine and every client operation the node was holding.
 */

import { assert, isSynodError, type SeededRandom } from '../base/index.js';
import type { KvResult } from '../check/index.js';
import {
  MemoryStorage,
  RawNode,
  decodeConfChange,
  type ConfChange,
  type ConfState,
  type Entry,
  type HardState,
  type Message,
  type NodeId,
  type Ready,
  type Role,
  type Status,
} from '../raft/index.js';
import type { SafetyChecker } from './invariants.js';
import type { RaftSettings } from './scenario.js';
import { tickSteps } from './scenario.js';
import { PendingOperations, readContext, type PendingOperation } from './pending-operations.js';
import {
  KvStateMachine,
  decodeCommand,
  encodeCommand,
  type Command,
  type KvCommand,
} from './state-machine.js';
import type { SimStats } from './stats.js';
import type { Trace } from './trace.js';

/** Where in the handling of a Ready a crash strikes. */
export type ReadyCrashPoint =
  'after-ready' | 'after-early' | 'after-persist' | 'after-send' | 'after-apply';

/** What a node needs from the simulated world. */
export interface NodeEnvironment {
  readonly trace: Trace;
  readonly checker: SafetyChecker;
  readonly stats: SimStats;
  send(from: SimNode, messages: readonly Message[]): void;
  /** Where this Ready's handling crashes, or null for nowhere. */
  readyCrashPoint(node: SimNode): ReadyCrashPoint | null;
  /** Of a durable write of `records` records, how many land before it fails; null: it succeeds. */
  diskFailure(node: SimNode, records: number): number | null;
  /** `node` answers a client operation it was holding. */
  respond(node: SimNode, operation: PendingOperation, result: KvResult): void;
  /**
   * The node went down (`crash`: a fault, it will restart; `stop`: removed from the cluster)
   * holding `operations`, whose clients will never hear back.
   */
  nodeDown(node: SimNode, kind: 'crash' | 'stop', operations: readonly PendingOperation[]): void;
  /** The first apply, anywhere, of the conf change at `index`. */
  confChangeApplied(change: ConfChange, index: number): void;
  probeApplied(node: SimNode, probeId: number): void;
  /** `node` just became leader of its current term. */
  leaderElected(node: SimNode): void;
  /** The first apply, anywhere, of a client operation, and the result it had. */
  operationApplied(command: KvCommand, result: KvResult): void;
}

/** The per-node settings of a run. */
export interface NodeSettings {
  readonly raft: RaftSettings;
  /** The membership every node's disk starts with (the log's index 0). */
  readonly initialConfState: ConfState;
  /** Ticks per reference tick (clock drift). */
  readonly clockRate: number;
  readonly snapshotEntries: number;
  readonly compactKeepEntries: number;
}

/** Readies handled back to back at most; more means the driver and core are looping. */
const readyRoundsMax = 1000;

/** One server of the simulated cluster. */
export class SimNode {
  readonly id: NodeId;
  /** The disk: survives crashes, replaced only by a wipe. */
  storage: MemoryStorage;
  /** Starts of this node so far (restarts included). */
  incarnation = 0;
  /** Role, leader and term as of the last Ready (the core reports changes there). */
  role: Role = 'follower';
  leader: NodeId = 0;
  term = 0;
  readonly #settings: NodeSettings;
  readonly #random: SeededRandom;
  #raw: RawNode | null = null;
  #machine = new KvStateMachine();
  #applied = 0;
  /** Sub-tick clock: a tick fires each time it passes `tickSteps`. */
  #clock = 0;
  readonly #pending = new PendingOperations();
  /** A commit-only hard state not yet on disk (lost in a crash); see `#persist`. */
  #unwrittenHardState: HardState | null = null;

  constructor(id: NodeId, settings: NodeSettings, random: SeededRandom) {
    this.id = id;
    this.#settings = settings;
    this.#random = random;
    this.storage = MemoryStorage.bootstrap(settings.initialConfState);
  }

  /** Whether the node is up. */
  get running(): boolean {
    return this.#raw !== null;
  }

  /** The index the state machine has applied (0 while down). */
  get applied(): number {
    return this.#applied;
  }

  /** The core's status, or null while down. */
  status(): Status | null {
    return this.#raw?.status() ?? null;
  }

  /** Starts (or restarts) from the disk: the state machine from its snapshot, then log replay. */
  start(env: NodeEnvironment): void {
    assert(this.#raw === null, `node ${this.id} started twice`);
    const snapshot = this.storage.snapshot();
    this.#machine = KvStateMachine.restore(snapshot.data);
    this.#applied = snapshot.metadata.index;
    this.#raw = new RawNode({
      ...this.#settings.raft,
      id: this.id,
      storage: this.storage,
      random: this.#random.fork(),
      applied: this.#applied,
    });
    this.incarnation++;
    this.role = 'follower';
    this.leader = 0;
    this.term = this.storage.initialState().hardState.term;
    this.#clock = this.#random.int(tickSteps);
    env.checker.onRestart(this.id, this.storage);
    if (snapshot.metadata.index > 0) {
      const stateHash = this.#machine.stateHash();
      env.checker.onSnapshotInstalled({ id: this.id, metadata: snapshot.metadata, stateHash });
    }
    env.trace.event('start', [this.id, this.incarnation, this.#applied], () => {
      const from = `snapshot ${this.#applied}, term ${this.term}`;
      return `n${this.id} start #${this.incarnation} from ${from}`;
    });
  }

  /** Loses everything volatile; the disk stays. `stop` is a shutdown after removal, not a fault. */
  crash(env: NodeEnvironment, reason: string, kind: 'crash' | 'stop' = 'crash'): void {
    assert(this.#raw !== null, `node ${this.id} crashed while down`);
    env.checker.onCrash({ id: this.id, applied: this.#applied });
    const lost = this.#pending.takeAll();
    this.#raw = null;
    this.#unwrittenHardState = null;
    this.#machine = new KvStateMachine();
    this.#applied = 0;
    env.trace.event(kind, [this.id], () => {
      return `n${this.id} ${kind} (${reason}), ${lost.length} client operations lost`;
    });
    env.nodeDown(this, kind, lost);
  }

  /**
   * Empties the disk of a removed node before it is added back under its old id, keeping only its
   * term and vote: a node must never vote twice in one term, whatever happened to its log.
   *
   * The fresh log starts, like every node's, from the initial membership at index 0, so replaying
   * the leader's log from index 1 rebuilds the true membership; but with this node left out of it.
   * Until it has replayed its own addition it knows it is no voter, so it cannot campaign on a
   * stale membership (with other fresh nodes it could otherwise win a majority of the initial
   * voters, a rogue cluster). Leaving itself out changes nothing once any change about it applies.
   */
  wipe(env: NodeEnvironment): void {
    assert(this.#raw === null, `node ${this.id} wiped while running`);
    const { term, vote } = this.storage.initialState().hardState;
    const initial = this.#settings.initialConfState;
    this.storage = MemoryStorage.bootstrap({
      voters: initial.voters.filter((id) => id !== this.id),
      learners: initial.learners.filter((id) => id !== this.id),
    });
    const hardState = { term, vote, commit: 0 };
    this.storage.setHardState(hardState);
    env.checker.onWipe({ id: this.id, hardState });
  }

  /** Hands a client operation to the core. Returns false if refused at once (never invoked). */
  submit(operation: PendingOperation): boolean {
    assert(this.#raw !== null, `operation submitted to node ${this.id} while down`);
    if (operation.readIndex) {
      if (!this.#tryCore((raw) => raw.readIndex(readContext(operation)))) return false;
      this.#pending.addRead(operation);
    } else {
      if (!this.#tryCore((raw) => raw.propose(encodeCommand(operation.command)))) return false;
      this.#pending.addProposed(operation);
    }
    return true;
  }

  /** Proposes a liveness probe; false if refused. */
  proposeProbe(probeId: number): boolean {
    return this.#tryCore((raw) => raw.propose(encodeCommand({ kind: 'probe', probeId })));
  }

  /** Proposes a membership change; false if refused. */
  proposeConfChange(change: ConfChange): boolean {
    return this.#tryCore((raw) => raw.proposeConfChange(change));
  }

  /** Asks this node (a leader) to hand leadership to `transferee`. */
  transferLeader(transferee: NodeId): void {
    this.#raw?.transferLeader(transferee);
  }

  /** Runs `action` on the core; false when the node is down or the core refuses (a SynodError). */
  #tryCore(action: (raw: RawNode) => void): boolean {
    if (this.#raw === null) return false;
    try {
      action(this.#raw);
      return true;
    } catch (error) {
      if (isSynodError(error)) return false;
      throw error;
    }
  }

  /** Delivers a message from the network. */
  step(message: Message): void {
    assert(this.#raw !== null, `message delivered to node ${this.id} while down`);
    this.#raw.step(message);
  }

  /** The transport reports a message to `to` undeliverable (the leader then probes). */
  reportUnreachable(to: NodeId): void {
    this.#raw?.reportUnreachable(to);
  }

  /** The transport reports how sending a snapshot to `to` ended. */
  reportSnapshot(to: NodeId, outcome: 'finish' | 'failure'): void {
    this.#raw?.reportSnapshot(to, outcome);
  }

  /** Advances the node's own clock by one step; ticks the core when a tick is due. */
  advanceClock(): void {
    if (this.#raw === null) return;
    this.#clock += this.#settings.clockRate;
    while (this.#clock >= tickSteps && this.#raw !== null) {
      this.#clock -= tickSteps;
      this.#raw.tick();
    }
  }

  /** Handles Readies until the core has nothing more (or the node crashes). */
  handleReadies(env: NodeEnvironment): void {
    for (let rounds = 0; this.#raw !== null && this.#raw.hasReady(); rounds++) {
      assert(rounds < readyRoundsMax, `node ${this.id} produced ${rounds} Readies in a row`);
      this.#handleReady(this.#raw, env);
    }
  }

  /** One Ready, in the order src/raft/ready.ts prescribes, with a crash possible between steps. */
  #handleReady(raw: RawNode, env: NodeEnvironment): void {
    const rd = raw.ready();
    this.#observe(rd, env);
    const crashPoint = env.readyCrashPoint(this);
    const crashIf = (point: ReadyCrashPoint): boolean => {
      if (crashPoint !== point) return false;
      env.stats.readyCrashes++;
      this.crash(env, `${point} of a Ready`);
      return true;
    };
    if (crashIf('after-ready')) return;
    env.send(this, rd.earlyMessages);
    if (crashIf('after-early')) return;
    if (!this.#persist(rd, env)) return;
    if (crashIf('after-persist')) return;
    env.send(this, rd.messages);
    if (crashIf('after-send')) return;
    this.#apply(rd, env);
    if (crashIf('after-apply')) return;
    raw.advance(rd);
    this.#maybeSnapshot(raw, env);
  }

  /** Role and term changes; a new leader is checked for election safety and completeness. */
  #observe(rd: Ready, env: NodeEnvironment): void {
    const previousRole = this.role;
    const previousTerm = this.term;
    if (rd.hardState !== null) {
      this.term = rd.hardState.term;
      env.checker.onHardState(this.id, rd.hardState);
    }
    if (rd.softState !== null) {
      this.role = rd.softState.role;
      this.leader = rd.softState.leader;
    }
    if (this.role !== 'leader') return;
    if (previousRole === 'leader' && previousTerm === this.term) return;
    env.stats.elections++;
    env.trace.event('leader', [this.id, this.term], () => {
      return `n${this.id} became leader of term ${this.term}`;
    });
    const termAt = (index: number): number | null => this.#termAt(rd, index);
    const snapshot = this.storage.snapshot().metadata;
    env.checker.onBecameLeader({ id: this.id, term: this.term, termAt, snapshot });
    env.leaderElected(this);
  }

  /** The term of the entry at `index` in the node's whole log: the disk plus `rd.entries`. */
  #termAt(rd: Ready, index: number): number | null {
    const first = rd.entries[0]?.index;
    if (first !== undefined && index >= first) {
      return index - first < rd.entries.length ? rd.entries[index - first]!.term : null;
    }
    if (index < this.storage.firstIndex() - 1 || index > this.storage.lastIndex()) return null;
    return this.storage.term(index);
  }

  /**
   * Step 2 of the contract. Returns false when the disk failed (the node has crashed). As the
   * server's ReadyPersister does, a hard state that only raises the commit index is held in memory
   * until the next write that must be durable, so a crash may lose it.
   */
  #persist(rd: Ready, env: NodeEnvironment): boolean {
    const deferVoteSync = this.#settings.raft.plantedBug === 'defer-vote-sync';
    const commitOnly = deferVoteSync ? rd.entries.length === 0 : !rd.mustSync;
    if (commitOnly && rd.snapshot === null) {
      if (rd.hardState !== null) this.#unwrittenHardState = rd.hardState;
      return true;
    }
    const latestHardState = rd.hardState ?? this.#unwrittenHardState;
    this.#unwrittenHardState = null;
    const snapshotRecords = rd.snapshot === null ? 0 : 1;
    const records = snapshotRecords + rd.entries.length + (latestHardState === null ? 0 : 1);
    if (records === 0) return true;
    const landed = env.diskFailure(this, records);
    // A failed write may still have landed a prefix of its records (a torn write): nothing in it
    // was acknowledged, so Raft must cope with any prefix.
    let budget = landed ?? records;
    if (rd.snapshot !== null && budget > 0) {
      this.storage.applySnapshot(rd.snapshot);
      budget--;
    }
    const entries =
      budget >= rd.entries.length ? rd.entries : rd.entries.slice(0, Math.max(0, budget));
    this.storage.append(entries);
    budget -= entries.length;
    const hardState = budget > 0 ? latestHardState : null;
    if (hardState !== null) this.storage.setHardState(hardState);
    env.checker.onPersist(this.id, this.storage, entries, hardState);
    if (landed === null) return true;
    env.stats.diskFailures++;
    this.crash(env, `disk write failed after ${landed} of ${records} records`);
    return false;
  }

  /** Steps 4 and 5: install the snapshot, apply committed entries, serve confirmed reads. */
  #apply(rd: Ready, env: NodeEnvironment): void {
    if (rd.snapshot !== null) {
      this.#machine = KvStateMachine.restore(rd.snapshot.data);
      this.#applied = rd.snapshot.metadata.index;
      env.stats.snapshotsInstalled++;
      const stateHash = this.#machine.stateHash();
      env.checker.onSnapshotInstalled({ id: this.id, metadata: rd.snapshot.metadata, stateHash });
      env.trace.event('install', [this.id, this.#applied], () => {
        return `n${this.id} installed snapshot ${this.#applied}`;
      });
    }
    for (const entry of rd.committedEntries) this.#applyEntry(entry, env);
    for (const readState of rd.readStates)
      this.#pending.confirmRead(readState.context, readState.index);
    for (const operation of this.#pending.takeServable(this.#applied)) {
      env.stats.readIndexReads++;
      env.respond(this, operation, {
        kind: 'get',
        value: this.#machine.get(operation.command.key),
      });
    }
  }

  #applyEntry(entry: Entry, env: NodeEnvironment): void {
    if (entry.index !== this.#applied + 1) {
      env.checker.report(
        'apply order',
        `node ${this.id} applied index ${entry.index} after ${this.#applied}`,
      );
    }
    this.#applied = entry.index;
    const change = entry.type === 'conf-change' ? decodeConfChange(entry.data) : null;
    const command = entry.type === 'normal' ? decodeCommand(entry.data) : null;
    const result = command?.kind === 'kv' ? this.#applyCommand(command, env) : null;
    env.trace.event('apply', [this.id, entry.index], () => {
      const what = change !== null ? `${change.type} ${change.nodeId}` : describeCommand(command);
      return `n${this.id} applied ${entry.index}/${entry.term}: ${what}`;
    });
    const stateHash = this.#machine.stateHash();
    const first = env.checker.onApply({ id: this.id, entry, nodeTerm: this.term, stateHash });
    if (first && change !== null) env.confChangeApplied(change, entry.index);
    if (first && result !== null) env.operationApplied(command as KvCommand, result);
    if (command?.kind === 'probe') env.probeApplied(this, command.probeId);
  }

  /** Applies a client command; returns its result, or null for a skipped duplicate. */
  #applyCommand(command: KvCommand, env: NodeEnvironment): KvResult | null {
    const result = this.#machine.apply(command);
    const operation = this.#pending.takeProposed(command.opId);
    if (operation !== undefined && result !== null) env.respond(this, operation, result);
    return result;
  }

  /** Periodic snapshot and compaction, after `advance` so the membership matches `applied`. */
  #maybeSnapshot(raw: RawNode, env: NodeEnvironment): void {
    const { snapshotEntries, compactKeepEntries } = this.#settings;
    if (this.#applied - this.storage.snapshot().metadata.index < snapshotEntries) return;
    const { confState } = raw.status();
    this.storage.createSnapshot(this.#applied, confState, this.#machine.snapshotData());
    const compactIndex = this.#applied - compactKeepEntries;
    if (compactIndex > this.storage.firstIndex() - 1) this.storage.compact(compactIndex);
    env.stats.snapshotsCreated++;
    env.trace.event('snapshot', [this.id, this.#applied], () => {
      return `n${this.id} snapshot at ${this.#applied}, log from ${this.storage.firstIndex()}`;
    });
  }
}

function describeCommand(command: Command | null): string {
  if (command === null) return 'empty entry';
  return command.kind === 'kv' ? `op ${command.opId}` : `probe ${command.probeId}`;
}
