/**
 * The parameters of one simulated run, all drawn from the seed: cluster shape, Raft configuration,
 * fault rates and workload. Varying them per seed is what lets a few thousand seeds cover pre-vote
 * on and off, lease and safe reads, tight flow control, and quiet versus hostile networks.
 */

import type { SeededRandom } from '../base/index.js';
import type { NodeId, PlantedBug, ReadOnlyOption } from '../raft/index.js';

/** Simulation steps per Raft tick: messages can be delivered between ticks (sub-tick delays). */
export const tickSteps = 4;

/** Election timeout of every node, in ticks (randomized by the core in [n, 2n)). */
export const electionTicks = 10;

/**
 * Liveness bound: after the heal, a leader must exist and a fresh proposal must be applied by every
 * voter within this many ticks (2,000 steps). Recovery takes one election when it goes well: a
 * randomized timeout of 10 to 20 ticks and a few ticks of messages. Each failed round costs another
 * timeout: a split vote or, without pre-vote, a node with a stale log and a higher term whose
 * hopeless campaigns keep resetting the others. Measured over seeds 1 to 4,000: median 4 ticks,
 * 99th percentile 60, worst 200 (20 rounds: a two-voter cluster without pre-vote and such a node).
 * A round fails with probability well under 0.7 even then, so 50 timeouts (2.5 times the worst
 * seen) leaves a correct core a chance of about 0.7^50 ≈ 10^-8 to miss it, while a cluster that
 * never recovers always does.
 */
export const livenessTicksMax = 50 * electionTicks;

/** Raft settings shared by every node of a run. */
export interface RaftSettings {
  readonly preVote: boolean;
  readonly checkQuorum: boolean;
  readonly readOnlyOption: ReadOnlyOption;
  readonly heartbeatTicks: number;
  readonly electionTicks: number;
  readonly messageBytesMax: number | undefined;
  readonly inflightMessagesMax: number | undefined;
  readonly uncommittedBytesMax: number | undefined;
  readonly committedBytesMax: number | undefined;
  readonly plantedBug: PlantedBug | null;
}

/** How hostile the network is during the fault phase. */
export interface NetworkFaultRates {
  /** Probability that a message is lost. */
  readonly dropRate: number;
  /** Probability that a message is delivered twice. */
  readonly duplicateRate: number;
  readonly delayStepsMin: number;
  readonly delayStepsMax: number;
  /** Probability of a much longer delay (up to `longDelayStepsMax`), which reorders heavily. */
  readonly longDelayRate: number;
  readonly longDelayStepsMax: number;
}

/** The network after the heal: reliable, short delays, no duplicates. */
export const reliableNetwork: NetworkFaultRates = Object.freeze({
  dropRate: 0,
  duplicateRate: 0,
  delayStepsMin: 1,
  delayStepsMax: 3,
  longDelayRate: 0,
  longDelayStepsMax: 3,
});

/** Node, disk and membership fault rates during the fault phase. */
export interface NodeFaultRates {
  /** Probability, per member per step, that a crash is scheduled. */
  readonly crashRate: number;
  /** Share of crashes that strike in the middle of handling a Ready rather than between steps. */
  readonly crashInReadyShare: number;
  readonly downStepsMin: number;
  readonly downStepsMax: number;
  /** Probability that one durable write (one Ready's persist) fails and crashes the node. */
  readonly diskFailureRate: number;
  /** Probability per step that a partition starts (when none is active). */
  readonly partitionRate: number;
  readonly partitionStepsMin: number;
  readonly partitionStepsMax: number;
  /** Probability that a newly elected leader is isolated at once (see `FaultInjector`). */
  readonly electionIsolationRate: number;
  /** Probability per step that a membership change is proposed. */
  readonly confChangeRate: number;
  /** Probability per step that the leader is asked to transfer leadership. */
  readonly transferRate: number;
}

/** Workload shape. */
export interface WorkloadSettings {
  readonly clientCount: number;
  readonly keys: readonly string[];
  /** A client gives up on an operation after this many steps without an answer. */
  readonly timeoutSteps: number;
  readonly thinkStepsMax: number;
  /** Share of gets served by ReadIndex (or lease) rather than through the log. */
  readonly readIndexShare: number;
}

