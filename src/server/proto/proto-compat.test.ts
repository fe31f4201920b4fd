// Wire compatibility of Synod's etcd v3 protos with the copies the npm etcd3 client ships, plus an
// end-to-end call from that client to a grpc-js server built on our definitions.
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Server, ServerCredentials, type ServerUnaryCall, type sendUnaryData } from '@grpc/grpc-js';
import { Etcd3 } from 'etcd3';
import protobuf from 'protobufjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadEtcdProto, protoFiles } from '../grpc/proto.js';

const oursDirectory = fileURLToPath(new URL('./', import.meta.url));
const etcd3Directory = path.join(
  path.dirname(createRequire(import.meta.url).resolve('etcd3/package.json')),
  'proto',
);

function loadRoot(directory: string, files: readonly string[]): protobuf.Root {
  const root = new protobuf.Root();
  // Both trees import relative to their own root ("./kv.proto", "mvccpb/kv.proto").
  root.resolvePath = (_origin, target) => path.resolve(directory, target);
  root.loadSync(files.map((file) => path.join(directory, file)), { keepCase: true });
  root.resolveAll();
  return root;
}

type Reflected = protobuf.Type | protobuf.Enum | protobuf.Service;

function collect(namespace: protobuf.NamespaceBase, into = new Map<string, Reflected>()) {
  for (const nested of namespace.nestedArray) {
    const isReflected =
      nested instanceof protobuf.Type ||
      nested instanceof protobuf.Enum ||
      nested instanceof protobuf.Service;
    if (isReflected) into.set(nested.fullName, nested);
    if (nested instanceof protobuf.Namespace) collect(nested, into);
  }
  return into;
}

function describeField(field: protobuf.Field) {
  return {
    name: field.name,
    id: field.id,
    type: field.resolvedType ? field.resolvedType.fullName : field.type,
    repeated: field.repeated,
    keyType: field instanceof protobuf.MapField ? field.keyType : null,
    oneof: field.partOf ? field.partOf.name : null,
  };
}

// etcd3 rewrites etcd's enum value names to PascalCase ('NOT_EQUAL' -> 'NotEqual'); the wire
// carries only numbers, so compare numbers and the names up to case and underscores.
function describeEnum(enumeration: protobuf.Enum) {
  return Object.entries(enumeration.values)
    .map(([name, value]) => ({ value, name: name.replaceAll('_', '').toUpperCase() }))
    .sort((a, b) => a.value - b.value);
}

function describeService(service: protobuf.Service) {
  return service.methodsArray
    .map((method) => ({
      name: method.name,
      request: method.resolvedRequestType?.fullName,
      response: method.resolvedResponseType?.fullName,
      requestStream: Boolean(method.requestStream),
      responseStream: Boolean(method.responseStream),
    }))
    .sort((a, b) => a.name.localeCompare(b.name));
}

const etcd3 = collect(loadRoot(etcd3Directory, ['rpc.proto', 'kv.proto', 'auth.proto']));
const ours = collect(loadRoot(oursDirectory, protoFiles));

/** Fields we define that etcd3 1.1.2's copy (etcd 3.5 minus these) lacks. */
const fieldsBeyondEtcd3: Record<string, readonly string[]> = {
  '.etcdserverpb.AuthUserAddRequest': ['hashedPassword'],
  '.etcdserverpb.AuthUserChangePasswordRequest': ['hashedPassword'],
};

describe('our protos versus the npm etcd3 copies', () => {
  it('define every message, enum and service etcd3 defines, under the same full name', () => {
    const missing = [...etcd3.keys()].filter((name) => !ours.has(name));
    expect(missing).toEqual([]);
    expect(etcd3.size).toBeGreaterThan(100);
  });

  it('define only lock, election and health types beyond them', () => {
    const extra = [...ours.keys()].filter((name) => !etcd3.has(name));
    const outsideEtcd3Packages = extra.filter(
      (name) => !/^\.(v3lockpb|v3electionpb|grpc\.health\.v1)\./.test(name),
    );
    expect(outsideEtcd3Packages).toEqual([]);
  });

  for (const [name, theirs] of etcd3) {
    it(`agree on ${name}`, () => {
      const mine = ours.get(name);
      expect(mine?.constructor).toBe(theirs.constructor);
      if (theirs instanceof protobuf.Type && mine instanceof protobuf.Type) {
        const extra = fieldsBeyondEtcd3[name] ?? [];
        const shared = mine.fieldsArray.filter((field) => !extra.includes(field.name));
        expect(shared.map(describeField)).toEqual(theirs.fieldsArray.map(describeField));
        expect(mine.oneofsArray.map((oneof) => oneof.name)).toEqual(
          theirs.oneofsArray.map((oneof) => oneof.name),
        );
      } else if (theirs instanceof protobuf.Enum && mine instanceof protobuf.Enum) {
        expect(describeEnum(mine)).toEqual(describeEnum(theirs));
      } else if (theirs instanceof protobuf.Service && mine instanceof protobuf.Service) {
        expect(describeService(mine)).toEqual(describeService(theirs));
      }
    });
  }
});

