/**
 * `synod ctl` beside etcdctl 3.4 (continued from ctl.interop.test.ts): auth, users and roles, the
 * output helpers, and membership changes, against their own in-process member.
 */

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Connection } from '../../src/apps/ctl/connection.js';
import { globalConfigOf } from '../../src/apps/ctl/global-flags.js';
import { goDuration, humanizeBytes } from '../../src/apps/ctl/simple-output.js';
import { loadEtcdProto } from '../../src/server/grpc/proto.js';
import {
  ctl, ctlJson, etcdctl, expectSameAsEtcdctl, member, printed, signal, startCtlMember,
  stopCtlMember
} from './ctl-harness.js';

beforeAll(startCtlMember);
afterAll(stopCtlMember);

describe('synod ctl: auth, users and roles', () => {
  // The three tests run in order on the member's auth state; afterAll leaves auth off and no
  // users or roles, whatever failed (through etcdctl, in case synod ctl is what broke).
  const root = 'root:rootpw';
  /** `--user NAME:PASSWORD`, a global flag before the command. */
  const as = (user: string, args: readonly string[]): string[] => ['--user', user, ...args];
  const authFailed = 'Error: etcdserver: authentication failed, invalid user ID or password\n';

  afterAll(async () => {
    await etcdctl(as(root, ['auth', 'disable']));
    for (const user of ['root', 'alice', 'bob', 'carol']) await etcdctl(['user', 'delete', user]);
    for (const role of ['root', 'reader', 'writer']) await etcdctl(['role', 'delete', role]);
    for (const key of ['app/', 'log', 'other']) await etcdctl(['del', key, '--prefix']);
  });

  it('adds users and roles, grants and shows them, byte for byte as etcdctl', async () => {
    // No root user yet: both fail alike.
    await expectSameAsEtcdctl([['auth', 'enable']]);
    expect(await ctl(['user', 'add', 'root', '--new-user-password=rootpw']))
      .toEqual(printed('User root created\n'));
    expect(await ctl(['role', 'add', 'reader'])).toEqual(printed('Role reader created\n'));
    expect(await ctl(['role', 'grant-permission', 'reader', 'read', 'app/', '--prefix']))
      .toEqual(printed('Role reader updated\n'));
    expect(await ctl(['role', 'add', 'writer'])).toEqual(printed('Role writer created\n'));
    // Granting a permission the role has already is accepted again, so etcdctl can repeat it.
    await expectSameAsEtcdctl([
      ['role', 'grant-permission', 'writer', 'readwrite', 'app/', '--prefix'],
      ['role', 'grant-permission', 'writer', 'write', 'log', 'loh'],
      ['role', 'grant-permission', 'writer', 'READ', 'open/', '--from-key'],
    ]);
    // Both prompts answered from piped stdin, as etcdctl's speakeasy reads them.
    const prompts = 'Password of alice: \nType password of alice again for confirmation: \n';
    expect(await ctl(['user', 'add', 'alice'], { stdin: 'alicepw\nalicepw\n' }))
      .toEqual(printed(`${prompts}User alice created\n`));
    expect(await ctl(['user', 'add', 'bob', '--interactive=false'], { stdin: ' bobpw\n' }))
      .toEqual(printed('User bob created\n'));
    const mismatch = await ctl(['user', 'add', 'carol'], { stdin: 'one\ntwo\n' });
    expect(mismatch.code).toBe(2);
    expect(mismatch.stderr.split('\n')[0]).toBe('Error: given passwords are different');
    expect(await ctl(['user', 'grant-role', 'alice', 'reader']))
      .toEqual(printed('Role reader is granted to user alice\n'));
    expect(await ctl(['user', 'grant-role', 'bob', 'writer']))
      .toEqual(printed('Role writer is granted to user bob\n'));
    expect(await ctl(['user', 'get', 'bob'])).toEqual(printed('User: bob\nRoles: writer\n'));
    expect(await ctl(['role', 'get', 'writer'])).toEqual(printed([
      'Role writer', 'KV Read:', '\t[app/, app0) (prefix app/)', '\t[open/, <open ended>',
      'KV Write:', '\t[app/, app0) (prefix app/)', '\t[log, loh) (prefix log)', '',
    ].join('\n')));
    const table = await ctl(['user', 'list', '-w', 'table']);
    expect(table.code).toBe(2);
    expect(table.stderr.split('\n')[0]).toBe('Error: table not supported as output format');
    await expectSameAsEtcdctl([
      ['role', 'add', 'reader'], ['user', 'add', 'alice:again'],
      ['user', 'grant-role', 'bob', 'nosuchrole'], ['user', 'list'], ['role', 'list'],
      ['user', 'get', 'bob'], ['user', 'get', 'bob', '-w', 'json'],
      ['user', 'get', 'bob', '--detail'], ['user', 'get', 'bob', '--detail', '-w', 'json'],
      ['role', 'get', 'writer'], ['role', 'get', 'writer', '-w', 'json'], ['user', 'get', 'nobody'],
      ['user', 'list', '-w', 'json'], ['role', 'list', '-w', 'json'],
    ]);
  });

  it('enables auth; each call carries --user\'s token, allowed or denied as etcdctl', async () => {
    await ctl(['put', 'app/x', '1']);
    // root has no root role yet: auth enable creates it and grants it, as etcdctl 3.4 does.
    expect(await ctl(['auth', 'enable'])).toEqual(printed('Authentication Enabled\n'));
    expect(await ctl(as(root, ['user', 'get', 'root'])))
      .toEqual(printed('User: root\nRoles: root\n'));
    await expectSameAsEtcdctl([
      ['get', 'app/x'], as('alice:alicepw', ['get', 'app/x']),
      as('alice:alicepw', ['get', 'app/', '--prefix', '--keys-only']),
      as('alice:alicepw', ['put', 'app/x', '2']), as('alice:alicepw', ['get', 'other']),
      as('bob:bobpw', ['put', 'log', 'line']), as('bob:bobpw', ['put', 'log', 'line', '--prev-kv']),
      as('bob:bobpw', ['put', 'other', '1']), as('bob:bobpw', ['user', 'list']),
      as(root, ['user', 'list']), as(root, ['role', 'get', 'root']),
      ['--user', 'root', '--password', 'rootpw', 'role', 'list'],
      // An empty password sends no Authenticate at all: the call goes without a token.
      as('alice:', ['get', 'app/x']),
    ]);
    for (const user of ['alice:wrong', 'nobody:pw']) {
      const ours = await ctl(as(user, ['get', 'app/x']));
      expect(ours).toEqual({ code: 1, stdout: '', stderr: authFailed });
      // etcdctl exits 2 (its ExitBadConnection) where synod ctl exits 1: docs/ctl.md.
      expect(await etcdctl(as(user, ['get', 'app/x']))).toEqual({ ...ours, code: 2 });
    }
    const prompt = ['--user', 'alice', 'get', 'app/x', '--print-value-only'];
    const prompted = await ctl(prompt, { stdin: 'alicepw\n' });
    expect(prompted).toEqual(printed('Password: \n1\n'));
    expect(await etcdctl(prompt, 'alicepw\n')).toEqual(prompted);
    expect(await ctl(['get', 'app/x', '--print-value-only'], { env: { ETCDCTL_USER: root } }))
      .toEqual(printed('1\n'));
    const txn = 'value("app/x") = "1"\n\nput app/z 4\n\nput other 5\n\n';
    const denied = await ctl(as('bob:bobpw', ['txn']), { stdin: txn });
    expect(denied)
      .toEqual({ code: 1, stdout: '', stderr: 'Error: etcdserver: permission denied\n' });
    expect(await etcdctl(as('bob:bobpw', ['txn']), txn)).toEqual(denied);
    // A stream carries the token too.
    const started = signal();
    const watching = ctl(as('bob:bobpw', ['watch', 'app/w', '--count', '1']), {
      onStarted: started.fire,
    });
    await started.fired;
    expect(await ctl(as('bob:bobpw', ['put', 'app/w', 'seen']))).toEqual(printed('OK\n'));
    expect(await watching).toEqual(printed('PUT\napp/w\nseen\n'));
  });

  it('revokes, changes a password, deletes and disables auth under root, as etcdctl', async () => {
    await expectSameAsEtcdctl([
      as(root, ['user', 'revoke-role', 'root', 'root']), as(root, ['user', 'delete', 'root']),
      as(root, ['user', 'revoke-role', 'alice', 'writer']),
    ]);
    expect(await ctl(as(root, ['role', 'revoke-permission', 'reader', 'app/', '--prefix'])))
      .toEqual(printed('Permission of range [app/, app0) is revoked from role reader\n'));
    await expectSameAsEtcdctl([
      as(root, ['role', 'revoke-permission', 'reader', 'app/', '--prefix']),
      as('alice:alicepw', ['get', 'app/x']),
    ]);
    const passwd = as(root, ['user', 'passwd', 'bob', '--interactive=false']);
    expect(await ctl(passwd, { stdin: 'bobpw2\n' })).toEqual(printed('Password updated\n'));
    expect(await ctl(as('bob:bobpw', ['get', 'app/x'])))
      .toEqual({ code: 1, stdout: '', stderr: authFailed });
    expect(await ctl(as('bob:bobpw2', ['get', 'app/x', '--print-value-only'])))
      .toEqual(printed('1\n'));
    // A token the server stops taking (root's password set again) is renewed once and the call
    // sent again, as clientv3's retry interceptor does.
    const connection = new Connection({
      config: globalConfigOf({ endpoints: member.endpoint }, {}), proto: loadEtcdProto(),
      credentials: async () => ({ name: 'root', password: 'rootpw' }),
    });
    try {
      const users = async () => (await connection.unary<{ users: string[] }>({
        service: 'Auth', method: 'UserList', request: {}, kind: 'read',
      })).users;
      expect(await users()).toContain('alice');
      const again = as(root, ['user', 'passwd', 'root', '--interactive=false']);
      expect(await ctl(again, { stdin: 'rootpw\n' })).toEqual(printed('Password updated\n'));
      expect(await users()).toContain('alice');
    } finally {
      await connection.close();
    }
    const status = await ctl(as(root, ['auth', 'status']));
    expect(status.stdout).toMatch(/^Authentication Status: true\nAuthRevision: \d+\n$/);
    expect(await ctl(as(root, ['user', 'delete', 'bob']))).toEqual(printed('User bob deleted\n'));
    expect(await ctl(as(root, ['role', 'delete', 'writer'])))
      .toEqual(printed('Role writer deleted\n'));
    await expectSameAsEtcdctl([
      as(root, ['role', 'delete', 'writer']), as(root, ['user', 'list']),
      as(root, ['user', 'get', 'alice', '-w', 'json']),
    ]);
    expect(await ctl(as(root, ['auth', 'disable']))).toEqual(printed('Authentication Disabled\n'));
    expect(await ctl(['get', 'app/x', '--print-value-only'])).toEqual(printed('1\n'));
    expect(await ctlJson(['auth', 'status'])).not.toHaveProperty('enabled');
  });
});

