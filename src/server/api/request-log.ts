/**
 * Request ids and slow-request logging for every gRPC call, in one server interceptor. Each call
 * gets an id (`<member id hex>-<counter>`, unique within the member's run) that goes back to the
 * client in the `synod-request-id` response header, so a client's report and the member's log
 * name the same request. A unary call that takes longer than `slowRequestMs` (etcd's 100 ms
 * "apply request took too long" threshold, `--warning-apply-duration` in etcd 3.5) is logged at
 * warn with its id, method, duration and status code; a call that ends with an
 * internal error is logged at error the same way. Streams (Watch, LeaseKeepAlive, Observe) are
 * long by design and are logged only when they end with an internal error.
 *
 * Nothing from the request body is logged: keys and values are the users' data, and Auth requests
 * carry passwords. The peer address is logged, as etcd logs the remote address.
 */

import {
  Metadata, ServerInterceptingCall, status as GrpcStatus,
  type ServerInterceptor, type StatusObject,
} from '@grpc/grpc-js';

/** etcd's warning threshold for a request's duration. */
export const slowRequestMsDefault = 100;

/** The response header carrying the request id. */
export const requestIdHeader = 'synod-request-id';

/** The two levels used (a pino Logger is one). */
export interface RequestLogger {
  warn(fields: object, message: string): void;
  error(fields: object, message: string): void;
}

/** Options of `requestLogInterceptor`. */
export interface RequestLogOptions {
  readonly logger: RequestLogger;
  /** The member id, once known (ids start with it; `0` before the member runs). */
  readonly memberId: () => bigint;
  /** Default `slowRequestMsDefault`. */
  readonly slowRequestMs?: number;
  /** Monotonic ms (injected for tests). */
  readonly nowMs?: () => number;
}

const streamingMethods = new Set([
  '/etcdserverpb.Watch/Watch', '/etcdserverpb.Lease/LeaseKeepAlive',
  '/v3electionpb.Election/Observe', '/etcdserverpb.Maintenance/Snapshot',
  '/grpc.health.v1.Health/Watch',
]);

/** The interceptor for `createGrpcServer({ interceptors: [...] })`. */
export function requestLogInterceptor(options: RequestLogOptions): ServerInterceptor {
  const slowRequestMs = options.slowRequestMs ?? slowRequestMsDefault;
  const nowMs = options.nowMs ?? (() => performance.now());
  let counter = 0;
  return (method, call) => {
    counter += 1;
    const requestId = `${options.memberId().toString(16)}-${counter}`;
    const startedMs = nowMs();
    const streaming = streamingMethods.has(method.path);
    const report = (status: StatusObject) => {
      const tookMs = Math.round(nowMs() - startedMs);
      const fields = {
        requestId, method: method.path, tookMs, code: GrpcStatus[status.code] ?? status.code,
        peer: call.getPeer(),
      };
      if (status.code === GrpcStatus.INTERNAL || status.code === GrpcStatus.UNKNOWN) {
        options.logger.error({ ...fields, details: status.details }, 'request failed');
      } else if (!streaming && tookMs > slowRequestMs) {
        options.logger.warn({ ...fields, expectedMs: slowRequestMs }, 'request took too long');
      }
    };
    return new ServerInterceptingCall(call, {
      sendMetadata: (metadata, next) => {
        metadata.set(requestIdHeader, requestId);
        next(metadata);
      },
      sendStatus: (status, next) => {
        report({ code: status.code, details: status.details, metadata: status.metadata ?? new Metadata() });
        next(status);
      },
    });
  };
}
