/**
 * Shrinks a non-linearizable history to a small one that is still not linearizable, so a failure
 * report shows a handful of operations instead of thousands. Each reduction keeps the implication
 * "the small history is not linearizable ⇒ the original is not", so the result is a true witness:
 *
 * 1. Cut at a time T (see `prefixAt`): linearizability is prefix-closed and failure is monotone in
 *    T, so a binary search finds the earliest failing cut.
 * 2. Start at an isolated blind write W: an answered write that ignores the state (`put`, `delete`)
 *    and overlaps no other answered operation. Every linearization puts the operations that
 *    finished before W ahead of it and W overwrites whatever they did, so they are dropped.
 *    Unanswered operations are kept wherever they were invoked, since they may take effect later.
 * 3. Remove answered read-only operations (`Model.isReadOnly`): deleting one from a linearization
 *    of the original leaves a linearization of the rest. Other writes stay: removing one could make
 *    a read of its value inexplicable, a failure the original does not have.
 */

import { assert } from '../base/index.js';
import { prefixAt, type TimedOperation } from './history.js';
import { searchLinearization, type PartialLinearization } from './linearizability.js';
import type { Model } from './model.js';

/** Limits of one shrink. */
export interface ShrinkOptions {
  /** Steps allowed to any one search, as for the check itself (see `SearchOutcome`). */
  readonly stepsMax: number;
  /** Steps allowed to all searches of the shrink together; 0 skips shrinking. */
  readonly shrinkStepsMax: number;
}

/** A non-linearizable history, as small as the budget allowed. */
export interface ShrunkHistory<Op> {
  /** Still not linearizable; sorted by invocation time. */
  readonly operations: readonly Op[];
  /** Answered operations that finished before this time were dropped (step 2), or null. */
  readonly startAt: number | null;
  /** Operations invoked after this time were dropped (step 1), or null. */
  readonly cutAt: number | null;
  /** How far the search got on `operations`, with indices into `operations`. */
  readonly deepest: PartialLinearization;
}

/**
 * Shrinks `failing`, a history sorted by invocation time that was found not linearizable, with the
 * search's explanation of it. Every intermediate history kept was itself found not linearizable, so
 * the result is sound however early the budget runs out.
 */
export function shrinkHistory<State, Call, Result, Op extends TimedOperation<Call, Result>>(
  model: Model<State, Call, Result>,
  failing: ShrunkHistory<Op>,
  options: ShrinkOptions,
): ShrunkHistory<Op> {
  const operations = failing.operations;
  for (let index = 1; index < operations.length; index++) {
    assert(operations[index - 1]!.invokedAt <= operations[index]!.invokedAt, 'history not sorted');
  }
  const budget = new Budget(options);
  let current = withoutSilentReads(model, failing);
  current = cutEarliest(model, current, budget);
  current = startAtBlindWrite(model, current, budget);
  current = removeReads(model, current, budget);
  // Fewer reads leave more writes isolated.
  current = startAtBlindWrite(model, current, budget);
  assert(current.operations.length <= operations.length);
  return current;
}

/** Whether the search ignores `operation`: read-only with no response, it tells nothing. */
function isSilentRead<State, Call, Result>(
  model: Model<State, Call, Result>,
  operation: TimedOperation<Call, Result>,
): boolean {
  return operation.response === null && model.isReadOnly(operation.call, null);
}

/** Drops what the search ignores anyway, renumbering the explanation to match. */
function withoutSilentReads<State, Call, Result, Op extends TimedOperation<Call, Result>>(
  model: Model<State, Call, Result>,
  history: ShrunkHistory<Op>,
): ShrunkHistory<Op> {
  const operations: Op[] = [];
  const renumbered = history.operations.map((operation) => {
    if (isSilentRead(model, operation)) return -1;
    operations.push(operation);
    return operations.length - 1;
  });
  const order = history.deepest.order.map((index) => renumbered[index]!);
  const blocked = renumbered[history.deepest.blocked]!;
  assert(blocked >= 0 && order.every((index) => index >= 0), 'the search linearized a silent read');
  return { ...history, operations, deepest: { order, blocked } };
}

/** The earliest cut that still fails. */
function cutEarliest<State, Call, Result, Op extends TimedOperation<Call, Result>>(
  model: Model<State, Call, Result>,
  history: ShrunkHistory<Op>,
  budget: Budget,
): ShrunkHistory<Op> {
  const times = distinctTimes(history.operations);
  // Invariant: cutting at times[high] fails, as the last time keeps everything.
  let low = 0;
  let high = times.length - 1;
  let best = history;
  while (low < high && !budget.exhausted) {
    const middle = (low + high) >>> 1;
    const cutAt = times[middle]!;
    const prefix = prefixAt(history.operations, cutAt).filter((op) => !isSilentRead(model, op));
    const deepest = budget.failure(model, prefix);
    if (deepest === null) {
      low = middle + 1;
    } else {
      high = middle;
      best = { ...history, cutAt, operations: prefix, deepest };
    }
  }
  return best;
}

