import { status as GrpcStatus, type ClientReadableStream } from '@grpc/grpc-js';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  appliedUntil, candidateKey, grantLease, keyExists, revokeLease, startCall, startRecipeHarness,
  type RecipeHarness,
} from './recipe-test-kit.js';

interface WireLeaderKey {
  readonly name: Buffer;
  readonly key: Buffer;
  readonly rev: string;
  readonly lease: string;
}

interface CampaignResponse {
  readonly header: { readonly revision: string };
  readonly leader: WireLeaderKey;
}

interface LeaderResponse {
  readonly header: { readonly revision: string };
  readonly kv: { readonly key: Buffer; readonly value: Buffer; readonly create_revision: string };
}

/** Reads an Observe stream one response at a time, in order. */
class StreamReader<T> {
  readonly #buffered: T[] = [];
  readonly #readers: ((value: T) => void)[] = [];

  constructor(stream: ClientReadableStream<unknown>) {
    stream.on('data', (value: T) => {
      const reader = this.#readers.shift();
      if (reader === undefined) this.#buffered.push(value);
      else reader(value);
    });
    // A cancelled stream ends with CANCELLED; the test cancels it on purpose.
    stream.on('error', () => {});
  }

  next(): Promise<T> {
    const value = this.#buffered.shift();
    if (value !== undefined) return Promise.resolve(value);
    return new Promise((resolve) => this.#readers.push(resolve));
  }

  get buffered(): number {
    return this.#buffered.length;
  }
}

describe('Election service over a single-member RaftNode', () => {
  const cleanups: (() => Promise<void>)[] = [];
  let harness: RecipeHarness;

  beforeEach(async () => {
    harness = await startRecipeHarness('synod-election-service-', cleanups);
  });

  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  const campaign = (name: string, lease: bigint, value: string) =>
    startCall<CampaignResponse>(harness.election, 'Campaign', {
      name: Buffer.from(name), lease: lease.toString(), value: Buffer.from(value),
    });
  const leader = (name: string) =>
    startCall<LeaderResponse>(harness.election, 'Leader', { name: Buffer.from(name) }).response;
  const proclaim = (leaderKey: WireLeaderKey | null, value: string) =>
    startCall<object>(harness.election, 'Proclaim', {
      leader: leaderKey, value: Buffer.from(value),
    }).response;
  const resign = (leaderKey: WireLeaderKey | null) =>
    startCall<object>(harness.election, 'Resign', { leader: leaderKey }).response;
  const observe = (name: string) => {
    const stream = harness.election.Observe({ name: Buffer.from(name) });
    cleanups.push(async () => stream.cancel());
    return new StreamReader<LeaderResponse>(stream);
  };

  it('campaigns, proclaims, observes and resigns with two candidates', async () => {
    const { node, waiters } = harness;
    const [first, second] = [await grantLease(node), await grantLease(node)];
    await expect(leader('svc')).rejects.toMatchObject({
      code: GrpcStatus.UNKNOWN, details: 'election: no leader',
    });
    const observingStarted = waiters.nextWait();
    const observed = observe('svc');
    await observingStarted;

    const won = await campaign('svc', first, 'a').response;
    expect(won.leader).toMatchObject({
      name: Buffer.from('svc'), key: Buffer.from(candidateKey('svc', first)),
      rev: won.header.revision, lease: first.toString(),
    });
    expect((await observed.next()).kv.value.toString()).toBe('a');

    const waiting = waiters.nextWait();
    const challenger = campaign('svc', second, 'b');
    await waiting;
    expect(keyExists(node, candidateKey('svc', second))).toBe(true);
    expect((await leader('svc')).kv.value.toString()).toBe('a');

    await proclaim(won.leader, 'a2');
    expect((await observed.next()).kv.value.toString()).toBe('a2');
    expect((await leader('svc')).kv.value.toString()).toBe('a2');
    const stale = { ...won.leader, rev: String(Number(won.leader.rev) + 1) };
    await expect(proclaim(stale, 'x')).rejects.toMatchObject({
      code: GrpcStatus.UNKNOWN, details: 'election: not leader',
    });

    await resign(won.leader);
    const next = await challenger.response;
    expect(next.leader.key.toString()).toBe(candidateKey('svc', second));
    const handedOver = await observed.next();
    expect(handedOver.kv).toMatchObject({
      key: Buffer.from(candidateKey('svc', second)), value: Buffer.from('b'),
    });
    expect((await leader('svc')).kv.value.toString()).toBe('b');
    await expect(proclaim(won.leader, 'late')).rejects.toMatchObject({
      code: GrpcStatus.UNKNOWN, details: 'election: not leader',
    });
    // Only changes are streamed: the refused proclaims sent nothing.
    expect(observed.buffered).toBe(0);
  });

  it('proclaims a new value when the lease campaigns again', async () => {
    const lease = await grantLease(harness.node);
    const first = await campaign('svc', lease, 'a').response;
    const again = await campaign('svc', lease, 'b').response;
    expect(again.leader.rev).toBe(first.leader.rev);
    expect((await leader('svc')).kv.value.toString()).toBe('b');
  });

  it('resigns a campaign cancelled while it waited', async () => {
    const { node, waiters } = harness;
    const [first, second] = [await grantLease(node), await grantLease(node)];
    await campaign('svc', first, 'a').response;
    const waiting = waiters.nextWait();
    const challenger = campaign('svc', second, 'b');
    await waiting;
    challenger.call.cancel();
    await expect(challenger.response).rejects.toMatchObject({ code: GrpcStatus.CANCELLED });
    await appliedUntil(node, () => !keyExists(node, candidateKey('svc', second)));
    expect(waiters.size).toBe(0);
  });

  it('fails a campaign whose lease is revoked while it waits', async () => {
    const { node, waiters } = harness;
    const [first, second] = [await grantLease(node), await grantLease(node)];
    await campaign('svc', first, 'a').response;
    const waiting = waiters.nextWait();
    const challenger = campaign('svc', second, 'b');
    await waiting;
    await revokeLease(node, second);
    await expect(challenger.response).rejects.toMatchObject({
      code: GrpcStatus.UNKNOWN, details: 'election: not leader',
    });
  });

  it('answers etcd\'s errors for a missing leader key and an unknown lease', async () => {
    const missing = { code: GrpcStatus.UNKNOWN, details: '"leader" field must be provided' };
    await expect(proclaim(null, 'x')).rejects.toMatchObject(missing);
    await expect(resign(null)).rejects.toMatchObject(missing);
    await expect(campaign('svc', 0x77n, 'v').response).rejects.toMatchObject({
      code: GrpcStatus.NOT_FOUND, details: 'etcdserver: requested lease not found',
    });
  });

  it('ends an Observe beyond waitersMax with etcd\'s too-many-requests status', async () => {
    const small = await startRecipeHarness('synod-election-bounded-', cleanups, { waitersMax: 1 });
    const started = small.waiters.nextWait();
    const first = small.election.Observe({ name: Buffer.from('svc') });
    first.on('error', () => {});
    first.on('data', () => {});
    cleanups.push(async () => first.cancel());
    await started;
    const refused = small.election.Observe({ name: Buffer.from('svc') });
    refused.on('data', () => {});
    const error = await new Promise((resolve) => refused.on('error', resolve));
    expect(error).toMatchObject({
      code: GrpcStatus.RESOURCE_EXHAUSTED, details: 'etcdserver: too many requests',
    });
  });

  it('stops following when the Observe stream is cancelled', async () => {
    const { waiters } = harness;
    const stream = harness.election.Observe({ name: Buffer.from('svc') });
    stream.on('error', () => {});
    const started = waiters.nextWait();
    stream.on('data', () => {});
    await started;
    expect(waiters.size).toBe(1);
    const ended = new Promise<void>((resolve) => stream.on('close', () => resolve()));
    stream.cancel();
    await ended;
    // The server learns of the cancellation asynchronously, then ends the wait.
    await waiters.untilIdle();
    expect(waiters.size).toBe(0);
  });
});
