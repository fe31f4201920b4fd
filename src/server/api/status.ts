/**
 * The one place where Synod's coded errors become gRPC statuses with etcd's exact messages
 * (etcd api/v3rpc/rpctypes/error.go and v3rpc/util.go togRPCError). The Go client and npm etcd3
 * match errors by message text, so every message here is etcd's, byte for byte; the SynodError's
 * own message (which may carry local detail) never reaches the client.
 */

import { status as GrpcStatus, type ServiceError } from '@grpc/grpc-js';
import { Metadata } from '@grpc/grpc-js';
import { AssertionFailure, isSynodError, type ErrorCode } from '../../base/index.js';

/** A gRPC status code and the etcd message sent with it. */
export interface EtcdStatus {
  readonly code: GrpcStatus;
  readonly message: string;
}

function etcdStatus(code: GrpcStatus, message: string): EtcdStatus {
  return Object.freeze({ code, message });
}

const tooManyRequests = 'etcdserver: too many requests';

/**
 * Every Synod code a client can meet, mapped to etcd's status. Codes absent here are not a client's
 * outcome (storage corruption, raft-internal conditions) and become `internalStatus`.
 */
export const statusOfCode: Readonly<Partial<Record<ErrorCode, EtcdStatus>>> = Object.freeze({
  SYNOD_NO_LEADER: etcdStatus(GrpcStatus.UNAVAILABLE, 'etcdserver: no leader'),
  SYNOD_REQUEST_TIMEOUT: etcdStatus(GrpcStatus.UNAVAILABLE, 'etcdserver: request timed out'),
  SYNOD_NODE_STOPPED: etcdStatus(GrpcStatus.UNAVAILABLE, 'etcdserver: server stopped'),
  // etcd answers an overloaded proposal pipeline with ErrTooManyRequests; a dropped proposal was
  // never appended, so unlike a timeout the client knows the write did not happen.
  SYNOD_PROPOSAL_DROPPED: etcdStatus(GrpcStatus.RESOURCE_EXHAUSTED, tooManyRequests),
  SYNOD_READ_INDEX_BUSY: etcdStatus(GrpcStatus.RESOURCE_EXHAUSTED, tooManyRequests),
  SYNOD_EMPTY_KEY: etcdStatus(GrpcStatus.INVALID_ARGUMENT, 'etcdserver: key is not provided'),
  SYNOD_KEY_NOT_FOUND: etcdStatus(GrpcStatus.INVALID_ARGUMENT, 'etcdserver: key not found'),
  SYNOD_VALUE_PROVIDED: etcdStatus(GrpcStatus.INVALID_ARGUMENT, 'etcdserver: value is provided'),
  SYNOD_LEASE_PROVIDED: etcdStatus(GrpcStatus.INVALID_ARGUMENT, 'etcdserver: lease is provided'),
  SYNOD_TOO_MANY_OPS: etcdStatus(
    GrpcStatus.INVALID_ARGUMENT,
    'etcdserver: too many operations in txn request',
  ),
  SYNOD_DUPLICATE_KEY: etcdStatus(
    GrpcStatus.INVALID_ARGUMENT,
    'etcdserver: duplicate key given in txn request',
  ),
  SYNOD_COMPACTED: etcdStatus(
    GrpcStatus.OUT_OF_RANGE,
    'etcdserver: mvcc: required revision has been compacted',
  ),
  SYNOD_FUTURE_REVISION: etcdStatus(
    GrpcStatus.OUT_OF_RANGE,
    'etcdserver: mvcc: required revision is a future revision',
  ),
  SYNOD_LEASE_TTL_TOO_LARGE: etcdStatus(GrpcStatus.OUT_OF_RANGE, 'etcdserver: too large lease TTL'),
  SYNOD_LEASE_NOT_FOUND: etcdStatus(GrpcStatus.NOT_FOUND, 'etcdserver: requested lease not found'),
  SYNOD_LEASE_EXISTS: etcdStatus(
    GrpcStatus.FAILED_PRECONDITION,
    'etcdserver: lease already exists',
  ),
  SYNOD_NO_SPACE: etcdStatus(
    GrpcStatus.RESOURCE_EXHAUSTED,
    'etcdserver: mvcc: database space exceeded',
  ),
  SYNOD_CORRUPT_CLUSTER: etcdStatus(GrpcStatus.DATA_LOSS, 'etcdserver: corrupt cluster'),
  SYNOD_NOT_LEADER: etcdStatus(GrpcStatus.FAILED_PRECONDITION, 'etcdserver: not leader'),
  SYNOD_BAD_LEADER_TRANSFEREE: etcdStatus(
    GrpcStatus.FAILED_PRECONDITION,
    'etcdserver: bad leader transferee',
  ),
  SYNOD_LEADER_TRANSFER_TIMEOUT: etcdStatus(
    GrpcStatus.UNAVAILABLE,
    'etcdserver: request timed out, leader transfer took too long',
  ),
  SYNOD_MEMBER_NOT_FOUND: etcdStatus(GrpcStatus.NOT_FOUND, 'etcdserver: member not found'),
  SYNOD_MEMBER_EXISTS: etcdStatus(GrpcStatus.FAILED_PRECONDITION, 'etcdserver: member ID already exist'),
  SYNOD_MEMBER_REMOVED: etcdStatus(GrpcStatus.FAILED_PRECONDITION, 'etcdserver: ID removed'),
  SYNOD_PEER_URL_EXISTS: etcdStatus(GrpcStatus.FAILED_PRECONDITION, 'etcdserver: Peer URLs already exists'),
  SYNOD_INVALID_MEMBER_URL: etcdStatus(GrpcStatus.INVALID_ARGUMENT, 'etcdserver: given member URLs are invalid'),
  SYNOD_NOT_ENOUGH_STARTED_MEMBERS: etcdStatus(
    GrpcStatus.FAILED_PRECONDITION,
    'etcdserver: re-configuration failed due to not enough started members',
  ),
  SYNOD_MEMBER_NOT_LEARNER: etcdStatus(
    GrpcStatus.FAILED_PRECONDITION,
    'etcdserver: can only promote a learner member',
  ),
  SYNOD_LEARNER_NOT_READY: etcdStatus(
    GrpcStatus.FAILED_PRECONDITION,
    'etcdserver: can only promote a learner member which is in sync with leader',
  ),
  SYNOD_TOO_MANY_LEARNERS: etcdStatus(
    GrpcStatus.FAILED_PRECONDITION,
    'etcdserver: too many learner members in cluster',
  ),
  SYNOD_LEARNER_RPC: etcdStatus(GrpcStatus.UNAVAILABLE, 'etcdserver: rpc not supported for learner'),
  SYNOD_INVALID_MEMBERSHIP: etcdStatus(
    GrpcStatus.FAILED_PRECONDITION,
    'etcdserver: the membership change would leave the cluster malformed',
  ),
  SYNOD_AUTH_USER_EMPTY: etcdStatus(GrpcStatus.INVALID_ARGUMENT, 'etcdserver: user name is empty'),
  SYNOD_AUTH_ROLE_EMPTY: etcdStatus(GrpcStatus.INVALID_ARGUMENT, 'etcdserver: role name is empty'),
  SYNOD_AUTH_USER_EXISTS: etcdStatus(GrpcStatus.FAILED_PRECONDITION, 'etcdserver: user name already exists'),
  SYNOD_AUTH_USER_NOT_FOUND: etcdStatus(GrpcStatus.FAILED_PRECONDITION, 'etcdserver: user name not found'),
  SYNOD_AUTH_ROLE_EXISTS: etcdStatus(GrpcStatus.FAILED_PRECONDITION, 'etcdserver: role name already exists'),
  SYNOD_AUTH_ROLE_NOT_FOUND: etcdStatus(GrpcStatus.FAILED_PRECONDITION, 'etcdserver: role name not found'),
  SYNOD_AUTH_ROLE_NOT_GRANTED: etcdStatus(GrpcStatus.FAILED_PRECONDITION, 'etcdserver: role is not granted to the user'),
  SYNOD_AUTH_PERMISSION_NOT_GRANTED: etcdStatus(GrpcStatus.FAILED_PRECONDITION, 'etcdserver: permission is not granted to the role'),
  SYNOD_AUTH_ROOT_USER_MISSING: etcdStatus(GrpcStatus.FAILED_PRECONDITION, 'etcdserver: root user does not exist'),
  SYNOD_AUTH_ROOT_ROLE_MISSING: etcdStatus(GrpcStatus.FAILED_PRECONDITION, 'etcdserver: root user does not have root role'),
  SYNOD_AUTH_INVALID_MANAGEMENT: etcdStatus(GrpcStatus.INVALID_ARGUMENT, 'etcdserver: invalid auth management'),
  SYNOD_AUTH_FAILED: etcdStatus(GrpcStatus.INVALID_ARGUMENT, 'etcdserver: authentication failed, invalid user ID or password'),
  SYNOD_AUTH_NOT_ENABLED: etcdStatus(GrpcStatus.FAILED_PRECONDITION, 'etcdserver: authentication is not enabled'),
  SYNOD_PERMISSION_DENIED: etcdStatus(GrpcStatus.PERMISSION_DENIED, 'etcdserver: permission denied'),
  SYNOD_AUTH_INVALID_TOKEN: etcdStatus(GrpcStatus.UNAUTHENTICATED, 'etcdserver: invalid auth token'),
  SYNOD_AUTH_OLD_REVISION: etcdStatus(GrpcStatus.INVALID_ARGUMENT, 'etcdserver: revision of auth store is old'),
  SYNOD_AUTH_BUSY: etcdStatus(GrpcStatus.RESOURCE_EXHAUSTED, 'etcdserver: too many requests'),
  SYNOD_AUTH_PERMISSION_NOT_GIVEN: etcdStatus(GrpcStatus.INVALID_ARGUMENT, 'etcdserver: permission not given'),
  // etcd's ErrVerifyOnly has no gRPC mapping: its togRPCError sends it as Unknown with this text.
  SYNOD_AUTH_VERIFY_ONLY: etcdStatus(
    GrpcStatus.UNKNOWN,
    'auth: token signing attempted with verify-only key',
  ),
  // A change is applied one at a time (thesis §4.1); the client retries, as after "unhealthy cluster".
  SYNOD_MEMBERSHIP_CHANGE_PENDING: etcdStatus(GrpcStatus.UNAVAILABLE, 'etcdserver: unhealthy cluster'),
});

