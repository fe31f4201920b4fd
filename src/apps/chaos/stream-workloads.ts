/**
 * The watch, lease and lock workloads in the runner. Unlike register, bank and set, each runs its
 * own mix of clients (writers and watchers, a monitor, lock contenders) and records more than one
 * operation per entry, so each is one `run` that returns its history, checked with the run's
 * faults. Their operations are also flattened into `HistoryEntry`s for the report's counts and
 * timeline.
 */

import { AssertionFailure } from '../../base/index.js';
import type { EtcdProto } from '../../server/grpc/proto.js';
import { checkLease, type LeaseHistory } from './checkers/lease-checker.js';
import { checkLock, type LockHistory } from './checkers/lock-checker.js';
import { checkWatch, type WatchHistory } from './checkers/watch-checker.js';
import type { CheckVerdict, FaultRecord, HistoryEntry, WorkloadKind } from './types.js';
import type { EtcdEndpoint } from './workloads/lease-etcd-client.js';
import { runLeaseWorkload } from './workloads/lease-workload.js';
import { runLockWorkload } from './workloads/lock-workload.js';
import { runWatchWorkload } from './workloads/watch-workload.js';

/** The stream workloads' kinds. */
export const streamWorkloadKinds: readonly WorkloadKind[] = Object.freeze(['watch', 'lease', 'lock']);

/** What every stream workload is given. */
export interface StreamContext {
  readonly proto: EtcdProto;
  readonly endpoints: readonly EtcdEndpoint[];
  readonly nowMs: () => number;
  readonly durationMs: number;
  readonly signal: AbortSignal;
  readonly clients: number;
  readonly electionTimeoutMs: number;
}

/** A finished stream workload: checked once the faults are known. */
export interface StreamResult {
  readonly kind: WorkloadKind;
  readonly entries: readonly HistoryEntry[];
  check(faults: readonly FaultRecord[]): CheckVerdict;
}

/** How long the end-of-run reads may wait for the healed cluster. */
const catchUpTimeoutMs = 30_000;

/** Runs the stream workload `kind` until the context's signal or duration ends it. */
export async function runStreamWorkload(kind: WorkloadKind, context: StreamContext): Promise<StreamResult> {
  const common = {
    proto: context.proto, endpoints: context.endpoints, nowMs: context.nowMs,
    durationMs: context.durationMs, signal: context.signal,
  };
  switch (kind) {
    case 'watch': {
      const history = await runWatchWorkload({
        ...common, prefix: 'chaos/watch/', writers: Math.max(1, Math.floor(context.clients / 2)),
        watchers: context.clients, catchUpTimeoutMs,
      });
      return { kind, entries: watchEntries(history), check: () => checkWatch(history) };
    }
    case 'lease': {
      const history = await runLeaseWorkload({ ...common, prefix: 'chaos/lease/', clients: context.clients });
      return {
        kind, entries: leaseEntries(history),
        check: (faults) => checkLease(history, { faults, electionTimeoutMs: context.electionTimeoutMs }),
      };
    }
    case 'lock': {
      const history = await runLockWorkload({ ...common, lockName: 'chaos-lock', clients: context.clients });
      return { kind, entries: lockEntries(history), check: () => checkLock(history) };
    }
    default:
      throw new AssertionFailure(`${kind} is not a stream workload`);
  }
}

function watchEntries(history: WatchHistory): HistoryEntry[] {
  return history.writes.map((write) => ({ ...write, workload: 'watch' as const }));
}

function leaseEntries(history: LeaseHistory): HistoryEntry[] {
  return history.leases.flatMap((lease) => [lease.grant, lease.attach, ...lease.keepAlives].map((step) => ({
    workload: 'lease' as const, clientId: lease.clientId, member: lease.member,
    call: { leaseId: lease.leaseId }, invokedAtMs: step.invokedAtMs, completedAtMs: step.completedAtMs,
    outcome: step.outcome,
  })));
}

function lockEntries(history: LockHistory): HistoryEntry[] {
  return history.sections.flatMap((section) => [
    {
      workload: 'lock' as const, clientId: section.clientId, member: section.member,
      call: { kind: 'lock', token: section.token }, invokedAtMs: section.acquireInvokedAtMs,
      completedAtMs: section.acquiredAtMs, outcome: 'ok' as const,
    },
    ...section.writes.map((write) => ({
      workload: 'lock' as const, clientId: section.clientId, member: section.member,
      call: { kind: 'write', token: section.token }, invokedAtMs: write.invokedAtMs,
      completedAtMs: write.completedAtMs,
      outcome: write.outcome === 'fenced' ? 'failed' as const : write.outcome,
    })),
  ]);
}
