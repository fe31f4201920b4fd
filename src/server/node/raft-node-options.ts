/**
 * What a `RaftNode` is built from (raft-node.ts): its options and their defaults and bounds, the
 * transport and tick scheduler it drives, the timings it reports, and the options' validation.
 */

import { SynodError, type Random } from '../../base/index.js';
import type { KvStateMachine, WatchHub } from '../../kv/index.js';
import type { Message, NodeId } from '../../raft/index.js';
import type { RaftLogStore } from '../../storage/index.js';

/** Proposals waiting on one node for their entry to apply. Beyond it: SYNOD_PROPOSAL_DROPPED. */
export const pendingProposalsMax = 4096;
/** Linearizable reads waiting on one node. Beyond it: SYNOD_READ_INDEX_BUSY. */
export const readWaitersMax = 4096;
/** Default of `snapshotCount`: etcd's --snapshot-count. */
export const snapshotCountDefault = 100_000;
/**
 * Default of `snapshotCatchUpEntries`: entries kept behind a snapshot so a follower that is only a
 * little behind catches up from the log instead of a whole snapshot (etcd's
 * SnapshotCatchUpEntries).
 */
export const snapshotCatchUpEntriesDefault = 5_000;
/** Default of `requestTimeoutMs`: etcd's default request timeout is 5 s plus election time. */
export const requestTimeoutMsDefault = 7000;

/** How peers' messages leave this node. Delivery is best effort; Raft retries. */
export interface Transport {
  /** Sends each message to `message.to`. Must not throw for unreachable peers. */
  send(messages: readonly Message[]): void;
}

/** Calls `onTick` every `intervalMs` until the returned function is called. */
export interface TickScheduler {
  schedule(onTick: () => void, intervalMs: number): () => void;
}

/** The runtime's `setInterval`, for production. */
export const intervalTickScheduler: TickScheduler = Object.freeze({
  schedule(onTick: () => void, intervalMs: number): () => void {
    const handle = setInterval(onTick, intervalMs);
    return () => clearInterval(handle);
  },
});

/** Options of `new RaftNode(...)`. */
export interface RaftNodeOptions {
  readonly id: NodeId;
  /** The durable log, opened by the caller, who also closes it after `stop()`. */
  readonly store: RaftLogStore;
  /** The state machine; replaced (see `stateMachine`) when a snapshot is installed. */
  readonly stateMachine: KvStateMachine;
  /** Notified of every applied revision's events. */
  readonly watchHub?: WatchHub;
  readonly transport: Transport;
  /** Seeds elections and request ids; the server seeds it from real entropy. */
  readonly random: Random;
  /** Milliseconds per tick: the heartbeat interval when `heartbeatTicks` is 1. */
  readonly tickIntervalMs: number;
  /** Ticks a follower waits for a leader before campaigning. */
  readonly electionTicks: number;
  /** Ticks between heartbeats (default 1). */
  readonly heartbeatTicks?: number;
  /** How long a proposal or read may wait, in ms (default `requestTimeoutMsDefault`). */
  readonly requestTimeoutMs?: number;
  /** Where ticks come from: an injected scheduler, or the caller's `tick()` calls. */
  readonly ticker: 'manual' | TickScheduler;
  /** Applied entries between two snapshots of the state machine (default `snapshotCountDefault`). */
  readonly snapshotCount?: number;
  /** Entries kept in the log behind a snapshot (default `snapshotCatchUpEntriesDefault`). */
  readonly snapshotCatchUpEntries?: number;
  /**
   * Makes every apply so far durable in the state machine's own storage. Awaited before the log
   * is compacted, so entries are only dropped once their effects survive a crash. Default: none
   * needed (an in-memory state machine is rebuilt from the snapshot and the log).
   */
  readonly flushStateMachine?: () => Promise<void>;
  /** Builds the state machine from snapshot data (default `KvStateMachine.restore(data)`). */
  readonly restoreStateMachine?: (data: Uint8Array) => KvStateMachine;
  /**
   * Called once when the loop fails (a disk write or an apply threw). The node is stopped by then.
   * Default: rethrow asynchronously, crashing the process; a replica recovers from its disk.
   */
  readonly onFatal?: (error: unknown) => void;
  /** Receives how long each Ready's disk work took (the member's metrics). Default: none. */
  readonly timings?: NodeTimings;
}

/** Durations of one Ready's disk work, in seconds. */
export interface NodeTimings {
  /** Appending entries and hard state to the Raft log, fsync included (etcd's WAL fsync). */
  persisted(seconds: number): void;
  /** Applying the Ready's committed entries in one MVCC backend transaction (etcd's commit). */
  applied(seconds: number): void;
}

/** Throws SYNOD_INVALID_CONFIG for options the node cannot run with. */
export function validateOptions(options: RaftNodeOptions, requestTimeoutMs: number): void {
  const invalid = (why: string): never => {
    throw new SynodError('SYNOD_INVALID_CONFIG', `invalid raft node options: ${why}`);
  };
  if (!isPositiveInteger(options.tickIntervalMs)) invalid('tickIntervalMs must be a positive int');
  if (!isPositiveInteger(requestTimeoutMs)) invalid('requestTimeoutMs must be a positive integer');
  if (requestTimeoutMs < options.tickIntervalMs) invalid('requestTimeoutMs < tickIntervalMs');
}

function isPositiveInteger(value: number): boolean {
  return Number.isSafeInteger(value) && value > 0;
}
