/**
 * One simulated run from one integer seed: choose the scenario, run the fault phase and the heal,
 * check safety after every step (src/sim/invariants.ts) and liveness after the heal, then check the
 * clients' history for linearizability (src/check). Everything is a function of the seed: running
 * a seed twice gives the same steps, faults, trace hash and result.
 */

import { AssertionFailure, SeededRandom } from '../base/index.js';
import {
  checkLinearizable,
  renderFailure,
  type CheckResult,
  type Operation,
} from '../check/index.js';
import type { PlantedBug } from '../raft/index.js';
import { Cluster } from './cluster.js';
import { chooseScenario, type Scenario } from './scenario.js';
import { faultCount, type SimStats } from './stats.js';
import { Trace } from './trace.js';

/** Options of `runSeed`; every field is optional. */
export interface RunOptions {
  /** A deliberate core bug to switch on in every node (planted-bug tests only). */
  readonly plantedBug?: PlantedBug | null;
  /** Length of the fault phase in steps; drawn from the seed (2,000–3,000) when omitted. */
  readonly faultSteps?: number;
  /** Keep a readable line per event in `RunResult.traceLines`. */
  readonly verbose?: boolean;
  /** Search budget per key of the linearizability check (src/check `CheckOptions.stepsMax`). */
  readonly linearizabilityStepsMax?: number;
}

/** The linearizability verdict, without the (large) history it was computed from. */
export type LinearizabilityVerdict =
  | { readonly ok: true }
  | { readonly ok: false; readonly key: string; readonly reason: string; readonly report: string }
  | { readonly ok: 'unknown'; readonly key: string };

/** What one run found. */
export interface RunResult {
  readonly seed: number;
  readonly steps: number;
  /** Faults injected: drops, duplicates, partitions and crashes (disk failures included). */
  readonly faults: number;
  /** Safety and liveness violations, each naming the invariant, nodes, indexes and step. */
  readonly violations: readonly string[];
  readonly linearizability: LinearizabilityVerdict;
  readonly stats: Readonly<SimStats>;
  /** Operations in the checked history. */
  readonly operations: number;
  /** Steps from the heal until a fresh proposal was applied on every voter; null if never. */
  readonly livenessSteps: number | null;
  /** Hash of every event of the run: equal for two runs of one seed. */
  readonly traceHash: string;
  readonly scenario: ScenarioSummary;
  /** Readable trace lines (verbose runs only). */
  readonly traceLines: readonly string[];
}

/** The scenario facts worth printing next to a failure. */
export interface ScenarioSummary {
  readonly voters: number;
  readonly learners: number;
  readonly preVote: boolean;
  readonly checkQuorum: boolean;
  readonly readOnlyOption: string;
  readonly heartbeatTicks: number;
  readonly faultSteps: number;
  readonly plantedBug: PlantedBug | null;
}

/**
 * Default search budget per key for the linearizability check: a few hundred milliseconds at
 * worst. A history that needs more is reported `unknown` (and counted), not silently passed.
 */
export const linearizabilityStepsMaxDefault = 2_000_000;

/** Steps a run may take at most; a run that does not end by then is a simulator bug. */
const runStepsMax = 20_000;

/** Runs seed `seed`. Never throws for a finding: assertion failures are reported as violations. */
export function runSeed(seed: number, options: RunOptions = {}): RunResult {
  const random = new SeededRandom(seed);
  const scenario = chooseScenario(seed, random.fork(), {
    plantedBug: options.plantedBug ?? null,
    faultSteps: options.faultSteps,
  });
  const trace = new Trace({ verbose: options.verbose ?? false });
  const cluster = new Cluster(scenario, random.fork(), trace);
  const violations: string[] = [];
  try {
    while (!cluster.done) {
      if (cluster.step >= runStepsMax)
        throw new AssertionFailure(`run did not end within ${runStepsMax} steps`);
      cluster.runStep();
    }
  } catch (error) {
    // A core or simulator assertion ends the run: report it against this seed instead of
    // aborting every other seed of the batch. Nothing continues after it.
    if (!(error instanceof Error)) throw error;
    const kind = error instanceof AssertionFailure ? 'assertion failed' : `${error.name} thrown`;
    violations.push(`${kind} at step ${cluster.step}: ${error.message}`);
  }
  cluster.workload.finish();
  violations.unshift(...cluster.checker.violations);
  const history = cluster.workload.history();
  const linearizability = checkHistory(
    { observed: history, resolved: () => cluster.workload.resolvedHistory() },
    options,
  );
  return {
    seed,
    steps: cluster.step,
    faults: faultCount(cluster.stats),
    violations,
    linearizability,
    stats: { ...cluster.stats },
    operations: history.length,
    livenessSteps: cluster.livenessSteps,
    traceHash: trace.hash,
    scenario: summarize(scenario),
    traceLines: trace.lines(),
  };
}

/** A run's client history, as observed and as resolved (see `Workload.resolvedHistory`). */
export interface RecordedHistory {
  readonly observed: readonly Operation[];
  readonly resolved: () => readonly Operation[];
}

/**
 * The one place the simulator calls the linearizability checker. It checks the history the
 * clients observed. When that search runs out of budget (many operations left without an answer),
 * it checks the resolved history instead, where every applied operation ends at its first apply:
 * a linearization of that one is a linearization of the observed one, and failing it breaks
 * Raft's promise that an operation takes effect by the time it commits.
 */
export function checkHistory(
  history: RecordedHistory,
  options: RunOptions = {},
): LinearizabilityVerdict {
  const stepsMax = options.linearizabilityStepsMax ?? linearizabilityStepsMaxDefault;
  const observed = verdict(checkLinearizable(history.observed, { stepsMax }), 'observed');
  if (observed.ok !== 'unknown') return observed;
  const resolved = verdict(checkLinearizable(history.resolved(), { stepsMax }), 'resolved');
  return resolved.ok === 'unknown' ? observed : resolved;
}

function verdict(result: CheckResult, history: 'observed' | 'resolved'): LinearizabilityVerdict {
  if (result.ok === true) return { ok: true };
  if (result.ok === 'unknown') return { ok: 'unknown', key: result.key };
  const report = `${history} history: ${renderFailure(result)}`;
  return { ok: false, key: result.key, reason: result.reason, report };
}

function summarize(scenario: Scenario): ScenarioSummary {
  return {
    voters: scenario.voterIds.length,
    learners: scenario.learnerIds.length,
    preVote: scenario.raft.preVote,
    checkQuorum: scenario.raft.checkQuorum,
    readOnlyOption: scenario.raft.readOnlyOption,
    heartbeatTicks: scenario.raft.heartbeatTicks,
    faultSteps: scenario.faultSteps,
    plantedBug: scenario.raft.plantedBug,
  };
}
