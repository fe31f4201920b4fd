/**
 * Synod's linearizability checker: Wing & Gong's search with Lowe's just-in-time linearization and
 * memoization, run per key. It takes a plain history of operations, so the simulator and tests
 * against real processes share it. It depends on `src/base` only.
 *
 * ```ts
 * const result = checkLinearizable(history);
 * if (result.ok === false) console.error(renderFailure(result));
 * ```
 */
export {
  checkLinearizable,
  checkStepsMaxDefault,
  shrinkStepsMaxDefault,
  type CheckOptions,
  type CheckResult,
  type CheckPassed,
  type CheckFailed,
  type CheckUnknown,
} from './check.js';
export {
  partitionByKey,
  prefixAt,
  type Operation,
  type KvCall,
  type KvCallKind,
  type KvResult,
  type TimedOperation,
  type TimedResponse,
} from './history.js';
export { kvModel, type KvState } from './kv-model.js';
export {
  searchLinearization,
  type SearchOptions,
  type SearchOutcome,
  type PartialLinearization,
} from './linearizability.js';
export type { Model, StepResult } from './model.js';
export { memoBytesMax } from './memo-cache.js';
export { shrinkHistory, type ShrinkOptions, type ShrunkHistory } from './shrink.js';
export { renderHistory, renderFailure } from './render.js';
