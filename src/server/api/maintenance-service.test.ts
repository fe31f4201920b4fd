import { createHash } from 'node:crypto';
import { mkdtemp, rm, writeFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { credentials, status as GrpcStatus, type Client, type Server } from '@grpc/grpc-js';
import { Etcd3 } from 'etcd3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SynodError } from '../../base/index.js';
import { KvStateMachine, MemoryBackend, utf8 } from '../../kv/index.js';
import { loadEtcdProto } from '../grpc/proto.js';
import { RaftNode } from '../node/raft-node.js';
import { TestCluster } from '../node/test-cluster.js';
import { createClusterService } from './cluster-service.js';
import { lmdbFilesBytes } from './db-size.js';
import { bindInsecure, createGrpcServer, shutdownServer } from './grpc-server.js';
import { createKvService } from './kv-service.js';
import { startLeader } from './single-member-test-kit.js';
import {
  alarmStatusText, checkHashRevision, createMaintenanceService, hashKeyBucket,
} from './maintenance-service.js';
import { createNodeQuota } from './quota.js';
import { decodeSnapshotFile, snapshotChunkBytes } from './snapshot-stream.js';

const proto = loadEtcdProto();
const clusterId = 0xcafe_f00d_1234_5678n;
const memberId = 0xfeed_beef_0000_0001n;
const dbSizeBytes = 123_456;
/** The quota the harness's KV service enforces; `Harness.quotaDbBytes` is the size it measures. */
const quotaBackendBytes = 64 * 1024;

interface HashKvResponse {
  readonly header: { readonly revision: string };
  readonly hash: number;
  readonly compact_revision: string;
}

interface Harness {
  readonly client: Etcd3;
  readonly node: RaftNode;
  readonly port: number;
  /** HashKV over a raw grpc-js client: the npm etcd3 client's protos predate it. */
  readonly hashKv: (request: { revision?: string }) => Promise<HashKvResponse>;
  /** Any unary Maintenance or KV call over raw grpc-js, with wire enum names. */
  readonly call: (method: string, request: object) => Promise<WireResponse>;
  readonly maintenance: RawClient;
  /** What the KV service's quota measures as the database size. */
  quotaDbBytes: number;
}

/** A unary response, or the status it failed with. */
type WireResponse = Record<string, unknown> & { code?: number; details?: string };

type Callback = (
  error: (Error & { code: number; details: string }) | null, response: never,
) => void;
type RawClient = Client & Record<string, (request: object, callback: Callback) => void> & {
  Snapshot(request: object): NodeJS.ReadableStream & { cancel(): void };
};

function rawClient(service: 'Maintenance' | 'KV', port: number): RawClient {
  const etcdserverpb = proto.packageObject['etcdserverpb'] as unknown as Record<
    string, new (address: string, creds: unknown) => Client
  >;
  const Constructor = etcdserverpb[service]!;
  return new Constructor(`127.0.0.1:${port}`, credentials.createInsecure()) as RawClient;
}

/** Calls `method` and resolves with the response or `{code, details}` of the failure. */
function unary(client: RawClient, method: string, request: object): Promise<WireResponse> {
  return new Promise((resolve) => {
    client[method]!.call(client, request, (error, response) => {
      resolve(error ? { code: error.code, details: error.details } : response);
    });
  });
}

/** The blobs and remaining_bytes of a whole Snapshot stream. */
interface SnapshotMessageWire {
  readonly remaining_bytes: string;
  readonly blob: Buffer;
}

function readSnapshot(client: RawClient): Promise<SnapshotMessageWire[]> {
  return new Promise((resolve, reject) => {
    const messages: SnapshotMessageWire[] = [];
    const stream = client.Snapshot({});
    stream.on('data', (message: SnapshotMessageWire) => messages.push(message));
    stream.on('error', reject);
    stream.on('end', () => resolve(messages));
  });
}

const noSpace = {
  code: GrpcStatus.RESOURCE_EXHAUSTED, details: 'etcdserver: mvcc: database space exceeded',
};

describe('Cluster and Maintenance services over a single-member RaftNode', () => {
  const cleanups: (() => Promise<void>)[] = [];
  let harness: Harness;

  beforeEach(async () => {
    const node = await startLeader('synod-maintenance-service-', cleanups);

    const server: Server = createGrpcServer({ proto });
    const quota = createNodeQuota({
      node, memberId, quotaBackendBytes, dbSizeBytes: async () => harness.quotaDbBytes,
    });
    server.addService(proto.services.KV, createKvService({
      node, definition: proto.services.KV, clusterId, memberId, quota,
    }));
    server.addService(proto.services.Cluster, createClusterService({
      node, clusterId, memberId,
      members: () => [{
        raftId: 1,
        memberId,
        name: 'one',
        peerUrls: ['http://10.0.0.1:2380'],
        clientUrls: ['http://10.0.0.1:2379', 'https://example.test:2379'],
        isLearner: false,
      }],
      change: async () => {
        throw new SynodError('SYNOD_MEMBER_NOT_FOUND');
      },
    }));
    server.addService(proto.services.Maintenance, createMaintenanceService({
      node, clusterId, memberId, dbSizeBytes: async () => dbSizeBytes,
    }));
    const port = await bindInsecure(server, '127.0.0.1:0');
    cleanups.push(() => shutdownServer(server));
    const client = new Etcd3({ hosts: `127.0.0.1:${port}` });
    cleanups.push(async () => client.close());
    const raw = rawClient('Maintenance', port);
    const kv = rawClient('KV', port);
    cleanups.push(async () => raw.close());
    cleanups.push(async () => kv.close());
    const hashKv = async (request: { revision?: string }) => {
      const response = await unary(raw, 'HashKV', request);
      if (response.code !== undefined) throw new Error(response.details);
      return response as unknown as HashKvResponse;
    };
    const call = (method: string, request: object) =>
      unary(method in raw ? raw : kv, method, request);
    harness = { client, node, port, hashKv, call, maintenance: raw, quotaDbBytes: 0 };
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

  it('answers a failed membership change with etcd\'s error', async () => {
    // The harness's changes all fail as an unknown member would; the status is etcd's.
    const { cluster } = harness.client;
    await expect(cluster.memberRemove({ ID: '2' })).rejects.toThrow(/NOT_FOUND.*etcdserver: member not found/);
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
  });

  it('raises, lists and clears alarms as etcd 3.4 answers them', async () => {
    const { call } = harness;
    const nospace = { memberID: memberId.toString(), alarm: 'NOSPACE' };
    const corrupt = { memberID: '7', alarm: 'CORRUPT' };
    expect(await call('Alarm', { action: 'GET' })).toMatchObject({ alarms: [] });
    const raise = { action: 'ACTIVATE', ...nospace };
    expect(await call('Alarm', raise)).toMatchObject({ alarms: [nospace] });
    expect(await call('Alarm', raise)).toMatchObject({ alarms: [nospace] });
    expect(await call('Alarm', { action: 'ACTIVATE', ...corrupt })).toMatchObject({
      alarms: [corrupt],
    });
    expect((await call('Alarm', { action: 'GET' })).alarms).toEqual([corrupt, nospace]);
    expect((await call('Alarm', { action: 'GET', alarm: 'NOSPACE' })).alarms).toEqual([nospace]);
    const status = await harness.client.maintenance.status();
    expect(status.errors).toEqual([
      'memberID:7 alarm:CORRUPT ', `memberID:${memberId} alarm:NOSPACE `,
    ]);
    expect(await call('Alarm', { action: 'DEACTIVATE', ...corrupt })).toMatchObject({
      alarms: [corrupt],
    });
    expect(await call('Alarm', { action: 'DEACTIVATE', ...corrupt })).toMatchObject({ alarms: [] });
    expect(await call('Alarm', { action: 'ACTIVATE', memberID: '9', alarm: 'NONE' }))
      .toMatchObject({ alarms: [] });
    expect((await call('Alarm', { action: 'GET' })).alarms).toEqual([nospace]);
    expect(await call('Alarm', { action: 7 })).toMatchObject({
      code: GrpcStatus.INVALID_ARGUMENT, details: 'unknown alarm action 7',
    });
  });

  it('under NOSPACE refuses Put and Txn with a Put; reads, deletes, compaction work', async () => {
    const { call } = harness;
    await call('Put', { key: utf8('a'), value: utf8('1') });
    await call('Put', { key: utf8('b'), value: utf8('2') });
    await call('Alarm', { action: 'ACTIVATE', memberID: memberId.toString(), alarm: 'NOSPACE' });
    expect(await call('Put', { key: utf8('c'), value: utf8('3') })).toEqual(noSpace);
    const putInTxn = { success: [{ request_put: { key: utf8('c'), value: utf8('3') } }] };
    expect(await call('Txn', putInTxn)).toEqual(noSpace);
    expect(await call('Range', { key: utf8('a') })).toMatchObject({ count: '1' });
    const readTxn = { success: [{ request_range: { key: utf8('a') } }] };
    expect(await call('Txn', readTxn)).toMatchObject({ succeeded: true });
    expect(await call('DeleteRange', { key: utf8('b') })).toMatchObject({ deleted: '1' });
    expect(await call('Compact', { revision: '2' })).toMatchObject({ header: {} });
    await call('Alarm', { action: 'DEACTIVATE', memberID: memberId.toString(), alarm: 'NOSPACE' });
    expect(await call('Put', { key: utf8('c'), value: utf8('3') })).toMatchObject({ header: {} });
  });

  it('raises NOSPACE when a write would reach the quota; lists, disarms', async () => {
    const { call } = harness;
    const value = utf8('x'.repeat(100));
    harness.quotaDbBytes = quotaBackendBytes - 200;
    expect(await call('Put', { key: utf8('k'), value })).toMatchObject({ header: {} });
    harness.quotaDbBytes = quotaBackendBytes - 50;
    expect(await call('Put', { key: utf8('k'), value })).toEqual(noSpace);
    expect((await call('Alarm', { action: 'GET' })).alarms)
      .toEqual([{ memberID: memberId.toString(), alarm: 'NOSPACE' }]);
    // The alarm, not the size, refuses writes now: even a tiny one, even once space is back.
    harness.quotaDbBytes = 0;
    expect(await call('Put', { key: utf8('k'), value: utf8('') })).toEqual(noSpace);

    // etcdctl's `alarm list` prints this line (its output beside etcd's: test/interop).
    expect(alarmStatusText({ memberId, alarm: 'NOSPACE' })).toBe(`memberID:${memberId} alarm:NOSPACE `);
    expect(await call('Alarm', { action: 'DEACTIVATE', memberID: memberId.toString(), alarm: 'NOSPACE' }))
      .toMatchObject({ alarms: [{ memberID: memberId.toString(), alarm: 'NOSPACE' }] });
    expect((await call('Alarm', { action: 'GET' })).alarms).toEqual([]);
    expect(await call('Put', { key: utf8('k'), value })).toMatchObject({ header: {} });
  });

  it('moves leadership to itself at once; refuses unknown or malformed targets', async () => {
    const { call } = harness;
    expect(await call('MoveLeader', { targetID: memberId.toString() }))
      .toMatchObject({ header: { member_id: memberId.toString() } });
    expect(harness.node.isLeader).toBe(true);
    expect(await call('MoveLeader', { targetID: '2' })).toEqual({
      code: GrpcStatus.FAILED_PRECONDITION, details: 'etcdserver: bad leader transferee',
    });
  });

  it('streams a snapshot: 32 KiB chunks, remaining bytes, SHA-256, the whole state', async () => {
    const { call, node } = harness;
    for (let index = 0; index < 5; index++) {
      await call('Put', { key: utf8(`big/${index}`), value: new Uint8Array(20_000).fill(index) });
    }
    const messages = await readSnapshot(harness.maintenance);
    const body = Buffer.concat(messages.slice(0, -1).map((message) => message.blob));
    const last = messages.at(-1)!;
    expect(messages.length).toBeGreaterThan(3);
    expect(last.remaining_bytes).toBe('0');
    expect(last.blob).toEqual(createHash('sha256').update(body).digest());
    let remaining = body.length;
    for (const message of messages.slice(0, -1)) {
      expect(message.blob.length).toBeLessThanOrEqual(snapshotChunkBytes);
      remaining -= message.blob.length;
      expect(message.remaining_bytes).toBe(String(remaining));
    }
    expect(body.length % 512).toBe(0);
    const payload = decodeSnapshotFile(Buffer.concat([body, last.blob]));
    expect(payload).toEqual(node.stateMachine.serialize());
  });

  it('saves a snapshot as etcdctl 3.4 stores it (body and digest) that decodes back to the state', async () => {
    const { call, node } = harness;
    await call('Put', { key: utf8('saved'), value: utf8('yes') });
    await call('Alarm', { action: 'ACTIVATE', memberID: '5', alarm: 'CORRUPT' });
    // etcdctl writes the chunks as they come, digest last (etcdctl itself: test/interop).
    const bytes = Buffer.concat((await readSnapshot(harness.maintenance)).map((message) => message.blob));
    expect(bytes.length % 512).toBe(32);
    const body = bytes.subarray(0, bytes.length - 32);
    expect(bytes.subarray(bytes.length - 32)).toEqual(createHash('sha256').update(body).digest());
    const restored = KvStateMachine.restore(decodeSnapshotFile(bytes));
    expect(restored.serialize()).toEqual(node.stateMachine.serialize());
    expect(restored.store.range({ key: utf8('saved') }).kvs[0]?.value).toEqual(utf8('yes'));
    expect(restored.store.alarms()).toEqual([{ memberId: 5n, alarm: 'CORRUPT' }]);
  });

  it('frees a snapshot stream\'s slot when the client cancels it', async () => {
    await harness.call('Put', { key: utf8('big'), value: new Uint8Array(200_000) });
    for (let round = 0; round < 3; round++) {
      const stream = harness.maintenance.Snapshot({});
      await new Promise<void>((resolve) => stream.once('data', () => resolve()));
      const closed = new Promise<void>((resolve) => stream.on('error', () => resolve()));
      stream.cancel();
      await closed;
    }
    // Each cancel released its slot, or this third-plus stream would be refused.
    const messages = await readSnapshot(harness.maintenance);
    expect(messages.at(-1)?.blob.length).toBe(32);
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

describe('MoveLeader across three members', () => {
  const memberIdOf = (raftId: number): bigint => 0xabc0n + BigInt(raftId);
  const raftIdOf = (id: bigint): number | undefined =>
    (id > 0xabc0n && id <= 0xabc3n ? Number(id - 0xabc0n) : undefined);
  let cluster: TestCluster;
  const servers: Server[] = [];
  const clients: RawClient[] = [];

  /** A Maintenance server over member `raftId`'s node; returns a raw client of it. */
  async function serve(raftId: number, leaderTransferTimeoutMs?: number): Promise<RawClient> {
    const server = createGrpcServer({ proto });
    server.addService(proto.services.Maintenance, createMaintenanceService({
      node: cluster.member(raftId).node, clusterId, memberId: memberIdOf(raftId),
      dbSizeBytes: async () => 0, raftIdOf, leaderTransferTimeoutMs,
    }));
    servers.push(server);
    const client = rawClient('Maintenance', await bindInsecure(server, '127.0.0.1:0'));
    clients.push(client);
    return client;
  }

  beforeEach(async () => {
    cluster = await TestCluster.start(3);
    await cluster.elect(1);
  });

  afterEach(async () => {
    for (const client of clients.splice(0)) client.close();
    for (const server of servers.splice(0)) await shutdownServer(server);
    await cluster.close();
  });

  it('hands leadership to the target and answers once it leads', async () => {
    const one = await serve(1);
    const two = await serve(2);
    const moved = await unary(one, 'MoveLeader', { targetID: memberIdOf(2).toString() });
    expect(moved).toMatchObject({ header: { member_id: memberIdOf(1).toString() } });
    expect(cluster.member(2).node.isLeader).toBe(true);
    expect(await unary(one, 'MoveLeader', { targetID: memberIdOf(3).toString() })).toEqual({
      code: GrpcStatus.FAILED_PRECONDITION, details: 'etcdserver: not leader',
    });
    expect(await unary(two, 'MoveLeader', { targetID: memberIdOf(9).toString() })).toEqual({
      code: GrpcStatus.FAILED_PRECONDITION, details: 'etcdserver: bad leader transferee',
    });
  });

  it('times out with etcd\'s leader-transfer error when the target never takes over', async () => {
    const one = await serve(1, 50);
    cluster.network.detach(3);
    expect(await unary(one, 'MoveLeader', { targetID: memberIdOf(3).toString() })).toEqual({
      code: GrpcStatus.UNAVAILABLE,
      details: 'etcdserver: request timed out, leader transfer took too long',
    });
    expect(cluster.member(1).node.isLeader).toBe(true);
  });
});
