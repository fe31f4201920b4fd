/**
 * etcd's JWT auth tokens on real member processes (`--auth-token jwt,…`), through the npm etcd3
 * client: m1 holds the key pair and issues tokens, m2 holds only the public key and checks them
 * (etcd's verify-only member). A permitted put passes and a denied one is refused; m1's token is
 * good on m2; m2 refuses to issue; a role change makes tokens stale and the client authenticates
 * again by itself; a missing key file stops a member at start with the file named.
 */

import { credentials, makeGenericClientConstructor, Metadata, type ServiceError } from '@grpc/grpc-js';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Etcd3 } from 'etcd3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeJwtKeyFiles } from '../src/server/auth/jwt-test-kit.js';
import { loadEtcdProto } from '../src/server/grpc/proto.js';
import { eventually } from './support/cluster-load.js';
import { ProcessCluster } from './support/synod-processes.js';

const timing = { heartbeatIntervalMs: 100, electionTimeoutMs: 1000 };

/** A Range on `port` with `token` as etcd's clients send it, answering the value or the error. */
async function rangeWithToken(port: number, token: string, key: string): Promise<string> {
  const KvClient = makeGenericClientConstructor(loadEtcdProto().services.KV, 'KV');
  const client = new KvClient(`127.0.0.1:${port}`, credentials.createInsecure());
  const metadata = new Metadata();
  metadata.set('token', token);
  try {
    return await new Promise((resolve, reject) => {
      (client as unknown as { Range: RangeCall }).Range({ key: Buffer.from(key) }, metadata, (error, response) => {
        if (error !== null) reject(error);
        else resolve(Buffer.from(response!.kvs[0]!.value).toString());
      });
    });
  } catch (error) {
    return (error as ServiceError).details;
  } finally {
    client.close();
  }
}

type RangeCall = (
  request: object, metadata: Metadata,
  callback: (error: ServiceError | null, response?: { kvs: { value: Uint8Array }[] }) => void,
) => void;

describe('JWT auth tokens on member processes', () => {
  let keyDir: string;
  let cluster: ProcessCluster;
  const clients: Etcd3[] = [];
  const port = (name: string) => cluster.member(name).clientPort;
  const client = (name: string, auth?: { username: string; password: string }) => {
    const made = new Etcd3({ hosts: `127.0.0.1:${port(name)}`, ...(auth === undefined ? {} : { auth }) });
    clients.push(made);
    return made;
  };

  beforeAll(async () => {
    keyDir = await mkdtemp(join(tmpdir(), 'synod-jwt-'));
    const { publicKeyFile, privateKeyFile } = await writeJwtKeyFiles(keyDir, 'ES256');
    cluster = await ProcessCluster.create(2, timing);
    const signing = `jwt,pub-key=${publicKeyFile},priv-key=${privateKeyFile},sign-method=ES256,ttl=10m`;
    const verifyOnly = `jwt,pub-key=${publicKeyFile},sign-method=ES256`;
    await Promise.all([
      cluster.start('m1', { flags: ['--auth-token', signing] }),
      cluster.start('m2', { flags: ['--auth-token', verifyOnly] }),
    ]);
    const setup = client('m1');
    await eventually('a leader', 20_000, async () => setup.put('app/x').value('1'));
    await setup.put('secret/y').value('2');
    const writer = await setup.role('app-writer').create();
    await writer.grant({ permission: 'Readwrite', range: setup.range({ prefix: 'app/' }) });
    await setup.user('alice').create('alice-pw');
    await setup.user('alice').addRole('app-writer');
    await setup.user('root').create('root-pw');
    await setup.user('root').addRole('root');
    await setup.auth.authEnable();
  }, 90_000);

  afterAll(async () => {
    for (const made of clients) made.close();
    await cluster?.destroy();
    if (keyDir !== undefined) await rm(keyDir, { recursive: true, force: true });
  });

  it('authenticates on the signing member: a permitted put passes, a denied one is refused', async () => {
    const alice = client('m1', { username: 'alice', password: 'alice-pw' });
    await alice.put('app/x').value('from-alice');
    expect(await alice.get('app/x').string()).toBe('from-alice');
    await expect(alice.put('secret/y').value('no')).rejects.toThrow(/permission denied/);
    await expect(client('m1').get('app/x').string()).rejects.toThrow(/user name is empty/);
  });

  it("checks m1's token on the verify-only m2, which refuses to issue tokens itself", async () => {
    const { token } = await client('m1').auth.authenticate({ name: 'alice', password: 'alice-pw' });
    expect(token.split('.')).toHaveLength(3);
    expect(await rangeWithToken(port('m2'), token, 'app/x')).toBe('from-alice');
    expect(await rangeWithToken(port('m2'), token, 'secret/y')).toBe('etcdserver: permission denied');
    const tampered = `${token.slice(0, -1)}${token.endsWith('A') ? 'Q' : 'A'}`; // Both canonical for ES256.
    expect(await rangeWithToken(port('m2'), tampered, 'app/x')).toBe('etcdserver: invalid auth token');
    await expect(client('m2', { username: 'alice', password: 'alice-pw' }).get('app/x').string())
      .rejects.toThrow(/token signing attempted with verify-only key/);
  });

  it('makes tokens stale on an auth change; the client authenticates again by itself', async () => {
    const alice = client('m1', { username: 'alice', password: 'alice-pw' });
    const admin = client('m1', { username: 'root', password: 'root-pw' });
    expect(await alice.get('app/x').string()).toBe('from-alice');
    const { token } = await client('m1').auth.authenticate({ name: 'alice', password: 'alice-pw' });
    await admin.role('app-writer').grant({ permission: 'Read', range: admin.range({ prefix: 'secret/' }) });
    expect(await alice.get('secret/y').string()).toBe('2');
    expect(await rangeWithToken(port('m1'), token, 'app/x')).toBe('etcdserver: invalid auth token');
  });

  it('stops a member at start when a key file is missing, naming it', async () => {
    const lone = await ProcessCluster.create(1, timing);
    try {
      const absent = join(keyDir, 'absent.pub');
      await expect(lone.start('m1', { flags: ['--auth-token', `jwt,pub-key=${absent},sign-method=ES256`] }))
        .rejects.toThrow(`exited (2) before serving:\nsynod: --auth-token pub-key=${absent}: cannot be read (ENOENT)`);
    } finally {
      await lone.destroy();
    }
  });
});
