/**
 * The Mutex recipe and the Synod/etcd lock backend, against a target: FIFO order and fencing
 * tokens, try-lock, timeout and abort (each withdrawing its key), session loss handing the lock
 * over, guarded writes, reentrancy, and mutual exclusion among many contenders.
 */

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  EtcdLockBackend, LockTimeoutError, Mutex, ReadWriteLock, ReentrantMutex, Semaphore, Session, acquireAll,
  isSynodError, op, type SynodClient,
} from '../../src/client/index.js';
import { abortedWithin } from './client-suite.js';
import type { ClientTarget } from './targets.js';

/** Polls `condition` until it holds, failing after `ms` (waits on state, not on time). */
export async function until(what: string, ms: number, condition: () => Promise<boolean>): Promise<void> {
  const deadline = performance.now() + ms;
  while (!(await condition())) {
    if (performance.now() > deadline) throw new Error(`${what}: not within ${ms} ms`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** Registers the mutex suite for the target `start` returns. */
export function mutexSuite(label: string, start: () => Promise<ClientTarget>): void {
  describe(`Mutex recipe against ${label}`, () => {
    let target: ClientTarget;
    let client: SynodClient;
    beforeAll(async () => {
      target = await start();
      client = target.client();
    });
    afterAll(async () => {
      client?.close();
      await target?.stop();
    });

    const keysUnder = async (prefix: string): Promise<string[]> =>
      (await client.getPrefix(prefix)).map((kv) => kv.key.toString());

    it('grants in arrival order with growing fencing tokens', async () => {
      await using a = await Session.create(client, { ttlSeconds: 30 });
      await using b = await Session.create(client, { ttlSeconds: 30 });
      await using c = await Session.create(client, { ttlSeconds: 30 });
      const name = 'fifo';
      const first = await new Mutex(a, name).acquire();
      const order: string[] = [];
      const second = new Mutex(b, name).acquire().then((held) => (order.push('b'), held));
      await until('b queued', 5000, async () => (await keysUnder(`${name}/`)).length === 2);
      const third = new Mutex(c, name).acquire().then((held) => (order.push('c'), held));
      await until('c queued', 5000, async () => (await keysUnder(`${name}/`)).length === 3);
      await first.release();
      const heldByB = await second;
      expect(order).toEqual(['b']);
      await heldByB.release();
      const heldByC = await third;
      expect(order).toEqual(['b', 'c']);
      expect(first.fencingToken! < heldByB.fencingToken!).toBe(true);
      expect(heldByB.fencingToken! < heldByC.fencingToken!).toBe(true);
      await heldByC.release();
      expect(await keysUnder(`${name}/`)).toEqual([]);
    });

    it('try-locks without waiting, and withdraws its key when refused', async () => {
      await using a = await Session.create(client, { ttlSeconds: 30 });
      await using b = await Session.create(client, { ttlSeconds: 30 });
      const held = await new Mutex(a, 'try').tryAcquire();
      expect(held).not.toBeNull();
      expect(await new Mutex(b, 'try').tryAcquire()).toBeNull();
      expect(await keysUnder('try/')).toEqual([`try/${a.leaseId.toString(16)}`]);
      await held!.release();
      const now = await new Mutex(b, 'try').tryAcquire();
      expect(now).not.toBeNull();
      await now!.release();
    });

    it('gives up on timeout and on abort, leaving no key behind', async () => {
      await using a = await Session.create(client, { ttlSeconds: 30 });
      await using b = await Session.create(client, { ttlSeconds: 30 });
      const held = await new Mutex(a, 'giveup').acquire();
      const timedOut = await new Mutex(b, 'giveup').acquire({ timeoutMs: 200 }).catch((error) => error);
      expect(timedOut).toBeInstanceOf(LockTimeoutError);
      expect(timedOut.code).toBe('SYNOD_LOCK_TIMEOUT');
      expect(await keysUnder('giveup/')).toHaveLength(1);
      const controller = new AbortController();
      const waiting = new Mutex(b, 'giveup').acquire({ signal: controller.signal });
      await until('b queued', 5000, async () => (await keysUnder('giveup/')).length === 2);
      controller.abort(new Error('caller gave up'));
      await expect(waiting).rejects.toThrow('caller gave up');
      await until('b withdrawn', 5000, async () => (await keysUnder('giveup/')).length === 1);
      await held.release();
    });

    it('loses the lock with its session, and the next waiter takes over with a higher token', async () => {
      const a = await Session.create(client, { ttlSeconds: 30 });
      await using b = await Session.create(client, { ttlSeconds: 30 });
      const mutexA = new Mutex(a, 'loss');
      const heldByA = await mutexA.acquire();
      const guarded = await client.txn().if(mutexA.guard()).then(op.put('loss-data', 'by a')).commit();
      expect(guarded.succeeded).toBe(true);
      const next = new Mutex(b, 'loss').acquire();
      await until('b queued', 5000, async () => (await keysUnder('loss/')).length === 2);
      a.orphan(); // stops a's keep-alive without revoking, as a paused or partitioned holder would
      await client.lease.revoke(a.leaseId); // the lease runs out on the server
      const heldByB = await next;
      expect(heldByB.fencingToken! > heldByA.fencingToken!).toBe(true);
      // A holds a stale grant: its guarded write is refused by the cluster, and it learns of the loss.
      const stale = await client.txn().if(mutexA.guard()).then(op.put('loss-data', 'by a, late')).commit();
      expect(stale.succeeded).toBe(false);
      expect((await client.get('loss-data'))?.value.toString()).toBe('by a');
      await abortedWithin(heldByA.lost, 10_000);
      await heldByB.release();
    });

    it('nests a reentrant mutex and releases it with the last grant', async () => {
      await using a = await Session.create(client, { ttlSeconds: 30 });
      await using b = await Session.create(client, { ttlSeconds: 30 });
      const reentrant = new ReentrantMutex(a, 'nest');
      const outer = await reentrant.acquire();
      const inner = await reentrant.acquire();
      expect(reentrant.holdCount).toBe(2);
      expect(inner.fencingToken).toBe(outer.fencingToken);
      await inner.release();
      expect(await new Mutex(b, 'nest').tryAcquire()).toBeNull();
      await outer.release();
      expect(reentrant.holdCount).toBe(0);
      const other = await new Mutex(b, 'nest').tryAcquire();
      expect(other).not.toBeNull();
      await other!.release();
      expect(() => new Mutex(a, '')).toThrow();
      expect(isSynodError((() => { try { new Mutex(a, ''); } catch (error) { return error; } })(), 'SYNOD_INVALID_ARGUMENT')).toBe(true);
    });

    it('excludes every other holder: 3 backends x 4 callers, 48 grants, never two at once', async () => {
      const backends = await Promise.all([0, 1, 2].map(() => EtcdLockBackend.create(target.client(), { ttlSeconds: 30 })));
      let holders = 0;
      let maxHolders = 0;
      const tokens: bigint[] = [];
      try {
        await Promise.all(backends.flatMap((backend) => [0, 1, 2, 3].map(async () => {
          for (let round = 0; round < 4; round++) {
            await using held = await backend.acquire('exclusive', { timeoutMs: 30_000 });
            holders++;
            maxHolders = Math.max(maxHolders, holders);
            tokens.push(held.fencingToken!);
            await client.put('exclusive-work', String(round));
            holders--;
          }
        })));
      } finally {
        for (const backend of backends) {
          await backend.close();
          backend.session.client.close();
        }
      }
      expect(maxHolders).toBe(1);
      expect(tokens).toHaveLength(48);
      expect([...tokens].sort((x, y) => (x < y ? -1 : 1))).toEqual(tokens);
    });
    it('lets readers share and a writer exclude, in arrival order (a waiting writer is not starved)', async () => {
      await using a = await Session.create(client, { ttlSeconds: 30 });
      await using b = await Session.create(client, { ttlSeconds: 30 });
      const lockA = new ReadWriteLock(a, 'rw');
      const lockB = new ReadWriteLock(b, 'rw');
      const read1 = await lockA.acquireRead();
      const read2 = await lockB.acquireRead();
      const events: string[] = [];
      const write = lockB.acquireWrite().then((held) => (events.push('write'), held));
      await until('writer queued', 5000, async () => (await keysUnder('rw/write/')).length === 1);
      const lateRead = lockA.acquireRead().then((held) => (events.push('late read'), held));
      await until('late reader queued', 5000, async () => (await keysUnder('rw/read/')).length === 3);
      await read1.release();
      expect(events).toEqual([]);
      await read2.release();
      const writeGrant = await write;
      expect(events).toEqual(['write']);
      await writeGrant.release();
      const lateGrant = await lateRead;
      expect(events).toEqual(['write', 'late read']);
      expect(lateGrant.fencingToken! > writeGrant.fencingToken!).toBe(true);
      await lateGrant.release();
      expect(await keysUnder('rw/')).toEqual([]);
    });

    it('admits at most the permits of a semaphore, FIFO, and times out the rest cleanly', async () => {
      const sessions = await Promise.all([0, 1, 2, 3].map(() => Session.create(client, { ttlSeconds: 30 })));
      try {
        let holding = 0;
        let most = 0;
        await Promise.all(sessions.map(async (session) => {
          const semaphore = new Semaphore(session, 'permits', 2);
          for (let round = 0; round < 3; round++) {
            await using _permit = await semaphore.acquire({ timeoutMs: 20_000 });
            holding++;
            most = Math.max(most, holding);
            await client.put('permits-work', 'x');
            holding--;
          }
        }));
        expect(most).toBe(2);
        const [s0, s1, s2] = sessions as [Session, Session, Session];
        const first = await new Semaphore(s0, 'full', 2).acquire();
        const second = await new Semaphore(s1, 'full', 2).acquire();
        const refused = await new Semaphore(s2, 'full', 2).acquire({ timeoutMs: 150 }).catch((error) => error);
        expect(refused).toBeInstanceOf(LockTimeoutError);
        expect(await keysUnder('full/')).toHaveLength(2);
        await first.release();
        await second.release();
      } finally {
        for (const session of sessions) await session.close();
      }
      expect(() => new Semaphore(sessions[0]!, 'bad', 0)).toThrow(/permits/);
    });

    it('takes several locks all or nothing without deadlock, whatever order callers name them in', async () => {
      const one = await EtcdLockBackend.create(target.client(), { ttlSeconds: 30 });
      const two = await EtcdLockBackend.create(target.client(), { ttlSeconds: 30 });
      try {
        let inside = 0;
        let most = 0;
        const worker = async (backend: EtcdLockBackend, names: string[]): Promise<void> => {
          for (let round = 0; round < 6; round++) {
            await using _all = await acquireAll(backend, names, { timeoutMs: 20_000 });
            inside++;
            most = Math.max(most, inside);
            await client.put('multi-work', 'x');
            inside--;
          }
        };
        await Promise.all([worker(one, ['m/a', 'm/b']), worker(two, ['m/b', 'm/a'])]);
        expect(most).toBe(1);
        const blocker = await two.acquire('m/b');
        const partial = await acquireAll(one, ['m/a', 'm/b'], { timeoutMs: 200 }).catch((error) => error);
        expect(partial).toBeInstanceOf(LockTimeoutError);
        // 'm/a' was taken first and must have been given back.
        const free = await two.tryAcquire('m/a');
        expect(free).not.toBeNull();
        await free!.release();
        await blocker.release();
      } finally {
        for (const backend of [one, two]) {
          await backend.close();
          backend.session.client.close();
        }
      }
    });
  });
}
