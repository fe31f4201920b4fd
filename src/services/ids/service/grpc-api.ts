/**
 * The ID service over gRPC: `synod.ids.v1.Ids` (proto/synod/ids/v1/ids.proto, which states the
 * wire contract). The .proto is read at run time relative to this module, as the member's protos
 * are (server/grpc/proto.ts): the same code runs from src/ under tsx and from dist/ once
 * scripts/copy-assets.mjs has copied src/services/ids/proto beside the compiled module.
 */

import { fileURLToPath } from 'node:url';
import {
  Metadata, Server, type ServerUnaryCall, type ServiceDefinition, type sendUnaryData,
} from '@grpc/grpc-js';
import { loadSync, type Options } from '@grpc/proto-loader';
import { assert } from '../../../base/index.js';
import type { IdService } from './id-service.js';
import { failureOf } from './request-status.js';

/** Absolute path of the directory holding `synod/ids/v1/ids.proto`. */
export const idsProtoRootDirectory: string = fileURLToPath(new URL('../proto/', import.meta.url));
/** The service's file, relative to `idsProtoRootDirectory`. */
export const idsProtoFile = 'synod/ids/v1/ids.proto';
/** The fully qualified service name: the prefix of its method paths. */
export const idsServiceName = 'synod.ids.v1.Ids';
/** The trailing metadata key that carries a failure's Synod error code. */
export const synodCodeMetadataKey = 'synod-code';
/**
 * The largest request the server reads. A request is a tag (≤ 128 bytes) and a count, or an id
 * of ≤ 20 digits; anything near this is not a request of this service.
 */
export const grpcRequestBytesMax = 4_096;

/** Field names as in the .proto; 64-bit integers as decimal strings; zero values filled in. */
export const idsProtoLoaderOptions: Readonly<Options> = Object.freeze({
  keepCase: true,
  longs: String,
  enums: String,
  defaults: true,
  oneofs: true,
  includeDirs: [idsProtoRootDirectory],
});

interface NextRequest {
  readonly tag: string;
  readonly count: number;
}

interface NextResponse {
  readonly tag: string;
  readonly ids: readonly string[];
}

interface DecodeRequest {
  readonly id: string;
}

interface DecodeResponse {
  /** A uint64 on the wire; a decimal string keeps every value exact. */
  readonly timestamp_ms: string;
  readonly datacenter_id: number;
  readonly worker_id: number;
  readonly sequence: number;
}

/** Parses ids.proto (synchronously; call once) and returns the service definition. */
export function loadIdsServiceDefinition(): ServiceDefinition {
  const packageDefinition = loadSync(
    `${idsProtoRootDirectory}${idsProtoFile}`, idsProtoLoaderOptions);
  const definition = packageDefinition[idsServiceName];
  assert(definition !== undefined && !('format' in definition), `${idsServiceName} is a service`);
  for (const method of Object.values(definition)) {
    assert(method.path.startsWith(`/${idsServiceName}/`), `method path ${method.path}`);
  }
  return definition as ServiceDefinition;
}

/** Options of `createIdGrpcServer`. */
export interface IdGrpcServerOptions {
  readonly service: IdService;
  /** From `loadIdsServiceDefinition()`; loaded here when absent. */
  readonly definition?: ServiceDefinition;
}

/** A gRPC server with `synod.ids.v1.Ids` added; the caller binds and shuts it down. */
export function createIdGrpcServer(options: IdGrpcServerOptions): Server {
  const server = new Server({
    'grpc.max_receive_message_length': grpcRequestBytesMax,
  });
  const { service } = options;
  server.addService(options.definition ?? loadIdsServiceDefinition(), {
    Next: (
      call: ServerUnaryCall<NextRequest, NextResponse>, callback: sendUnaryData<NextResponse>,
    ) => {
      const { tag } = call.request;
      // proto3 cannot tell an unset count from 0: both ask for one id, the single mode.
      const count = call.request.count === 0 ? null : call.request.count;
      service.issue({ tag, count }, 'grpc').then(
        (ids) => callback(null, { tag, ids }),
        (error: unknown) => callback(serviceErrorOf(error)),
      );
    },
    Decode: (
      call: ServerUnaryCall<DecodeRequest, DecodeResponse>, callback: sendUnaryData<DecodeResponse>,
    ) => {
      let parts;
      try {
        parts = service.decode(call.request.id, 'grpc');
      } catch (error) {
        callback(serviceErrorOf(error));
        return;
      }
      callback(null, {
        timestamp_ms: String(parts.timestampMs),
        datacenter_id: parts.datacenterId,
        worker_id: parts.workerId,
        sequence: parts.sequence,
      });
    },
  });
  return server;
}

/** The status a failed call ends with; the Synod code rides in the trailers. */
function serviceErrorOf(error: unknown): { code: number; details: string; metadata: Metadata } {
  // failureOf rethrows an AssertionFailure; in a promise callback that ends the process.
  const failure = failureOf(error);
  const metadata = new Metadata();
  if (failure.code !== null) metadata.set(synodCodeMetadataKey, failure.code);
  return { code: failure.status.grpcStatus, details: failure.message, metadata };
}