/** etcd's ErrGRPCTooManyRequests, for a server-side bound a client reached (not a SynodError). */
export const tooManyRequestsStatus: EtcdStatus = etcdStatus(
  GrpcStatus.RESOURCE_EXHAUSTED,
  tooManyRequests,
);

/** etcd's ErrGRPCRequestTooLarge: the request exceeds `maxRequestBytes`. */
export const requestTooLargeStatus: EtcdStatus = etcdStatus(
  GrpcStatus.INVALID_ARGUMENT,
  'etcdserver: request is too large',
);

/** Any failure that is not a client's outcome. The message says nothing about internals. */
export const internalStatus: EtcdStatus = etcdStatus(GrpcStatus.INTERNAL, 'internal error');

/**
 * A request the API edge refuses before it reaches the KV layer (a malformed field, a size bound).
 * It already is a gRPC status, so it passes through `serviceErrorOf` unchanged.
 */
export class ApiStatusError extends Error {
  readonly status: EtcdStatus;

  constructor(status: EtcdStatus) {
    super(status.message);
    this.status = status;
    this.name = 'ApiStatusError';
  }
}

/** An INVALID_ARGUMENT for a request field etcd's types cannot express here (e.g. > 2^53). */
export function invalidArgument(message: string): ApiStatusError {
  return new ApiStatusError(etcdStatus(GrpcStatus.INVALID_ARGUMENT, message));
}

/**
 * The status a client receives for `error`. An `AssertionFailure` is rethrown: it is a bug, and the
 * caller must let it crash the process rather than answer as if nothing happened.
 */
export function statusOf(error: unknown): EtcdStatus {
  if (error instanceof AssertionFailure) throw error;
  if (error instanceof ApiStatusError) return error.status;
  if (isSynodError(error)) return statusOfCode[error.code] ?? internalStatus;
  return internalStatus;
}

/** `statusOf(error)` in the shape a grpc-js unary callback takes. */
export function serviceErrorOf(error: unknown): Partial<ServiceError> {
  const { code, message } = statusOf(error);
  return { code, details: message, metadata: new Metadata() };
}
