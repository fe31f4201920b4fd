/**
 * The lease checker: a key attached to a lease lives at least its TTL past the lease's last
 * renewal, and is gone not much later. Pure over the recorded data.
 *
 * Times are client-side, so each bound is taken in the direction that cannot blame the server
 * wrongly: the leader renewed a lease somewhere inside a keep-alive's [invoked, completed], and a
 * read observed the store somewhere inside its own [invoked, completed].
 *
 * - Early: the lease cannot expire before `renewedAtLeast + TTL`, where `renewedAtLeast` is the
 *   latest invocation of a grant or keep-alive that succeeded. A read completed before
 *   `renewedAtLeast + TTL − earlyToleranceMs` that started after the key's put was acknowledged
 *   and misses the key is a violation, as is a keep-alive answered with TTL 0 before then.
 * - Late: the lease may be renewed as late as `renewedAtMost`, the latest completion of a grant or
 *   keep-alive that succeeded or is unknown. A read invoked after
 *   `renewedAtMost + TTL + lateGraceMs` that still finds the key is a violation. A fault active in
 *   that window extends it: a new leader gives every lease TTL + election timeout afresh (etcd's
 *   lessor Promote), after up to an election timeout to be elected once the fault heals.
 */

import type { CheckVerdict, FaultRecord, OutcomeKind } from '../types.js';

/** One renewal (grant or keep-alive) as a client saw it. */
export interface LeaseRenewalRecord {
  readonly invokedAtMs: number;
  readonly completedAtMs: number;
  /** 'failed' is a keep-alive answered with TTL 0: the lease was already gone. */
  readonly outcome: OutcomeKind;
  /** The TTL in seconds the response granted (0 unless 'ok'). */
  readonly ttlSeconds: number;
}

/** One lease's life as its client saw it. */
export interface LeaseRecord {
  readonly clientId: number;
  readonly member: string;
  /** The lease ID as its decimal string. */
  readonly leaseId: string;
  /** The key put with the lease. */
  readonly key: string;
  /** The acknowledged grant (only granted leases are recorded). */
  readonly grant: LeaseRenewalRecord;
  /** The put of `key` with the lease. */
  readonly attach: { readonly invokedAtMs: number; readonly completedAtMs: number;
    readonly outcome: OutcomeKind };
  readonly keepAlives: readonly LeaseRenewalRecord[];
  /** When the client stopped renewing ("died"). */
  readonly diedAtMs: number;
}

/** One successful linearizable read of the prefix: the keys it held. */
export interface LeaseSample {
  readonly member: string;
  readonly invokedAtMs: number;
  readonly completedAtMs: number;
  readonly keys: readonly string[];
}

/** What the lease workload records. */
export interface LeaseHistory {
  readonly prefix: string;
  readonly leases: readonly LeaseRecord[];
  readonly samples: readonly LeaseSample[];
  /** Reads that did not succeed (not evidence either way). */
  readonly samplesFailed: number;
  /** Grants that did not succeed. */
  readonly grantsFailed: number;
}

/** Options of `checkLease`; see the module comment. */
export interface LeaseCheckOptions {
  /** Slack for an early disappearance. Default `leaseEarlyToleranceMsDefault`. */
  readonly earlyToleranceMs?: number;
  /** How long past renewal + TTL a key may linger. Default `leaseLateGraceMsDefault`. */
  readonly lateGraceMs?: number;
  /** The cluster's election timeout. Default 1000 (etcd's and Synod's default). */
  readonly electionTimeoutMs?: number;
  /** Faults injected during the run; each extends the late bound of leases it overlaps. */
  readonly faults?: readonly FaultRecord[];
}

/**
 * Early slack: both bounds are already conservative (invocation times, read completions) and
 * clients and members share a host's monotonic clock, so only timer rounding remains.
 */
export const leaseEarlyToleranceMsDefault = 100;

/**
 * Late slack: election timeout (1000 ms: a leader change restarts the clock) + the expiry check
 * interval (500 ms: expiry is noticed by a periodic check) + revoke commit and read latency
 * (1500 ms). With a 3 s TTL a key must be gone 6 s after its last renewal.
 */
export const leaseLateGraceMsDefault = 3000;