describe('synod ctl: output helpers', () => {
  it('sizes and durations print as go-humanize and Go do', () => {
    expect([7, 65572, 1568, 999_999, 2_500_000_000].map(humanizeBytes))
      .toEqual(['7 B', '66 kB', '1.6 kB', '1000 kB', '2.5 GB']);
    expect([0n, 999n, 1_500n, 4_528_736n, 2_000_000_000n].map(goDuration))
      .toEqual(['0s', '999ns', '1.5µs', '4.528736ms', '2s']);
  });
});

describe('synod ctl: membership changes', () => {
  // Last in the file: a learner leaves the quorum alone, but a server bug here must not cascade
  // into the other tests. Servers without runtime reconfiguration answer UNIMPLEMENTED.
  it('member add --learner prints the lines that start the member, or the refusal', async () => {
    const peer = 'http://127.0.0.1:9';
    const added = await ctl(['member', 'add', 'newcomer', '--peer-urls', peer, '--learner']);
    if (added.code !== 0) {
      expect(added).toMatchObject({ code: 1, stdout: '' });
      expect(added.stderr).toMatch(/^Error: \S.*\n$/);
      return;
    }
    const [first, blank, name, cluster, peers, state] = added.stdout.split('\n');
    const id = /^Member ([ 0-9a-f]{16}) added to cluster [ 0-9a-f]{16}$/.exec(first!)?.[1]?.trim();
    expect(id, added.stdout).toBeDefined();
    expect([blank, name, peers, state]).toEqual([
      '', 'ETCD_NAME="newcomer"', `ETCD_INITIAL_ADVERTISE_PEER_URLS="${peer}"`,
      'ETCD_INITIAL_CLUSTER_STATE="existing"',
    ]);
    const prefix = 'ETCD_INITIAL_CLUSTER="';
    expect(cluster!.startsWith(prefix)).toBe(true);
    expect(cluster!.slice(prefix.length, -1).split(',')).toContain(`newcomer=${peer}`);
    expect((await ctl(['member', 'list'])).stdout)
      .toContain(`${id}, unstarted, , ${peer}, , true\n`);
    expect((await ctl(['member', 'remove', id!])).stdout)
      .toMatch(new RegExp(`^Member +${id} removed from cluster [ 0-9a-f]{16}\n$`));
  });
});
