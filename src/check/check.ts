/**
 * The key-value linearizability check: partition the history by key, search each key's
 * sub-history on its own (linearizability is local, Herlihy & Wing 1990, so the whole history
 * is linearizable exactly when every key's is), and on failure shrink the key's history to a small
 * counterexample with a reason a person can follow.
 */

import { SynodError, assert } from '../base/index.js';
import { partitionByKey, assertOperation, type Operation } from './history.js';
import { kvModel } from './kv-model.js';
import { searchLinearization, type PartialLinearization } from './linearizability.js';
import { shrinkHistory, type ShrunkHistory } from './shrink.js';

/** Limits of a check; omitted fields take the defaults below. */
export interface CheckOptions {
  /**
   * Work allowed to the search of one key before it answers `unknown`, in steps: candidates
   * considered and memoized configurations compared (see `SearchOutcome`). Roughly 10 million
   * steps a second.
   */
  readonly stepsMax?: number;
  /** Steps allowed to shrinking a failing key's counterexample, all searches together. */
  readonly shrinkStepsMax?: number;
}

/** Default `CheckOptions.stepsMax`: generous, yet bounded so a pathological history cannot hang. */
export const checkStepsMaxDefault = 10_000_000;

/** Default `CheckOptions.shrinkStepsMax`. */
export const shrinkStepsMaxDefault = 2_000_000;

/** Every key's sub-history is linearizable. */
export interface CheckPassed {
  readonly ok: true;
}

/** A key's sub-history is not linearizable: the history is proven wrong. */
export interface CheckFailed {
  readonly ok: false;
  /** The first failing key in sorted order. */
  readonly key: string;
  /** Why, naming operations by their `#index` in `counterexample`. */
  readonly reason: string;
  /** Every operation on `key`, in history order. */
  readonly operations: readonly Operation[];
  /**
   * A sub-history of `key`, sorted by invocation time, that is already not linearizable. Operations
   * still running at `cutAt` appear with a null response.
   */
  readonly counterexample: readonly Operation[];
  /**
   * The counterexample drops the answered operations that finished before this time, because an
   * isolated `put` or `delete` at this time overwrote whatever they did; null when none were
   * dropped.
   */
  readonly startAt: number | null;
  /** The counterexample drops operations invoked after this time; null when nothing was cut. */
  readonly cutAt: number | null;
}

/** A key's search ran out of steps with no failure found elsewhere: neither proven nor refuted. */
export interface CheckUnknown {
  readonly ok: 'unknown';
  /** The first such key in sorted order. */
  readonly key: string;
  readonly reason: 'search budget exhausted';
  /** The budget that ran out. */
  readonly stepsMax: number;
}

/** What a check concluded. Never `ok: true` without a linearization of every key. */
export type CheckResult = CheckPassed | CheckFailed | CheckUnknown;

/**
 * Checks that `history` is linearizable with respect to a map of independent key-value registers,
 * every key starting absent. Reads without a response are ignored; writes without a response may
 * take effect at any point after their invocation, or never.
 */
export function checkLinearizable(
  history: readonly Operation[],
  options: CheckOptions = {},
): CheckResult {
  const { stepsMax, shrinkStepsMax } = validateOptions(options);
  let unknown: CheckUnknown | null = null;
  for (const [key, operations] of partitionByKey(history)) {
    operations.forEach(assertOperation);
    const sorted = sortByInvocation(operations);
    const outcome = searchLinearization(kvModel, sorted, { stepsMax });
    if (outcome.kind === 'not-linearizable') {
      const failing = { operations: sorted, startAt: null, cutAt: null, deepest: outcome.deepest };
      const shrunk = shrinkHistory(kvModel, failing, { stepsMax, shrinkStepsMax });
      return failure(key, operations, shrunk);
    }
    if (outcome.kind === 'budget-exhausted') {
      unknown ??= { ok: 'unknown', key, reason: 'search budget exhausted', stepsMax };
    }
  }
  return unknown ?? { ok: true };
}

function validateOptions(options: CheckOptions): Required<CheckOptions> {
  const stepsMax = options.stepsMax ?? checkStepsMaxDefault;
  const shrinkStepsMax = options.shrinkStepsMax ?? shrinkStepsMaxDefault;
  if (!Number.isSafeInteger(stepsMax) || stepsMax < 1) {
    const message = `stepsMax must be a positive integer: ${stepsMax}`;
    throw new SynodError('SYNOD_INVALID_CONFIG', message);
  }
  if (!Number.isSafeInteger(shrinkStepsMax) || shrinkStepsMax < 0) {
    throw new SynodError(
      'SYNOD_INVALID_CONFIG',
      `shrinkStepsMax must be a non-negative integer: ${shrinkStepsMax}`,
    );
  }
  return Object.freeze({ stepsMax, shrinkStepsMax });
}

/** Stable sort, so that indices in explanations follow the order a person reads the history in. */
function sortByInvocation(operations: readonly Operation[]): Operation[] {
  return operations
    .map((operation, index) => ({ operation, index }))
    .sort(
      (left, right) =>
        left.operation.invokedAt - right.operation.invokedAt || left.index - right.index,
    )
    .map(({ operation }) => operation);
}

function failure(
  key: string,
  operations: Operation[],
  shrunk: ShrunkHistory<Operation>,
): CheckFailed {
  const reason = explain(key, shrunk.operations, shrunk.deepest);
  const { startAt, cutAt } = shrunk;
  return { ok: false, key, reason, operations, counterexample: shrunk.operations, startAt, cutAt };
}

/** Explains a failed search: the deepest partial linearization and the operation it cannot fit. */
function explain(
  key: string,
  operations: readonly Operation[],
  deepest: PartialLinearization,
): string {
  const blocked = operations[deepest.blocked];
  assert(blocked !== undefined, 'a failed search names the operation it could not linearize');
  let state = kvModel.init();
  for (const index of deepest.order) {
    const operation = operations[index]!;
    const step = kvModel.step(state, operation.call, operation.response?.result ?? null);
    assert(step.ok, 'the deepest partial linearization replays');
    state = step.nextState;
  }
  const blockedText = kvModel.describeOperation(blocked.call, blocked.response?.result ?? null);
  const keyText = JSON.stringify(key);
  const prefix = `no linearization of these ${operations.length} operations on key ${keyText}`;
  const best =
    deepest.order.length === 0
      ? `the key starts ${kvModel.describeState(state)}`
      : `at best ${deepest.order.length} take effect, ` +
        `in the order ${describeOrder(deepest.order)}, ` +
        `leaving the key ${kvModel.describeState(state)}`;
  // The blocked operation's response has arrived, so it must have taken effect by now; neither it
  // nor any operation that could still come before it fits the state.
  return `${prefix}: ${best}; then #${deepest.blocked} ${blockedText} must take effect but cannot`;
}

/** Lists operation indices, eliding the middle of a long order. */
function describeOrder(order: readonly number[]): string {
  const shownMax = 12;
  const names = order.map((index) => `#${index}`);
  if (names.length <= shownMax) return names.join(', ');
  const head = names.slice(0, 4);
  const tail = names.slice(names.length - (shownMax - 4));
  return `${head.join(', ')}, … (${names.length - shownMax} more), ${tail.join(', ')}`;
}
