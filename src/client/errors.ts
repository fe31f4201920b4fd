/**
 * The SDK's errors. Everything the client throws on purpose is a `SynodError` with a stable code:
 * the client's own conditions (closed, deadline, no endpoint, lock timeout) use the codes of
 * src/base/errors.ts, and an error answered by a server becomes an `EtcdServerError` that keeps the
 * gRPC status and etcd's exact message, with the Synod code for that message where one exists.
 */

import { status, type ServiceError } from '@grpc/grpc-js';
import { SynodError, errorCodes, type ErrorCode } from '../base/index.js';
import { statusOfCode } from '../server/api/status.js';

/**
 * Synod codes by the message a server sends: the server edge's own table (etcd's texts) read
 * backwards, the first code listed for a shared text winning, then the recipe texts.
 */
const codeByServerMessage: ReadonlyMap<string, ErrorCode> = (() => {
  const byMessage = new Map<string, ErrorCode>();
  for (const [code, etcdStatus] of Object.entries(statusOfCode) as [ErrorCode, { message: string }][]) {
    if (!byMessage.has(etcdStatus.message)) byMessage.set(etcdStatus.message, code);
  }
  for (const [code, message] of Object.entries(errorCodes) as [ErrorCode, string][]) {
    if (/^(etcdserver|mutex|election): /.test(message) && !byMessage.has(message)) byMessage.set(message, code);
  }
  return byMessage;
})();
// etcd says "request timed out" in several forms; the client treats each like SYNOD_REQUEST_TIMEOUT.
const timeoutMessages: ReadonlySet<string> = new Set([
  'etcdserver: request timed out',
  'etcdserver: request timed out, possibly due to previous leader failure',
  'etcdserver: request timed out, possibly due to connection lost',
]);

/** An error a server answered, with its gRPC status and etcd's exact message. */
export class EtcdServerError extends SynodError {
  /** The gRPC status code (`@grpc/grpc-js` `status`). */
  readonly grpcCode: number;
  /** The endpoint that answered. */
  readonly endpoint: string;

  constructor(options: { code: ErrorCode; grpcCode: number; message: string; endpoint: string }) {
    super(options.code, options.message);
    this.name = 'EtcdServerError';
    this.grpcCode = options.grpcCode;
    this.endpoint = options.endpoint;
  }
}

/** A watch asked for a revision the server has compacted away. */
export class CompactedError extends SynodError {
  /** The oldest revision the server can still serve is `compactRevision`. */
  readonly compactRevision: bigint;

  constructor(compactRevision: bigint) {
    super('SYNOD_COMPACTED', `${errorCodes.SYNOD_COMPACTED} (compacted at ${compactRevision})`);
    this.name = 'CompactedError';
    this.compactRevision = compactRevision;
  }
}

/** A lease the caller relies on is gone: it expired, was revoked, or could not be renewed. */
export class LeaseLostError extends SynodError {
  /** The lost lease's ID. */
  readonly leaseId: bigint;

  constructor(leaseId: bigint, reason: string) {
    super('SYNOD_LEASE_LOST', `lease ${leaseId.toString(16)} lost: ${reason}`);
    this.name = 'LeaseLostError';
    this.leaseId = leaseId;
  }
}

/** `acquire` gave up waiting for a lock after `timeoutMs`. */
export class LockTimeoutError extends SynodError {
  constructor(name: string, timeoutMs: number) {
    super('SYNOD_LOCK_TIMEOUT', `lock ${JSON.stringify(name)} not acquired within ${timeoutMs} ms`);
    this.name = 'LockTimeoutError';
  }
}

/** A lock backend's driver failed (Redis, PostgreSQL, SQLite); `cause` is the driver's error. */
export class LockBackendError extends SynodError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('SYNOD_LOCK_BACKEND_UNAVAILABLE', message);
    this.name = 'LockBackendError';
    if (options?.cause !== undefined) this.cause = options.cause;
  }
}

/** An argument the client refuses before sending anything. */
export function invalidArgument(message: string): SynodError {
  return new SynodError('SYNOD_INVALID_ARGUMENT', message);
}

/** True for an error a gRPC call rejected with (it carries a numeric status and metadata). */
export function isServiceError(error: unknown): error is ServiceError {
  return error instanceof Error && typeof (error as Partial<ServiceError>).code === 'number' &&
    (error as Partial<ServiceError>).metadata !== undefined;
}

/** The SDK error for a gRPC failure from `endpoint`. */
export function fromServiceError(error: ServiceError, endpoint: string): SynodError {
  if (error.code === status.DEADLINE_EXCEEDED) {
    return new SynodError('SYNOD_CLIENT_DEADLINE', `${errorCodes.SYNOD_CLIENT_DEADLINE} (${endpoint})`);
  }
  const details = error.details ?? error.message;
  const known = timeoutMessages.has(details) ? 'SYNOD_REQUEST_TIMEOUT' : codeByServerMessage.get(details);
  if (known === undefined && error.code === status.UNAVAILABLE) {
    // Not a server's answer but the connection's failure (reset, refused, closed mid-call): the
    // request may or may not have been applied, which is what SYNOD_CLIENT_UNAVAILABLE says.
    return new SynodError('SYNOD_CLIENT_UNAVAILABLE',
      `${errorCodes.SYNOD_CLIENT_UNAVAILABLE} (${endpoint}: ${details})`);
  }
  const code = known ?? 'SYNOD_SERVER_ERROR';
  return new EtcdServerError({ code, grpcCode: error.code, message: details, endpoint });
}
