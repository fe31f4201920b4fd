import { mkdtemp, rm, writeFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { credentials, type Client, type Server } from '@grpc/grpc-js';
import { Etcd3 } from 'etcd3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { KvStateMachine, MemoryBackend, utf8 } from '../../kv/index.js';
import { loadEtcdProto } from '../grpc/proto.js';
import { RaftNode } from '../node/raft-node.js';
import { createClusterService } from './cluster-service.js';
import { lmdbFilesBytes } from './db-size.js';
import { bindInsecure, createGrpcServer, shutdownServer } from './grpc-server.js';
import { createKvService } from './kv-service.js';
import { startLeader } from './single-member-test-kit.js';
import { checkHashRevision, createMaintenanceService, hashKeyBucket } from './maintenance-service.js';

const proto = loadEtcdProto();
const clusterId = 0xcafe_f00d_1234_5678n;
const memberId = 0xfeed_beef_0000_0001n;
const dbSizeBytes = 123_456;

interface HashKvResponse {
  readonly header: { readonly revision: string };
  readonly hash: number;
  readonly compact_revision: string;
}

interface Harness {
  readonly client: Etcd3;
  readonly node: RaftNode;
  /** HashKV over a raw grpc-js client: the npm etcd3 client's protos predate it. */
  readonly hashKv: (request: { revision?: string }) => Promise<HashKvResponse>;
}

type MaintenanceClient = Client & {
  HashKV(request: object, callback: (error: Error | null, response: HashKvResponse) => void): void;
};

function rawMaintenanceClient(port: number): MaintenanceClient {
  const etcdserverpb = proto.packageObject['etcdserverpb'] as unknown as {
    Maintenance: new (address: string, creds: unknown) => Client;
  };
  return new etcdserverpb.Maintenance(
    `127.0.0.1:${port}`, credentials.createInsecure(),
  ) as MaintenanceClient;
}

describe('Cluster and Maintenance services over a single-member RaftNode', () => {
  const cleanups: (() => Promise<void>)[] = [];
  let harness: Harness;

  beforeEach(async () => {
    const node = await startLeader('synod-maintenance-service-', cleanups);

    const server: Server = createGrpcServer({ proto });
    server.addService(proto.services.KV, createKvService({
      node, definition: proto.services.KV, clusterId, memberId,
    }));
    server.addService(proto.services.Cluster, createClusterService({
      node, clusterId, memberId,
      member: {
        name: 'one',
        peerUrls: [new URL('http://10.0.0.1:2380')],
        clientUrls: [new URL('http://10.0.0.1:2379'), new URL('https://example.test:2379')],
      },
    }));
    server.addService(proto.services.Maintenance, createMaintenanceService({
      node, clusterId, memberId, dbSizeBytes: async () => dbSizeBytes,
    }));
    const port = await bindInsecure(server, '127.0.0.1:0');
    cleanups.push(() => shutdownServer(server));
    const client = new Etcd3({ hosts: `127.0.0.1:${port}` });
    cleanups.push(async () => client.close());
    const raw = rawMaintenanceClient(port);
    cleanups.push(async () => raw.close());
    const hashKv = (request: { revision?: string }) => new Promise<HashKvResponse>(
      (resolve, reject) => {
        raw.HashKV(request, (error, response) => (error ? reject(error) : resolve(response)));
      },
    );
    harness = { client, node, hashKv };
  });

  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  it('lists the one member as its flags describe it', async () => {
    const response = await harness.client.cluster.memberList({});
    expect(response.header).toMatchObject({
      cluster_id: clusterId.toString(), member_id: memberId.toString(), raft_term: '1',
    });
    expect(response.members).toEqual([{
      ID: memberId.toString(), name: 'one', peerURLs: ['http://10.0.0.1:2380'],
      clientURLs: ['http://10.0.0.1:2379', 'https://example.test:2379'], isLearner: false,
    }]);
  });

  it('refuses membership changes as unimplemented, saying why', async () => {
    const { cluster } = harness.client;
    await expect(cluster.memberAdd({ peerURLs: ['http://10.0.0.2:2380'] }))
      .rejects.toThrow(/UNIMPLEMENTED.*peer transport/);
    await expect(cluster.memberRemove({ ID: '2' })).rejects.toThrow(/UNIMPLEMENTED/);
    await expect(cluster.memberUpdate({ ID: '2', peerURLs: [] })).rejects.toThrow(/UNIMPLEMENTED/);
    await expect(cluster.memberPromote({ ID: '2' })).rejects.toThrow(/UNIMPLEMENTED/);
  });

  it('reports status: version, size, leader, indexes and term', async () => {
    const { client, node } = harness;
    await client.put('a').value('1').exec();
    const status = await client.maintenance.status();
    expect(status).toMatchObject({
      version: '3.5.0', dbSize: String(dbSizeBytes), dbSizeInUse: String(dbSizeBytes),
      leader: memberId.toString(), raftTerm: '1', errors: [], isLearner: false,
      raftIndex: String(node.appliedIndex), raftAppliedIndex: String(node.appliedIndex),
    });
    expect(status.header).toMatchObject({ revision: '2', member_id: memberId.toString() });
  });

  it('lists no alarms, deactivates nothing, refuses to activate', async () => {
    const { maintenance } = harness.client;
    expect((await maintenance.alarm({ action: 'Get' as never })).alarms).toEqual([]);
    const deactivated = await maintenance.alarm({
      action: 'Deactivate' as never, alarm: 'Nospace' as never, memberID: memberId.toString(),
    });
    expect(deactivated.alarms).toEqual([]);
    await expect(maintenance.alarm({ action: 'Activate' as never, alarm: 'Nospace' as never }))
      .rejects.toThrow(/UNIMPLEMENTED.*not replicated/);
  });

  it('hashes the key bucket: stable, revision-bounded, compaction-aware', async () => {
    const { client, hashKv } = harness;
    await client.put('a').value('1').exec();
    await client.put('b').value('2').exec();
    const atThree = await hashKv({ revision: '3' });
    const current = await hashKv({ revision: '0' });
    expect(current.hash).toBe(atThree.hash);
    expect(current).toMatchObject({ compact_revision: '0' });
    expect((await hashKv({})).hash).toBe(current.hash);
    expect((await hashKv({ revision: '2' })).hash).not.toBe(current.hash);

    await client.put('c').value('3').exec();
    expect((await hashKv({ revision: '3' })).hash).toBe(atThree.hash);
    await expect(hashKv({ revision: '9' }))
      .rejects.toThrow('etcdserver: mvcc: required revision is a future revision');
    await client.kv.compact({ revision: '3', physical: true });
    await expect(hashKv({ revision: '3' }))
      .rejects.toThrow('etcdserver: mvcc: required revision has been compacted');
    const compacted = await hashKv({ revision: '4' });
    expect(compacted.compact_revision).toBe('3');
  });

  it('defragments as a no-op and refuses the unimplemented RPCs', async () => {
    const { maintenance } = harness.client;
    const defragmented = await maintenance.defragment({});
    expect(defragmented.header.member_id).toBe(memberId.toString());
    await expect(maintenance.hash({})).rejects.toThrow(/UNIMPLEMENTED.*HashKV/);
    await expect(maintenance.moveLeader({ targetID: '2' })).rejects.toThrow(/UNIMPLEMENTED/);
  });
});

describe('hashKeyBucket', () => {
  it('depends on the records at or below the revision only, and on nothing else', () => {
    const build = (values: readonly string[]): KvStateMachine => {
      const machine = KvStateMachine.open({ backend: new MemoryBackend() });
      for (const value of values) machine.store.put({ key: utf8('k'), value: utf8(value) });
      return machine;
    };
    const one = build(['x', 'y']).store;
    const same = build(['x', 'y']).store;
    const other = build(['x', 'z']).store;
    expect(hashKeyBucket(one.backend, 3)).toBe(hashKeyBucket(same.backend, 3));
    expect(hashKeyBucket(one.backend, 3)).not.toBe(hashKeyBucket(other.backend, 3));
    expect(hashKeyBucket(one.backend, 2)).toBe(hashKeyBucket(other.backend, 2));
  });

  it('checks revisions as etcd does', () => {
    const bounds = { current: 10, compacted: 4 };
    expect(checkHashRevision(0, bounds)).toBe(10);
    expect(checkHashRevision(5, bounds)).toBe(5);
    expect(() => checkHashRevision(4, bounds)).toThrow(/compacted/);
    expect(() => checkHashRevision(11, bounds)).toThrow(/future/);
    expect(() => checkHashRevision(-1, bounds)).toThrow(/negative/);
  });
});

describe('lmdbFilesBytes', () => {
  it('sums data files, skips lock files, and measures a missing path as 0', async () => {
    const directory = await mkdtemp(join(tmpdir(), 'synod-db-size-'));
    try {
      expect(await lmdbFilesBytes(join(directory, 'missing'))).toBe(0);
      await mkdir(join(directory, 'env'));
      await writeFile(join(directory, 'env', 'data.mdb'), Buffer.alloc(4096));
      await writeFile(join(directory, 'env', 'lock.mdb'), Buffer.alloc(100));
      expect(await lmdbFilesBytes(join(directory, 'env'))).toBe(4096);
      await writeFile(join(directory, 'file'), Buffer.alloc(10));
      expect(await lmdbFilesBytes(join(directory, 'file'))).toBe(10);
    } finally {
      await rm(directory, { recursive: true, force: true });
    }
  });
});
