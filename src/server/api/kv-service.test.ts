import { credentials, type Client, type Server } from '@grpc/grpc-js';
import { Etcd3 } from 'etcd3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { loadEtcdProto } from '../grpc/proto.js';
import { RaftNode } from '../node/raft-node.js';
import { bindInsecure, createGrpcServer, shutdownServer } from './grpc-server.js';
import { createKvService } from './kv-service.js';
import { startLeader } from './single-member-test-kit.js';

const proto = loadEtcdProto();
const clusterId = 0xcafe_f00d_1234_5678n;
const memberId = 0xfeed_beef_0000_0001n;

interface Harness {
  readonly client: Etcd3;
  readonly node: RaftNode;
  readonly port: number;
}

describe('KV service over a single-member RaftNode', () => {
  const cleanups: (() => Promise<void>)[] = [];
  let harness: Harness;

  beforeEach(async () => {
    const node = await startLeader('synod-kv-service-', cleanups);

    const server: Server = createGrpcServer({ proto, maxRequestBytes: 64 * 1024 });
    server.addService(proto.services.KV, createKvService({
      node, definition: proto.services.KV, clusterId, memberId, maxRequestBytes: 64 * 1024,
    }));
    const port = await bindInsecure(server, '127.0.0.1:0');
    cleanups.push(() => shutdownServer(server));
    const client = new Etcd3({ hosts: `127.0.0.1:${port}` });
    cleanups.push(async () => client.close());
    harness = { client, node, port };
  });

  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  it('puts, gets, deletes, and stamps headers with the configured ids', async () => {
    const { client } = harness;
    const first = await client.put('a').value('1').exec();
    expect(first.header).toMatchObject({
      cluster_id: clusterId.toString(), member_id: memberId.toString(), revision: '2',
      raft_term: '1',
    });
    const second = await client.put('a').value('2').exec();
    expect(Number(second.header.revision)).toBe(3);
    expect(await client.get('a').string()).toBe('2');
    const raw = await client.get('a').exec();
    expect(raw.kvs[0]).toMatchObject({
      create_revision: '2', mod_revision: '3', version: '2', lease: '0',
    });
    expect(raw.header.member_id).toBe(memberId.toString());

    expect(await client.delete().key('a').exec()).toMatchObject({ deleted: '1' });
    expect(await client.get('a').string()).toBeNull();
    const afterDelete = await client.get('a').exec();
    expect(afterDelete.header.revision).toBe('4');
    // A delete that matched nothing does not bump the revision.
    await client.delete().key('missing').exec();
    expect((await client.get('a').exec()).header.revision).toBe('4');
  });

  it('serves prefix, count, sort, limit, serializable and historical reads', async () => {
    const { client } = harness;
    for (const [key, value] of [['p/b', '2'], ['p/a', '3'], ['p/c', '1'], ['q', 'x']] as const) {
      await client.put(key).value(value).exec();
    }
    expect(await client.getAll().prefix('p/').strings()).toEqual({
      'p/a': '3', 'p/b': '2', 'p/c': '1',
    });
    expect(await client.getAll().prefix('p/').count()).toBe(3);
    expect(await client.getAll().prefix('p/').sort('Value', 'Ascend').keys())
      .toEqual(['p/c', 'p/b', 'p/a']);
    const limited = await client.getAll().prefix('p/').limit(2).exec();
    expect(limited.kvs.map((kv) => kv.key.toString())).toEqual(['p/a', 'p/b']);
    expect(limited).toMatchObject({ more: true, count: '3' });
    expect(await client.get('q').serializable(true).string()).toBe('x');

    // p/b was written at revision 2; overwrite it and read it as of then.
    await client.put('p/b').value('changed').exec();
    expect(await client.get('p/b').revision(2).string()).toBe('2');
    expect(await client.get('p/b').string()).toBe('changed');
  });

  it('commits a txn branch chosen by its compare', async () => {
    const { client } = harness;
    await client.put('lock').value('free').exec();
    const taken = await client.if('lock', 'Value', '==', 'free')
      .then(client.put('lock').value('mine'))
      .else(client.get('lock'))
      .commit();
    expect(taken.succeeded).toBe(true);
    expect(taken.responses[0]?.response_put?.header?.revision).toBe('3');
    const refused = await client.if('lock', 'Value', '==', 'free')
      .then(client.put('lock').value('theirs'))
      .else(client.get('lock'))
      .commit();
    expect(refused.succeeded).toBe(false);
    expect(refused.responses[0]?.response_range?.kvs[0]?.value.toString()).toBe('mine');
    expect(await client.get('lock').string()).toBe('mine');
  });

  it('compacts; a read or a compaction below it gets etcd\'s error', async () => {
    const { client } = harness;
    await client.put('k').value('1').exec();
    await client.put('k').value('2').exec();
    await client.put('k').value('3').exec();
    const compacted = await client.kv.compact({ revision: '3', physical: true });
    expect(compacted.header.revision).toBe('4');
    await expect(client.get('k').revision(2).string())
      .rejects.toThrow('etcdserver: mvcc: required revision has been compacted');
    await expect(client.kv.compact({ revision: '3' }))
      .rejects.toThrow('etcdserver: mvcc: required revision has been compacted');
    await expect(client.kv.compact({ revision: '9' }))
      .rejects.toThrow('etcdserver: mvcc: required revision is a future revision');
    await expect(client.get('k').revision(9).string())
      .rejects.toThrow('etcdserver: mvcc: required revision is a future revision');
    expect(await client.get('k').revision(3).string()).toBe('2');
  });

  it('refuses malformed and oversized requests before proposing them', async () => {
    const { client, node } = harness;
    const appliedBefore = node.appliedIndex;
    await expect(client.put('').value('v').exec())
      .rejects.toThrow(/INVALID_ARGUMENT: etcdserver: key is not provided/);
    const key = Buffer.from('k');
    await expect(client.kv.put({ key, value: Buffer.from('v'), ignore_value: true }))
      .rejects.toThrow('etcdserver: value is provided');
    await expect(client.put('k').value(Buffer.alloc(65 * 1024)).exec())
      .rejects.toThrow(/INVALID_ARGUMENT: etcdserver: request is too large/);
    const duplicate = client.if('k', 'Version', '==', 0)
      .then(client.put('d').value('1'), client.put('d').value('2'));
    await expect(duplicate.commit())
      .rejects.toThrow('etcdserver: duplicate key given in txn request');
    await expect(client.kv.range({ key, revision: '9007199254740993' }))
      .rejects.toThrow(/INVALID_ARGUMENT/);
    expect(node.appliedIndex).toBe(appliedBefore);
    // A put with ignore_value on a missing key is decided at apply time.
    await expect(client.kv.put({ key: Buffer.from('missing'), ignore_value: true }))
      .rejects.toThrow('etcdserver: key not found');
  });

  it('answers the health service with SERVING', async () => {
    const Health = proto.packageObject['grpc'] as unknown as {
      health: { v1: { Health: new (address: string, creds: unknown) => Client } };
    };
    const client = new Health.health.v1.Health(
      `127.0.0.1:${harness.port}`, credentials.createInsecure(),
    ) as Client & {
      Check(request: object, callback: (error: Error | null, response: unknown) => void): void;
    };
    try {
      const response = await new Promise((resolve, reject) => {
        client.Check({ service: '' }, (error, value) => (error ? reject(error) : resolve(value)));
      });
      expect(response).toEqual({ status: 'SERVING' });
    } finally {
      client.close();
    }
  });
});
