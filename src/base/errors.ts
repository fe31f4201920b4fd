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
  SYNOD_READ_INDEX_BUSY: 'too many linearizable reads are waiting for the leader; retry later',
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
