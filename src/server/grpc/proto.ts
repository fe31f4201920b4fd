// Loads Synod's etcd v3 protobuf definitions (src/server/proto) for @grpc/grpc-js.
//
// The .proto files are read at run time, relative to this module, so the same code works from
// src/ under tsx and from dist/ after tsc, provided the build copies src/server/proto to
// dist/server/proto (tsc copies only TypeScript).
import { fileURLToPath } from 'node:url';
import type { ServiceDefinition } from '@grpc/grpc-js';
import { loadPackageDefinition, type GrpcObject } from '@grpc/grpc-js';
import { loadSync, type Options, type PackageDefinition } from '@grpc/proto-loader';
import { assert } from '../../base/index.js';

/**
 * Absolute path of the proto root (the directory holding `etcdserverpb/`, `mvccpb/`, …). Imports
 * inside the files are relative to it, as etcd's are relative to its module root.
 */
export const protoRootDirectory: string = fileURLToPath(new URL('../proto/', import.meta.url));

/** The files that define the wire API, relative to {@link protoRootDirectory}. */
export const protoFiles: readonly string[] = Object.freeze([
  'etcdserverpb/rpc.proto',
  'mvccpb/kv.proto',
  'authpb/auth.proto',
  'v3lockpb/v3lock.proto',
  'v3electionpb/v3election.proto',
  'grpc/health/v1/health.proto',
]);

/**
 * How decoded messages look to handlers, and what encoders accept. These choices are the contract
 * between the wire and every handler in src/server; changing one changes every handler.
 *
 * - `keepCase`: field names exactly as in the .proto (`range_end`, `prev_kv`, `TTL`, `ID`), the
 *   same spelling etcd's JSON gateway and the npm etcd3 client use.
 * - `longs: String`: every int64/uint64 (revisions, lease and member IDs, cluster ID) is a decimal
 *   string. A Number would silently round IDs above 2^53 (lease IDs are random 63-bit values;
 *   member and cluster IDs are 64-bit hashes). Handlers convert with `BigInt(text)`; encoders
 *   accept strings, numbers and bigints' decimal strings.
 * - `enums: String`: enum fields decode to etcd's value names (`'ASCEND'`, `'NOSPACE'`, `'PUT'`),
 *   which read well in handlers and match the gateway's JSON. Encoders accept a name or a number.
 *   A number etcd has not defined decodes as that number, so handlers must treat unknown values as
 *   an error rather than assume the union is closed.
 * - `bytes` (default Buffer): keys and values are binary; never decode them as UTF-8.
 * - `defaults`: absent scalar fields decode to their proto3 zero value (`'0'` for 64-bit
 *   integers, `''`, `false`, an empty Buffer, the enum's zero name, `[]`), so handlers never see
 *   `undefined` for a scalar or repeated field.
 *   Unset message fields stay absent (null), and unset oneof members are not filled in.
 * - `oneofs`: a virtual property names the member that is set, e.g. `request: 'request_put'` on
 *   RequestOp and `request_union: 'create_request'` on WatchRequest.
 */
export const protoLoaderOptions: Readonly<Options> = Object.freeze({
  keepCase: true,
  longs: String,
  enums: String,
  defaults: true,
  oneofs: true,
  includeDirs: [protoRootDirectory],
});

/** Fully qualified names of the services Synod serves; they are the gRPC method path prefixes. */
export const serviceNames = Object.freeze({
  KV: 'etcdserverpb.KV',
  Watch: 'etcdserverpb.Watch',
  Lease: 'etcdserverpb.Lease',
  Cluster: 'etcdserverpb.Cluster',
  Maintenance: 'etcdserverpb.Maintenance',
  Auth: 'etcdserverpb.Auth',
  Lock: 'v3lockpb.Lock',
  Election: 'v3electionpb.Election',
  Health: 'grpc.health.v1.Health',
} as const);

/** A short service name such as `'KV'` or `'Health'`. */
export type ServiceName = keyof typeof serviceNames;

/** Service definitions ready for `Server.addService(definition, implementation)`. */
export type EtcdServiceDefinitions = Readonly<Record<ServiceName, ServiceDefinition>>;

/** Everything derived from one load of the proto files. */
export interface EtcdProto {
  /** The proto-loader output: message (de)serializers and service definitions by full name. */
  readonly packageDefinition: PackageDefinition;
  /** The grpc-js package object (`etcdserverpb.KV` client constructors and so on). */
  readonly packageObject: GrpcObject;
  readonly services: EtcdServiceDefinitions;
}

/** Parses the proto files synchronously. Call once at startup; the result is immutable. */
export function loadEtcdProto(): EtcdProto {
  const packageDefinition = loadSync(
    protoFiles.map((file) => `${protoRootDirectory}${file}`),
    protoLoaderOptions,
  );
  const services = {} as Record<ServiceName, ServiceDefinition>;
  for (const name of Object.keys(serviceNames) as ServiceName[]) {
    services[name] = serviceDefinition(packageDefinition, serviceNames[name]);
  }
  return Object.freeze({
    packageDefinition,
    packageObject: loadPackageDefinition(packageDefinition),
    services: Object.freeze(services),
  });
}

function serviceDefinition(packageDefinition: PackageDefinition, fullName: string): ServiceDefinition {
  const definition = packageDefinition[fullName];
  assert(definition !== undefined, `proto service ${fullName} is not defined`);
  // Message and enum entries carry a `format`; service entries are maps of method definitions.
  assert(!('format' in definition), `proto name ${fullName} is not a service`);
  const methods = Object.values(definition);
  assert(methods.length > 0, `proto service ${fullName} has no methods`);
  for (const method of methods) {
    assert(method.path.startsWith(`/${fullName}/`), `method path ${method.path} of ${fullName}`);
  }
  return definition as ServiceDefinition;
}
