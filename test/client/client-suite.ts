/**
 * The SDK's behaviour, written once and run against every target: Synod in this process under
 * `npm test`, and real etcd and Synod as processes under `npm run test:interop`, so etcd is the
 * oracle for what each call returns.
 */

import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import {
  CompactedError, EtcdServerError, LeaseLostError, SynodClient, compare, isSynodError, op, type WatchBatch,
} from '../../src/client/index.js';
import { Transport } from '../../src/client/transport.js';
import type { ClientTarget } from './targets.js';

/** Resolves when `signal` aborts, or rejects after `ms` (a bound, not a synchronisation). */
export function abortedWithin(signal: AbortSignal, ms: number): Promise<unknown> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return resolve(signal.reason);
    const timer = setTimeout(() => reject(new Error(`signal not aborted within ${ms} ms`)), ms);
    signal.addEventListener('abort', () => {
      clearTimeout(timer);
      resolve(signal.reason);
    }, { once: true });
  });
}

/** The next batch from a watcher's iterator, or a rejection after `ms`. */
export async function nextBatch(iterator: AsyncIterator<WatchBatch>, ms = 10_000): Promise<WatchBatch> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no watch batch within ${ms} ms`)), ms);
  });
  try {
    const next = await Promise.race([iterator.next(), timeout]);
    if (next.done === true) throw new Error('watcher ended');
    return next.value;
  } finally {
    clearTimeout(timer);
  }
}

/** Registers the client suite for the target `start` returns. */
export function clientSuite(label: string, start: () => Promise<ClientTarget>): void {
  describe(`synod/client against ${label}`, () => {
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

    it('puts, gets, ranges and deletes with revisions as bigints', async () => {
      const first = await client.put('kv/a', 'one');
      const second = await client.put('kv/b', Buffer.from([0, 255]), { prevKv: true });
      expect(second.header.revision).toBe(first.header.revision + 1n);
      expect(second.prevKv).toBeNull();
      const again = await client.put('kv/a', 'two', { prevKv: true });
      expect(again.prevKv?.value.toString()).toBe('one');
      const a = await client.get('kv/a');
      expect(a?.value.toString()).toBe('two');
      expect(a?.version).toBe(2n);
      expect(a?.createRevision).toBe(first.header.revision);
      expect(a?.modRevision).toBe(again.header.revision);
      expect(await client.get('kv/missing')).toBeNull();
      const all = await client.range('kv/', { prefix: true, sort: { target: 'key', order: 'descend' } });
      expect(all.kvs.map((each) => each.key.toString())).toEqual(['kv/b', 'kv/a']);
      expect(all.count).toBe(2n);
      const limited = await client.range('kv/', { prefix: true, limit: 1 });
      expect(limited.more).toBe(true);
      const old = await client.get('kv/a', { revision: first.header.revision });
      expect(old?.value.toString()).toBe('one');
      const deleted = await client.delete('kv/', { prefix: true, prevKv: true });
      expect(deleted.deleted).toBe(2n);
      expect(deleted.prevKvs.map((each) => each.key.toString()).sort()).toEqual(['kv/a', 'kv/b']);
      expect(await client.getPrefix('kv/')).toEqual([]);
    });

    it('reads and deletes one key only, not the keys after it (no empty range_end on the wire)', async () => {
      await client.put('single/a', '1');
      await client.put('single/b', '2');
      expect(await client.get('single/0')).toBeNull();
      const deleted = await client.delete('single/a');
      expect(deleted.deleted).toBe(1n);
      expect((await client.get('single/b'))?.value.toString()).toBe('2');
      await client.delete('single/', { prefix: true });
    });

    it('filters kvs by create revision but counts the whole range, as etcd does', async () => {
      const first = await client.put('filter/a', '1');
      await client.put('filter/b', '2');
      await client.put('filter/c', '3');
      const older = await client.range('filter/', { prefix: true, maxCreateRevision: first.header.revision });
      expect(older.kvs.map((kv) => kv.key.toString())).toEqual(['filter/a']);
      expect(older.count).toBe(3n);
      const counted = await client.range('filter/', { prefix: true, maxCreateRevision: first.header.revision, countOnly: true });
      expect(counted.count).toBe(3n);
      await client.delete('filter/', { prefix: true });
    });

    it('commits a transaction by its compares, with each operation answered', async () => {
      const created = await client.txn()
        .if(compare.createRevision('txn/k', '==', 0n))
        .then(op.put('txn/k', 'v1'), op.get('txn/k'))
        .else(op.get('txn/k'))
        .commit();
      expect(created.succeeded).toBe(true);
      expect(created.responses.map((each) => each.kind)).toEqual(['put', 'range']);
      const read = created.responses[1];
      expect(read?.kind === 'range' && read.range.kvs[0]?.value.toString()).toBe('v1');
      const refused = await client.txn()
        .if(compare.value('txn/k', '==', 'other'))
        .then(op.delete('txn/k'))
        .else(op.txn([compare.version('txn/k', '>', 0n)], [op.put('txn/k', 'v2')]))
        .commit();
      expect(refused.succeeded).toBe(false);
      const nested = refused.responses[0];
      expect(nested?.kind === 'txn' && nested.txn.succeeded).toBe(true);
      expect((await client.get('txn/k'))?.value.toString()).toBe('v2');
      expect(() => client.txn().if().if()).toThrow(/given twice/);
    });

    it('answers server errors with etcd codes and exact messages', async () => {
      const { header } = await client.put('err/k', 'v');
      const future = await client.get('err/k', { revision: header.revision + 1000n }).catch((error) => error);
      expect(future).toBeInstanceOf(EtcdServerError);
      expect(future.code).toBe('SYNOD_FUTURE_REVISION');
      expect(future.message).toBe('etcdserver: mvcc: required revision is a future revision');
      const missingLease = await client.lease.revoke(0x1234n).catch((error) => error);
      expect(missingLease.code).toBe('SYNOD_LEASE_NOT_FOUND');
      expect(missingLease.message).toBe('etcdserver: requested lease not found');
      const badLease = await client.put('err/k', 'v', { lease: 0x999n }).catch((error) => error);
      expect(badLease.code).toBe('SYNOD_LEASE_NOT_FOUND');
      const invalid = await client.put('', 'v').catch((error) => error);
      expect(isSynodError(invalid, 'SYNOD_INVALID_ARGUMENT')).toBe(true);
    });

    it('rejects with the signal reason when aborted, sending nothing', async () => {
      const controller = new AbortController();
      controller.abort(new Error('stop'));
      await expect(client.put('abort/k', 'v', { signal: controller.signal })).rejects.toThrow('stop');
      expect(await client.get('abort/k')).toBeNull();
    });

    it('watches from the next revision, from a past one, and reports compaction', async () => {
      const start = await client.put('watch/a', '0');
      await using watcher = await client.watch('watch/', { prefix: true, prevKv: true });
      const iterator = watcher[Symbol.asyncIterator]();
      await client.put('watch/a', '1');
      await client.delete('watch/a');
      const events: string[] = [];
      while (events.length < 2) {
        for (const event of (await nextBatch(iterator)).events) {
          events.push(`${event.type} ${event.kv.key} ${event.kv.value} prev=${event.prevKv?.value ?? '-'}`);
        }
      }
      expect(events).toEqual(['put watch/a 1 prev=0', 'delete watch/a  prev=1']);
      await using history = await client.watch('watch/a', { startRevision: start.header.revision });
      const past = await nextBatch(history[Symbol.asyncIterator]());
      expect(past.events[0]?.kv.value.toString()).toBe('0');
      const { header } = await client.put('watch/b', 'x');
      await client.compact(header.revision);
      const compacted = await client.watch('watch/', { prefix: true, startRevision: start.header.revision })
        .then(async (late) => {
          for await (const _ of late) { /* drain until it fails */ }
          return null;
        })
        .catch((error) => error);
      expect(compacted).toBeInstanceOf(CompactedError);
      expect(compacted.compactRevision).toBe(header.revision);
    });

    it('opens and closes a watch 1,500 times in a row on one Watch stream', async () => {
      // Each watch a lock waiter opens ends when it is done. Were the shared Watch stream closed
      // (an RST_STREAM) every time, a Node HTTP/2 server would answer the 1,001st reset within
      // seconds with GOAWAY INTERNAL_ERROR and fail the calls in flight on the connection.
      const opens = vi.spyOn(Transport.prototype, 'bidiStream');
      try {
        for (let i = 0; i < 1500; i++) {
          const watcher = await client.watch(`churn/${i % 10}`);
          await watcher.close();
        }
        // One, or none where an earlier test's stream still lingers.
        const watchStreams = opens.mock.calls.filter(([service]) => service === 'Watch');
        expect(watchStreams.length).toBeLessThanOrEqual(1);
      } finally {
        opens.mockRestore();
      }
    });

    it('grants, attaches, lists, revokes leases', async () => {
      const grant = await client.lease.grant(30);
      expect(grant.ttlSeconds).toBe(30);
      await client.put('lease/a', 'v', { lease: grant.id });
      const ttl = await client.lease.timeToLive(grant.id, { keys: true });
      expect(ttl.grantedTtlSeconds).toBe(30);
      expect(ttl.ttlSeconds).toBeGreaterThan(0);
      expect(ttl.keys.map(String)).toEqual(['lease/a']);
      expect(await client.lease.list()).toContain(grant.id);
      await client.lease.revoke(grant.id);
      expect(await client.get('lease/a')).toBeNull();
      expect((await client.lease.timeToLive(grant.id)).ttlSeconds).toBe(-1);
    });

    it('keeps a lease alive past its TTL, and reports its loss when it is revoked elsewhere', async () => {
      await using keepAlive = await client.lease.grantKeptAlive(2);
      await client.put('keep/a', 'v', { lease: keepAlive.id });
      await new Promise((resolve) => setTimeout(resolve, 3500)); // longer than the TTL: time is the subject
      expect(keepAlive.lost.aborted).toBe(false);
      expect((await client.get('keep/a'))?.value.toString()).toBe('v');
      const other = target.client();
      try {
        await other.lease.revoke(keepAlive.id);
      } finally {
        other.close();
      }
      const reason = await abortedWithin(keepAlive.lost, 5000);
      expect(reason).toBeInstanceOf(LeaseLostError);
      expect(isSynodError(reason, 'SYNOD_LEASE_LOST')).toBe(true);
    });

    it('fails over from an endpoint that refuses connections, and gives up at the deadline', async () => {
      const failover = new SynodClient({ endpoints: ['127.0.0.1:1', target.endpoint], dialTimeoutMs: 500 });
      try {
        await failover.put('failover/k', 'v');
        expect((await failover.get('failover/k'))?.value.toString()).toBe('v');
      } finally {
        failover.close();
      }
      const dead = new SynodClient({ endpoints: ['127.0.0.1:1'], callTimeoutMs: 300 });
      try {
        const error = await dead.get('x').catch((failure) => failure);
        expect(isSynodError(error, 'SYNOD_CLIENT_UNAVAILABLE')).toBe(true);
      } finally {
        dead.close();
      }
      const closed = target.client();
      closed.close();
      expect(isSynodError(await closed.get('x').catch((error) => error), 'SYNOD_CLIENT_CLOSED')).toBe(true);
    });
  });
}
