import { afterEach, describe, expect, it } from 'vitest';
import { collectMarks, SynodError } from '../../base/index.js';
import {
  KvStateMachine, utf8, type ApplyResult, type Command,
} from '../../kv/index.js';
import type { SoftState } from '../../raft/index.js';
import { startLeader } from '../api/single-member-test-kit.js';
import { deferred, type Deferred } from '../node/deferred.js';
import { ManualClock } from './clock.js';
import { LeaseKeeper, type LeaseKeeperNode } from './lease-keeper.js';

const electionTimeoutMs = 1000;

/** A node whose proposals wait until the test applies or fails them. */
class FakeNode implements LeaseKeeperNode {
  isLeader = false;
  readonly stateMachine = KvStateMachine.open();
  readonly proposals: { command: Command; waiter: Deferred<ApplyResult> }[] = [];
  readonly #applied = new Set<(index: number) => void>();
  readonly #softState = new Set<(softState: SoftState) => void>();

  propose(command: Command): Promise<ApplyResult> {
    const waiter = deferred<ApplyResult>();
    this.proposals.push({ command, waiter });
    return waiter.promise;
  }

  /** Leadership confirmations asked for; each test settles them. */
  readonly confirmations: Deferred<number>[] = [];

  linearizableRead(): Promise<number> {
    const confirmation = deferred<number>();
    this.confirmations.push(confirmation);
    return confirmation.promise;
  }

  onApplied(listener: (index: number) => void): () => void {
    this.#applied.add(listener);
    return () => this.#applied.delete(listener);
  }

  onSoftState(listener: (softState: SoftState) => void): () => void {
    this.#softState.add(listener);
    return () => this.#softState.delete(listener);
  }

