/**
 * Configuration of one Raft node: validated once, defaults filled explicitly, then frozen.
 */

import { SynodError, type Random } from '../base/index.js';
import type { Storage } from './storage.js';
import type { NodeId } from './types.js';

/**
 * Deliberate bugs the planted-bug test switches on one at a time to prove the simulator and the
 * linearizability checker catch them. Never set outside that test.
 */
export type PlantedBug =
  /** Commit by counting replicas of an entry from a previous term (Raft paper figure 8). */
  | 'commit-previous-term'
  /** Grant votes without the "candidate's log is at least as up to date" check (§5.4.1). */
  | 'vote-without-log-check'
  /** A follower acknowledges appended entries before they are durable. */
  | 'ack-before-persist'
  /** Restart with the vote of the current term forgotten. */
  | 'forget-vote-on-restart'
  /**
   * A driver bug (the simulator's node): every Ready without entries or snapshot is treated as
   * commit-only, so a new term or vote waits in memory while the messages promising it leave.
   */
  | 'defer-vote-sync';

/** How `readIndex` is answered. */
export type ReadOnlyOption =
  /** Confirm leadership with a heartbeat round to a quorum (thesis §6.4). */
  | 'safe'
  /** Answer from the leader's lease without a round trip (thesis §6.4.1); needs check-quorum. */
  | 'lease-based';

/** What the caller passes to `new RawNode(...)`; omitted fields take the defaults below. */
export interface RaftConfigInput {
  readonly id: NodeId;
  readonly storage: Storage;
  readonly random: Random;
  /** Ticks a follower waits without hearing from a leader before campaigning. Randomized in [n, 2n). */
  readonly electionTicks?: number;
  /** Ticks between a leader's heartbeats. Must be less than `electionTicks`. */
  readonly heartbeatTicks?: number;
  /** The last index the application has applied; on restart, committed entries after it are replayed. */
  readonly applied?: number;
  /** Bytes of entries in one append message (at least one entry is always sent). */
  readonly messageBytesMax?: number;
  /** Append messages in flight to one follower before the leader waits for acknowledgements. */
  readonly inflightMessagesMax?: number;
  /** Bytes of uncommitted entries the leader accepts before dropping proposals (back-pressure). */
  readonly uncommittedBytesMax?: number;
  /** Bytes of committed entries handed out in one Ready. */
  readonly committedBytesMax?: number;
  /** Run a pre-vote round before incrementing the term (thesis §9.6). */
  readonly preVote?: boolean;
  /** A leader that has not heard from a quorum for an election timeout steps down (thesis §6.2). */
  readonly checkQuorum?: boolean;
  readonly readOnlyOption?: ReadOnlyOption;
  /**
   * For lease-based reads: the largest relative difference between two nodes' tick rates (0.1 means
   * one node's ticks may run 10% faster than another's). The lease is shortened by this factor.
   */
  readonly leaseClockDriftBound?: number;
  /** Followers drop proposals instead of forwarding them to the leader. */
  readonly disableProposalForwarding?: boolean;
  readonly plantedBug?: PlantedBug | null;
}

/** A validated configuration with every default filled in. */
export type RaftConfig = Readonly<Required<RaftConfigInput>>;

/** Defaults, chosen like etcd's: 10 ticks election, 1 tick heartbeat, 1 MiB per message. */
export const raftDefaults = Object.freeze({
  electionTicks: 10,
  heartbeatTicks: 1,
  applied: 0,
  messageBytesMax: 1024 * 1024,
  inflightMessagesMax: 256,
  uncommittedBytesMax: 64 * 1024 * 1024,
  committedBytesMax: 64 * 1024 * 1024,
  preVote: true,
  checkQuorum: true,
  readOnlyOption: 'safe' as ReadOnlyOption,
  leaseClockDriftBound: 0.1,
  disableProposalForwarding: false,
  plantedBug: null as PlantedBug | null,
});

/** Fills defaults and checks every field; throws SYNOD_INVALID_CONFIG naming the first bad one. */
export function validateConfig(input: RaftConfigInput): RaftConfig {
  const config = Object.freeze({ ...raftDefaults, ...stripUndefined(input), id: input.id, storage: input.storage, random: input.random }) as RaftConfig;
  const invalid = (why: string): never => {
    throw new SynodError('SYNOD_INVALID_CONFIG', `invalid raft config: ${why}`);
  };
  if (!Number.isSafeInteger(config.id) || config.id <= 0) invalid(`id must be a positive integer, got ${config.id}`);
  if (!isPositiveInteger(config.heartbeatTicks)) invalid('heartbeatTicks must be a positive integer');
  if (!isPositiveInteger(config.electionTicks)) invalid('electionTicks must be a positive integer');
  if (config.electionTicks <= config.heartbeatTicks) invalid('electionTicks must be greater than heartbeatTicks');
  if (!isPositiveInteger(config.messageBytesMax)) invalid('messageBytesMax must be a positive integer');
  if (!isPositiveInteger(config.inflightMessagesMax)) invalid('inflightMessagesMax must be a positive integer');
  if (!isPositiveInteger(config.uncommittedBytesMax)) invalid('uncommittedBytesMax must be a positive integer');
  if (!isPositiveInteger(config.committedBytesMax)) invalid('committedBytesMax must be a positive integer');
  if (!Number.isSafeInteger(config.applied) || config.applied < 0) invalid('applied must be a non-negative integer');
  if (!(config.leaseClockDriftBound >= 0 && config.leaseClockDriftBound < 0.5)) {
    invalid('leaseClockDriftBound must be in [0, 0.5)');
  }
  if (config.readOnlyOption === 'lease-based' && !config.checkQuorum) {
    invalid('lease-based reads need checkQuorum, or a partitioned leader could serve stale reads forever');
  }
  return config;
}

function isPositiveInteger(value: number): boolean {
  return Number.isSafeInteger(value) && value > 0;
}

function stripUndefined<T extends object>(input: T): Partial<T> {
  return Object.fromEntries(Object.entries(input).filter(([, value]) => value !== undefined)) as Partial<T>;
}