// [type, field, id, type of field, repeated]: etcd 3.5 facts that etcd3's copy cannot check.
const handCheckedFields: readonly (readonly [string, string, number, string, boolean])[] = [
  ['.etcdserverpb.AuthUserAddRequest', 'hashedPassword', 4, 'string', false],
  ['.etcdserverpb.AuthUserChangePasswordRequest', 'hashedPassword', 3, 'string', false],
  ['.v3lockpb.LockRequest', 'name', 1, 'bytes', false],
  ['.v3lockpb.LockRequest', 'lease', 2, 'int64', false],
  ['.v3lockpb.LockResponse', 'header', 1, '.etcdserverpb.ResponseHeader', false],
  ['.v3lockpb.LockResponse', 'key', 2, 'bytes', false],
  ['.v3lockpb.UnlockRequest', 'key', 1, 'bytes', false],
  ['.v3lockpb.UnlockResponse', 'header', 1, '.etcdserverpb.ResponseHeader', false],
  ['.v3electionpb.CampaignRequest', 'name', 1, 'bytes', false],
  ['.v3electionpb.CampaignRequest', 'lease', 2, 'int64', false],
  ['.v3electionpb.CampaignRequest', 'value', 3, 'bytes', false],
  ['.v3electionpb.CampaignResponse', 'header', 1, '.etcdserverpb.ResponseHeader', false],
  ['.v3electionpb.CampaignResponse', 'leader', 2, '.v3electionpb.LeaderKey', false],
  ['.v3electionpb.LeaderKey', 'name', 1, 'bytes', false],
  ['.v3electionpb.LeaderKey', 'key', 2, 'bytes', false],
  ['.v3electionpb.LeaderKey', 'rev', 3, 'int64', false],
  ['.v3electionpb.LeaderKey', 'lease', 4, 'int64', false],
  ['.v3electionpb.LeaderRequest', 'name', 1, 'bytes', false],
  ['.v3electionpb.LeaderResponse', 'header', 1, '.etcdserverpb.ResponseHeader', false],
  ['.v3electionpb.LeaderResponse', 'kv', 2, '.mvccpb.KeyValue', false],
  ['.v3electionpb.ResignRequest', 'leader', 1, '.v3electionpb.LeaderKey', false],
  ['.v3electionpb.ResignResponse', 'header', 1, '.etcdserverpb.ResponseHeader', false],
  ['.v3electionpb.ProclaimRequest', 'leader', 1, '.v3electionpb.LeaderKey', false],
  ['.v3electionpb.ProclaimRequest', 'value', 2, 'bytes', false],
  ['.v3electionpb.ProclaimResponse', 'header', 1, '.etcdserverpb.ResponseHeader', false],
  ['.grpc.health.v1.HealthCheckRequest', 'service', 1, 'string', false],
  [
    '.grpc.health.v1.HealthCheckResponse',
    'status',
    1,
    '.grpc.health.v1.HealthCheckResponse.ServingStatus',
    false,
  ],
];

// [service, method, request, response, client streams, server streams]
const handCheckedMethods: readonly (readonly [string, string, string, string, boolean, boolean])[] =
  [
    ['.v3lockpb.Lock', 'Lock', 'LockRequest', 'LockResponse', false, false],
    ['.v3lockpb.Lock', 'Unlock', 'UnlockRequest', 'UnlockResponse', false, false],
    ['.v3electionpb.Election', 'Campaign', 'CampaignRequest', 'CampaignResponse', false, false],
    ['.v3electionpb.Election', 'Proclaim', 'ProclaimRequest', 'ProclaimResponse', false, false],
    ['.v3electionpb.Election', 'Leader', 'LeaderRequest', 'LeaderResponse', false, false],
    ['.v3electionpb.Election', 'Observe', 'LeaderRequest', 'LeaderResponse', false, true],
    ['.v3electionpb.Election', 'Resign', 'ResignRequest', 'ResignResponse', false, false],
    ['.grpc.health.v1.Health', 'Check', 'HealthCheckRequest', 'HealthCheckResponse', false, false],
    ['.grpc.health.v1.Health', 'Watch', 'HealthCheckRequest', 'HealthCheckResponse', false, true],
  ];

// etcd's own enum value names (etcd3 renames them, so only this table checks the spelling).
const handCheckedEnums: Record<string, Record<string, number>> = {
  '.etcdserverpb.RangeRequest.SortOrder': { NONE: 0, ASCEND: 1, DESCEND: 2 },
  '.etcdserverpb.RangeRequest.SortTarget': { KEY: 0, VERSION: 1, CREATE: 2, MOD: 3, VALUE: 4 },
  '.etcdserverpb.Compare.CompareResult': { EQUAL: 0, GREATER: 1, LESS: 2, NOT_EQUAL: 3 },
  '.etcdserverpb.Compare.CompareTarget': { VERSION: 0, CREATE: 1, MOD: 2, VALUE: 3, LEASE: 4 },
  '.etcdserverpb.WatchCreateRequest.FilterType': { NOPUT: 0, NODELETE: 1 },
  '.etcdserverpb.AlarmType': { NONE: 0, NOSPACE: 1, CORRUPT: 2 },
  '.etcdserverpb.AlarmRequest.AlarmAction': { GET: 0, ACTIVATE: 1, DEACTIVATE: 2 },
  '.etcdserverpb.DowngradeRequest.DowngradeAction': { VALIDATE: 0, ENABLE: 1, CANCEL: 2 },
  '.mvccpb.Event.EventType': { PUT: 0, DELETE: 1 },
  '.authpb.Permission.Type': { READ: 0, WRITE: 1, READWRITE: 2 },
  '.grpc.health.v1.HealthCheckResponse.ServingStatus': {
    UNKNOWN: 0,
    SERVING: 1,
    NOT_SERVING: 2,
    SERVICE_UNKNOWN: 3,
  },
};

