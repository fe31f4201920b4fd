// Worker ids leased from a Synod member in this process: exclusivity and exhaustion, the
// reservation carried from one owner to the next, a former owner's extend refused by the worker
// key guard, loss (a revoke, a deleted key, a deadline passed while paused), and the clock checks
// against live workers and the stored reservation. Each test uses its own cluster name, so its
// keys are its own. Nothing sleeps to synchronise: tests wait for the `lost` event or a watch.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isSynodError } from '../../base/index.js';
import type { SynodClient } from '../../client/index.js';
import { startInProcessSynod, type ClientTarget } from '../../../test/client/targets.js';
import { parseWorkerReport } from './clock-guard.js';
import { leaseWorkerId, type LeasedWorkerGrant, type WorkerLeaseOptions } from './worker-lease.js';

/** Rejects unless `promise` rejects with a SynodError of `code`; returns its message. */
async function rejection(promise: Promise<unknown>, code: string): Promise<string> {
  const error: unknown = await promise.then(() => null, (reason: unknown) => reason);
  expect(error, `expected ${code}`).not.toBeNull();
  expect((error as { code?: string }).code).toBe(code);
  return (error as Error).message;
}

function whenAborted(signal: AbortSignal): Promise<unknown> {
  if (signal.aborted) return Promise.resolve(signal.reason);
  return new Promise((resolve) => signal.addEventListener('abort', () => resolve(signal.reason)));
}

function shiftedClock(offsetMs: number): { nowMs(): number } {
  return { nowMs: () => Date.now() + offsetMs };
}

