import { status as GrpcStatus } from '@grpc/grpc-js';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  appliedUntil, candidateKey, grantLease, keyExists, revokeLease, startCall, startRecipeHarness,
  testClusterId, testMemberId, type RecipeHarness,
} from './recipe-test-kit.js';

interface LockResponse {
  readonly header: {
    readonly revision: string;
    readonly cluster_id: string;
    readonly member_id: string;
  };
  readonly key: Buffer;
}

describe('Lock service over a single-member RaftNode', () => {
  const cleanups: (() => Promise<void>)[] = [];
  let harness: RecipeHarness;

  beforeEach(async () => {
    harness = await startRecipeHarness('synod-lock-service-', cleanups, { waitersMax: 2 });
  });

  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  const lock = (name: string, lease: bigint) =>
    startCall<LockResponse>(harness.lock, 'Lock', {
      name: Buffer.from(name), lease: lease.toString(),
    });
  const unlock = (key: Buffer) => startCall<object>(harness.lock, 'Unlock', { key }).response;

  it('excludes: a second Lock waits until Unlock, then acquires', async () => {
    const { node, waiters } = harness;
    const [first, second] = [await grantLease(node), await grantLease(node)];
    const held = await lock('jobs', first).response;
    expect(held.key.toString()).toBe(candidateKey('jobs', first));
    expect(held.header).toMatchObject({
      cluster_id: testClusterId.toString(), member_id: testMemberId.toString(),
    });

    const waiting = waiters.nextWait();
    const contender = lock('jobs', second);
    await waiting;
    // The contender's key is queued behind the holder's, and its wait has not finished.
    expect(keyExists(node, candidateKey('jobs', second))).toBe(true);
    expect(waiters.size).toBe(1);

    await unlock(held.key);
    const acquired = await contender.response;
    expect(acquired.key.toString()).toBe(candidateKey('jobs', second));
    expect(keyExists(node, candidateKey('jobs', first))).toBe(false);
    expect(waiters.size).toBe(0);
  });

  it('gives the same key back to a lease that already holds the lock', async () => {
    const lease = await grantLease(harness.node);
    const first = await lock('jobs', lease).response;
    const again = await lock('jobs', lease).response;
    expect(again.key).toEqual(first.key);
  });

  it('grants a session lease when asked for lease 0', async () => {
    const { node } = harness;
    const held = await lock('jobs', 0n).response;
    const [kv] = node.stateMachine.store.range({ key: held.key }).kvs;
    expect(kv?.lease).toBeGreaterThan(0n);
    expect(held.key.toString()).toBe(candidateKey('jobs', kv?.lease ?? 0n));
  });

  it('deletes the key of a call cancelled while it waited', async () => {
    const { node, waiters } = harness;
    const [first, second] = [await grantLease(node), await grantLease(node)];
    await lock('jobs', first).response;
    const waiting = waiters.nextWait();
    const contender = lock('jobs', second);
    await waiting;
    expect(keyExists(node, candidateKey('jobs', second))).toBe(true);

    contender.call.cancel();
    await expect(contender.response).rejects.toMatchObject({ code: GrpcStatus.CANCELLED });
    await appliedUntil(node, () => !keyExists(node, candidateKey('jobs', second)));
    expect(waiters.size).toBe(0);
    expect(keyExists(node, candidateKey('jobs', first))).toBe(true);
  });

  it('releases a lock acquired after the client left', async () => {
    const { node, waiters } = harness;
    const [first, second] = [await grantLease(node), await grantLease(node)];
    const held = await lock('jobs', first).response;
    const waiting = waiters.nextWait();
    const contender = lock('jobs', second);
    await waiting;
    waiters.holdUntilCancelled = true;
    // The unlock's apply runs the contender's step, which finds the lock free.
    await unlock(held.key);
    expect(waiters.size).toBe(0);
    contender.call.cancel();
    await expect(contender.response).rejects.toMatchObject({ code: GrpcStatus.CANCELLED });
    await appliedUntil(node, () => !keyExists(node, candidateKey('jobs', second)));
  });

  it('hands the lock on when the holder\'s lease is revoked', async () => {
    const { node, waiters } = harness;
    const [first, second] = [await grantLease(node), await grantLease(node)];
    await lock('jobs', first).response;
    const waiting = waiters.nextWait();
    const contender = lock('jobs', second);
    await waiting;
    await revokeLease(node, first);
    expect((await contender.response).key.toString()).toBe(candidateKey('jobs', second));
  });

  it('fails a wait whose own lease is revoked, as etcd\'s Mutex does', async () => {
    const { node, waiters } = harness;
    const [first, second] = [await grantLease(node), await grantLease(node)];
    await lock('jobs', first).response;
    const waiting = waiters.nextWait();
    const contender = lock('jobs', second);
    await waiting;
    await revokeLease(node, second);
    await expect(contender.response).rejects.toMatchObject({
      code: GrpcStatus.UNKNOWN, details: 'mutex: session is expired',
    });
    expect(waiters.size).toBe(0);
  });

  it('refuses an unknown lease with etcd\'s error', async () => {
    await expect(lock('jobs', 0x1234n).response).rejects.toMatchObject({
      code: GrpcStatus.NOT_FOUND, details: 'etcdserver: requested lease not found',
    });
    expect(keyExists(harness.node, candidateKey('jobs', 0x1234n))).toBe(false);
  });

  it('refuses a Lock beyond waitersMax without writing its key', async () => {
    const { node, waiters } = harness;
    const leases = [];
    for (let index = 0; index < 4; index++) leases.push(await grantLease(node));
    const [holder, ...contenders] = leases as [bigint, bigint, bigint, bigint];
    await lock('jobs', holder).response;
    const queued = [];
    for (const lease of contenders.slice(0, 2)) {
      const waiting = waiters.nextWait();
      queued.push(lock('jobs', lease));
      await waiting;
    }
    expect(waiters.full).toBe(true);
    await expect(lock('jobs', contenders[2]).response).rejects.toMatchObject({
      code: GrpcStatus.RESOURCE_EXHAUSTED, details: 'etcdserver: too many requests',
    });
    expect(keyExists(node, candidateKey('jobs', contenders[2]))).toBe(false);
    for (const { call, response } of queued) {
      call.cancel();
      await expect(response).rejects.toMatchObject({ code: GrpcStatus.CANCELLED });
    }
  });

  it('refuses an Unlock without a key', async () => {
    await expect(unlock(Buffer.alloc(0))).rejects.toMatchObject({
      code: GrpcStatus.INVALID_ARGUMENT, details: 'etcdserver: key is not provided',
    });
  });
});
