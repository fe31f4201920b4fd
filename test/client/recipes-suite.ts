/**
 * The coordination recipes beyond locks, against a target: election (campaign order, hand-over on
 * resign and on session loss, observe seeing every term, cancelled campaigns withdrawing their
 * key, LeaderLatch), barriers, queues, the CAS counter, STM isolation, and the prefix cache.
 * Every wait ends on an event or a polled condition with a deadline, never on elapsed time.
 */

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  Barrier, Counter, DoubleBarrier, Election, LeaderLatch, PrefixCache, PriorityQueue, Queue, Session,
  isSynodError, runStm, type KeyValue, type PrefixCacheChangeEvent, type PrefixCacheClient, type Stm,
  type StmIsolation, type SynodClient,
} from '../../src/client/index.js';
import { abortedWithin } from './client-suite.js';
import { until } from './mutex-suite.js';
import type { ClientTarget } from './targets.js';

/** Settles with `promise`, or rejects after `ms` naming `what` (a bound, not a synchronisation). */
function within<T>(what: string, ms: number, promise: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: not within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** Resolves when `target` dispatches `type`. */
function nextEvent(target: EventTarget, type: string): Promise<void> {
  return new Promise((resolve) => target.addEventListener(type, () => resolve(), { once: true }));
}

/** Resolves once `condition` holds, checked now and after each event the cache dispatches. */
function cacheReaches(cache: PrefixCache, what: string, condition: () => boolean): Promise<void> {
  return within(what, 10_000, new Promise<void>((resolve) => {
    const check = (): void => {
      if (!condition()) return;
      for (const type of ['change', 'reload', 'close']) cache.removeEventListener(type, check);
      resolve();
    };
    for (const type of ['change', 'reload', 'close']) cache.addEventListener(type, check);
    check();
  }));
}

/** What a range and a cache must agree on, per key. */
function summary(kvs: readonly KeyValue[]): string[] {
  return kvs.map((kv) => `${kv.key} = ${kv.value} c${kv.createRevision} m${kv.modRevision} v${kv.version}`);
}

const numeric = (x: number, y: number): number => x - y;

/** Registers the coordination recipes suite for the target `start` returns. */
export function coordinationRecipesSuite(label: string, start: () => Promise<ClientTarget>): void {
  describe(`coordination recipes against ${label}`, () => {
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
    const session = (): Promise<Session> => Session.create(client, { ttlSeconds: 30 });

    it('elects in campaign order, hands over on resign, and observe sees every leader in order', async () => {
      await using a = await session();
      await using b = await session();
      await using c = await session();
      await using watcher = await session();
      const name = 'elect/order';
      const observer = new Election(watcher, name);
      const stopObserving = new AbortController();
      const seen: string[] = [];
      const observing = (async () => {
        for await (const leader of observer.observe({ signal: stopObserving.signal })) seen.push(leader.value.toString());
      })().catch((error: unknown) => error);
      // A second observer that its consumer pauses: it must not skip the terms it was paused through.
      const paused = observer.observe()[Symbol.asyncIterator]();
      const order: string[] = [];
      const electionB = new Election(b, name);
      const electionC = new Election(c, name);
      const leadA = await new Election(a, name).campaign('a');
      expect((await within('paused observer sees a', 5000, paused.next())).value?.value.toString()).toBe('a');
      await until('observer saw a', 5000, async () => seen.length === 1);
      const waitingB = electionB.campaign('b').then((term) => (order.push('b'), term));
      await until('b queued', 5000, async () => (await keysUnder(`${name}/`)).length === 2);
      const waitingC = electionC.campaign('c').then((term) => (order.push('c'), term));
      await until('c queued', 5000, async () => (await keysUnder(`${name}/`)).length === 3);
      expect((await observer.leader())?.value.toString()).toBe('a');
      expect(order).toEqual([]);
      await leadA.resign();
      const leadB = await waitingB;
      expect(order).toEqual(['b']);
      expect((await observer.leader())?.key).toBe(electionB.key);
      await leadB.resign();
      const leadC = await waitingC;
      expect(order).toEqual(['b', 'c']);
      expect(leadA.revision < leadB.revision && leadB.revision < leadC.revision).toBe(true);
      await until('observer saw c', 5000, async () => seen.length >= 3);
      expect((await within('paused observer sees b', 5000, paused.next())).value?.value.toString()).toBe('b');
      expect((await within('paused observer sees c', 5000, paused.next())).value?.value.toString()).toBe('c');
      await paused.return?.();
      await leadC.resign();
      expect(await observer.leader()).toBeNull();
      stopObserving.abort();
      expect(await within('observe ends on abort', 5000, observing)).toBeUndefined();
      expect(seen).toEqual(['a', 'b', 'c']);
    });

    it('proclaims only as leader, and observe reports each proclamation', async () => {
      await using a = await session();
      await using b = await session();
      const name = 'elect/proclaim';
      const electionA = new Election(a, name);
      const electionB = new Election(b, name);
      const term = await electionA.campaign('v1');
      const refused = await electionB.proclaim('x').catch((error) => error);
      expect(isSynodError(refused, 'SYNOD_ELECTION_NOT_LEADER')).toBe(true);
      expect(refused.message).toBe('election: not leader');
      const leaders = electionB.observe()[Symbol.asyncIterator]();
      const first = (await within('first leader', 5000, leaders.next())).value;
      expect(first?.value.toString()).toBe('v1');
      await electionA.proclaim('v2');
      const second = (await within('proclamation', 5000, leaders.next())).value;
      expect(second?.value.toString()).toBe('v2');
      expect(second?.revision).toBe(first?.revision);
      expect(second!.modRevision > first!.modRevision).toBe(true);
      await leaders.return?.();
      expect(await electionA.campaign('v3')).toBe(term);
      expect((await electionB.leader())?.value.toString()).toBe('v3');
      // An operator deletes the leader key: the term is lost and the old leader can no longer proclaim.
      await client.delete(electionA.key);
      expect(isSynodError(await abortedWithin(term.lost, 10_000), 'SYNOD_ELECTION_NOT_LEADER')).toBe(true);
      expect(electionA.isLeader).toBe(false);
      expect(isSynodError(await electionA.proclaim('v4').catch((error) => error), 'SYNOD_ELECTION_NOT_LEADER')).toBe(true);
      expect(await electionB.leader()).toBeNull();
    });

    it('hands leadership over when the leader loses its session', async () => {
      const a = await session();
      await using b = await session();
      const name = 'elect/loss';
      const electionA = new Election(a, name);
      const electionB = new Election(b, name);
      const leadA = await electionA.campaign('a');
      const waitingB = electionB.campaign('b');
      await until('b queued', 5000, async () => (await keysUnder(`${name}/`)).length === 2);
      a.orphan(); // stops a's keep-alive without revoking, as a paused or partitioned leader would
      await client.lease.revoke(a.leaseId); // the lease runs out on the server
      const leadB = await within('b takes over', 10_000, waitingB);
      expect(leadB.revision > leadA.revision).toBe(true);
      expect((await electionB.leader())?.key).toBe(electionB.key);
      await abortedWithin(leadA.lost, 10_000);
      expect(isSynodError(await electionA.proclaim('late').catch((error) => error), 'SYNOD_ELECTION_NOT_LEADER')).toBe(true);
      expect((await electionB.leader())?.value.toString()).toBe('b');
      await leadB.resign();
    });

    it('deletes the key of a campaign that is cancelled while it waits', async () => {
      await using a = await session();
      await using b = await session();
      const name = 'elect/cancel';
      const electionA = new Election(a, name);
      const electionB = new Election(b, name);
      const leadA = await electionA.campaign('a');
      const controller = new AbortController();
      const waiting = electionB.campaign('b', { signal: controller.signal });
      await until('b queued', 5000, async () => (await keysUnder(`${name}/`)).length === 2);
      controller.abort(new Error('caller gave up'));
      await expect(waiting).rejects.toThrow('caller gave up');
      expect(await keysUnder(`${name}/`)).toEqual([electionA.key]);
      expect(electionB.isLeader).toBe(false);
      await expect(electionB.campaign('b', { signal: controller.signal })).rejects.toThrow('caller gave up');
      expect(await keysUnder(`${name}/`)).toEqual([electionA.key]);
      await leadA.resign();
      expect(await keysUnder(`${name}/`)).toEqual([]);
    });

    it('a leader latch leads, hands over on close, and loses leadership with its session', async () => {
      await using a = await session();
      const b = await session();
      await using c = await session();
      const name = 'elect/latch';
      await using latchA = LeaderLatch.start(a, name, { value: 'a' });
      await within('a leads', 10_000, latchA.whenLeader());
      expect(latchA.isLeader).toBe(true);
      await using latchB = LeaderLatch.start(b, name, { value: 'b' });
      await until('b queued', 5000, async () => (await keysUnder(`${name}/`)).length === 2);
      await using latchC = LeaderLatch.start(c, name, { value: 'c' });
      await until('c queued', 5000, async () => (await keysUnder(`${name}/`)).length === 3);
      expect(latchB.isLeader || latchC.isLeader).toBe(false);
      const aStepsDown = nextEvent(latchA, 'notleader');
      await latchA.close();
      await within('a steps down', 5000, aStepsDown);
      expect(latchA.closed).toBe(true);
      await within('b leads', 10_000, latchB.whenLeader());
      expect(latchC.isLeader).toBe(false);
      const bLoses = nextEvent(latchB, 'notleader');
      const bCloses = nextEvent(latchB, 'close');
      b.orphan();
      await client.lease.revoke(b.leaseId);
      await within('b loses leadership', 10_000, bLoses);
      await within('b closes', 10_000, bCloses);
      expect(latchB.isLeader).toBe(false);
      expect(isSynodError(latchB.closeReason, 'SYNOD_LEASE_LOST')).toBe(true);
      await within('c leads', 10_000, latchC.whenLeader());
      expect((await latchC.election.leader())?.value.toString()).toBe('c');
      await latchC.close();
      expect(await keysUnder(`${name}/`)).toEqual([]);
    });

    it('a barrier holds waiters until it is released', async () => {
      const key = 'barrier/one';
      const holder = new Barrier(client, key);
      expect(await holder.hold()).toBe(true);
      expect(await holder.hold()).toBe(false);
      const other = target.client();
      try {
        const through: string[] = [];
        const first = new Barrier(other, key).wait().then(() => through.push('first'));
        const second = new Barrier(other, key).wait().then(() => through.push('second'));
        await client.put(key, 'still held'); // a write that is not a release lets no one through
        await client.get(key);
        expect(through).toEqual([]);
        await holder.release();
        await within('waiters pass', 10_000, Promise.all([first, second]));
        expect(through.sort()).toEqual(['first', 'second']);
        await within('an open barrier', 5000, new Barrier(other, key).wait());
        expect(await client.get(key)).toBeNull();
      } finally {
        other.close();
      }
    });

    it('a double barrier lets 3 participants in together and out together', async () => {
      const key = 'dbarrier/three';
      const sessions = [await session(), await session(), await session(), await session()];
      try {
        const [b1, b2, b3] = sessions.slice(0, 3).map((each) => new DoubleBarrier(each, key, 3)) as [DoubleBarrier, DoubleBarrier, DoubleBarrier];
        const waiters = async (): Promise<number> => (await keysUnder(`${key}/waiters/`)).length;
        const entered: number[] = [];
        const enter1 = b1.enter().then(() => entered.push(1));
        await until('1 waits', 5000, async () => (await waiters()) === 1);
        const enter2 = b2.enter().then(() => entered.push(2));
        await until('2 waits', 5000, async () => (await waiters()) === 2);
        expect(entered).toEqual([]);
        const enter3 = b3.enter().then(() => entered.push(3));
        await within('all enter', 10_000, Promise.all([enter1, enter2, enter3]));
        expect(entered.sort(numeric)).toEqual([1, 2, 3]);
        expect(await client.get(`${key}/ready`)).not.toBeNull();
        const fourth = await new DoubleBarrier(sessions[3]!, key, 3).enter().catch((error) => error);
        expect(isSynodError(fourth, 'SYNOD_INVALID_ARGUMENT')).toBe(true);
        expect(await waiters()).toBe(3);
        const left: number[] = [];
        const leave1 = b1.leave().then(() => left.push(1));
        const leave2 = b2.leave().then(() => left.push(2));
        await until('2 withdraws its key', 5000, async () => (await waiters()) === 2);
        expect(left).toEqual([]);
        const leave3 = b3.leave().then(() => left.push(3));
        await within('all leave', 10_000, Promise.all([leave1, leave2, leave3]));
        expect(left.sort(numeric)).toEqual([1, 2, 3]);
        expect(await keysUnder(`${key}/`)).toEqual([]);
      } finally {
        for (const each of sessions) await each.close();
      }
    });

    it('a queue is FIFO and gives each item to exactly one of 2 concurrent consumers', async () => {
      const prefix = 'queue/fifo';
      const producer = new Queue(client, prefix);
      for (const value of ['x1', 'x2', 'x3']) await producer.enqueue(value);
      const drained = [await producer.dequeue(), await producer.dequeue(), await producer.dequeue()];
      expect(drained.map(String)).toEqual(['x1', 'x2', 'x3']);
      expect(await producer.tryDequeue()).toBeNull();
      const items = 40;
      const consumers = [target.client(), target.client()];
      try {
        const allTaken = new AbortController();
        let taken = 0;
        const consume = async (queue: Queue): Promise<number[]> => {
          const got: number[] = [];
          while (true) {
            try {
              got.push(Number(await queue.dequeue({ signal: allTaken.signal })));
            } catch (error) {
              if (allTaken.signal.aborted) return got;
              throw error;
            }
            if (++taken === items) allTaken.abort();
          }
        };
        // Both start on an empty queue, so both wait by watch before the first item arrives.
        const consuming = consumers.map((each) => consume(new Queue(each, prefix)));
        for (let index = 0; index < items; index++) await producer.enqueue(String(index));
        const [first, second] = await within('all items taken', 20_000, Promise.all(consuming));
        expect([...first!, ...second!].sort(numeric)).toEqual([...Array(items).keys()]);
        expect(first).toEqual([...first!].sort(numeric));
        expect(second).toEqual([...second!].sort(numeric));
        expect(await producer.length()).toBe(0n);
      } finally {
        for (const each of consumers) each.close();
      }
    });

    it('a priority queue serves the lowest priority first, FIFO within a priority', async () => {
      const queue = new PriorityQueue(client, 'pqueue/p');
      for (const [value, priority] of [['c1', 3], ['a1', 1], ['b1', 2], ['a2', 1], ['z', 0], ['c2', 3]] as const) {
        await queue.enqueue(value, priority);
      }
      const served: string[] = [];
      for (let index = 0; index < 6; index++) served.push(String(await queue.dequeue()));
      expect(served).toEqual(['z', 'a1', 'a2', 'b1', 'c1', 'c2']);
      const waiting = queue.dequeue();
      await queue.enqueue('late', 7);
      expect(String(await within('waiting dequeue', 10_000, waiting))).toBe('late');
      const other = target.client();
      try {
        // Concurrent producers at one priority never share a sequence number.
        const producers = [queue, new PriorityQueue(other, 'pqueue/p')];
        await Promise.all(producers.flatMap((each, who) => [...Array(10).keys()].map((index) => each.enqueue(`${who}-${index}`, 5))));
        const all: string[] = [];
        for (let item = await queue.tryDequeue(); item !== null; item = await queue.tryDequeue()) all.push(String(item));
        expect(all).toHaveLength(20);
        expect(new Set(all).size).toBe(20);
      } finally {
        other.close();
      }
      expect(isSynodError(await queue.enqueue('x', 70_000).catch((error) => error), 'SYNOD_INVALID_ARGUMENT')).toBe(true);
    });

    it('a counter reaches the exact sum under concurrent adders', async () => {
      const key = 'counter/c';
      expect(await new Counter(client, key).get()).toBe(0n);
      const adders = [0, 1, 2, 3].map(() => target.client());
      try {
        const results = await Promise.all(adders.map(async (each) => {
          const counter = new Counter(each, key);
          const values: bigint[] = [];
          for (let round = 0; round < 25; round++) values.push(await counter.increment());
          return values;
        }));
        // Every addition saw a distinct predecessor: the values returned are exactly 1..100.
        expect(results.flat().map(Number).sort(numeric)).toEqual([...Array(100).keys()].map((each) => each + 1));
      } finally {
        for (const each of adders) each.close();
      }
      const counter = new Counter(client, key);
      expect(await counter.get()).toBe(100n);
      expect(await counter.add(-100n)).toBe(0n);
      expect(await counter.add(2n ** 70n)).toBe(2n ** 70n);
      expect(await counter.get()).toBe(2n ** 70n);
    });

    it('stm: concurrent serializable transfers preserve the total', async () => {
      const accounts = [0, 1, 2, 3].map((index) => `bank/${index}`);
      for (const account of accounts) await client.put(account, '100');
      const workers = [0, 1, 2, 3].map(() => target.client());
      let applies = 0;
      try {
        await Promise.all(workers.map(async (each, worker) => {
          for (let round = 0; round < 10; round++) {
            const from = accounts[(worker + round) % 4]!;
            const to = accounts[(worker + round + 1 + (round % 2)) % 4]!;
            await runStm(each, async (stm) => {
              applies++;
              const balance = Number(await stm.get(from));
              const amount = 7 + round;
              if (balance < amount) return false;
              stm.put(from, String(balance - amount));
              stm.put(to, String(Number(await stm.get(to)) + amount));
              return true;
            }, { isolation: 'serializable' });
          }
        }));
      } finally {
        for (const each of workers) each.close();
      }
      const balances = await Promise.all(accounts.map(async (account) => Number((await client.get(account))!.value.toString())));
      expect(balances.reduce((sum, each) => sum + each, 0)).toBe(400);
      expect(balances.every((each) => each >= 0)).toBe(true);
      expect(applies).toBeGreaterThanOrEqual(40);
    });

    it('stm: isolation levels decide which interleaved writes conflict, and retries are bounded', async () => {
      const other = target.client();
      try {
        /** Runs a transaction that reads x, lets `interfere` write once, then reads y and writes w. */
        const run = async (isolation: StmIsolation, interfere: (attempt: number) => Promise<unknown>) => {
          await Promise.all([client.put('stm/x', '1'), client.put('stm/y', '1'), client.put('stm/w', '0')]);
          const reads: string[] = [];
          let attempt = 0;
          await runStm(client, async (stm: Stm) => {
            const x = await stm.get('stm/x');
            await interfere(attempt++);
            reads.push(`${x},${await stm.get('stm/y')}`);
            stm.put('stm/w', `${x}${await stm.get('stm/y')}`);
          }, { isolation });
          return { attempts: attempt, reads, w: String((await client.get('stm/w'))?.value) };
        };
        const onceWrite = (key: string) => (attempt: number) => (attempt === 0 ? other.put(key, '2') : Promise.resolve());
        // y changes after x was read: serializable still reads the old y (one snapshot), then conflicts.
        expect(await run('serializable', onceWrite('stm/y'))).toEqual({ attempts: 2, reads: ['1,1', '1,2'], w: '12' });
        // repeatable-read reads the new y and commits: nothing it read changed after it read it.
        expect(await run('repeatable-read', onceWrite('stm/y'))).toEqual({ attempts: 1, reads: ['1,2'], w: '12' });
        // x changes after it was read: repeatable-read conflicts, read-committed commits the stale x.
        expect(await run('repeatable-read', onceWrite('stm/x'))).toEqual({ attempts: 2, reads: ['1,1', '2,1'], w: '21' });
        expect(await run('read-committed', onceWrite('stm/x'))).toEqual({ attempts: 1, reads: ['1,1'], w: '11' });
        // A key written but not read: only serializable-snapshot sees the write-write conflict.
        expect((await run('serializable-snapshot', onceWrite('stm/w'))).attempts).toBe(2);
        expect((await run('serializable', onceWrite('stm/w'))).attempts).toBe(1);
        let attempts = 0;
        const exhausted = await runStm(client, async (stm) => {
          attempts++;
          stm.put('stm/z', String(await stm.get('stm/x')));
          await other.put('stm/x', String(attempts));
        }, { isolation: 'serializable', retriesMax: 2 }).catch((error) => error);
        expect(isSynodError(exhausted, 'SYNOD_STM_RETRIES_EXHAUSTED')).toBe(true);
        expect(attempts).toBe(3);
        expect(await client.get('stm/z')).toBeNull();
        const own = await runStm(client, async (stm) => {
          stm.put('stm/own', 'mine');
          const written = await stm.get('stm/own');
          stm.del('stm/own');
          return [written, await stm.get('stm/own')];
        });
        expect(own).toEqual(['mine', null]);
      } finally {
        other.close();
      }
    });

    it('a prefix cache equals a fresh range after a burst of writes', async () => {
      const prefix = 'cache/burst/';
      for (let index = 0; index < 5; index++) await client.put(`${prefix}k${index}`, `initial ${index}`);
      await client.put('cache/burstX', 'outside the prefix');
      await using cache = await PrefixCache.start(client, prefix);
      expect(summary(cache.entries())).toEqual(summary((await client.range(prefix, { prefix: true, revision: cache.revision })).kvs));
      let changes = 0;
      cache.addEventListener('change', (event) => (changes += (event as PrefixCacheChangeEvent).events.length));
      const writers = [0, 1, 2].map(() => target.client());
      let effective = 0;
      let lastRevision = 0n;
      try {
        await Promise.all(writers.map(async (each, writer) => {
          for (let index = 0; index < 20; index++) {
            const key = `${prefix}k${(writer * 7 + index) % 10}`;
            const result = index % 6 === 5
              ? await each.delete(key).then((deleted) => ((effective += Number(deleted.deleted)), deleted))
              : await each.put(key, `${writer}/${index}`).then((put) => (effective++, put));
            if (result.header.revision > lastRevision) lastRevision = result.header.revision;
          }
        }));
      } finally {
        for (const each of writers) each.close();
      }
      await cacheReaches(cache, 'cache caught up', () => cache.revision >= lastRevision);
      const fresh = await client.range(prefix, { prefix: true });
      expect(summary(cache.entries())).toEqual(summary(fresh.kvs));
      expect(cache.size).toBe(fresh.kvs.length);
      expect(cache.get(`${prefix}k1`)?.value.toString() ?? null).toBe((await client.get(`${prefix}k1`))?.value.toString() ?? null);
      expect(cache.get('cache/burstX')).toBeNull();
      expect(changes).toBe(effective);
      expect(cache.reloads).toBe(0);
    });

    it('a prefix cache reloads when compaction outruns its watch, and equals a fresh range', async () => {
      const prefix = 'cache/compact/';
      for (let index = 0; index < 5; index++) await client.put(`${prefix}k${index}`, `initial ${index}`);
      let openGate!: () => void;
      const gate = new Promise<void>((resolve) => (openGate = resolve));
      let watchReached!: () => void;
      const reached = new Promise<void>((resolve) => (watchReached = resolve));
      let watches = 0;
      // Holds the first watch back until the history it needs is compacted away.
      const gated: PrefixCacheClient = {
        range: (key, options) => client.range(key, options),
        watch: async (key, options) => {
          if (watches++ === 0) {
            watchReached();
            await gate;
          }
          return client.watch(key, options);
        },
      };
      const starting = PrefixCache.start(gated, prefix);
      await within('the cache loaded', 10_000, reached);
      for (let index = 0; index < 10; index++) {
        if (index % 3 === 2) await client.delete(`${prefix}k${index % 5}`);
        else await client.put(`${prefix}k${index}`, `after load ${index}`);
      }
      const { header } = await client.put(`${prefix}last`, 'before compaction');
      await client.compact(header.revision);
      openGate();
      await using cache = await within('cache started', 10_000, starting);
      await cacheReaches(cache, 'cache reloaded', () => cache.reloads === 1 && cache.revision >= header.revision);
      expect(summary(cache.entries())).toEqual(summary((await client.range(prefix, { prefix: true })).kvs));
      const after = await client.put(`${prefix}after`, 'followed');
      await cacheReaches(cache, 'cache follows after reload', () => cache.revision >= after.header.revision);
      expect(summary(cache.entries())).toEqual(summary((await client.range(prefix, { prefix: true })).kvs));
      expect(cache.reloads).toBe(1);
      expect(watches).toBe(2);
    });

    it('a prefix cache refuses a prefix over keysMax, and closes when the prefix outgrows it', async () => {
      const prefix = 'cache/bounded/';
      for (let index = 0; index < 3; index++) await client.put(`${prefix}k${index}`, 'v');
      const refused = await PrefixCache.start(client, prefix, { keysMax: 2 }).catch((error) => error);
      expect(isSynodError(refused, 'SYNOD_INVALID_ARGUMENT')).toBe(true);
      await using cache = await PrefixCache.start(client, prefix, { keysMax: 3 });
      expect(cache.size).toBe(3);
      const closed = nextEvent(cache, 'close');
      await client.put(`${prefix}k3`, 'one too many');
      await within('the cache closes', 10_000, closed);
      expect(cache.closed).toBe(true);
      expect(isSynodError(cache.failure, 'SYNOD_INVALID_ARGUMENT')).toBe(true);
    });
  });
}
