/**
 * The SDK with auth on, against a target: credentials give a token every call carries, a missing
 * or wrong password is refused with etcd's code and message, and a token made stale by a role
 * change is renewed transparently (for unary calls and the watch stream). Users and roles are set
 * up with the npm etcd3 client, an independent implementation.
 */

import { Etcd3 } from 'etcd3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EtcdServerError, type SynodClient } from '../../src/client/index.js';
import { nextBatch } from './client-suite.js';
import type { ClientTarget } from './targets.js';

/** Registers the auth suite for the target `start` returns. */
export function authSuite(label: string, start: () => Promise<ClientTarget>): void {
  describe(`synod/client with auth against ${label}`, () => {
    let target: ClientTarget;
    let setup: Etcd3;
    let root: Etcd3;
    const clients: SynodClient[] = [];
    const client = (auth?: { username: string; password: string }): SynodClient => {
      const made = target.client(auth === undefined ? {} : { auth });
      clients.push(made);
      return made;
    };
    beforeAll(async () => {
      target = await start();
      setup = new Etcd3({ hosts: target.endpoint });
      const role = await setup.role('app-rw').create();
      await role.grant({ permission: 'Readwrite', range: setup.range({ prefix: 'app/' }) });
      await setup.user('alice').create('alice-pw');
      await setup.user('alice').addRole('app-rw');
      await setup.user('root').create('root-pw');
      await setup.user('root').addRole('root');
      await setup.auth.authEnable();
      root = new Etcd3({ hosts: target.endpoint, auth: { username: 'root', password: 'root-pw' } });
    }, 60_000);
    afterAll(async () => {
      for (const made of clients) made.close();
      await root?.auth.authDisable().catch(() => undefined);
      root?.close();
      setup?.close();
      await target?.stop();
    });

    it('authenticates, and refuses what the role does not grant', async () => {
      const alice = client({ username: 'alice', password: 'alice-pw' });
      await alice.put('app/a', '1');
      expect((await alice.get('app/a'))?.value.toString()).toBe('1');
      const denied = await alice.get('other/x').catch((error) => error);
      expect(denied).toBeInstanceOf(EtcdServerError);
      expect(denied.code).toBe('SYNOD_PERMISSION_DENIED');
      expect(denied.message).toBe('etcdserver: permission denied');
    });

    it('refuses a caller without credentials and a wrong password, with etcd\'s codes', async () => {
      const anonymous = await client().get('app/a').catch((error) => error);
      expect(anonymous.code).toBe('SYNOD_AUTH_USER_EMPTY');
      const wrong = await client({ username: 'alice', password: 'nope' }).get('app/a').catch((error) => error);
      expect(wrong.code).toBe('SYNOD_AUTH_FAILED');
      expect(wrong.message).toBe('etcdserver: authentication failed, invalid user ID or password');
    });

    it('renews a token made stale by a role change, for calls and for the watch', async () => {
      const alice = client({ username: 'alice', password: 'alice-pw' });
      await alice.put('app/b', '1');
      await using watcher = await alice.watch('app/b');
      const iterator = watcher[Symbol.asyncIterator]();
      // Any change to users or roles bumps the auth revision: older tokens are refused from now.
      await root.role('unrelated').create();
      await alice.put('app/b', '2');
      const batch = await nextBatch(iterator);
      expect(batch.events[0]?.kv.value.toString()).toBe('2');
      expect((await alice.get('app/b'))?.value.toString()).toBe('2');
    });
  });
}