/** Drops everything an isolated blind write overwrote, trying the latest such write first. */
function startAtBlindWrite<State, Call, Result, Op extends TimedOperation<Call, Result>>(
  model: Model<State, Call, Result>,
  history: ShrunkHistory<Op>,
  budget: Budget,
): ShrunkHistory<Op> {
  for (const { startAt, operations } of blindWriteSuffixes(model, history.operations)) {
    if (budget.exhausted) break;
    const deepest = budget.failure(model, operations);
    if (deepest !== null) return { ...history, startAt, operations, deepest };
  }
  return history;
}

/**
 * For each isolated blind write W, latest first, the history from W on: W, the operations invoked
 * after W's response, and every unanswered operation. If the original is linearizable, so is each
 * of these (see the file comment); suffixes that drop nothing are left out.
 */
export function* blindWriteSuffixes<State, Call, Result, Op extends TimedOperation<Call, Result>>(
  model: Model<State, Call, Result>,
  operations: readonly Op[],
): Generator<{ readonly startAt: number; readonly operations: Op[] }> {
  for (const index of isolatedBlindWrites(model, operations).reverse()) {
    const write = operations[index]!;
    const writeEnd = write.response!.respondedAt;
    const suffix = operations.filter(
      (operation, other) =>
        other === index || operation.response === null || operation.invokedAt > writeEnd,
    );
    // Earlier writes drop a subset of what this one drops.
    if (suffix.length === operations.length) return;
    yield { startAt: write.invokedAt, operations: suffix };
  }
}

/** Indices of answered blind writes that overlap no other answered operation, in time order. */
function isolatedBlindWrites<State, Call, Result>(
  model: Model<State, Call, Result>,
  operations: readonly TimedOperation<Call, Result>[],
): number[] {
  // nextInvokedAt[i]: the earliest invocation among answered operations after index i.
  const nextInvokedAt = new Array<number>(operations.length);
  let invokedMin = Infinity;
  for (let index = operations.length - 1; index >= 0; index--) {
    nextInvokedAt[index] = invokedMin;
    const operation = operations[index]!;
    if (operation.response !== null) invokedMin = Math.min(invokedMin, operation.invokedAt);
  }
  const isolated: number[] = [];
  let respondedMax = -Infinity;
  operations.forEach((operation, index) => {
    const response = operation.response;
    if (response === null) return;
    // Ties overlap: equal times are concurrent, as in the search.
    const alone =
      respondedMax < operation.invokedAt && nextInvokedAt[index]! > response.respondedAt;
    if (alone && model.isBlindWrite(operation.call)) isolated.push(index);
    respondedMax = Math.max(respondedMax, response.respondedAt);
  });
  return isolated;
}

/**
 * Drops answered read-only operations the failure does not need, in halving chunks (Zeller's delta
 * debugging): most reads are irrelevant, so large chunks usually go at once and only the few reads
 * that matter cost single trials.
 */
function removeReads<State, Call, Result, Op extends TimedOperation<Call, Result>>(
  model: Model<State, Call, Result>,
  start: ShrunkHistory<Op>,
  budget: Budget,
): ShrunkHistory<Op> {
  let current = start;
  let candidates = start.operations.filter(
    (operation) =>
      operation.response !== null && model.isReadOnly(operation.call, operation.response.result),
  );
  for (let chunkSize = candidates.length; chunkSize >= 1 && !budget.exhausted; ) {
    const kept: Op[] = [];
    for (let begin = 0; begin < candidates.length; begin += chunkSize) {
      const chunk = new Set(candidates.slice(begin, begin + chunkSize));
      const trial = current.operations.filter((operation) => !chunk.has(operation));
      const deepest = budget.failure(model, trial);
      if (deepest !== null) current = { ...current, operations: trial, deepest };
      else kept.push(...chunk);
    }
    candidates = kept;
    chunkSize = Math.min(candidates.length, chunkSize >>> 1);
  }
  assert(current.operations.length <= start.operations.length);
  return current;
}

function distinctTimes(operations: readonly TimedOperation<unknown, unknown>[]): number[] {
  const times = new Set<number>();
  for (const operation of operations) {
    times.add(operation.invokedAt);
    if (operation.response !== null) times.add(operation.response.respondedAt);
  }
  return [...times].sort((left, right) => left - right);
}

/** The steps left to the whole shrink. */
class Budget {
  readonly #stepsMax: number;
  #stepsLeft: number;

  constructor(options: ShrinkOptions) {
    assert(Number.isInteger(options.shrinkStepsMax) && options.shrinkStepsMax >= 0);
    this.#stepsMax = options.stepsMax;
    this.#stepsLeft = options.shrinkStepsMax;
  }

  get exhausted(): boolean {
    return this.#stepsLeft === 0;
  }

  /** Searches `operations`: the deepest partial linearization if they fail, else null. */
  failure<State, Call, Result>(
    model: Model<State, Call, Result>,
    operations: readonly TimedOperation<Call, Result>[],
  ): PartialLinearization | null {
    if (this.exhausted) return null;
    const stepsMax = Math.min(this.#stepsMax, this.#stepsLeft);
    const outcome = searchLinearization(model, operations, { stepsMax });
    this.#stepsLeft -= outcome.steps;
    assert(this.#stepsLeft >= 0);
    return outcome.kind === 'not-linearizable' ? outcome.deepest : null;
  }
}
