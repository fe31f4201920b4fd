/**
 * etcd's auth on a real member, through the npm etcd3 client: users, roles and key permissions;
 * once auth is on, every path is checked — reads, writes, prev_kv, Txn compares and both branches,
 * Watch, lease revokes, root-only maintenance — allowed and denied; tokens go stale when roles
 * change (the client authenticates again); auth off opens everything again.
 */

import { Etcd3 } from 'etcd3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ProcessCluster } from './support/synod-processes.js';

const timing = { heartbeatIntervalMs: 100, electionTimeoutMs: 1000 };

describe('auth on a member process', () => {
  let cluster: ProcessCluster;
  let admin: Etcd3;
  let alice: Etcd3;
  let anonymous: Etcd3;
  const clients: Etcd3[] = [];
  const host = () => `127.0.0.1:${cluster.member('m1').clientPort}`;
  const client = (auth?: { username: string; password: string }) => {
    const made = new Etcd3({ hosts: host(), ...(auth === undefined ? {} : { auth }) });
    clients.push(made);
    return made;
  };

  beforeAll(async () => {
    cluster = await ProcessCluster.create(1, timing);
    await cluster.start('m1');
    const setup = client();
    await setup.put('app/x').value('1');
    await setup.put('secret/y').value('2');
    const reader = await setup.role('reader').create();
    await reader.grant({ permission: 'Read', range: setup.range({ prefix: 'app/' }) });
    await setup.user('alice').create('alice-pw');
    await setup.user('alice').addRole('reader');
    await setup.user('root').create('root-pw');
    await setup.user('root').addRole('root');
    await setup.auth.authEnable();
    admin = client({ username: 'root', password: 'root-pw' });
    alice = client({ username: 'alice', password: 'alice-pw' });
    anonymous = client();
  }, 60_000);

  afterAll(async () => {
    for (const made of clients) made.close();
    await cluster?.destroy();
  });

  it('refuses a caller without credentials, and a wrong password', async () => {
    await expect(anonymous.get('app/x').string()).rejects.toThrow(/user name is empty/);
    await expect(client({ username: 'alice', password: 'nope' }).get('app/x').string())
      .rejects.toThrow(/authentication failed/);
  });

  it('lets alice read what her role grants and nothing else', async () => {
    expect(await alice.get('app/x').string()).toBe('1');
    expect(await alice.getAll().prefix('app/').keys()).toEqual(['app/x']);
    await expect(alice.get('secret/y').string()).rejects.toThrow(/permission denied/);
    await expect(alice.getAll().prefix('a').keys()).rejects.toThrow(/permission denied/); // [a, b) is wider than app/.
    await expect(alice.put('app/x').value('no')).rejects.toThrow(/permission denied/);
    await expect(alice.delete().key('app/x')).rejects.toThrow(/permission denied/);
  });

  it('checks Txn compares and both branches', async () => {
    const readOnly = alice.if('app/x', 'Value', '==', '1').then(alice.get('app/x')).else(alice.get('app/x'));
    expect((await readOnly.commit()).succeeded).toBe(true);
    const writesInElse = alice.if('app/x', 'Value', '==', '1').then(alice.get('app/x')).else(alice.put('app/x').value('z'));
    await expect(writesInElse.commit()).rejects.toThrow(/permission denied/);
    const comparesSecret = alice.if('secret/y', 'Value', '==', '2').then(alice.get('app/x'));
    await expect(comparesSecret.commit()).rejects.toThrow(/permission denied/);
  });

  it('checks Watch creates and lease revokes, and keeps maintenance for root', async () => {
    const watcher = await alice.watch().key('app/x').create();
    await watcher.cancel();
    await expect(alice.watch().key('secret/y').create()).rejects.toThrow(/permission denied/);
    const lease = admin.lease(60, { autoKeepAlive: false });
    await lease.put('secret/leased').value('v');
    const leaseId = await lease.grant();
    await expect(alice.lease(60, { autoKeepAlive: false }).grant()).resolves.toBeTruthy();
    const revokeAsAlice = new Etcd3({ hosts: host(), auth: { username: 'alice', password: 'alice-pw' } });
    clients.push(revokeAsAlice);
    await expect(revokeAsAlice.leaseClient.leaseRevoke({ ID: leaseId })).rejects.toThrow(/permission denied/);
    await lease.revoke();
    await expect(alice.maintenance.defragment()).rejects.toThrow(/permission denied/);
    await expect(alice.cluster.memberAdd({ peerURLs: ['http://127.0.0.1:1'] })).rejects.toThrow(/permission denied/);
    expect((await alice.maintenance.status()).version).toBeTruthy();
    expect((await admin.get('secret/y').string())).toBe('2');
  });

  it('applies a role change to existing sessions, and auth disable opens everything', async () => {
    const reader = admin.role('reader');
    await reader.grant({ permission: 'Write', range: admin.range({ prefix: 'app/' }) });
    // alice's session predates the change; as with etcd's simple tokens it applies at once.
    await alice.put('app/x').value('3');
    expect(await admin.get('app/x').string()).toBe('3');
    await expect(alice.user('bob').create('pw')).rejects.toThrow(/permission denied/);
    await admin.auth.authDisable();
    expect(await anonymous.get('secret/y').string()).toBe('2');
  });
});
