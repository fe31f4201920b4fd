/**
 * Checks a set history against the final read. An acknowledged add missing from it is a lost
 * write. An add of unknown outcome may be present or not (counted as recovered or not). An element
 * no client tried to add, or one whose add the server definitely refused, must not be present:
 * the first is corruption, the second means a refusal that was not one (an error classified as
 * `failed` that should be `unknown`, or a server that acts on requests it refused).
 */

import type { CheckVerdict, HistoryEntry } from '../types.js';
import type { SetCall } from '../workloads/set-workload.js';
import { countOutcomes } from './register-checker.js';

/** The elements present after the run, in any order. */
export interface SetFinalRead {
  readonly elements: readonly string[];
}

/** Elements named in full per violation; the rest are counted. */
const elementsShownMax = 20;

/** Checks the set entries of `history` (others are ignored) against the final read. */
export function checkSet(history: readonly HistoryEntry[], finalRead: SetFinalRead): CheckVerdict {
  const outcomeOf = new Map<string, HistoryEntry['outcome']>();
  for (const entry of history) {
    if (entry.workload !== 'set') continue;
    outcomeOf.set((entry.call as SetCall).element, entry.outcome);
  }
  const present = new Set(finalRead.elements);
  const lost: string[] = [];
  for (const [element, outcome] of outcomeOf) {
    if (outcome === 'ok' && !present.has(element)) lost.push(element);
  }
  const neverAttempted: string[] = [];
  const refusedButPresent: string[] = [];
  let unknownPresent = 0;
  for (const element of present) {
    const outcome = outcomeOf.get(element);
    if (outcome === undefined) neverAttempted.push(element);
    else if (outcome === 'failed') refusedButPresent.push(element);
    else if (outcome === 'unknown') unknownPresent += 1;
  }
  const violations: string[] = [];
  if (lost.length > 0) violations.push(`acknowledged adds missing: ${listed(lost)}`);
  if (neverAttempted.length > 0) {
    violations.push(`present but never added: ${listed(neverAttempted)}`);
  }
  if (refusedButPresent.length > 0) {
    violations.push(`present although the add definitely failed: ${listed(refusedButPresent)}`);
  }
  const counts = countOutcomes(history, 'set');
  return {
    checker: 'set',
    valid: violations.length === 0,
    violations,
    lostWrites: lost.length,
    stats: {
      ...counts, present: present.size, unknownPresent,
      unknownAbsent: counts.unknown - unknownPresent,
      neverAttempted: neverAttempted.length, refusedButPresent: refusedButPresent.length,
    },
  };
}

function listed(elements: readonly string[]): string {
  const shown = elements.slice(0, elementsShownMax).map((element) => JSON.stringify(element));
  const rest = elements.length - shown.length;
  return `${elements.length} (${shown.join(', ')}${rest > 0 ? `, … ${rest} more` : ''})`;
}
