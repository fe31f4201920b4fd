/**
 * Checks a bank history: every ok read, and the final read, must show every account, no negative
 * balance, and balances summing to the total. A Range reads one revision, so a read that breaks
 * this saw a transfer half applied, applied twice, or lost.
 */

import type { CheckVerdict, HistoryEntry } from '../types.js';
import type { BankCall, BankResult, BankShape } from '../workloads/bank-workload.js';
import { countOutcomes } from './register-checker.js';

/** Every balance after the run, by account key. */
export interface BankFinalRead {
  readonly balances: Readonly<Record<string, number>>;
}

/** Violations reported in full; the rest are counted. */
const violationsShownMax = 20;

/** Checks the bank entries of `history` (others are ignored) and the final read. */
export function checkBank(
  history: readonly HistoryEntry[],
  finalRead: BankFinalRead | null,
  shape: BankShape,
): CheckVerdict {
  const violations: string[] = [];
  let readsChecked = 0;
  let readsInvalid = 0;
  let transfersSucceeded = 0;
  for (const raw of history) {
    if (raw.workload !== 'bank') continue;
    const entry = raw as HistoryEntry<BankCall, BankResult>;
    if (entry.outcome !== 'ok' || entry.result === undefined) continue;
    if (entry.result.kind === 'transfer') {
      if (entry.result.succeeded) transfersSucceeded += 1;
      continue;
    }
    readsChecked += 1;
    const problem = balanceProblem(entry.result.balances, shape);
    if (problem === null) continue;
    readsInvalid += 1;
    if (violations.length < violationsShownMax) {
      violations.push(
        `read by client ${entry.clientId} on ${entry.member} ` +
          `[${entry.invokedAtMs.toFixed(1)}, ${entry.completedAtMs.toFixed(1)}] ms: ${problem}`,
      );
    }
  }
  if (readsInvalid > violations.length) {
    violations.push(`… and ${readsInvalid - violations.length} more invalid reads`);
  }
  const finalProblem = finalRead === null ? null : balanceProblem(finalRead.balances, shape);
  if (finalProblem !== null) violations.push(`final read: ${finalProblem}`);
  return {
    checker: 'bank',
    valid: violations.length === 0,
    violations,
    lostWrites: 0,
    stats: { ...countOutcomes(history, 'bank'), readsChecked, readsInvalid, transfersSucceeded },
  };
}

/** What is wrong with one snapshot of the balances, or null when nothing is. */
export function balanceProblem(
  balances: Readonly<Record<string, number>>,
  shape: BankShape,
): string | null {
  const problems: string[] = [];
  const missing = shape.accounts.filter((account) => !(account in balances));
  if (missing.length > 0) problems.push(`accounts missing: ${missing.join(', ')}`);
  const unexpected = Object.keys(balances).filter((key) => !shape.accounts.includes(key));
  if (unexpected.length > 0) problems.push(`unexpected keys: ${unexpected.join(', ')}`);
  const entries = Object.entries(balances);
  const malformed = entries.filter(([, balance]) => !Number.isSafeInteger(balance));
  if (malformed.length > 0) {
    problems.push(`not integers: ${malformed.map(([key]) => key).join(', ')}`);
  }
  const negative = entries.filter(([, balance]) => balance < 0);
  if (negative.length > 0) {
    problems.push(`negative: ${negative.map(([key, balance]) => `${key}=${balance}`).join(', ')}`);
  }
  const sum = entries.reduce((total, [, balance]) => total + balance, 0);
  if (sum !== shape.total) problems.push(`balances sum to ${sum}, expected ${shape.total}`);
  return problems.length === 0 ? null : `${problems.join('; ')} (${JSON.stringify(balances)})`;
}
