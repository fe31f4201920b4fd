/**
 * Shrinks a non-linearizable history to a small one that is still not linearizable, so a failure
 * report shows a handful of operations instead of thousands. Only two reductions are used, both of
 * which preserve "not linearizable ⇒ the original is not linearizable":
 *
 * 1. Cut the history at a time T (see `prefixAt`): linearizability is prefix-closed, and failure is
 *    monotone in T, so a binary search finds the earliest failing cut.
 * 2. Remove answered read-only operations (`Model.isReadOnly`) one at a time: deleting one from a
 *    linearization of the original leaves a linearization of the rest.
 *
 * Removing a write would not be sound (a read of its value would become inexplicable), so writes stay.
 */

import { assert } from '../base/index.js';
import { prefixAt, type TimedOperation } from './history.js';
import { searchLinearization, type PartialLinearization } from './linearizability.js';
import type { Model } from './model.js';

/** Limits of one shrink. */
export interface ShrinkOptions {
  /** Event visits allowed to any one search, as for the check itself. */
  readonly stepsMax: number;
  /** Event visits allowed to all searches of the shrink together; 0 skips shrinking. */
  readonly shrinkStepsMax: number;
}

/** A non-linearizable history, as small as the budget allowed. */
export interface ShrunkHistory<Op> {
  /** Still not linearizable; sorted by invocation time. */
  readonly operations: readonly Op[];
  /** The time the history was cut at (operations invoked later dropped), or null if uncut. */
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
  const cut = cutEarliest(model, operations, budget) ?? failing;
  return removeReads(model, cut, budget);
}

/** The earliest cut that still fails, or null if none before the end was found to. */
function cutEarliest<State, Call, Result, Op extends TimedOperation<Call, Result>>(
  model: Model<State, Call, Result>,
  sorted: readonly Op[],
  budget: Budget,
): ShrunkHistory<Op> | null {
  const times = distinctTimes(sorted);
  // Invariant: cutting at times[high] fails (the last time keeps everything), or `best` is null.
  let low = 0;
  let high = times.length - 1;
  let best: ShrunkHistory<Op> | null = null;
  while (low < high && !budget.exhausted) {
    const middle = (low + high) >>> 1;
    const cutAt = times[middle]!;
    const prefix = prefixAt(sorted, cutAt);
    const deepest = budget.failure(model, prefix);
    if (deepest === null) {
      low = middle + 1;
    } else {
      high = middle;
      best = { cutAt, operations: prefix, deepest };
    }
  }
  return best;
}

/** Drops answered read-only operations that the failure does not need. */
function removeReads<State, Call, Result, Op extends TimedOperation<Call, Result>>(
  model: Model<State, Call, Result>,
  start: ShrunkHistory<Op>,
  budget: Budget,
): ShrunkHistory<Op> {
  let current = start;
  // Walk backwards so an index still names the same operation after later removals.
  for (let index = current.operations.length - 1; index >= 0 && !budget.exhausted; index--) {
    const operation = current.operations[index]!;
    if (operation.response === null) continue;
    if (!model.isReadOnly(operation.call, operation.response.result)) continue;
    const trial = current.operations.filter((_, other) => other !== index);
    const deepest = budget.failure(model, trial);
    if (deepest !== null) current = { cutAt: current.cutAt, operations: trial, deepest };
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
