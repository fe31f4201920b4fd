import {
  credentials, status as GrpcStatus, type Client, type ClientDuplexStream, type Server,
  type ServiceError,
} from '@grpc/grpc-js';
import { Etcd3, EtcdLeaseInvalidError } from 'etcd3';
import { afterEach, describe, expect, it } from 'vitest';
import { SynodError } from '../../base/index.js';
import { loadEtcdProto } from '../grpc/proto.js';
import { LeaseKeeper, ManualClock, serveForwardedLeaseRequests } from '../lease/index.js';
import type { LeaseLeaderClient } from '../lease/index.js';
import type { RaftNode } from '../node/raft-node.js';
import { TestCluster } from '../node/test-cluster.js';
import { bindInsecure, createGrpcServer, shutdownServer } from './grpc-server.js';
import { createKvService } from './kv-service.js';
import {
  createLeaseService, keepAliveRequestsInFlightMax, leaseGrantQuotaBytes,
} from './lease-service.js';
import { startLeader } from './single-member-test-kit.js';

const proto = loadEtcdProto();
const clusterId = 0xcafe_f00d_1234_5678n;
const memberId = 0xfeed_beef_0000_0001n;
const electionTimeoutMs = 1000;

type Callback = (error: ServiceError | null, response: Record<string, unknown>) => void;
type LeaseClient = Client & Record<string, (request: object, callback: Callback) => void> & {
  LeaseKeepAlive(): ClientDuplexStream<object, Record<string, unknown>>;
};

/** A raw grpc-js Lease client, to see exact wire fields and statuses. */
function rawLeaseClient(port: number): LeaseClient {
  const etcdserverpb = proto.packageObject['etcdserverpb'] as unknown as {
    Lease: new (address: string, creds: unknown) => Client;
  };
  return new etcdserverpb.Lease(`127.0.0.1:${port}`, credentials.createInsecure()) as LeaseClient;
}

function call(client: LeaseClient, method: string, request: object) {
  return new Promise<Record<string, unknown>>((resolve, reject) => {
    client[method]!(request, (error, response) => (error ? reject(error) : resolve(response)));
  });
}

/** Sends each ID on one keep-alive stream and collects the answers in order. */
async function keepAlives(client: LeaseClient, ids: string[]): Promise<Record<string, unknown>[]> {
  const stream = client.LeaseKeepAlive();
  const answers: Record<string, unknown>[] = [];
  const done = new Promise<void>((resolve, reject) => {
    stream.on('data', (answer: Record<string, unknown>) => {
      answers.push(answer);
      if (answers.length === ids.length) resolve();
    });
    stream.on('error', reject);
  });
  for (const ID of ids) stream.write({ ID });
  try {
    await done;
  } finally {
    stream.end();
    stream.cancel();
  }
  return answers;
}

function status(code: GrpcStatus, details: string) {
  return expect.objectContaining({ code, details });
}

interface Served {
  readonly port: number;
  readonly raw: LeaseClient;
}

async function serve(
  options: {
    node: RaftNode;
    keeper: LeaseKeeper;
    forwardToLeader?: LeaseLeaderClient;
    quota?: { check(requestBytes: number): Promise<void> };
  },
  cleanups: (() => Promise<void>)[],
): Promise<Served> {
  const { node } = options;
  const server: Server = createGrpcServer({ proto });
  server.addService(proto.services.KV, createKvService({
    node, definition: proto.services.KV, clusterId, memberId,
  }));
  server.addService(proto.services.Lease, createLeaseService({ ...options, clusterId, memberId }));
  const port = await bindInsecure(server, '127.0.0.1:0');
  cleanups.push(() => shutdownServer(server));
  const raw = rawLeaseClient(port);
  cleanups.push(async () => raw.close());
  return { port, raw };
}

function startKeeper(node: RaftNode, clock: ManualClock, cleanups: (() => Promise<void>)[]) {
  const keeper = new LeaseKeeper({ node, clock, scheduler: clock, electionTimeoutMs });
  keeper.start();
  cleanups.push(async () => keeper.stop());
  return keeper;
}

