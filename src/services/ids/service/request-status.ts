/**
 * How the ID service's outcomes reach a client: one table from Synod's error codes to an HTTP
 * status and a gRPC status, so the two protocols never disagree about what a failure means. The
 * SynodError's message goes out as it is (the service's messages name the tag or the bound, never
 * internals); an error that is not a SynodError goes out as "internal error".
 */

import { status as GrpcStatus } from '@grpc/grpc-js';
import { AssertionFailure, SynodError, isSynodError, type ErrorCode } from '../../../base/index.js';

/** The answer to one failed request, in both protocols' terms. */
export interface RequestStatus {
  readonly httpStatus: number;
  readonly grpcStatus: GrpcStatus;
  /** The `outcome` label of the request metrics: the gRPC status name in lower case. */
  readonly outcome: RequestOutcome;
}

/** Every value of the `outcome` label; a closed set, so the series stay bounded. */
export const requestOutcomes = [
  'ok', 'invalid_argument', 'not_found', 'unimplemented', 'resource_exhausted', 'unavailable',
  'internal',
] as const;

/** One of `requestOutcomes`. */
export type RequestOutcome = (typeof requestOutcomes)[number];

/** The code of a request for a tag the service does not serve. */
export const tagUnknownCode: ErrorCode = 'SYNOD_ID_TAG_UNKNOWN';
/** The code of a new tag refused because the service already created as many as it may. */
export const tagsExhaustedCode: ErrorCode = 'SYNOD_ID_TAGS_EXHAUSTED';

const invalidArgument = status(400, GrpcStatus.INVALID_ARGUMENT, 'invalid_argument');
const notFound = status(404, GrpcStatus.NOT_FOUND, 'not_found');
const unimplemented = status(404, GrpcStatus.UNIMPLEMENTED, 'unimplemented');
const tooManyRequests = status(429, GrpcStatus.RESOURCE_EXHAUSTED, 'resource_exhausted');
// A bound that will not free itself (the tag table, a tag's id space): retrying does not help,
// so not 429. HTTP's 507 says "cannot store what the request needs", which is what a new tag is.
const spaceExhausted = status(507, GrpcStatus.RESOURCE_EXHAUSTED, 'resource_exhausted');
const unavailable = status(503, GrpcStatus.UNAVAILABLE, 'unavailable');

/** The status of a failure that is nobody's expected outcome. */
export const internalStatus: RequestStatus = status(500, GrpcStatus.INTERNAL, 'internal');

/**
 * Codes a request can meet, by what the client should do: fix the request (400), back off (429),
 * retry, possibly elsewhere (503: the store, the Synod cluster or the clock is not serving now, or
 * this process is shutting down). Codes absent here become `internalStatus`.
 */
export const statusOfCode: Readonly<Partial<Record<ErrorCode, RequestStatus>>> = Object.freeze({
  SYNOD_INVALID_ARGUMENT: invalidArgument,
  SYNOD_ID_WAITERS_EXHAUSTED: tooManyRequests,
  SYNOD_ID_SPACE_EXHAUSTED: spaceExhausted,
  SYNOD_ID_TAG_UNKNOWN: notFound,
  SYNOD_ID_TAGS_EXHAUSTED: spaceExhausted,
  SYNOD_ID_STORE_UNAVAILABLE: unavailable,
  SYNOD_ID_GENERATOR_CLOSED: unavailable,
  SYNOD_ID_CLOCK_BACKWARDS: unavailable,
  SYNOD_ID_CLOCK_BEHIND: unavailable,
  SYNOD_ID_WORKER_IDS_EXHAUSTED: unavailable,
  SYNOD_ID_WORKER_LEASE_LOST: unavailable,
  // The segment store's compare-and-swap lost to other allocators on every attempt.
  SYNOD_STM_RETRIES_EXHAUSTED: unavailable,
  // The SDK's own failures, which SegmentGenerator passes through unwrapped.
  SYNOD_CLIENT_UNAVAILABLE: unavailable,
  SYNOD_CLIENT_DEADLINE: unavailable,
  SYNOD_CLIENT_CLOSED: unavailable,
  SYNOD_NO_LEADER: unavailable,
  SYNOD_REQUEST_TIMEOUT: unavailable,
});

/** The statuses IdRequestError may carry, by name. */
export const requestStatuses = Object.freeze({
  invalidArgument, notFound, unimplemented, tooManyRequests, spaceExhausted, unavailable,
});

/**
 * A request the service refuses itself, with the status it answers. The status is explicit
 * because one code may answer with different statuses (SYNOD_INVALID_ARGUMENT is 400 for a bad
 * request, 404 with UNIMPLEMENTED for a decode no decoder serves).
 */
export class IdRequestError extends SynodError {
  readonly status: RequestStatus;

  constructor(code: ErrorCode, message: string, requestStatus: RequestStatus) {
    super(code, message);
    this.name = 'IdRequestError';
    this.status = requestStatus;
  }
}

/** A malformed request (400 / INVALID_ARGUMENT). */
export function invalidRequest(message: string): IdRequestError {
  return new IdRequestError('SYNOD_INVALID_ARGUMENT', message, invalidArgument);
}

/** What a client receives for `error`. */
export interface RequestFailure {
  readonly status: RequestStatus;
  readonly code: ErrorCode | null;
  /** The SynodError's message, or "internal error" for anything else. */
  readonly message: string;
}

/**
 * The failure a client receives for `error`. An AssertionFailure is rethrown: it is a bug and
 * must crash the process, not become a 500.
 */
export function failureOf(error: unknown): RequestFailure {
  if (error instanceof AssertionFailure) throw error;
  if (error instanceof IdRequestError) {
    return { status: error.status, code: error.code, message: error.message };
  }
  if (isSynodError(error)) {
    const known = statusOfCode[error.code] ?? internalStatus;
    return { status: known, code: error.code, message: error.message };
  }
  return { status: internalStatus, code: null, message: 'internal error' };
}

function status(
  httpStatus: number, grpcStatus: GrpcStatus, outcome: RequestOutcome,
): RequestStatus {
  return Object.freeze({ httpStatus, grpcStatus, outcome });
}