describe('definitions etcd3 does not ship, checked by hand', () => {
  it.each(handCheckedFields)('%s.%s = %i', (typeName, fieldName, id, type, repeated) => {
    const message = ours.get(typeName);
    expect(message).toBeInstanceOf(protobuf.Type);
    const field = (message as protobuf.Type).fields[fieldName];
    expect(field && describeField(field)).toMatchObject({ id, type, repeated });
  });

  it('have no fields beyond the checked ones in lock, election and health messages', () => {
    for (const [name, reflected] of ours) {
      if (etcd3.has(name) || !(reflected instanceof protobuf.Type)) continue;
      const checked = handCheckedFields.filter(([typeName]) => typeName === name);
      expect(reflected.fieldsArray.map((field) => field.name).sort()).toEqual(
        checked.map(([, fieldName]) => fieldName).sort(),
      );
    }
  });

  it.each(handCheckedMethods)('%s/%s', (serviceName, method, request, response, client, server) => {
    const service = ours.get(serviceName);
    expect(service).toBeInstanceOf(protobuf.Service);
    const methods = (service as protobuf.Service).methodsArray;
    expect(methods).toHaveLength(handCheckedMethods.filter(([s]) => s === serviceName).length);
    const packageName = serviceName.slice(0, serviceName.lastIndexOf('.'));
    expect(describeService(service as protobuf.Service)).toContainEqual({
      name: method,
      request: `${packageName}.${request}`,
      response: `${packageName}.${response}`,
      requestStream: client,
      responseStream: server,
    });
  });

  it.each(Object.entries(handCheckedEnums))('enum %s uses etcd value names', (name, values) => {
    const enumeration = ours.get(name);
    expect(enumeration).toBeInstanceOf(protobuf.Enum);
    expect((enumeration as protobuf.Enum).values).toEqual(values);
  });
});

/** The request fields etcd3's `get()` may send, as our loader decodes them. */
interface RangeRequestSeen {
  key: Buffer;
  range_end: Buffer;
  limit: string;
  revision: string;
  sort_order: string;
  sort_target: string;
  serializable: boolean;
  keys_only: boolean;
  count_only: boolean;
}

describe('the npm etcd3 client against a grpc-js server on our definitions', () => {
  const server = new Server();
  const requests: RangeRequestSeen[] = [];
  let client: Etcd3 | undefined;

  beforeAll(async () => {
    const { services } = loadEtcdProto();
    server.addService(services.KV, {
      Range: (call: ServerUnaryCall<RangeRequestSeen, unknown>, callback: sendUnaryData<unknown>) => {
        requests.push(call.request);
        callback(null, {
          header: { cluster_id: '1', member_id: '2', revision: '7', raft_term: '3' },
          kvs: [
            {
              key: Buffer.from('foo'),
              value: Buffer.from('bar'),
              create_revision: '5',
              mod_revision: '7',
              version: '2',
              lease: '9223372036854775807',
            },
          ],
          more: false,
          count: '1',
        });
      },
    });
    const port = await new Promise<number>((resolve, reject) => {
      server.bindAsync('127.0.0.1:0', ServerCredentials.createInsecure(), (error, bound) =>
        error ? reject(error) : resolve(bound),
      );
    });
    client = new Etcd3({ hosts: `127.0.0.1:${port}` });
  });

  afterAll(() => {
    client?.close();
    server.forceShutdown();
  });

  it('decodes a Range the client sent and the client decodes our response', async () => {
    const value = await client?.get('foo').string();
    expect(value).toBe('bar');
    expect(requests).toHaveLength(1);
    const request = requests[0];
    expect(request?.key.toString()).toBe('foo');
    expect(request?.range_end.length).toBe(0);
    // etcd3 turns a single-key get into limit 1, which must arrive as a decimal string.
    expect(request).toMatchObject({
      limit: '1',
      revision: '0',
      sort_order: 'NONE',
      sort_target: 'KEY',
      keys_only: false,
      count_only: false,
    });
  });

  it('carries 64-bit fields to the client without losing precision', async () => {
    const response = await client?.get('foo').exec();
    expect(response?.kvs[0]?.lease).toBe('9223372036854775807');
    expect(response?.header.revision).toBe('7');
    expect(response?.count).toBe('1');
  });
});