  /** Commits a command proposed by someone else (a client through any member). */
  commit(command: Command): ApplyResult {
    const result = this.stateMachine.apply(command);
    for (const listener of this.#applied) listener(0);
    return result;
  }

  /** Applies every pending proposal and resolves its waiter; returns the commands. */
  async applyPending(): Promise<Command[]> {
    const pending = this.proposals.splice(0);
    for (const { command, waiter } of pending) waiter.resolve(this.commit(command));
    await flushPromises();
    return pending.map(({ command }) => command);
  }

  setLeader(isLeader: boolean): void {
    this.isLeader = isLeader;
    const role = isLeader ? 'leader' : 'follower';
    const softState: SoftState = { leader: isLeader ? 1 : 2, role };
    for (const listener of this.#softState) listener(softState);
  }
}

async function flushPromises(): Promise<void> {
  for (let turn = 0; turn < 5; turn++) await Promise.resolve();
}

function grant(id: bigint, ttlSeconds: number): Command {
  return { type: 'leaseGrant', id, ttlSeconds };
}

function revokedIds(commands: Command[]): bigint[] {
  return commands.map((command) => {
    expect(command.type).toBe('leaseRevoke');
    return command.type === 'leaseRevoke' ? command.id : 0n;
  });
}

describe('LeaseKeeper', () => {
  const stops: (() => void)[] = [];
  afterEach(() => {
    for (const stop of stops.splice(0)) stop();
  });

  function setup(options: { leader?: boolean } = {}) {
    const node = new FakeNode();
    node.isLeader = options.leader ?? true;
    const clock = new ManualClock(10_000);
    const keeper = new LeaseKeeper({ node, clock, scheduler: clock, electionTimeoutMs });
    keeper.start();
    stops.push(() => keeper.stop());
    return { node, clock, keeper };
  }

  it('proposes one revoke for an expired lease, and forgets it once applied', async () => {
    const { node, clock, keeper } = setup();
    node.commit(grant(7n, 5));
    keeper.noteGranted(7n);
    clock.advanceMs(4_900);
    expect(node.proposals).toHaveLength(0);
    clock.advanceMs(500);
    expect(node.proposals.map((p) => p.command)).toEqual([{ type: 'leaseRevoke', id: 7n }]);
    // Still expired at the next checks, but its revoke is in flight: no second proposal.
    clock.advanceMs(1_000);
    expect(node.proposals).toHaveLength(1);
    expect(keeper.revokesInFlight).toBe(1);
    await node.applyPending();
    expect(keeper.revokesInFlight).toBe(0);
    expect(keeper.size).toBe(0);
    expect(node.stateMachine.store.leaseLeases().leases).toEqual([]);
    clock.advanceMs(1_000);
    expect(node.proposals).toHaveLength(0);
  });

  it('starts the clock of a lease granted through another member at the next check', () => {
    const { node, clock, keeper } = setup();
    clock.advanceMs(200);
    node.commit(grant(9n, 3));
    clock.advanceMs(300); // the check at +500 ms reconciles: deadline = +3500 ms
    expect(keeper.size).toBe(1);
    expect(keeper.remainingTtlSeconds(9n)).toBe(3);
    clock.advanceMs(2_999);
    expect(node.proposals).toHaveLength(0);
    clock.advanceMs(1);
    expect(node.proposals).toHaveLength(1);
  });

  it('renews on keepAlive and answers the granted TTL', () => {
    const { node, clock, keeper } = setup();
    node.commit(grant(1n, 4));
    expect(keeper.keepAlive(1n)).toBe(4);
    clock.advanceMs(3_500);
    expect(keeper.remainingTtlSeconds(1n)).toBe(0); // 0.5 s left truncates to 0, as etcd's does
    expect(keeper.keepAlive(1n)).toBe(4);
    expect(keeper.remainingTtlSeconds(1n)).toBe(4);
    clock.advanceMs(3_900);
    expect(node.proposals).toHaveLength(0);
    expect(keeper.remainingTtlSeconds(1n)).toBe(0);
    clock.advanceMs(500);
    expect(node.proposals).toHaveLength(1);
    // Expired with its revoke in flight: the lease is lost, and a keep-alive cannot save it.
    expect(keeper.keepAlive(1n)).toBe(0);
  });

  it('renews only once a quorum confirmed leadership after the keep-alive arrived', async () => {
    const { node, clock, keeper } = setup();
    node.commit(grant(7n, 5));
    keeper.noteGranted(7n);
    clock.advanceMs(3_000);
    const renewed = keeper.renew(7n);
    expect(node.confirmations).toHaveLength(1);
    // Not renewed while the confirmation is outstanding: 2 s left, not 5.
    clock.advanceMs(400);
    expect(keeper.remainingTtlSeconds(7n)).toBe(1);
    node.confirmations[0]!.resolve(3);
    expect(await renewed).toBe(5);
    expect(keeper.remainingTtlSeconds(7n)).toBe(5);
  });

  it('does not renew when leadership cannot be confirmed, or was lost meanwhile', async () => {
    const { node, clock, keeper } = setup();
    node.commit(grant(7n, 5));
    keeper.noteGranted(7n);
    clock.advanceMs(3_000);
    const unconfirmed = keeper.renew(7n);
    node.confirmations[0]!.reject(new SynodError('SYNOD_NO_LEADER'));
    await expect(unconfirmed).rejects.toMatchObject({ code: 'SYNOD_NO_LEADER' });
    expect(keeper.remainingTtlSeconds(7n)).toBe(2);
    const deposed = keeper.renew(7n);
    node.setLeader(false);
    node.confirmations[1]!.resolve(4);
    await expect(deposed).rejects.toMatchObject({ code: 'SYNOD_NOT_LEADER' });
  });

  it('answers an unknown lease: keepAlive 0, remaining -1, nothing tracked', () => {
    const { keeper } = setup();
    expect(keeper.keepAlive(42n)).toBe(0);
    expect(keeper.remainingTtlSeconds(42n)).toBe(-1);
    expect(keeper.size).toBe(0);
  });

  it('refuses keepAlive and remaining TTL off the leader with SYNOD_NOT_LEADER', () => {
    const { node, keeper } = setup({ leader: false });
    node.commit(grant(1n, 10));
    expect(() => keeper.keepAlive(1n))
      .toThrow(expect.objectContaining({ code: 'SYNOD_NOT_LEADER' }));
    expect(() => keeper.remainingTtlSeconds(1n)).toThrow(/leader/);
    expect(keeper.size).toBe(0);
  });

  it('on promotion gives every lease TTL + election timeout; on step-down drops deadlines', () => {
    const { node, clock, keeper } = setup({ leader: false });
    node.commit(grant(1n, 10));
    node.commit(grant(2n, 2));
    clock.advanceMs(60_000);
    expect(node.proposals).toHaveLength(0); // followers never expire leases
    node.setLeader(true);
    expect(keeper.size).toBe(2);
    expect(keeper.remainingTtlSeconds(2n)).toBe(3);
    clock.advanceMs(2_500);
    expect(node.proposals).toHaveLength(0);
    clock.advanceMs(500);
    expect(revokedIds(node.proposals.map((p) => p.command))).toEqual([2n]);
    node.setLeader(false);
    expect(keeper.size).toBe(0);
    clock.advanceMs(60_000);
    expect(node.proposals).toHaveLength(1);
    // Leading again: a fresh grace period, not the old deadlines.
    node.setLeader(true);
    expect(keeper.remainingTtlSeconds(1n)).toBe(11);
  });

  it('revokes at most 1000 leases per second, oldest deadline first', async () => {
    const { node, clock, keeper } = setup();
    for (let id = 1n; id <= 2_500n; id++) node.commit(grant(id, id <= 1_500n ? 2 : 3));
    clock.advanceMs(500); // reconcile: leases 1..1500 expire at +2.5 s, the rest at +3.5 s
    clock.advanceMs(2_000);
    const first = revokedIds(await node.applyPending());
    expect(first).toEqual(Array.from({ length: 1_000 }, (_, index) => BigInt(index + 1)));
    const marks = collectMarks(() => clock.advanceMs(500));
    expect(marks.get('lease revoke deferred: revokesPerSecondMax')).toBe(1);
    expect(node.proposals).toHaveLength(0);
    clock.advanceMs(500); // a second after the first batch: the older leases go first
    const second = revokedIds(await node.applyPending());
    expect(second).toHaveLength(1_000);
    expect(second.slice(0, 500)).toEqual(Array.from({ length: 500 }, (_, i) => BigInt(i + 1_001)));
    clock.advanceMs(500);
    expect(node.proposals).toHaveLength(0);
    clock.advanceMs(500);
    expect(node.proposals).toHaveLength(500);
    await node.applyPending();
    expect(keeper.size).toBe(0);
  });

  it('hands a revoke failure that is not a coded error to onFatal', async () => {
    const node = new FakeNode();
    node.isLeader = true;
    const clock = new ManualClock();
    const failures: unknown[] = [];
    const keeper = new LeaseKeeper({
      node, clock, scheduler: clock, electionTimeoutMs, onFatal: (error) => failures.push(error),
    });
    keeper.start();
    stops.push(() => keeper.stop());
    node.commit(grant(3n, 2));
    clock.advanceMs(2_500);
    const bug = new Error('not a SynodError');
    node.proposals.splice(0)[0]!.waiter.reject(bug);
    await flushPromises();
    expect(failures).toEqual([bug]);
    expect(keeper.revokesInFlight).toBe(0);
  });

  it('retries a revoke whose proposal was dropped by the node', async () => {
    const { node, clock } = setup();
    node.commit(grant(3n, 2));
    clock.advanceMs(2_500);
    node.proposals.splice(0)[0]!.waiter.reject(new SynodError('SYNOD_PROPOSAL_DROPPED'));
    await flushPromises();
    clock.advanceMs(500);
    expect(revokedIds(node.proposals.map((p) => p.command))).toEqual([3n]);
  });

  it('after a stall longer than an election timeout, extends deadlines instead of revoking', () => {
    const { node, clock, keeper } = setup();
    node.commit(grant(5n, 2));
    keeper.noteGranted(5n);
    clock.advanceMs(1_000);
    const marks = collectMarks(() => {
      clock.jumpMs(5_000); // the process froze; the next check fires late
      clock.advanceMs(0);
    });
    expect(marks.get('lease check: stalled, deadlines extended')).toBe(1);
    expect(node.proposals).toHaveLength(0);
    // The lease had 1 s left at the last on-time check, 11.5 s; the 4.5 s stall is not counted.
    expect(keeper.remainingTtlSeconds(5n)).toBe(0);
    clock.advanceMs(499);
    expect(node.proposals).toHaveLength(0);
    clock.advanceMs(1);
    expect(node.proposals).toHaveLength(1);
  });

  it('validates its options', () => {
    const node = new FakeNode();
    expect(() => new LeaseKeeper({ node, electionTimeoutMs: 0 })).toThrow(/electionTimeoutMs/);
    expect(() => new LeaseKeeper({ node, electionTimeoutMs: 1000, checkIntervalMs: 1.5 }))
      .toThrow(/checkIntervalMs/);
  });
});

describe('LeaseKeeper on a RaftNode', () => {
  const cleanups: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  it('expires a lease through Raft, deleting its keys at one revision', async () => {
    const node = await startLeader('synod-lease-keeper-', cleanups);
    const clock = new ManualClock();
    const keeper = new LeaseKeeper({ node, clock, scheduler: clock, electionTimeoutMs });
    keeper.start();
    cleanups.push(async () => keeper.stop());
    const granted = await node.propose(grant(0n, 2));
    if (!granted.ok || granted.result.type !== 'leaseGrant') throw new Error('grant failed');
    const id = granted.result.response.id;
    for (const key of ['a', 'b']) {
      await node.propose({ type: 'put', request: { key: utf8(key), value: utf8('v'), lease: id } });
    }
    const revisionBefore = node.stateMachine.store.currentRevision;
    clock.advanceMs(2_500);
    expect(keeper.revokesInFlight).toBe(1);
    await node.idle();
    await flushPromises();
    const store = node.stateMachine.store;
    expect(store.range({ key: utf8('a'), rangeEnd: utf8('c') }).kvs).toEqual([]);
    expect(store.currentRevision).toBe(revisionBefore + 1);
    expect(store.leaseLeases().leases).toEqual([]);
    expect(keeper.revokesInFlight).toBe(0);
    expect(keeper.keepAlive(id)).toBe(0);
  });
});
