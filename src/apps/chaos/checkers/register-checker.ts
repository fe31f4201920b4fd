/**
 * Checks a register history for linearizability, key by key, with src/check. Ok operations carry
 * their response; unknown ones have none (they may take effect at any time after invocation, or
 * never); failed ones are dropped, as they had no effect. The final read of every key, made after
 * every client stopped, joins the history as one more get per key after all else, so a write
 * acknowledged and later lost shows up as a read that cannot be linearized.
 */

import {
  checkLinearizable, partitionByKey, renderFailure, type CheckOptions, type KvCall, type KvResult,
  type Operation,
} from '../../../check/index.js';
import type { CheckVerdict, HistoryEntry } from '../types.js';

/** The value of every register after the run; null for an absent key. */
export interface RegisterFinalRead {
  readonly values: Readonly<Record<string, string | null>>;
}

/** The client id the final reads appear under in a rendered failure. */
export const finalReadClientId = -1;

/** Checks the register entries of `history` (others are ignored) and the final read. */
export function checkRegister(
  history: readonly HistoryEntry[],
  finalRead: RegisterFinalRead | null,
  options: CheckOptions = {},
): CheckVerdict {
  const operations = toOperations(history, finalRead);
  const violations: string[] = [];
  let keysUndecided = 0;
  const byKey = partitionByKey(operations);
  for (const [key, keyOperations] of byKey) {
    const result = checkLinearizable(keyOperations, options);
    if (result.ok === false) violations.push(renderFailure(result));
    if (result.ok === 'unknown') {
      keysUndecided += 1;
      violations.push(
        `key ${JSON.stringify(key)}: undecided, the search ran out of ${result.stepsMax} steps`,
      );
    }
  }
  const counts = countOutcomes(history);
  return {
    checker: 'register',
    valid: violations.length === 0,
    violations,
    lostWrites: 0,
    stats: { ...counts, keys: byKey.size, keysUndecided, operationsChecked: operations.length },
  };
}

type RegisterEntryIn = HistoryEntry<KvCall & { readonly key: string }, KvResult>;

function toOperations(
  history: readonly HistoryEntry[],
  finalRead: RegisterFinalRead | null,
): Operation[] {
  const operations: Operation[] = [];
  let latestMs = 0;
  for (const raw of history) {
    if (raw.workload !== 'register' || raw.outcome === 'failed') continue;
    const entry = raw as RegisterEntryIn;
    const { key, ...call } = entry.call;
    latestMs = Math.max(latestMs, entry.completedAtMs);
    const response = entry.outcome === 'ok'
      ? { respondedAt: entry.completedAtMs, result: entry.result! }
      : null;
    const invokedAt = entry.invokedAtMs;
    operations.push({ clientId: entry.clientId, key, call, invokedAt, response });
  }
  if (finalRead === null) return operations;
  // The final reads began after every client had stopped: after every recorded time.
  const invokedAt = latestMs + 1;
  for (const [key, value] of Object.entries(finalRead.values)) {
    operations.push({
      clientId: finalReadClientId, key, call: { kind: 'get' }, invokedAt,
      response: { respondedAt: invokedAt + 1, result: { kind: 'get', value } },
    });
  }
  return operations;
}

/** Entries of one workload by outcome. */
export function countOutcomes(
  history: readonly HistoryEntry[],
  workload: HistoryEntry['workload'] = 'register',
): { ok: number; failed: number; unknown: number } {
  const counts = { ok: 0, failed: 0, unknown: 0 };
  for (const entry of history) if (entry.workload === workload) counts[entry.outcome] += 1;
  return counts;
}
