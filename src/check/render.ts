/**
 * Plain-text rendering of histories and failures, for test failure messages. One line per
 * operation with its interval and, for short histories, a timeline in which overlapping bars are
 * concurrent operations.
 */

import { assert } from '../base/index.js';
import type { CheckFailed } from './check.js';
import type { Operation } from './history.js';
import { kvModel } from './kv-model.js';

/** Histories with more distinct times than this are rendered without a timeline. */
const timelineTimesMax = 40;

/**
 * Renders `operations` one per line, in the order given, labelled `#index` as failure reasons name
 * them. For example:
 *
 * ```text
 * #0  client 1  [10, 20]  put("a")      |===  |
 * #1  client 2  [15, …)   put("b") → ?  | ====|…
 * #2  client 3  [25, 30]  get() → "a"   |   ==|
 * ```
 */
export function renderHistory(operations: readonly Operation[]): string {
  if (operations.length === 0) return '(no operations)';
  const columns = operations.map((operation, index) => [
    `#${index}`,
    `client ${operation.clientId}`,
    renderInterval(operation),
    kvModel.describeOperation(operation.call, operation.response?.result ?? null),
  ]);
  const widths = [0, 1, 2, 3].map((column) =>
    Math.max(...columns.map((cells) => cells[column]!.length)),
  );
  const bars = renderTimeline(operations);
  const lines = columns.map((cells, index) => {
    const text = cells.map((cell, column) => cell.padEnd(widths[column]!)).join('  ');
    return bars === null ? text.trimEnd() : `${text}  ${bars[index]!}`;
  });
  assert(lines.length === operations.length);
  return lines.join('\n');
}

/** Renders a failed check: the key, the reason, and the counterexample it refers to. */
export function renderFailure(failure: CheckFailed): string {
  const scope: string[] = [];
  if (failure.startAt !== null) {
    scope.push(`from time ${failure.startAt}, where a write overwrote all that finished before`);
  }
  if (failure.cutAt !== null) {
    scope.push(`up to time ${failure.cutAt}, operations still running then shown without response`);
  }
  const scopeText = scope.length === 0 ? '' : ` (${scope.join('; ')})`;
  return [
    `key ${JSON.stringify(failure.key)} is not linearizable: ${failure.reason}`,
    `counterexample, ${failure.counterexample.length} of the key's ` +
      `${failure.operations.length} operations${scopeText}:`,
    renderHistory(failure.counterexample),
  ].join('\n');
}

function renderInterval(operation: Operation): string {
  const response = operation.response;
  return response === null
    ? `[${operation.invokedAt}, …)`
    : `[${operation.invokedAt}, ${response.respondedAt}]`;
}

/** One bar per operation over rank-compressed time, or null if there are too many times to show. */
function renderTimeline(operations: readonly Operation[]): string[] | null {
  const times = new Set<number>();
  for (const operation of operations) {
    times.add(operation.invokedAt);
    if (operation.response !== null) times.add(operation.response.respondedAt);
  }
  if (times.size > timelineTimesMax) return null;
  const sorted = [...times].sort((left, right) => left - right);
  const ranks = new Map(sorted.map((time, rank) => [time, rank]));
  const width = times.size;
  return operations.map((operation) => {
    const start = ranks.get(operation.invokedAt)!;
    const response = operation.response;
    const end = response === null ? width - 1 : ranks.get(response.respondedAt)!;
    const bar = ' '.repeat(start) + '='.repeat(end - start + 1) + ' '.repeat(width - 1 - end);
    return `|${bar}|${response === null ? '…' : ''}`;
  });
}