describe('Lease service on a single-member leader', () => {
  const cleanups: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  async function setup() {
    const node = await startLeader('synod-lease-service-', cleanups);
    const clock = new ManualClock();
    const keeper = startKeeper(node, clock, cleanups);
    const served = await serve({ node, keeper }, cleanups);
    const client = new Etcd3({ hosts: `127.0.0.1:${served.port}` });
    cleanups.push(async () => client.close());
    return { node, clock, keeper, client, ...served };
  }

  it('grants, attaches, keeps alive and revokes through the npm etcd3 client', async () => {
    const { client } = await setup();
    const lease = client.lease(100, { autoKeepAlive: false });
    const id = await lease.grant();
    await lease.put('held').value('v').exec();
    expect(await client.get('held').string()).toBe('v');
    const kept = await lease.keepaliveOnce();
    expect(kept).toMatchObject({ ID: id, TTL: '100' });
    expect(kept.header).toMatchObject({
      cluster_id: clusterId.toString(), member_id: memberId.toString(), revision: '2',
    });
    await lease.revoke();
    expect(await client.get('held').string()).toBeNull();
    const lost = client.lease(100, { autoKeepAlive: false });
    await lost.grant();
    await client.leaseClient.leaseRevoke({ ID: await lost.grant() });
    await expect(lost.keepaliveOnce()).rejects.toBeInstanceOf(EtcdLeaseInvalidError);
  });

  it('raises small TTLs, refuses large ones, and honours or picks IDs', async () => {
    const { raw } = await setup();
    expect(await call(raw, 'LeaseGrant', { TTL: '1', ID: '100' }))
      .toMatchObject({ ID: '100', TTL: '2', error: '' });
    await expect(call(raw, 'LeaseGrant', { TTL: '5', ID: '100' }))
      .rejects.toEqual(status(GrpcStatus.FAILED_PRECONDITION, 'etcdserver: lease already exists'));
    await expect(call(raw, 'LeaseGrant', { TTL: '9000000001' }))
      .rejects.toEqual(status(GrpcStatus.OUT_OF_RANGE, 'etcdserver: too large lease TTL'));
    await expect(call(raw, 'LeaseGrant', { TTL: '9223372036854775807' }))
      .rejects.toEqual(status(GrpcStatus.OUT_OF_RANGE, 'etcdserver: too large lease TTL'));
    expect(await call(raw, 'LeaseGrant', { TTL: '-5', ID: '-3' }))
      .toMatchObject({ ID: '-3', TTL: '2' });
    const picked = await call(raw, 'LeaseGrant', { TTL: '10' });
    expect(BigInt(picked.ID as string)).toBeGreaterThan(0n);
    await call(raw, 'LeaseRevoke', { ID: picked.ID });
    const next = await call(raw, 'LeaseGrant', { TTL: '10' });
    expect(BigInt(next.ID as string)).toBeGreaterThan(BigInt(picked.ID as string));
    const listed = await call(raw, 'LeaseLeases', {});
    expect((listed.leases as { ID: string }[]).map((lease) => lease.ID))
      .toEqual(['-3', next.ID, '100']);
  });

  it('answers unknown leases as etcd: NotFound revoke, keep-alive TTL 0, TTL -1', async () => {
    const { raw, keeper } = await setup();
    await expect(call(raw, 'LeaseRevoke', { ID: '77' }))
      .rejects.toEqual(status(GrpcStatus.NOT_FOUND, 'etcdserver: requested lease not found'));
    expect(await keepAlives(raw, ['77']))
      .toEqual([expect.objectContaining({ ID: '77', TTL: '0' })]);
    expect(await call(raw, 'LeaseTimeToLive', { ID: '77', keys: true }))
      .toMatchObject({ ID: '77', TTL: '-1', grantedTTL: '0', keys: [] });
    expect(keeper.size).toBe(0);
  });

  it('checks the quota before proposing a grant', async () => {
    const node = await startLeader('synod-lease-quota-', cleanups);
    const keeper = startKeeper(node, new ManualClock(), cleanups);
    const asked: number[] = [];
    const quota = {
      check: async (bytes: number) => {
        asked.push(bytes);
        throw new SynodError('SYNOD_NO_SPACE');
      },
    };
    const { raw } = await serve({ node, keeper, quota }, cleanups);
    await expect(call(raw, 'LeaseGrant', { TTL: '10' })).rejects.toEqual(
      status(GrpcStatus.RESOURCE_EXHAUSTED, 'etcdserver: mvcc: database space exceeded'),
    );
    expect(asked).toEqual([leaseGrantQuotaBytes]);
    expect(node.stateMachine.store.leaseLeases().leases).toEqual([]);
  });

  it('reports remaining TTL and keys, and renews many leases on one stream in order', async () => {
    const { raw, clock, client } = await setup();
    const granted = await call(raw, 'LeaseGrant', { TTL: '10' });
    const id = granted.ID as string;
    await client.put('b').value('2').lease(id).exec();
    await client.put('a').value('1').lease(id).exec();
    clock.advanceMs(3_200);
    expect(await call(raw, 'LeaseTimeToLive', { ID: id, keys: true })).toMatchObject({
      ID: id, TTL: '6', grantedTTL: '10', keys: [Buffer.from('a'), Buffer.from('b')],
    });
    expect(await call(raw, 'LeaseTimeToLive', { ID: id })).toMatchObject({ keys: [] });
    const answers = await keepAlives(raw, [id, '5', id]);
    expect(answers.map((answer) => [answer.ID, answer.TTL]))
      .toEqual([[id, '10'], ['5', '0'], [id, '10']]);
    expect(answers[0]!.header).toMatchObject({ revision: '3', raft_term: '1' });
    expect(await call(raw, 'LeaseTimeToLive', { ID: id })).toMatchObject({ TTL: '10' });
  });

  it('expires a lease on the leader clock and deletes its keys', async () => {
    const { raw, clock, client, node } = await setup();
    const { ID } = await call(raw, 'LeaseGrant', { TTL: '3' });
    await client.put('k').value('v').lease(ID as string).exec();
    clock.advanceMs(2_500);
    expect(await keepAlives(raw, [ID as string])).toEqual([expect.objectContaining({ TTL: '3' })]);
    clock.advanceMs(2_900);
    expect(await client.get('k').string()).toBe('v');
    clock.advanceMs(500);
    await node.idle();
    expect(await client.get('k').string()).toBeNull();
    expect(await call(raw, 'LeaseTimeToLive', { ID })).toMatchObject({ TTL: '-1' });
  });
});