/** Everything that shapes one run. */
export interface Scenario {
  readonly seed: number;
  readonly voterIds: readonly NodeId[];
  readonly learnerIds: readonly NodeId[];
  /** Ids not in the initial configuration, available to add as learners. */
  readonly spareIds: readonly NodeId[];
  readonly raft: RaftSettings;
  /** Per node id: ticks per reference tick, within the core's clock-drift bound. */
  readonly clockRates: ReadonlyMap<NodeId, number>;
  readonly faultSteps: number;
  readonly network: NetworkFaultRates;
  readonly nodeFaults: NodeFaultRates;
  /** Create a snapshot once this many entries were applied since the last one. */
  readonly snapshotEntries: number;
  /** Entries kept in the log behind a snapshot when compacting. */
  readonly compactKeepEntries: number;
  /** Hand each delivered message to its node and handle the Ready at once, instead of batching. */
  readonly readyPerMessage: boolean;
  readonly workload: WorkloadSettings;
}

/** Knobs a caller may pin instead of drawing them from the seed. */
export interface ScenarioOverrides {
  readonly plantedBug?: PlantedBug | null;
  /** Length of the fault phase in steps. */
  readonly faultSteps?: number;
}

/** Draws the scenario of `seed` from `random` (a generator reserved for this purpose). */
export function chooseScenario(
  seed: number,
  random: SeededRandom,
  overrides: ScenarioOverrides,
): Scenario {
  const voterCount = random.chance(0.6) ? 3 : 5;
  const learnerCount = random.chance(0.25) ? 1 : 0;
  const ids = Array.from({ length: voterCount + learnerCount + 2 }, (_, i) => i + 1);
  const voterIds = ids.slice(0, voterCount);
  const learnerIds = ids.slice(voterCount, voterCount + learnerCount);
  const clockRates = new Map<NodeId, number>();
  // Rates within ±3%: any two differ by less than the core's 10% lease drift bound.
  for (const id of ids) clockRates.set(id, 0.97 + 0.06 * random.float());
  return {
    seed,
    voterIds,
    learnerIds,
    spareIds: ids.slice(voterCount + learnerCount),
    raft: chooseRaftSettings(random, overrides.plantedBug ?? null),
    clockRates,
    faultSteps: overrides.faultSteps ?? 2000 + random.int(1001),
    network: chooseNetworkFaults(random),
    nodeFaults: chooseNodeFaults(random),
    snapshotEntries: 5 + random.int(56),
    compactKeepEntries: random.int(11),
    readyPerMessage: random.chance(0.3),
    workload: {
      clientCount: 3 + random.int(6),
      keys: Array.from({ length: 3 + random.int(3) }, (_, i) => `k${i}`),
      timeoutSteps: 30 * tickSteps,
      thinkStepsMax: 4 + random.int(16),
      readIndexShare: 0.5,
    },
  };
}

function chooseRaftSettings(random: SeededRandom, plantedBug: PlantedBug | null): RaftSettings {
  const checkQuorum = random.chance(0.5);
  const leaseReads = checkQuorum && random.chance(0.5);
  return {
    preVote: random.chance(0.5),
    checkQuorum,
    readOnlyOption: leaseReads ? 'lease-based' : 'safe',
    heartbeatTicks: 1 + random.int(3),
    electionTicks,
    // Small limits now and then, so flow control and batching take their slow paths.
    messageBytesMax: random.chance(0.5) ? 64 + random.int(449) : undefined,
    inflightMessagesMax: random.chance(0.3) ? 1 + random.int(4) : undefined,
    uncommittedBytesMax: random.chance(0.15) ? 256 + random.int(1793) : undefined,
    committedBytesMax: random.chance(0.2) ? 128 + random.int(897) : undefined,
    plantedBug,
  };
}

function chooseNetworkFaults(random: SeededRandom): NetworkFaultRates {
  return {
    dropRate: 0.08 * random.float(),
    duplicateRate: 0.04 * random.float(),
    delayStepsMin: 1,
    delayStepsMax: 2 + random.int(9),
    longDelayRate: 0.01 * random.float(),
    longDelayStepsMax: 60,
  };
}

function chooseNodeFaults(random: SeededRandom): NodeFaultRates {
  return {
    crashRate: (0.3 + random.float()) / 1000,
    crashInReadyShare: 0.5,
    downStepsMin: 10,
    downStepsMax: 300,
    diskFailureRate: 0.0015 * random.float(),
    partitionRate: (1 + 4 * random.float()) / 1000,
    partitionStepsMin: 20,
    partitionStepsMax: 400,
    electionIsolationRate: random.chance(0.4) ? 0 : 0.2 + 0.4 * random.float(),
    confChangeRate: 1 / 250,
    transferRate: 1 / 600,
  };
}
