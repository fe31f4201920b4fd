/**
 * The fault schedule of a run's fault phase: partitions of three shapes, crashes between steps and
 * in the middle of a Ready, disk write failures, and restarts after a random downtime. Every choice
 * is drawn from the injector's own generator, so adding a draw elsewhere does not shift the faults.
 * After the heal it injects nothing.
 */

import type { SeededRandom } from '../base/index.js';
import type { NodeId } from '../raft/index.js';
import type { SimNetwork } from './network.js';
import type { ReadyCrashPoint } from './node.js';
import type { NodeFaultRates } from './scenario.js';
import type { SimStats } from './stats.js';
import type { Trace } from './trace.js';

const readyCrashPoints: readonly ReadyCrashPoint[] = [
  'after-ready',
  'after-early',
  'after-persist',
  'after-send',
  'after-apply',
];

/** What the injector needs to see of the cluster. */
export interface FaultTarget {
  /** Member ids (voters and learners), sorted. */
  memberIds(): readonly NodeId[];
  /** Every node id of the run, sorted. */
  allIds(): readonly NodeId[];
  isRunning(id: NodeId): boolean;
  /** The running leader with the highest term, if any. */
  leaderId(): NodeId | null;
  crash(id: NodeId, reason: string): void;
}

/** Decides, step by step, which faults strike. */
export class FaultInjector {
  readonly #random: SeededRandom;
  readonly #rates: NodeFaultRates;
  readonly #network: SimNetwork;
  readonly #stats: SimStats;
  readonly #trace: Trace;
  #healed = false;
  /** When the current partition ends; null when links are whole. */
  #partitionEndStep: number | null = null;
  /** Nodes that crash while handling their next Ready. */
  readonly #crashInReady = new Set<NodeId>();
  /** Down node → the step it restarts at. */
  readonly #restartSteps = new Map<NodeId, number>();

  constructor(options: {
    readonly random: SeededRandom;
    readonly rates: NodeFaultRates;
    readonly network: SimNetwork;
    readonly stats: SimStats;
    readonly trace: Trace;
  }) {
    this.#random = options.random;
    this.#rates = options.rates;
    this.#network = options.network;
    this.#stats = options.stats;
    this.#trace = options.trace;
  }

  /** Ends the fault phase: links restored, no further faults. Restarts are the caller's. */
  heal(): void {
    this.#healed = true;
    this.#network.healLinks();
    this.#partitionEndStep = null;
    this.#crashInReady.clear();
    this.#restartSteps.clear();
  }

