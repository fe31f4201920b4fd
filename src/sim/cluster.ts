/**
 * The simulated world of one run: nodes, network, clients, the operator (membership changes and
 * leadership transfers), the fault injector and the safety checker, advanced one step at a time.
 * Within a step: clients act, then the operator, then faults strike and downtimes end; the network
 * delivers what is due, and each running node (in a random order) steps its messages, ticks its
 * clock and handles its Readies.
 *
 * A run has a fault phase and then a heal: every fault stops, every member restarts, the network
 * becomes reliable. After the heal the cluster must elect a leader and apply a fresh proposal on
 * every voter within `livenessTicksMax`, or the run reports a liveness violation.
 */

import { assert, SeededRandom } from '../base/index.js';
import type { KvResult } from '../check/index.js';
import type { ConfChange, Message, NodeId } from '../raft/index.js';
import { FaultInjector, type FaultTarget } from './faults.js';
import { SafetyChecker } from './invariants.js';
import { Membership } from './membership.js';
import { describe, shuffle, SimNetwork, type Envelope } from './network.js';
import { SimNode, type NodeEnvironment, type ReadyCrashPoint } from './node.js';
import type { PendingOperation } from './pending-operations.js';
import type { KvCommand } from './state-machine.js';
import { livenessTicksMax, reliableNetwork, tickSteps, type Scenario } from './scenario.js';
import { newStats, type SimStats } from './stats.js';
import type { Trace } from './trace.js';
import { Workload, type ClientTarget } from './workload.js';

/** Steps between liveness probes while the last one has not been applied everywhere. */
const probeRetrySteps = 20 * tickSteps;

/** Steps the clients keep going once liveness is shown, so in-flight operations can finish. */
const drainSteps = 40 * tickSteps;

/** The world of one run. */
export class Cluster implements NodeEnvironment, FaultTarget, ClientTarget {
  readonly trace: Trace;
  readonly checker = new SafetyChecker({
    voterDisks: () =>
      this.#membership.voterIds().map((id) => ({ id, storage: this.#nodes.get(id)!.storage })),
  });
  readonly stats: SimStats = newStats();
  readonly network: SimNetwork;
  readonly workload: Workload;
  readonly #scenario: Scenario;
  readonly #random: SeededRandom;
  readonly #nodes = new Map<NodeId, SimNode>();
  readonly #allIds: NodeId[];
  readonly #membership: Membership;
  readonly #faults: FaultInjector;
  #step = 0;
  #healStep: number | null = null;
  #livenessStep: number | null = null;
  #probeId = 0;
  #probeStep = 0;
  /** Probe id → nodes that applied it. */
  readonly #probeAppliedBy = new Map<number, Set<NodeId>>();

