/**
 * The vocabulary of the consensus core: log entries, persistent state, snapshots, messages. Names
 * follow the Raft paper (Ongaro & Ousterhout 2014) and Ongaro's thesis; message types follow etcd's
 * raftpb so operators who know etcd read Synod's traces without a glossary.
 */

/** A member id. Positive integers; `noneId` (0) means "nobody" (no vote, no known leader). */
export type NodeId = number;

/** The absent node id. */
export const noneId: NodeId = 0;

/** What an entry carries: an application command or a membership change. */
export type EntryType = 'normal' | 'conf-change';

/**
 * One log entry. Invariant: `index ≥ 1`, `term ≥ 1`. An empty `data` of type `normal` is the no-op a
 * new leader appends to commit entries of earlier terms (thesis §3.6.2, "figure 8").
 */
export interface Entry {
  readonly term: number;
  readonly index: number;
  readonly type: EntryType;
  /** Opaque command bytes; for `conf-change` entries, `encodeConfChange(change)`. */
  readonly data: Uint8Array;
}

/**
 * The state Raft must persist before it answers any message (paper figure 2): current term, the
 * vote cast in it, and the commit index (persisted for faster restart; safe to lose).
 */
export interface HardState {
  readonly term: number;
  readonly vote: NodeId;
  readonly commit: number;
}

/** The empty hard state of a node that has never run. */
export const emptyHardState: HardState = Object.freeze({ term: 0, vote: noneId, commit: 0 });

/**
 * The membership at some log position. Voters elect and form quorums; learners only receive the
 * log (like ZooKeeper observers) and can be promoted to voters.
 */
export interface ConfState {
  readonly voters: readonly NodeId[];
  readonly learners: readonly NodeId[];
}

/**
 * A membership change: one server at a time (thesis §4.1), applied when the entry is applied.
 * `context` is opaque to the core and travels with the entry (etcd's ConfChange.Context): the
 * server puts the member's record there, so every replica learns it from the log.
 */
export type ConfChange =
  | { readonly type: 'add-voter'; readonly nodeId: NodeId; readonly context?: Uint8Array }
  | { readonly type: 'add-learner'; readonly nodeId: NodeId; readonly context?: Uint8Array }
  | { readonly type: 'remove'; readonly nodeId: NodeId; readonly context?: Uint8Array };

/** Position and membership a snapshot covers. */
export interface SnapshotMetadata {
  readonly index: number;
  readonly term: number;
  readonly confState: ConfState;
}

/** A state machine image at `metadata.index`, replacing every log entry up to it. */
export interface Snapshot {
  readonly metadata: SnapshotMetadata;
  /** Opaque state machine bytes. Large snapshots are chunked by the transport, not here. */
  readonly data: Uint8Array;
}

/** The role a node plays in its current term. */
export type Role = 'follower' | 'pre-candidate' | 'candidate' | 'leader';

/**
 * Message types. Local ones (`hup`, `beat`, `check-quorum`, `unreachable`, `snapshot-status`) never
 * cross the network: the node generates them for itself.
 */
export type MessageType =
  | 'hup'
  | 'beat'
  | 'check-quorum'
  | 'unreachable'
  | 'snapshot-status'
  | 'prop'
  | 'app'
  | 'app-resp'
  | 'vote'
  | 'vote-resp'
  | 'pre-vote'
  | 'pre-vote-resp'
  | 'snap'
  | 'heartbeat'
  | 'heartbeat-resp'
  | 'transfer-leader'
  | 'timeout-now'
  | 'read-index'
  | 'read-index-resp';

/**
 * A message between nodes. Fields not meaningful for a type are 0/empty. For `app`, `logTerm` and
 * `index` name the entry preceding `entries` (prevLogTerm/prevLogIndex in the paper); for `vote` and
 * `pre-vote` they name the candidate's last entry; for `app-resp` with `reject`, `rejectHint` is the
 * follower's best guess of the last index it could match and `logTerm` that index's term (the fast
 * backtracking of thesis §5.3, as in etcd).
 */
export interface Message {
  readonly type: MessageType;
  readonly to: NodeId;
  readonly from: NodeId;
  readonly term: number;
  readonly logTerm: number;
  readonly index: number;
  readonly entries: readonly Entry[];
  readonly commit: number;
  readonly reject: boolean;
  readonly rejectHint: number;
  /** Present only on `snap`. */
  readonly snapshot: Snapshot | null;
  /**
   * Opaque bytes carried through a round trip: the ReadIndex request id on `heartbeat`/`read-index`,
   * the campaign kind ("transfer") on `vote`. Empty when unused.
   */
  readonly context: Uint8Array;
  /** On `heartbeat` and its response: the leader's tick when sent, echoed back for lease reads. */
  readonly leaseTick: number;
}

/** A completed ReadIndex request: reads for `context` may be served once `applied ≥ index`. */
export interface ReadState {
  readonly index: number;
  readonly context: Uint8Array;
}

/** The volatile state an application may want to observe (role and known leader). */
export interface SoftState {
  readonly leader: NodeId;
  readonly role: Role;
}
