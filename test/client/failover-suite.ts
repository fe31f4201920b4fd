/**
 * The SDK and its recipes across a leader failover, on a three-member cluster: writes resume on
 * the surviving members, a watcher resumes from the next revision without losing or repeating an
 * event, a session outlives the election, a held lock stays held (and its fencing token valid),
 * and waiters are granted in order after the failover.
 */

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Election, Mutex, Session, type SynodClient } from '../../src/client/index.js';
import { nextBatch } from './client-suite.js';
import type { ClusterTarget } from './cluster-target.js';
import { until } from './mutex-suite.js';

/** Registers the failover suite for the cluster `start` returns. */
export function failoverSuite(label: string, start: () => Promise<ClusterTarget>): void {
  describe(`synod/client across a leader failover on ${label}`, () => {
    let target: ClusterTarget;
    let client: SynodClient;
    beforeAll(async () => {
      target = await start();
      // Pinned to the leader, so the kill breaks this client's own calls and streams.
      client = target.client({ endpoints: await target.endpointsLeaderFirst(), callTimeoutMs: 15_000 });
    });
    afterAll(async () => {
      client?.close();
      await target?.stop();
    });

    it('keeps writes, the watch, the session and the lock through the leader being killed', async () => {
      await using session = await Session.create(client, { ttlSeconds: 15 });
      const waiterClient = target.client({ endpoints: await target.endpointsLeaderFirst(), callTimeoutMs: 15_000 });
      try {
        await using waiterSession = await Session.create(waiterClient, { ttlSeconds: 15 });
        const held = await new Mutex(session, 'failover-lock').acquire();
        const waiting = new Mutex(waiterSession, 'failover-lock').acquire();
        await until('waiter queued', 10_000, async () => (await client.getPrefix('failover-lock/')).length === 2);
        await using watcher = await client.watch('failover/', { prefix: true });
        const iterator = watcher[Symbol.asyncIterator]();
        const seen: string[] = [];
        const written: string[] = [];
        for (let i = 0; i < 5; i++) {
          await client.put(`failover/${i}`, 'before');
          written.push(`failover/${i}`);
        }
        const { killed, leader } = await target.killLeader();
        expect(leader).not.toBe(killed);
        for (let i = 5; i < 10; i++) {
          await client.put(`failover/${i}`, 'after');
          written.push(`failover/${i}`);
        }
        while (seen.length < written.length) {
          for (const event of (await nextBatch(iterator, 20_000)).events) seen.push(event.kv.key.toString());
        }
        expect(seen).toEqual(written);
        expect(session.lost.aborted).toBe(false);
        expect(held.lost.aborted).toBe(false);
        const owner = await client.range('failover-lock/', { prefix: true, sort: { target: 'create', order: 'ascend' }, limit: 1 });
        expect(owner.kvs[0]?.createRevision).toBe(held.fencingToken);
        await held.release();
        const next = await waiting;
        expect(next.fencingToken! > held.fencingToken!).toBe(true);
        await next.release();
      } finally {
        waiterClient.close();
      }
    });

    it('keeps an election through the next leader kill: the leader stays, a waiting candidate takes over on resign', async () => {
      const other = target.client({ endpoints: await target.endpointsLeaderFirst(), callTimeoutMs: 15_000 });
      try {
        await using first = await Session.create(client, { ttlSeconds: 15 });
        await using second = await Session.create(other, { ttlSeconds: 15 });
        const leadership = await new Election(first, 'failover-election').campaign('first');
        const waiting = new Election(second, 'failover-election').campaign('second');
        await until('second candidate queued', 10_000, async () => (await client.getPrefix('failover-election/')).length === 2);
        await target.killLeader();
        const observed = await new Election(first, 'failover-election').leader();
        expect(observed?.value.toString()).toBe('first');
        expect(leadership.lost.aborted).toBe(false);
        await leadership.resign();
        const next = await waiting;
        expect((await new Election(second, 'failover-election').leader())?.value.toString()).toBe('second');
        await next.resign();
      } finally {
        other.close();
      }
    });
  });
}
