import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { loadEtcdProto, protoFiles, protoRootDirectory, serviceNames } from './proto.js';

const proto = loadEtcdProto();

/** The descriptor format proto-loader records for a message or enum; undefined otherwise. */
function typeFormat(fullName: string): unknown {
  const definition = proto.packageDefinition[fullName];
  return definition !== undefined && 'format' in definition ? definition.format : undefined;
}

describe('loadEtcdProto', () => {
  it('finds every proto file beside the module', () => {
    for (const file of protoFiles) expect(existsSync(`${protoRootDirectory}${file}`)).toBe(true);
  });

  it('exposes each service under etcd gRPC paths', () => {
    for (const [short, fullName] of Object.entries(serviceNames)) {
      const service = proto.services[short as keyof typeof serviceNames];
      for (const [method, definition] of Object.entries(service)) {
        expect(definition.path).toBe(`/${fullName}/${method}`);
      }
    }
    expect(proto.services.KV.Range?.path).toBe('/etcdserverpb.KV/Range');
    expect(proto.services.Watch.Watch).toMatchObject({ requestStream: true, responseStream: true });
    expect(proto.services.Lease.LeaseKeepAlive).toMatchObject({ requestStream: true });
    expect(proto.services.Maintenance.Snapshot).toMatchObject({
      requestStream: false,
      responseStream: true,
    });
    expect(proto.services.Health.Check?.path).toBe('/grpc.health.v1.Health/Check');
  });

  it('keeps 64-bit integers exact as decimal strings', () => {
    const method = proto.services.Lease.LeaseGrant;
    const largest = '9223372036854775807';
    const bytes = method?.responseSerialize({ ID: largest, TTL: '60', header: { member_id: '1' } });
    expect(bytes).toBeDefined();
    const decoded = method?.responseDeserialize(bytes as Buffer) as Record<string, unknown>;
    expect(decoded).toMatchObject({ ID: largest, TTL: '60', error: '' });
    expect(decoded['header']).toMatchObject({ member_id: '1', cluster_id: '0', revision: '0' });
  });

  it('decodes enums as etcd names, zero values as defaults, and names the set oneof', () => {
    const method = proto.services.KV.Txn;
    const bytes = method?.requestSerialize({
      compare: [{ result: 'NOT_EQUAL', target: 'MOD', key: Buffer.from('k'), mod_revision: 4 }],
      success: [{ request_put: { key: Buffer.from('k'), value: Buffer.from('v') } }],
    });
    const decoded = method?.requestDeserialize(bytes as Buffer) as {
      compare: Record<string, unknown>[];
      success: Record<string, unknown>[];
      failure: unknown[];
    };
    expect(decoded.failure).toEqual([]);
    expect(decoded.compare[0]).toMatchObject({
      result: 'NOT_EQUAL',
      target: 'MOD',
      mod_revision: '4',
      target_union: 'mod_revision',
    });
    expect(decoded.compare[0]).not.toHaveProperty('version');
    expect(decoded.success[0]).toMatchObject({ request: 'request_put' });
    expect(decoded.success[0]?.['request_put']).toMatchObject({ lease: '0', prev_kv: false });
  });

  it('registers message and enum types under etcd package names', () => {
    const message = 'Protocol Buffer 3 DescriptorProto';
    expect(typeFormat('mvccpb.KeyValue')).toBe(message);
    expect(typeFormat('authpb.Permission')).toBe(message);
    expect(typeFormat('v3electionpb.LeaderKey')).toBe(message);
    expect(typeFormat('v3lockpb.LockRequest')).toBe(message);
    expect(typeFormat('etcdserverpb.AlarmType')).toBe('Protocol Buffer 3 EnumDescriptorProto');
  });
});