describe('Lease service on followers', () => {
  const cleanups: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  async function setup(options: { elect: boolean }) {
    const cluster = await TestCluster.start(3);
    cleanups.push(() => cluster.close());
    if (options.elect) await cluster.elect(1);
    const clock = new ManualClock();
    const leaderKeeper = startKeeper(cluster.member(1).node, clock, cleanups);
    const followerNode = cluster.member(2).node;
    const followerKeeper = startKeeper(followerNode, clock, cleanups);
    const forwarded = serveForwardedLeaseRequests(leaderKeeper);
    const follower = await serve(
      { node: followerNode, keeper: followerKeeper, forwardToLeader: forwarded }, cleanups,
    );
    const third = cluster.member(3).node;
    const lonelyKeeper = startKeeper(third, clock, cleanups);
    const lonely = await serve({ node: third, keeper: lonelyKeeper }, cleanups);
    const failing = await serve({
      node: cluster.member(3).node,
      keeper: startKeeper(cluster.member(3).node, clock, cleanups),
      forwardToLeader: {
        keepAlive: () => Promise.reject(new Error('peer connection closed')),
        timeToLive: () => Promise.reject(new Error('peer connection closed')),
      },
    }, cleanups);
    return { cluster, clock, leaderKeeper, follower, lonely, failing };
  }

  it('grants through a follower and forwards keep-alive and TTL to the leader', async () => {
    const { follower, clock, leaderKeeper } = await setup({ elect: true });
    const { ID } = await call(follower.raw, 'LeaseGrant', { TTL: '10' });
    clock.advanceMs(4_000);
    expect(await call(follower.raw, 'LeaseTimeToLive', { ID })).toMatchObject({
      TTL: String(leaderKeeper.remainingTtlSeconds(BigInt(ID as string))), grantedTTL: '10',
    });
    expect(await keepAlives(follower.raw, [ID as string, '9']))
      .toEqual([expect.objectContaining({ TTL: '10' }), expect.objectContaining({ TTL: '0' })]);
    expect(leaderKeeper.remainingTtlSeconds(BigInt(ID as string))).toBe(10);
    expect(await call(follower.raw, 'LeaseLeases', {}))
      .toMatchObject({ leases: [{ ID }] });
  });

  it('answers not leader without a forwarder, and no leader when forwarding fails', async () => {
    const { follower, lonely, failing } = await setup({ elect: true });
    const { ID } = await call(follower.raw, 'LeaseGrant', { TTL: '10' });
    await expect(keepAlives(lonely.raw, [ID as string]))
      .rejects.toEqual(status(GrpcStatus.FAILED_PRECONDITION, 'etcdserver: not leader'));
    await expect(keepAlives(failing.raw, [ID as string]))
      .rejects.toEqual(status(GrpcStatus.UNAVAILABLE, 'etcdserver: no leader'));
  });

  it('answers a long burst on one stream in order, one forward at a time', async () => {
    const { cluster, clock } = await setup({ elect: true });
    const node = cluster.member(2).node;
    let inFlight = 0;
    let inFlightMost = 0;
    const slow: LeaseLeaderClient = {
      keepAlive: async (id) => {
        inFlight += 1;
        inFlightMost = Math.max(inFlightMost, inFlight);
        await new Promise((resolve) => setImmediate(resolve));
        inFlight -= 1;
        return Number(id % 7n);
      },
      timeToLive: () => Promise.resolve(-1),
    };
    const { raw } = await serve(
      { node, keeper: startKeeper(node, clock, cleanups), forwardToLeader: slow }, cleanups,
    );
    const ids = Array.from({ length: 3 * keepAliveRequestsInFlightMax }, (_, i) => String(i + 1));
    const answers = await keepAlives(raw, ids);
    expect(answers.map((answer) => answer.ID)).toEqual(ids);
    expect(answers.map((answer) => answer.TTL)).toEqual(ids.map((id) => String(BigInt(id) % 7n)));
    expect(inFlightMost).toBe(1);
  });

  it('answers no leader while none is known', async () => {
    const { follower } = await setup({ elect: false });
    await expect(keepAlives(follower.raw, ['1']))
      .rejects.toEqual(status(GrpcStatus.UNAVAILABLE, 'etcdserver: no leader'));
  });
});
