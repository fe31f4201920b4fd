/**
 * Expected conditions a caller must handle, as typed errors with stable codes. One registry: each
 * condition is a subclass of `SynodError` with a code that is never reused once retired. Mapping to
 * gRPC or etcd statuses happens at the server edge, never here.
 */

/** Every stable error code Synod can raise, with a one-line meaning. Kept in sync with docs/errors.md. */
export const errorCodes = {
  SYNOD_NO_LEADER: 'there is no known leader to take the request; retry after an election',
  SYNOD_PROPOSAL_DROPPED: 'the proposal was dropped (no leader, leadership transfer, or conf change pending)',
  SYNOD_LOG_COMPACTED: 'the requested log index has been compacted away',
  SYNOD_LOG_UNAVAILABLE: 'the requested log index is not yet available',
  SYNOD_SNAPSHOT_OUT_OF_DATE: 'the snapshot is older than the one already held',
  SYNOD_SNAPSHOT_TEMPORARILY_UNAVAILABLE: 'the snapshot is being built; retry later',
  SYNOD_INVALID_CONFIG: 'the configuration is invalid',
  SYNOD_INVALID_CONF_CHANGE: 'the membership change is invalid in the current configuration',
  SYNOD_STEP_LOCAL_MESSAGE: 'a local message type was passed to step as if it came from a peer',
  SYNOD_STORAGE_CORRUPT: 'data read back from disk failed its checksum or is inconsistent',
  SYNOD_STORAGE_CLOSED: 'the storage engine was used after it was closed',
  SYNOD_WATCH_STREAMS_EXHAUSTED: 'too many watch streams are open on this node',
  SYNOD_WATCH_STREAM_BUSY: 'a watch stream has too many undrained replies; stop reading its requests until it drains',
  SYNOD_REQUEST_TIMEOUT: 'the request timed out; a write may still commit (its outcome is unknown)',
  SYNOD_NODE_STOPPED: 'the node is stopped or failed while the request waited',
  SYNOD_READ_INDEX_BUSY: 'too many linearizable reads are waiting for the leader; retry later',
  SYNOD_PEER_PROTOCOL: 'a peer sent a malformed or unexpected frame; the connection is closed',
  SYNOD_PEER_UNAVAILABLE: 'a request to a peer failed: not connected, timed out, or closed',
  // The MVCC key-value state machine (src/kv). Each message is etcd's exact error text, so the
  // server edge maps the code to a gRPC status and passes the message through unchanged.
  SYNOD_EMPTY_KEY: 'etcdserver: key is not provided',
  SYNOD_KEY_NOT_FOUND: 'etcdserver: key not found',
  SYNOD_VALUE_PROVIDED: 'etcdserver: value is provided',
  SYNOD_LEASE_PROVIDED: 'etcdserver: lease is provided',
  SYNOD_TOO_MANY_OPS: 'etcdserver: too many operations in txn request',
  SYNOD_DUPLICATE_KEY: 'etcdserver: duplicate key given in txn request',
  SYNOD_COMPACTED: 'etcdserver: mvcc: required revision has been compacted',
  SYNOD_FUTURE_REVISION: 'etcdserver: mvcc: required revision is a future revision',
  SYNOD_LEASE_TTL_TOO_LARGE: 'etcdserver: too large lease TTL',
  SYNOD_LEASE_NOT_FOUND: 'etcdserver: requested lease not found',
  SYNOD_LEASE_EXISTS: 'etcdserver: lease already exists',
  SYNOD_NO_SPACE: 'etcdserver: mvcc: database space exceeded',
  SYNOD_CORRUPT_CLUSTER: 'etcdserver: corrupt cluster',
  // Maintenance (src/server/api/maintenance-service.ts): etcd's exact texts, as above.
  SYNOD_NOT_LEADER: 'etcdserver: not leader',
  SYNOD_BAD_LEADER_TRANSFEREE: 'etcdserver: bad leader transferee',
  SYNOD_LEADER_TRANSFER_TIMEOUT: 'etcdserver: request timed out, leader transfer took too long',
  // Lock and Election (src/server/api/lock-service.ts, election-service.ts). The last three are
  // etcd's exact recipe texts (client/v3/concurrency), which clients compare by string.
  SYNOD_KEY_WAITERS_EXHAUSTED: 'too many Lock, Campaign and Observe calls are waiting on this node',
  SYNOD_CALL_CANCELLED: 'the client cancelled the call while it waited',
  SYNOD_LOCK_SESSION_EXPIRED: 'mutex: session is expired',
  SYNOD_ELECTION_NOT_LEADER: 'election: not leader',
  SYNOD_ELECTION_NO_LEADER: 'election: no leader',
  // Membership (src/kv/members.ts, src/server/api/cluster-service.ts): etcd's exact texts, as above,
  // except the last two, which are Synod's own guards.
  SYNOD_MEMBER_NOT_FOUND: 'etcdserver: member not found',
  SYNOD_MEMBER_EXISTS: 'etcdserver: member ID already exist',
  SYNOD_MEMBER_REMOVED: 'etcdserver: ID removed',
  SYNOD_PEER_URL_EXISTS: 'etcdserver: Peer URLs already exists',
  SYNOD_INVALID_MEMBER_URL: 'etcdserver: given member URLs are invalid',
  SYNOD_NOT_ENOUGH_STARTED_MEMBERS: 'etcdserver: re-configuration failed due to not enough started members',
  SYNOD_MEMBER_NOT_LEARNER: 'etcdserver: can only promote a learner member',
  SYNOD_LEARNER_NOT_READY: 'etcdserver: can only promote a learner member which is in sync with leader',
  SYNOD_TOO_MANY_LEARNERS: 'etcdserver: too many learner members in cluster',
  SYNOD_LEARNER_RPC: 'etcdserver: rpc not supported for learner',
  SYNOD_INVALID_MEMBERSHIP: 'the membership change would leave the cluster malformed (too many members, a bad record)',
  SYNOD_MEMBERSHIP_CHANGE_PENDING: 'another membership change is still being applied; retry when it is',
  // Auth (src/kv/auth-store.ts): etcd's exact texts.
  SYNOD_AUTH_USER_EMPTY: 'etcdserver: user name is empty',
  SYNOD_AUTH_ROLE_EMPTY: 'etcdserver: role name is empty',
  SYNOD_AUTH_USER_EXISTS: 'etcdserver: user name already exists',
  SYNOD_AUTH_USER_NOT_FOUND: 'etcdserver: user name not found',
  SYNOD_AUTH_ROLE_EXISTS: 'etcdserver: role name already exists',
  SYNOD_AUTH_ROLE_NOT_FOUND: 'etcdserver: role name not found',
  SYNOD_AUTH_ROLE_NOT_GRANTED: 'etcdserver: role is not granted to the user',
  SYNOD_AUTH_PERMISSION_NOT_GRANTED: 'etcdserver: permission is not granted to the role',
  SYNOD_AUTH_ROOT_USER_MISSING: 'etcdserver: root user does not exist',
  SYNOD_AUTH_ROOT_ROLE_MISSING: 'etcdserver: root user does not have root role',
  SYNOD_AUTH_INVALID_MANAGEMENT: 'etcdserver: invalid auth management',
  SYNOD_AUTH_FAILED: 'etcdserver: authentication failed, invalid user ID or password',
  SYNOD_AUTH_NOT_ENABLED: 'etcdserver: authentication is not enabled',
  SYNOD_PERMISSION_DENIED: 'etcdserver: permission denied',
  SYNOD_AUTH_INVALID_TOKEN: 'etcdserver: invalid auth token',
  SYNOD_AUTH_OLD_REVISION: 'etcdserver: revision of auth store is old',
  SYNOD_AUTH_BUSY: 'etcdserver: too many requests',
  SYNOD_AUTH_PERMISSION_NOT_GIVEN: 'etcdserver: permission not given',
  SYNOD_AUTH_VERIFY_ONLY: 'auth: token signing attempted with verify-only key',
  // The SDK (src/client): conditions the client meets itself, not answers from a server.
  SYNOD_CLIENT_CLOSED: 'the client is closed',
  SYNOD_CLIENT_UNAVAILABLE: 'no endpoint answered; the request was not sent or its outcome is unknown',
  SYNOD_CLIENT_DEADLINE: 'the call passed its deadline; a write may still commit (its outcome is unknown)',
  SYNOD_SERVER_ERROR: 'the server answered with an error the client does not know',
  SYNOD_INVALID_ARGUMENT: 'an argument is malformed or out of range',
  SYNOD_LEASE_LOST: 'the lease expired or was revoked; what it kept alive is gone',
  SYNOD_LOCK_TIMEOUT: 'the lock was not acquired before the timeout',
  SYNOD_LOCK_BACKEND_UNAVAILABLE: 'the lock backend (Redis, PostgreSQL, SQLite) failed or cannot be reached',
  SYNOD_STM_RETRIES_EXHAUSTED: 'the software transaction conflicted on every attempt',
  SYNOD_WATCH_CONSUMER_SLOW: 'a watcher fell too far behind its events and was closed',
  // Global IDs (src/services/ids).
  SYNOD_ID_STORE_UNAVAILABLE: 'the id store failed or cannot be reached; ids may have been consumed',
  SYNOD_ID_WAITERS_EXHAUSTED: 'too many callers are waiting for ids',
  SYNOD_ID_GENERATOR_CLOSED: 'the id generator is closed',
  SYNOD_ID_CLOCK_BACKWARDS: 'the clock moved backwards further than the generator waits out',
  SYNOD_ID_CLOCK_BEHIND: 'the clock is behind a timestamp this worker id already used, or off from the live workers',
  SYNOD_ID_WORKER_IDS_EXHAUSTED: 'every worker id of the layout is leased by a live process',
  SYNOD_ID_WORKER_LEASE_LOST: 'the worker id lease was lost; the generator stopped',
  SYNOD_ID_SPACE_EXHAUSTED: 'the id space of the layout or tag is used up',
  SYNOD_ID_TAG_UNKNOWN: 'the ID service serves no generator under this tag',
  SYNOD_ID_TAGS_EXHAUSTED: 'the ID service already serves as many tags as it may create',
} as const;

/** A stable error code. */
export type ErrorCode = keyof typeof errorCodes;

/** Base of every expected error. `code` is stable; `message` is for people. */
export class SynodError extends Error {
  readonly code: ErrorCode;

  constructor(code: ErrorCode, message?: string) {
    super(message ?? errorCodes[code]);
    this.code = code;
    this.name = 'SynodError';
  }
}

/** Returns true when `error` is a `SynodError` with `code`. */
export function isSynodError(error: unknown, code?: ErrorCode): error is SynodError {
  return error instanceof SynodError && (code === undefined || error.code === code);
}
