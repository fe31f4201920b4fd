/**
 * The shape every unary etcd RPC handler shares: an async function from the decoded request to the
 * wire response, with failures mapped to etcd's status at this edge (status.ts). An
 * `AssertionFailure` answers the call with INTERNAL and is then handed to `onFatal`, which by
 * default crashes the process (a bug is never answered as if nothing happened).
 */

import { status as GrpcStatus, type handleUnaryCall } from '@grpc/grpc-js';
import { AssertionFailure } from '../../base/index.js';
import { ApiStatusError, internalStatus, serviceErrorOf } from './status.js';

/** Receives an `AssertionFailure` met while serving. */
export type FatalHandler = (error: unknown) => void;

/** Rethrows `error` from a microtask, outside any promise chain, so the process crashes. */
export function rethrowLater(error: unknown): void {
  queueMicrotask(() => {
    throw error;
  });
}

/** Adapts `handle` to grpc-js's unary callback style. */
export function unaryHandler<Request>(
  onFatal: FatalHandler,
  handle: (request: Request) => Promise<object>,
): handleUnaryCall<Request, object> {
  return (call, callback) => {
    handle(call.request).then(
      (response) => callback(null, response),
      (error: unknown) => {
        if (error instanceof AssertionFailure) {
          callback(serviceErrorOf(new ApiStatusError(internalStatus)));
          onFatal(error);
          return;
        }
        callback(serviceErrorOf(error));
      },
    );
  };
}

/**
 * An UNIMPLEMENTED status for an RPC Synod does not serve yet; `reason` says why and what is
 * missing, so an operator reading etcdctl's error knows it is a known gap, not a fault.
 */
export function unimplemented(reason: string): ApiStatusError {
  return new ApiStatusError({ code: GrpcStatus.UNIMPLEMENTED, message: reason });
}