  /** Injects this step's partition and crash faults. */
  inject(step: number, target: FaultTarget): void {
    if (this.#healed) return;
    this.#updatePartition(step, target);
    for (const id of target.memberIds()) {
      if (!target.isRunning(id) || !this.#random.chance(this.#rates.crashRate)) continue;
      if (!this.#mayCrashAnother(target)) continue;
      if (this.#random.chance(this.#rates.crashInReadyShare)) this.#crashInReady.add(id);
      else target.crash(id, 'between steps');
    }
  }

  /**
   * Node `id` just became leader. Now and then (a nemesis aimed at leaders, as in Jepsen) the new
   * leader is cut off at once, replacing any current partition: its first entries then live on its
   * disk alone, and the next leader's likewise. Chains of such leaders leave conflicting
   * uncommitted suffixes of different terms on different minorities: the Raft paper's figure 8,
   * the ground on which committing an entry of an earlier term by counting replicas goes wrong.
   */
  onLeaderElected(
    leader: { readonly id: NodeId; readonly step: number },
    target: FaultTarget,
  ): void {
    if (this.#healed || !this.#random.chance(this.#rates.electionIsolationRate)) return;
    this.#network.healLinks();
    this.#startPartition(leader.step);
    this.#isolate(leader.id, target);
  }

  /** A node went down by a fault: schedule its restart. */
  scheduleRestart(crash: { readonly id: NodeId; readonly step: number }): void {
    const { id, step } = crash;
    this.#crashInReady.delete(id);
    if (this.#healed) return;
    const { downStepsMin, downStepsMax } = this.#rates;
    this.#restartSteps.set(
      id,
      step + downStepsMin + this.#random.int(downStepsMax - downStepsMin + 1),
    );
  }

  /** A node left the cluster: no crash or restart is pending for it any more. */
  forget(id: NodeId): void {
    this.#crashInReady.delete(id);
    this.#restartSteps.delete(id);
  }

  /** Nodes whose downtime ends at `step`. */
  restartsDue(step: number): NodeId[] {
    const due: NodeId[] = [];
    for (const [id, restartStep] of this.#restartSteps) if (restartStep <= step) due.push(id);
    for (const id of due) this.#restartSteps.delete(id);
    return due.sort((a, b) => a - b);
  }

  /** Where (if anywhere) `id` crashes while handling the Ready it just received. */
  readyCrashPoint(id: NodeId): ReadyCrashPoint | null {
    if (!this.#crashInReady.delete(id)) return null;
    return readyCrashPoints[this.#random.int(readyCrashPoints.length)]!;
  }

  /** For a durable write of `records` records: how many land before it fails, or null. */
  diskFailure(records: number): number | null {
    if (this.#healed || !this.#random.chance(this.#rates.diskFailureRate)) return null;
    return this.#random.int(records);
  }

  /**
   * Usually at most a minority of members is down, so the cluster keeps making progress; now and
   * then one more, so that losing a quorum (and what a bug might have acknowledged) is exercised.
   */
  #mayCrashAnother(target: FaultTarget): boolean {
    const members = target.memberIds();
    const down = members.filter((id) => !target.isRunning(id)).length + this.#crashInReady.size;
    const downMax = Math.floor(members.length / 2) + (this.#random.chance(0.2) ? 1 : 0);
    return down < downMax;
  }

  #updatePartition(step: number, target: FaultTarget): void {
    if (this.#partitionEndStep !== null) {
      if (step < this.#partitionEndStep) return;
      this.#network.healLinks();
      this.#partitionEndStep = null;
      this.#trace.event('heal-links', [], () => 'net links restored');
      return;
    }
    if (!this.#random.chance(this.#rates.partitionRate)) return;
    this.#startPartition(step);
    const shape = this.#random.int(3);
    if (shape === 0) this.#split(target.allIds());
    else if (shape === 1) this.#cutOneWay(target.allIds());
    else this.#isolateLeader(target);
  }

  #startPartition(step: number): void {
    const { partitionStepsMin, partitionStepsMax } = this.#rates;
    this.#partitionEndStep =
      step + partitionStepsMin + this.#random.int(partitionStepsMax - partitionStepsMin + 1);
    this.#stats.partitions++;
  }

  /** Two sides that cannot talk at all. */
  #split(ids: readonly NodeId[]): void {
    const side = ids.filter(() => this.#random.chance(0.5));
    const inside = new Set(side);
    for (const a of ids) {
      for (const b of ids) if (inside.has(a) !== inside.has(b)) this.#network.cut(a, b);
    }
    this.#trace.event('split', side, () => `net partition: {${side.join(',')}} | rest`);
  }

  /** Random links cut in one direction only: A hears B, B does not hear A. */
  #cutOneWay(ids: readonly NodeId[]): void {
    this.#stats.asymmetricPartitions++;
    const cut: string[] = [];
    for (const a of ids) {
      for (const b of ids) {
        if (a === b || !this.#random.chance(0.3)) continue;
        this.#network.cut(a, b);
        cut.push(`${a}→${b}`);
      }
    }
    this.#trace.event('one-way', [cut.length], () => `net one-way cuts: ${cut.join(' ')}`);
  }

  /** The leader alone: deaf, mute, or both. */
  #isolateLeader(target: FaultTarget): void {
    const leader = target.leaderId();
    if (leader === null) this.#split(target.allIds());
    else this.#isolate(leader, target);
  }

  #isolate(leader: NodeId, target: FaultTarget): void {
    this.#stats.leaderIsolations++;
    const mode = this.#random.int(3);
    if (mode !== 2) this.#stats.asymmetricPartitions++;
    for (const other of target.allIds()) {
      if (other === leader) continue;
      if (mode !== 0) this.#network.cut(leader, other);
      if (mode !== 1) this.#network.cut(other, leader);
    }
    const how = ['deaf', 'mute', 'cut off'][mode]!;
    this.#trace.event('isolate', [leader, mode], () => `net leader ${leader} isolated (${how})`);
  }
}
