/**
 * Synod's deterministic simulator: the real consensus core driven through a simulated network,
 * disks, crashes and membership changes, all from one integer seed, with Raft's safety properties
 * checked after every step, liveness after the heal, and the clients' history checked for
 * linearizability at the end.
 *
 * ```ts
 * const result = runSeed(42);
 * if (result.violations.length > 0 || result.linearizability.ok === false) console.log(result);
 * ```
 */
export {
  runSeed,
  checkHistory,
  type RunOptions,
  type RunResult,
  linearizabilityStepsMaxDefault,
  type LinearizabilityVerdict,
  type RecordedHistory,
  type ScenarioSummary,
} from './run.js';
export { type SimStats, faultCount } from './stats.js';
export { livenessTicksMax, tickSteps } from './scenario.js';