/** Checks `history`; see the module comment. */
export function checkLease(history: LeaseHistory, options: LeaseCheckOptions = {}): CheckVerdict {
  const settings = {
    earlyToleranceMs: options.earlyToleranceMs ?? leaseEarlyToleranceMsDefault,
    lateGraceMs: options.lateGraceMs ?? leaseLateGraceMsDefault,
    electionTimeoutMs: options.electionTimeoutMs ?? 1000,
    faults: [...(options.faults ?? [])].sort((a, b) => a.startedAtMs - b.startedAtMs),
  };
  const violations: string[] = [];
  const stats = { leases: history.leases.length, samples: history.samples.length,
    samplesFailed: history.samplesFailed, grantsFailed: history.grantsFailed, keepAlivesOk: 0,
    earlyChecked: 0, lateChecked: 0, lateUnobserved: 0, lateUnbounded: 0 };
  for (const lease of history.leases) {
    stats.keepAlivesOk += lease.keepAlives.filter((record) => record.outcome === 'ok').length;
    const early = checkEarly(lease, history.samples, settings.earlyToleranceMs);
    violations.push(...early.violations);
    if (early.checked) stats.earlyChecked += 1;
    const goneByMs = lateBound(lease, settings);
    if (goneByMs === null) {
      stats.lateUnbounded += 1;
      continue;
    }
    const late = checkLate(lease, history.samples, goneByMs);
    violations.push(...late.violations);
    if (late.observed) stats.lateChecked += 1;
    else stats.lateUnobserved += 1;
  }
  return { checker: 'lease', valid: violations.length === 0, violations, lostWrites: 0, stats };
}

function renewals(lease: LeaseRecord): LeaseRenewalRecord[] {
  return [lease.grant, ...lease.keepAlives];
}

/** The earliest the lease may expire: latest successful renewal's invocation + its TTL. */
function expiresNotBeforeMs(lease: LeaseRecord): number {
  let bound = -Infinity;
  for (const renewal of renewals(lease)) {
    if (renewal.outcome !== 'ok') continue;
    bound = Math.max(bound, renewal.invokedAtMs + renewal.ttlSeconds * 1000);
  }
  return bound;
}

function checkEarly(
  lease: LeaseRecord,
  samples: readonly LeaseSample[],
  toleranceMs: number,
): { violations: string[]; checked: boolean } {
  const violations: string[] = [];
  const mustExistUntilMs = expiresNotBeforeMs(lease) - toleranceMs;
  const name = `lease ${lease.leaseId} (client ${lease.clientId}, key ${lease.key})`;
  for (const renewal of lease.keepAlives) {
    if (renewal.outcome === 'failed' && renewal.completedAtMs < mustExistUntilMs) {
      violations.push(`${name}: keep-alive answered TTL 0 at ${renewal.completedAtMs} ms, ` +
        `before ${mustExistUntilMs} ms (renewed to expire no earlier)`);
    }
  }
  if (lease.attach.outcome !== 'ok') return { violations, checked: false };
  let checked = false;
  for (const sample of samples) {
    if (sample.invokedAtMs < lease.attach.completedAtMs) continue;
    if (sample.completedAtMs >= mustExistUntilMs) continue;
    checked = true;
    if (sample.keys.includes(lease.key)) continue;
    violations.push(`${name}: key missing in a read on ${sample.member} ` +
      `[${sample.invokedAtMs}, ${sample.completedAtMs}] ms, before it may expire at ` +
      `${mustExistUntilMs} ms (early by ≥ ${mustExistUntilMs - sample.completedAtMs} ms)`);
    break;
  }
  return { violations, checked };
}

/** When the key must be gone by, or null when a fault never healed. */
function lateBound(
  lease: LeaseRecord,
  settings: { lateGraceMs: number; electionTimeoutMs: number; faults: readonly FaultRecord[] },
): number | null {
  let renewedAtMostMs = -Infinity;
  let ttlMs = lease.grant.ttlSeconds * 1000;
  for (const renewal of renewals(lease)) {
    if (renewal.outcome === 'failed') continue;
    renewedAtMostMs = Math.max(renewedAtMostMs, renewal.completedAtMs);
    ttlMs = Math.max(ttlMs, renewal.ttlSeconds * 1000);
  }
  renewedAtMostMs = Math.max(renewedAtMostMs, lease.diedAtMs);
  let goneByMs = renewedAtMostMs + ttlMs + settings.lateGraceMs;
  for (const fault of settings.faults) {
    if (fault.startedAtMs > goneByMs || (fault.healedAtMs ?? Infinity) < renewedAtMostMs) continue;
    if (fault.healedAtMs === null) return null;
    const promotedGoneByMs = fault.healedAtMs + 2 * settings.electionTimeoutMs + ttlMs +
      settings.lateGraceMs;
    goneByMs = Math.max(goneByMs, promotedGoneByMs);
  }
  return goneByMs;
}

function checkLate(
  lease: LeaseRecord,
  samples: readonly LeaseSample[],
  goneByMs: number,
): { violations: string[]; observed: boolean } {
  let observed = false;
  for (const sample of samples) {
    if (sample.invokedAtMs <= goneByMs) continue;
    observed = true;
    if (!sample.keys.includes(lease.key)) continue;
    return { violations: [`lease ${lease.leaseId} (client ${lease.clientId}, key ${lease.key}): ` +
      `key still present in a read on ${sample.member} invoked at ${sample.invokedAtMs} ms, ` +
      `after it must be gone by ${goneByMs} ms (late by ≥ ${sample.invokedAtMs - goneByMs} ms; ` +
      `client died at ${lease.diedAtMs} ms)`], observed };
  }
  return { violations: [], observed };
}
