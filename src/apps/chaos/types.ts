/**
 * The vocabulary the chaos harness shares between its parts: the cluster under test, the faults,
 * the history of client operations, and what checkers report. Times are milliseconds since the
 * run started (`performance.now()` deltas), so a history file is readable as is.
 */

import type { KvCall, KvResult } from '../../check/index.js';

/** Which server the harness runs. */
export type ChaosTarget = 'synod' | 'etcd';

/** A member of the cluster under test, as the harness started it. */
export interface ChaosMember {
  readonly name: string;
  /** The client URL clients dial (`http://127.0.0.1:port`). */
  readonly clientUrl: string;
  /** Where the member's peer listener really is (not through a proxy). */
  readonly peerListenPort: number;
  /** The address other members dial to reach it: its proxy's port. */
  readonly peerProxyPort: number;
}

/** A fault the nemesis can inject. */
export type FaultKind =
  /** Cut the links between two groups of members both ways. */
  | 'partition'
  /** Cut the links from one member to the others one way only. */
  | 'partition-one-way'
  /** Delay (with jitter) every byte on the peer links. */
  | 'latency'
  /** Reset every peer connection at once. */
  | 'reset'
  /** SIGKILL a member, restart it later. */
  | 'kill'
  /** SIGKILL the leader, restart it later. */
  | 'kill-leader'
  /** SIGKILL a majority, restart them later. */
  | 'kill-majority'
  /** SIGSTOP a member for longer than the election timeout, then SIGCONT. */
  | 'pause'
  /**
   * SIGKILL a member as an OS crash would: what it wrote without fsync is lost too (see
   * `ChaosCluster.loseUnsynced`), then restart it later.
   */
  | 'lose-unsynced'
  /**
   * Replace a member as an operator replaces a failed machine, under load: MemberRemove, wipe its
   * data, then MemberAdd at the same peer URL and start it empty to join (a new member id).
   */
  | 'member-replace';

/** One fault as it happened: when it began and ended, and on whom. */
export interface FaultRecord {
  readonly kind: FaultKind;
  readonly startedAtMs: number;
  /** When it was healed; null while still active at the end of the run. */
  readonly healedAtMs: number | null;
  /** The members it hit, and for partitions how they were split. */
  readonly detail: string;
}

/** How an operation ended, as Jepsen classifies it. */
export type OutcomeKind =
  /** The server acknowledged it. */
  | 'ok'
  /** The server said it did not happen (e.g. a failed compare, a refused request). */
  | 'failed'
  /** The client does not know (timeout, connection lost): it may or may not have happened. */
  | 'unknown';

/** One operation of a workload's history. `call`/`result` shapes depend on the workload. */
export interface HistoryEntry<Call = unknown, Result = unknown> {
  readonly workload: WorkloadKind;
  readonly clientId: number;
  /** The member the client sent it to. */
  readonly member: string;
  readonly call: Call;
  readonly invokedAtMs: number;
  readonly completedAtMs: number;
  readonly outcome: OutcomeKind;
  /** Present when `outcome` is 'ok' (and for 'failed' when the server said why). */
  readonly result?: Result;
  /** The error text for 'failed' and 'unknown'. */
  readonly error?: string;
}

/** The workloads the harness drives. */
export type WorkloadKind = 'register' | 'bank' | 'set' | 'watch' | 'lease' | 'lock';

/** A register operation: the checker's own KV call and result, on one key. */
export type RegisterEntry = HistoryEntry<KvCall & { readonly key: string }, KvResult>;

/** What one checker concluded. */
export interface CheckVerdict {
  readonly checker: string;
  readonly valid: boolean;
  /** Each violation, in words a person can act on (keys, revisions, times). */
  readonly violations: readonly string[];
  /** Acknowledged writes missing at the end (set, register, bank). */
  readonly lostWrites: number;
  /** Counts and figures worth reporting (e.g. reads checked, events delivered). */
  readonly stats: Readonly<Record<string, number>>;
}
