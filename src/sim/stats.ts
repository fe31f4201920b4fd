/**
 * Counts of what a run did: faults injected and the protocol paths they drove the cluster through.
 * A simulator that injects nothing proves nothing, so the tests assert these are non-zero across
 * seeds, and the CLI prints them.
 */

/** Per-run counters. All are plain event counts. */
export interface SimStats {
  /** Messages lost: dropped at random, sent or in flight on a cut link, or sent to a down node. */
  drops: number;
  /** Messages delivered twice. */
  duplicates: number;
  /** Partitions started (splits, one-way cuts and leader isolations). */
  partitions: number;
  /** Of `partitions`: the current leader cut off from everyone. */
  leaderIsolations: number;
  /** Of `partitions`: at least one link cut one way only. */
  asymmetricPartitions: number;
  /** Every crash, including disk failures. */
  crashes: number;
  /** Crashes in the middle of handling a Ready (between receiving it and `advance`). */
  readyCrashes: number;
  /** Durable writes that failed (each one crashes its node). */
  diskFailures: number;
  restarts: number;
  snapshotsCreated: number;
  /** Snapshots received from a leader and installed. */
  snapshotsInstalled: number;
  confChangesProposed: number;
  /** Membership changes applied (counted once per log index). */
  confChangesApplied: number;
  /** Removed node ids added back (with a wiped disk). */
  reAdds: number;
  leaderTransfers: number;
  /** Times a node became leader of a term. */
  elections: number;
  operationsInvoked: number;
  /** Operations refused at once (no leader, dropped proposal, read queue full): never invoked. */
  operationsRefused: number;
  operationsAnswered: number;
  /** Operations whose outcome the client never learned (timeout, node crash). */
  operationsIndeterminate: number;
  /** Gets answered through ReadIndex or a lease (not through the log). */
  readIndexReads: number;
}

/** A zeroed counter set. */
export function newStats(): SimStats {
  return {
    drops: 0,
    duplicates: 0,
    partitions: 0,
    leaderIsolations: 0,
    asymmetricPartitions: 0,
    crashes: 0,
    readyCrashes: 0,
    diskFailures: 0,
    restarts: 0,
    snapshotsCreated: 0,
    snapshotsInstalled: 0,
    confChangesProposed: 0,
    confChangesApplied: 0,
    reAdds: 0,
    leaderTransfers: 0,
    elections: 0,
    operationsInvoked: 0,
    operationsRefused: 0,
    operationsAnswered: 0,
    operationsIndeterminate: 0,
    readIndexReads: 0,
  };
}

/** Faults injected: the sum the CLI reports as "faults". */
export function faultCount(stats: SimStats): number {
  return stats.drops + stats.duplicates + stats.partitions + stats.crashes;
}