  constructor(scenario: Scenario, random: SeededRandom, trace: Trace) {
    this.#scenario = scenario;
    this.#random = random.fork();
    this.trace = trace;
    this.network = new SimNetwork({ random: random.fork(), trace, rates: scenario.network });
    this.#faults = new FaultInjector({
      random: random.fork(),
      rates: scenario.nodeFaults,
      network: this.network,
      stats: this.stats,
      trace,
    });
    this.workload = new Workload({
      settings: scenario.workload,
      random: random.fork(),
      stats: this.stats,
      trace,
    });
    this.#membership = new Membership(scenario);
    const initialConfState = { voters: [...scenario.voterIds], learners: [...scenario.learnerIds] };
    this.#allIds = [...scenario.voterIds, ...scenario.learnerIds, ...scenario.spareIds];
    for (const id of this.#allIds) {
      const settings = {
        raft: scenario.raft,
        initialConfState,
        clockRate: scenario.clockRates.get(id)!,
        snapshotEntries: scenario.snapshotEntries,
        compactKeepEntries: scenario.compactKeepEntries,
      };
      this.#nodes.set(id, new SimNode(id, settings, random.fork()));
    }
    for (const id of this.#membership.memberIds()) this.#nodes.get(id)!.start(this);
  }

  /** The current step. */
  get step(): number {
    return this.#step;
  }

  /** Whether the run is over: liveness shown and clients drained, or the liveness bound missed. */
  get done(): boolean {
    if (this.#healStep === null) return false;
    if (this.#livenessStep !== null) return this.#step >= this.#livenessStep + drainSteps;
    return this.#step - this.#healStep > livenessTicksMax * tickSteps;
  }

  /** Steps from the heal until liveness was shown, or null. */
  get livenessSteps(): number | null {
    return this.#livenessStep === null || this.#healStep === null
      ? null
      : this.#livenessStep - this.#healStep;
  }

  /** Advances the world by one step. */
  runStep(): void {
    this.#step++;
    this.trace.setStep(this.#step);
    this.checker.step = this.#step;
    this.workload.tick(this.#step, this);
    if (this.#healStep === null) {
      if (this.#step >= this.#scenario.faultSteps) this.#heal();
      else this.#actAsOperator();
    }
    this.#faults.inject(this.#step, this);
    for (const id of this.#faults.restartsDue(this.#step)) this.#restart(id);
    this.#deliverAndRunNodes();
    if (this.#healStep !== null) this.#checkLiveness();
  }

  #heal(): void {
    this.#healStep = this.#step;
    this.#faults.heal();
    this.network.setRates(reliableNetwork);
    this.trace.event('heal', [], () => 'heal: faults off, network reliable, every member up');
    for (const id of this.#membership.memberIds()) if (!this.isRunning(id)) this.#restart(id);
  }

  #restart(id: NodeId): void {
    const node = this.#nodes.get(id)!;
    if (node.running || !this.#membership.isMember(id)) return;
    this.stats.restarts++;
    node.start(this);
  }

  /** Membership changes and leadership transfers, now and then, through the current leader. */
  #actAsOperator(): void {
    const { confChangeRate, transferRate } = this.#scenario.nodeFaults;
    if (this.#random.chance(confChangeRate)) {
      const leader = this.#leaderNode();
      const change = leader === null ? null : this.#membership.chooseChange(this.#random);
      if (leader !== null && change !== null && leader.proposeConfChange(change)) {
        this.stats.confChangesProposed++;
        this.trace.event(
          'conf-propose',
          [leader.id, change.nodeId],
          () => `operator proposes ${change.type} ${change.nodeId} via n${leader.id}`,
        );
      }
    }
    if (this.#random.chance(transferRate)) {
      const leader = this.#leaderNode();
      // Now and then to a learner, which the leader must refuse.
      const pool = this.#random.chance(0.9)
        ? this.#membership.voterIds()
        : this.#membership.memberIds();
      const candidates = pool.filter((id) => id !== leader?.id);
      if (leader !== null && candidates.length > 0) {
        const transferee = candidates[this.#random.int(candidates.length)]!;
        this.stats.leaderTransfers++;
        this.trace.event(
          'transfer',
          [leader.id, transferee],
          () => `operator asks n${leader.id} to transfer leadership to n${transferee}`,
        );
        leader.transferLeader(transferee);
      }
    }
  }

  #deliverAndRunNodes(): void {
    const { delivered, lost } = this.network.takeDue(this.#step);
    for (const envelope of lost) this.#onLost(envelope);
    const inbox = new Map<NodeId, Envelope[]>();
    for (const envelope of delivered) {
      const node = this.#nodes.get(envelope.message.to);
      if (node === undefined || !node.running) {
        this.#onLost(envelope);
        continue;
      }
      let envelopes = inbox.get(node.id);
      if (envelopes === undefined) inbox.set(node.id, (envelopes = []));
      envelopes.push(envelope);
    }
    const order = [...this.#allIds];
    shuffle(order, this.#random);
    for (const id of order) this.#runNode(this.#nodes.get(id)!, inbox.get(id) ?? []);
  }

  #runNode(node: SimNode, envelopes: readonly Envelope[]): void {
    for (const envelope of envelopes) {
      const { message } = envelope;
      if (!node.running) {
        this.#onLost(envelope);
        continue;
      }
      this.trace.event(
        'deliver',
        [message.from, message.to],
        () => `net deliver ${describe(message)}`,
      );
      node.step(message);
      if (message.type === 'snap')
        this.#nodes.get(message.from)?.reportSnapshot(message.to, 'finish');
      if (this.#scenario.readyPerMessage) this.#handleReadies(node);
    }
    node.advanceClock();
    this.#handleReadies(node);
  }

  #handleReadies(node: SimNode): void {
    node.handleReadies(this);
    this.#runLifecycleActions();
  }

  /** A message that never arrived: the sender's transport notices, as a real one would. */
  #onLost(envelope: Envelope): void {
    const { message } = envelope;
    this.stats.drops++;
    const sender = this.#nodes.get(envelope.sender);
    if (sender === undefined || !sender.running) return;
    if (message.type === 'snap') sender.reportSnapshot(message.to, 'failure');
    else if (message.type === 'app' && this.#random.chance(0.5))
      sender.reportUnreachable(message.to);
  }

  #runLifecycleActions(): void {
    for (const action of this.#membership.takeActions()) {
      const node = this.#nodes.get(action.id)!;
      if (action.kind === 'stop') {
        if (node.running) node.crash(this, 'removed from the cluster', 'stop');
        this.#faults.forget(action.id);
        this.network.purge(action.id);
        continue;
      }
      if (node.running) continue;
      assert(
        this.#membership.isMember(action.id),
        `starting node ${action.id}, which is not a member`,
      );
      if (node.incarnation > 0) {
        node.wipe(this);
        this.stats.reAdds++;
      }
      node.start(this);
    }
  }

  #checkLiveness(): void {
    if (this.#livenessStep !== null) return;
    const voters = this.#membership.voterIds();
    for (const appliedBy of this.#probeAppliedBy.values()) {
      if (voters.every((id) => appliedBy.has(id))) {
        this.#livenessStep = this.#step;
        this.trace.event(
          'live',
          [this.#step - this.#healStep!],
          () => `liveness shown ${this.#step - this.#healStep!} steps after the heal`,
        );
        return;
      }
    }
    const elapsed = this.#step - this.#healStep!;
    if (elapsed > livenessTicksMax * tickSteps) {
      this.checker.report(
        'liveness',
        `no leader applied a fresh proposal on every voter (${voters.join(', ')}) within ` +
          `${livenessTicksMax} ticks of the heal`,
      );
      return;
    }
    if (this.#probeId > 0 && this.#step - this.#probeStep < probeRetrySteps) return;
    const leader = this.#leaderNode();
    if (leader === null) return;
    const probeId = this.#probeId + 1;
    if (!leader.proposeProbe(probeId)) return;
    this.#probeId = probeId;
    this.#probeStep = this.#step;
    this.#probeAppliedBy.set(probeId, new Set());
    this.trace.event(
      'probe',
      [leader.id, probeId],
      () => `liveness probe ${probeId} proposed via n${leader.id}`,
    );
  }

  #leaderNode(): SimNode | null {
    let best: SimNode | null = null;
    for (const node of this.#nodes.values()) {
      if (node.running && node.role === 'leader' && (best === null || node.term > best.term))
        best = node;
    }
    return best;
  }

  // ---- NodeEnvironment -------------------------------------------------------------------------

  send(from: SimNode, messages: readonly Message[]): void {
    for (const message of messages) {
      assert(
        message.to !== from.id && this.#nodes.has(message.to),
        `node ${from.id} sent ${message.type} to ${message.to}`,
      );
      const envelope = { message, sender: from.id };
      if (!this.network.send(envelope, this.#step)) this.#onLost(envelope);
      else if (message.type === 'snap') this.trace.event('send-snap', [message.from, message.to]);
    }
    this.stats.duplicates = this.network.counts.duplicated;
  }

  readyCrashPoint(node: SimNode): ReadyCrashPoint | null {
    return this.#faults.readyCrashPoint(node.id);
  }

  diskFailure(_node: SimNode, records: number): number | null {
    return this.#faults.diskFailure(records);
  }

  respond(node: SimNode, operation: PendingOperation, result: KvResult): void {
    this.workload.respond(operation, result, node);
  }

  nodeDown(node: SimNode, kind: 'crash' | 'stop', operations: readonly PendingOperation[]): void {
    this.workload.abandon(operations);
    if (kind === 'stop') return;
    this.stats.crashes++;
    this.#faults.scheduleRestart({ id: node.id, step: this.#step });
  }

  confChangeApplied(change: ConfChange, index: number): void {
    this.stats.confChangesApplied++;
    this.trace.event(
      'conf-applied',
      [change.nodeId, index],
      () => `conf change ${change.type} ${change.nodeId} applied at index ${index}`,
    );
    this.#membership.onApplied(change);
  }

  operationApplied(command: KvCommand, result: KvResult): void {
    this.workload.markApplied(command.opId, result);
  }

  leaderElected(node: SimNode): void {
    this.#faults.onLeaderElected({ id: node.id, step: this.#step }, this);
  }

  probeApplied(node: SimNode, probeId: number): void {
    this.#probeAppliedBy.get(probeId)?.add(node.id);
  }

  // ---- FaultTarget and ClientTarget ------------------------------------------------------------

  memberIds(): readonly NodeId[] {
    return this.#membership.memberIds();
  }

  allIds(): readonly NodeId[] {
    return this.#allIds;
  }

  isRunning(id: NodeId): boolean {
    return this.#nodes.get(id)?.running ?? false;
  }

  leaderId(): NodeId | null {
    return this.#leaderNode()?.id ?? null;
  }

  crash(id: NodeId, reason: string): void {
    this.#nodes.get(id)!.crash(this, reason);
  }

  runningNodes(): readonly SimNode[] {
    return [...this.#nodes.values()].filter((node) => node.running);
  }
}