describe('leaseWorkerId', () => {
  let target: ClientTarget;
  let client: SynodClient;
  let other: SynodClient;
  let clusters = 0;
  const grants: LeasedWorkerGrant[] = [];

  beforeAll(async () => {
    target = await startInProcessSynod();
    client = target.client();
    other = target.client();
  });
  afterAll(async () => {
    await Promise.allSettled(grants.map((grant) => grant.release()));
    client?.close();
    other?.close();
    await target?.stop();
  });

  /** A fresh cluster name: the keys of one test never meet another's. */
  const newCluster = (): string => `test-${++clusters}`;

  type TestOptions = Partial<WorkerLeaseOptions> & { cluster: string };
  async function lease(options: TestOptions): Promise<LeasedWorkerGrant> {
    const grant = await leaseWorkerId({
      client, datacenterId: 1, workerIdsMax: 8, reportIntervalMs: 50, ...options,
    });
    grants.push(grant);
    return grant;
  }

  const workerKey = (cluster: string, dc: number, w: number): string =>
    `synod/ids/snowflake/${cluster}/workers/${dc}/${w}`;
  const reservedKey = (cluster: string, dc: number, w: number): string =>
    `synod/ids/snowflake/${cluster}/reserved/${dc}/${w}`;
  const storedReservation = async (key: string): Promise<number | null> => {
    const kv = await client.get(key);
    return kv === null ? null : Number(kv.value.toString());
  };

  it('never gives one worker id to two grants, even all preferring the same one', async () => {
    const cluster = newCluster();
    // Two clients, as two processes would be: exclusivity is the server's compare, not ours.
    const leased = await Promise.all(Array.from({ length: 8 }, (_, index) =>
      lease({ cluster, preferredWorkerId: 3, client: index % 2 === 0 ? client : other })));
    expect(new Set(leased.map((grant) => grant.workerId)).size).toBe(8);
    for (const grant of leased) {
      const kv = await client.get(workerKey(cluster, 1, grant.workerId));
      expect(kv?.lease).toBe(grant.leaseId);
      expect(grant.datacenterId).toBe(1);
    }
    await rejection(lease({ cluster }), 'SYNOD_ID_WORKER_IDS_EXHAUSTED');
  });

  it('refuses a third lease of two worker ids, and gives a released one out again', async () => {
    const cluster = newCluster();
    const first = await lease({ cluster, workerIdsMax: 2 });
    const second = await lease({ cluster, workerIdsMax: 2 });
    expect([first.workerId, second.workerId].sort()).toEqual([0, 1]);
    const message = await rejection(lease({ cluster, workerIdsMax: 2 }),
      'SYNOD_ID_WORKER_IDS_EXHAUSTED');
    expect(message).toMatch(/all 2 worker ids of datacenter 1/);
    await second.release();
    const third = await lease({ cluster, workerIdsMax: 2 });
    expect(third.workerId).toBe(second.workerId);
  });

  it('reserves a window at start, and extend moves the stored bound only up', async () => {
    const cluster = newCluster();
    const beforeMs = Date.now();
    const grant = await lease({ cluster, reservationWindowMs: 2000 });
    expect(grant.lastUsedMs).toBe(0);
    expect(grant.reservedUntilMs).toBeGreaterThanOrEqual(beforeMs + 2000);
    const key = reservedKey(cluster, 1, grant.workerId);
    expect(await storedReservation(key)).toBe(grant.reservedUntilMs);

    const targetMs = Date.now() + 4000;
    expect(await grant.extend(targetMs)).toBe(targetMs);
    expect(grant.reservedUntilMs).toBe(targetMs);
    const revision = (await client.get(key))!.modRevision;
    // Lower asks answer the current bound without writing; concurrent asks end at the highest.
    expect(await grant.extend(targetMs - 1000)).toBe(targetMs);
    expect((await client.get(key))!.modRevision).toBe(revision);
    const bounds = await Promise.all([
      grant.extend(targetMs + 200), grant.extend(targetMs + 100.5),
    ]);
    expect(bounds[0]).toBe(targetMs + 200);
    expect(bounds[1]).toBeGreaterThanOrEqual(targetMs + 101);
    expect(grant.reservedUntilMs).toBe(targetMs + 200);
    expect(await storedReservation(key)).toBe(targetMs + 200);
  });

  it('starts a new owner above the reservation of the one that released the id', async () => {
    const cluster = newCluster();
    const old = await lease({ cluster, preferredWorkerId: 5 });
    expect(old.workerId).toBe(5);
    const reservedMs = await old.extend(Date.now() + 5000);
    await old.release();
    expect(await client.get(workerKey(cluster, 1, 5))).toBeNull();
    expect(await storedReservation(reservedKey(cluster, 1, 5))).toBe(reservedMs);
    expect((await client.lease.timeToLive(old.leaseId)).ttlSeconds).toBe(-1);
    expect(old.lost.aborted).toBe(false);
    await rejection(old.extend(Date.now() + 6000), 'SYNOD_ID_WORKER_LEASE_LOST');

    const next = await lease({ cluster, preferredWorkerId: 5 });
    expect(next.workerId).toBe(5);
    expect(next.lastUsedMs).toBe(reservedMs);
    expect(next.reservedUntilMs).toBeGreaterThan(reservedMs);
  });

  it("refuses a former owner's extend once its worker key is gone; the bound stays", async () => {
    const cluster = newCluster();
    // A slow report keeps the former owner from noticing on its own before it extends.
    const former = await lease({ cluster, preferredWorkerId: 2, reportIntervalMs: 9000 });
    // What expiry would do: the key goes while the former owner still believes it holds it.
    await other.delete(workerKey(cluster, 1, 2));
    const successor = await lease({ cluster, preferredWorkerId: 2 });
    expect(successor.workerId).toBe(2);
    expect(successor.lastUsedMs).toBe(former.reservedUntilMs);

    expect(former.lost.aborted).toBe(false);
    const message = await rejection(former.extend(Date.now() + 8000), 'SYNOD_ID_WORKER_LEASE_LOST');
    expect(message).toMatch(/worker 1\/2 lost: its worker key is gone or held by another owner/);
    expect(former.lost.aborted).toBe(true);
    expect(await storedReservation(reservedKey(cluster, 1, 2))).toBe(successor.reservedUntilMs);
    // Losing revoked the former owner's lease; the successor's key is untouched by it.
    await former.release();
    expect((await client.get(workerKey(cluster, 1, 2)))?.lease).toBe(successor.leaseId);
  });

  it('is lost before the server expires its lease, and a successor starts above', async () => {
    const cluster = newCluster();
    const cutOff = target.client();
    const former = await leaseWorkerId({
      client: cutOff, cluster, datacenterId: 1, workerIdsMax: 8, preferredWorkerId: 6,
      leaseTtlSeconds: 2, reportIntervalMs: 50,
    });
    const watcher = await other.watch(workerKey(cluster, 1, 6), { filters: { noPut: true } });
    const order: string[] = [];
    const lost = whenAborted(former.lost).then(() => order.push('lost'));
    // The owner is cut off from the cluster: no keep-alive or report reaches it any more.
    cutOff.close();
    for await (const batch of watcher) {
      if (batch.events.length === 0) continue;
      order.push('expired');
      break;
    }
    await lost;
    expect(order).toEqual(['lost', 'expired']);
    const successor = await lease({ cluster, preferredWorkerId: 6 });
    expect(successor.workerId).toBe(6);
    expect(successor.lastUsedMs).toBe(former.reservedUntilMs);
    await former.release();
  });

  it('aborts lost when the lease is revoked through the client', async () => {
    const cluster = newCluster();
    const grant = await lease({ cluster });
    await client.lease.revoke(grant.leaseId);
    expect(grant.lost.aborted).toBe(true);
    expect(isSynodError(grant.lost.reason, 'SYNOD_ID_WORKER_LEASE_LOST')).toBe(true);
    expect(String((grant.lost.reason as Error).message)).toMatch(/revoked/);
    await rejection(grant.extend(Date.now() + 1000), 'SYNOD_ID_WORKER_LEASE_LOST');
    expect(await client.get(workerKey(cluster, 1, grant.workerId))).toBeNull();
  });

  it('aborts lost when the lease is revoked elsewhere, at the next heartbeat', async () => {
    const cluster = newCluster();
    const grant = await lease({ cluster });
    await other.lease.revoke(grant.leaseId);
    const reason = await whenAborted(grant.lost);
    expect(isSynodError(reason, 'SYNOD_ID_WORKER_LEASE_LOST')).toBe(true);
  });

  it('counts itself lost once its monotonic deadline passed (a paused process)', async () => {
    const cluster = newCluster();
    let pausedMs = 0;
    const monotonicClock = { nowMs: () => performance.now() + pausedMs };
    const grant = await lease({ cluster, monotonicClock, leaseTtlSeconds: 5 });
    expect(grant.lost.aborted).toBe(false);
    // The lease is alive on the server; only this process's view says a TTL went by unanswered.
    pausedMs = 60_000;
    const reason = await whenAborted(grant.lost);
    expect(String((reason as Error).message)).toMatch(/overdue|TTL less the margin/);
    await grant.release();
    expect((await client.lease.timeToLive(grant.leaseId)).ttlSeconds).toBe(-1);
  });

  it('keeps its live report fresh: owner, clock and reservation', async () => {
    const cluster = newCluster();
    const grant = await lease({ cluster, host: 'host-a', pid: 77 });
    const reservedMs = await grant.extend(Date.now() + 5000);
    const key = workerKey(cluster, 1, grant.workerId);
    const watcher = await client.watch(key);
    try {
      for await (const batch of watcher) {
        const reports = batch.events.map((event) => parseWorkerReport(event.kv.value));
        const fresh = reports.find((report) => report?.reservedUntilMs === reservedMs);
        if (fresh === undefined || fresh === null) continue;
        expect(fresh.host).toBe('host-a');
        expect(fresh.pid).toBe(77);
        expect(Math.abs(fresh.reportedAtMs - Date.now())).toBeLessThan(5000);
        break;
      }
    } finally {
      await watcher[Symbol.asyncDispose]();
    }
  });

  describe('clock checks', () => {
    it('refuses a clock 10 s ahead of or behind live workers, accepts one 1 s off', async () => {
      const cluster = newCluster();
      await lease({ cluster, datacenterId: 3 });
      await lease({ cluster, datacenterId: 3 });
      const dc3 = { cluster, datacenterId: 3 };
      const ahead = await rejection(lease({ ...dc3, clock: shiftedClock(10_000) }),
        'SYNOD_ID_CLOCK_BEHIND');
      // One of the two may miss the sampling window on a loaded machine; one is enough.
      const offsetMs = Number(/(\d+) ms ahead of the mean of [12] live workers/.exec(ahead)?.[1]);
      // Their reports lag by up to a report interval and the sampling time, never lead.
      expect(offsetMs).toBeGreaterThanOrEqual(9990);
      expect(offsetMs).toBeLessThan(10_500);
      await rejection(lease({ ...dc3, clock: shiftedClock(-10_000) }), 'SYNOD_ID_CLOCK_BEHIND');
      // Refused starts leave nothing held.
      expect((await client.getPrefix(`synod/ids/snowflake/${cluster}/workers/3/`)).length).toBe(2);

      const close = await lease({ ...dc3, clock: shiftedClock(1000) });
      const behind = await lease({ ...dc3, clock: shiftedClock(-1000) });
      expect(new Set(grants.slice(-4).map((grant) => grant.workerId)).size).toBe(4);
      expect(close.lost.aborted || behind.lost.aborted).toBe(false);
    });

    it("ignores a crashed worker's stale report and skips its still-leased id", async () => {
      const cluster = newCluster();
      const { id } = await other.lease.grant(60);
      const stale = { host: 'gone', pid: 1, reportedAtMs: Date.now() - 60_000, reservedUntilMs: 0 };
      await other.put(workerKey(cluster, 4, 7), JSON.stringify(stale), { lease: id });
      const grant = await lease({ cluster, datacenterId: 4, preferredWorkerId: 7 });
      expect(grant.workerId).toBe(0);
      await other.lease.revoke(id);
    });

    it('refuses a stored reservation further ahead than a start waits', async () => {
      const cluster = newCluster();
      // A previous owner whose clock ran a minute ahead reserved past its own clock.
      const dc5 = { cluster, datacenterId: 5, preferredWorkerId: 0 };
      const fast = await lease({ ...dc5, clock: shiftedClock(60_000) });
      const reservedMs = fast.reservedUntilMs;
      await fast.release();
      const message = await rejection(lease(dc5),
        'SYNOD_ID_CLOCK_BEHIND');
      expect(message).toMatch(/worker 5\/0: its stored reservation is \d+ ms ahead/);
      expect(await client.get(workerKey(cluster, 5, 0))).toBeNull();
      expect(await storedReservation(reservedKey(cluster, 5, 0))).toBe(reservedMs);

      // Within the wait: accepted, and the generator starts above the fast owner's bound.
      const near = await lease({ ...dc5, clock: shiftedClock(58_000) });
      expect(near.workerId).toBe(0);
      expect(near.lastUsedMs).toBe(reservedMs);
      expect(near.reservedUntilMs).toBeGreaterThanOrEqual(reservedMs);
    });
  });

  describe('options', () => {
    it('refuses every invalid option before taking a lease', async () => {
      const leasesBefore = (await client.lease.list()).length;
      const invalid: Partial<WorkerLeaseOptions>[] = [
        { datacenterId: -1 }, { datacenterId: 1.5 }, { datacenterId: 65_536 },
        { workerIdsMax: 0 }, { workerIdsMax: 4097 }, { preferredWorkerId: 8 },
        { preferredWorkerId: -1 }, { leaseTtlSeconds: 0 }, { leaseTtlSeconds: 3601 },
        { leaseMarginMs: 5001 }, { reportIntervalMs: 10_000 }, { reportIntervalMs: 5 },
        { reservationWindowMs: 0 }, { reservationWindowMs: 3000, startWaitMsMax: 2999 },
        { clockSkewMsMax: -1 }, { prefix: 'ids/' }, { prefix: '' }, { prefix: 'ids', cluster: 'a' },
        { cluster: 'a/b' }, { client: null as unknown as SynodClient },
        { clock: {} as { nowMs(): number } }, { host: 'h'.repeat(256) }, { pid: -1 },
        { signal: 'stop' as unknown as AbortSignal },
      ];
      for (const options of invalid) {
        await rejection(leaseWorkerId({ client, datacenterId: 1, workerIdsMax: 8, ...options }),
          'SYNOD_INVALID_ARGUMENT');
      }
      expect((await client.lease.list()).length).toBe(leasesBefore);
    });

    it('refuses an extend that is not a timestamp, clamps one past the start wait', async () => {
      const grant = await lease({ cluster: newCluster(), reservationWindowMs: 1000 });
      for (const untilMs of [Number.NaN, -1, Infinity]) {
        await rejection(grant.extend(untilMs), 'SYNOD_INVALID_ARGUMENT');
      }
      const askedAtMs = Date.now();
      const boundMs = await grant.extend(askedAtMs + 60_000);
      expect(boundMs).toBeGreaterThanOrEqual(askedAtMs + 3000);
      expect(boundMs).toBeLessThanOrEqual(Date.now() + 3000);
      expect(grant.reservedUntilMs).toBe(boundMs);
      expect(grant.lost.aborted).toBe(false);
    });

    it('rejects with the signal reason when the start is aborted, holding nothing', async () => {
      const cluster = newCluster();
      const controller = new AbortController();
      controller.abort(new Error('stop'));
      await expect(lease({ cluster, signal: controller.signal })).rejects.toThrow('stop');
      expect((await client.getPrefix(`synod/ids/snowflake/${cluster}/`)).length).toBe(0);
    });
  });
});
