import { afterEach, describe, expect, it } from 'vitest';
import { AssertionFailure, SynodError, type ErrorCode } from '../base/index.js';
import { utf8, type ApplyResult, type Command } from '../kv/index.js';
import { startLeader } from './api/single-member-test-kit.js';
import {
  AutoCompactor, periodicIntervals, periodicSamplesMax, revisionCheckIntervalMsDefault,
  type AutoCompactorNode, type AutoCompactorOptions,
} from './compactor.js';
import type { AutoCompaction } from './flags.js';
import { ManualClock } from './lease/clock.js';
import { deferred, type Deferred } from './node/deferred.js';

const minuteMs = 60_000;
const hourMs = 60 * minuteMs;

/** A node whose proposals wait until the test applies or fails them. */
class FakeNode implements AutoCompactorNode {
  isLeader = true;
  readonly stateMachine = { store: { currentRevision: 1, compactRevision: 0 } };
  readonly proposals: { command: Command; waiter: Deferred<ApplyResult> }[] = [];

  propose(command: Command): Promise<ApplyResult> {
    const waiter = deferred<ApplyResult>();
    this.proposals.push({ command, waiter });
    return waiter.promise;
  }

  /** The revisions of the compactions proposed so far, forgetting them. */
  takeProposed(): number[] {
    return this.proposals.splice(0).map(({ command }) => {
      expect(command.type).toBe('compact');
      return command.type === 'compact' ? command.revision : -1;
    });
  }

  /** Applies the one pending compaction. */
  async applyPending(): Promise<void> {
    const [proposal] = this.proposals.splice(0, 1);
    if (proposal?.command.type !== 'compact') throw new Error('no compaction pending');
    this.stateMachine.store.compactRevision = proposal.command.revision;
    const header = { revision: this.stateMachine.store.currentRevision };
    const result = { type: 'compact', response: { header } } as const;
    proposal.waiter.resolve({ ok: true, result, events: [] });
    await flushPromises();
  }

  /** Settles the one pending compaction as refused when applied with `code`. */
  async refusePending(code: ErrorCode): Promise<void> {
    const [proposal] = this.proposals.splice(0, 1);
    proposal!.waiter.resolve({ ok: false, error: new SynodError(code), events: [] });
    await flushPromises();
  }

  /** Settles the one pending compaction as not applied (rejected with `error`). */
  async rejectPending(error: unknown): Promise<void> {
    const [proposal] = this.proposals.splice(0, 1);
    proposal!.waiter.reject(error);
    await flushPromises();
  }
}

async function flushPromises(): Promise<void> {
  for (let turn = 0; turn < 5; turn++) await Promise.resolve();
}

interface Harness {
  readonly node: FakeNode;
  readonly clock: ManualClock;
  readonly compactor: AutoCompactor;
  readonly compacted: number[];
  readonly fatal: unknown[];
}

describe('AutoCompactor', () => {
  const stops: (() => void)[] = [];
  afterEach(() => {
    for (const stop of stops.splice(0)) stop();
  });

  function harness(
    autoCompaction: AutoCompaction, options: Partial<AutoCompactorOptions> = {},
  ): Harness {
    const node = new FakeNode();
    const clock = new ManualClock();
    const compacted: number[] = [];
    const fatal: unknown[] = [];
    const compactor = new AutoCompactor({
      node, autoCompaction, clock, scheduler: clock,
      onCompacted: (revision) => compacted.push(revision),
      onFatal: (error) => fatal.push(error),
      ...options,
    });
    compactor.start();
    stops.push(() => compactor.stop());
    return { node, clock, compactor, compacted, fatal };
  }

  describe('configuration', () => {
    const node = new FakeNode();
    it.each<[string, Partial<AutoCompactorOptions>]>([
      ['zero revisions', { autoCompaction: { mode: 'revision', retentionRevisions: 0 } }],
      ['fractional revisions', { autoCompaction: { mode: 'revision', retentionRevisions: 1.5 } }],
      ['negative period', { autoCompaction: { mode: 'periodic', retentionMs: -1 } }],
      ['infinite period', { autoCompaction: { mode: 'periodic', retentionMs: Infinity } }],
      ['zero check interval', { revisionCheckIntervalMs: 0 }],
      ['unknown mode', { autoCompaction: { mode: 'sometimes' } as unknown as AutoCompaction }],
    ])('refuses %s with SYNOD_INVALID_CONFIG', (_name, options) => {
      const make = (): AutoCompactor => new AutoCompactor({
        node, autoCompaction: { mode: 'revision', retentionRevisions: 10 }, ...options,
      });
      expect(make).toThrow(expect.objectContaining({ code: 'SYNOD_INVALID_CONFIG' }));
    });

    it('does nothing when off', () => {
      const { node: offNode, clock } = harness({ mode: 'off' });
      offNode.stateMachine.store.currentRevision = 1_000_000;
      clock.advanceMs(48 * hourMs);
      expect(offNode.proposals).toEqual([]);
    });

    it('follows etcd 3.4 periodic intervals, with samples bounded', () => {
      const intervals = (sampleIntervalMs: number, compactIntervalMs: number): object => ({
        sampleIntervalMs, compactIntervalMs,
      });
      expect(periodicIntervals(hourMs)).toEqual(intervals(6 * minuteMs, hourMs));
      expect(periodicIntervals(24 * hourMs)).toEqual(intervals(6 * minuteMs, hourMs));
      expect(periodicIntervals(10 * minuteMs)).toEqual(intervals(minuteMs, 10 * minuteMs));
      expect(periodicIntervals(5_000)).toEqual(intervals(500, 5_000));
      const long = 100_000 * hourMs;
      const { sampleIntervalMs } = periodicIntervals(long);
      expect(long / sampleIntervalMs + 2).toBeLessThanOrEqual(periodicSamplesMax);
    });
  });

  describe('revision mode', () => {
    const autoCompaction: AutoCompaction = { mode: 'revision', retentionRevisions: 100 };

    it('compacts to current - retention every 5 minutes', async () => {
      const { node, clock, compacted } = harness(autoCompaction);
      node.stateMachine.store.currentRevision = 1000;
      clock.advanceMs(revisionCheckIntervalMsDefault - 1);
      expect(node.takeProposed()).toEqual([]);
      clock.advanceMs(1);
      expect(node.proposals.map((p) => p.command)).toEqual([{ type: 'compact', revision: 900 }]);
      await node.applyPending();
      expect(compacted).toEqual([900]);
      node.stateMachine.store.currentRevision = 1500;
      clock.advanceMs(revisionCheckIntervalMsDefault);
      expect(node.takeProposed()).toEqual([1400]);
    });

    it('honours revisionCheckIntervalMs', () => {
      const { node, clock } = harness(autoCompaction, { revisionCheckIntervalMs: 1000 });
      node.stateMachine.store.currentRevision = 150;
      clock.advanceMs(1000);
      expect(node.takeProposed()).toEqual([50]);
    });

    it('proposes nothing while current - retention <= compactRevision', async () => {
      const { node, clock } = harness(autoCompaction);
      node.stateMachine.store.currentRevision = 100;
      clock.advanceMs(revisionCheckIntervalMsDefault);
      expect(node.takeProposed()).toEqual([]);
      node.stateMachine.store.currentRevision = 300;
      node.stateMachine.store.compactRevision = 200;
      clock.advanceMs(revisionCheckIntervalMsDefault);
      expect(node.takeProposed()).toEqual([]);
      node.stateMachine.store.currentRevision = 301;
      clock.advanceMs(revisionCheckIntervalMsDefault);
      expect(node.takeProposed()).toEqual([201]);
    });

    it('pauses off the leader and resumes at the next tick after winning', () => {
      const { node, clock } = harness(autoCompaction);
      node.isLeader = false;
      node.stateMachine.store.currentRevision = 1000;
      clock.advanceMs(3 * revisionCheckIntervalMsDefault);
      expect(node.takeProposed()).toEqual([]);
      node.isLeader = true;
      clock.advanceMs(revisionCheckIntervalMsDefault);
      expect(node.takeProposed()).toEqual([900]);
    });

    it('never has two compactions in flight', async () => {
      const { node, clock, compactor } = harness(autoCompaction);
      node.stateMachine.store.currentRevision = 1000;
      clock.advanceMs(revisionCheckIntervalMsDefault);
      expect(compactor.compactionInFlight).toBe(true);
      node.stateMachine.store.currentRevision = 2000;
      clock.advanceMs(3 * revisionCheckIntervalMsDefault);
      expect(node.proposals).toHaveLength(1);
      await node.applyPending();
      expect(compactor.compactionInFlight).toBe(false);
      clock.advanceMs(revisionCheckIntervalMsDefault);
      expect(node.takeProposed()).toEqual([1900]);
    });

    it.each<ErrorCode>(['SYNOD_COMPACTED', 'SYNOD_FUTURE_REVISION'])(
      'skips a compaction refused with %s',
      async (code) => {
        const { node, clock, compacted, fatal } = harness(autoCompaction);
        node.stateMachine.store.currentRevision = 1000;
        clock.advanceMs(revisionCheckIntervalMsDefault);
        await node.refusePending(code);
        expect({ compacted, fatal }).toEqual({ compacted: [], fatal: [] });
        node.stateMachine.store.currentRevision = 1100;
        clock.advanceMs(revisionCheckIntervalMsDefault);
        expect(node.takeProposed()).toEqual([1000]);
      },
    );

    it.each<ErrorCode>(['SYNOD_NO_LEADER', 'SYNOD_PROPOSAL_DROPPED', 'SYNOD_REQUEST_TIMEOUT'])(
      'retries a compaction rejected with %s at the next tick',
      async (code) => {
        const { node, clock, compacted, fatal } = harness(autoCompaction);
        node.stateMachine.store.currentRevision = 1000;
        clock.advanceMs(revisionCheckIntervalMsDefault);
        await node.rejectPending(new SynodError(code));
        expect({ compacted, fatal }).toEqual({ compacted: [], fatal: [] });
        clock.advanceMs(revisionCheckIntervalMsDefault);
        expect(node.proposals.map((p) => p.command)).toEqual([{ type: 'compact', revision: 900 }]);
        await node.applyPending();
        expect(compacted).toEqual([900]);
      },
    );

    it('ignores a rejection because the node stopped', async () => {
      const { node, clock, fatal } = harness(autoCompaction);
      node.stateMachine.store.currentRevision = 1000;
      clock.advanceMs(revisionCheckIntervalMsDefault);
      await node.rejectPending(new SynodError('SYNOD_NODE_STOPPED'));
      expect(fatal).toEqual([]);
    });

    it('hands any other failure to onFatal', async () => {
      const { node, clock, fatal } = harness(autoCompaction);
      node.stateMachine.store.currentRevision = 1000;
      clock.advanceMs(revisionCheckIntervalMsDefault);
      await node.refusePending('SYNOD_CORRUPT_CLUSTER');
      clock.advanceMs(revisionCheckIntervalMsDefault);
      await node.rejectPending(new SynodError('SYNOD_READ_INDEX_BUSY'));
      clock.advanceMs(revisionCheckIntervalMsDefault);
      const bug = new AssertionFailure('broken');
      await node.rejectPending(bug);
      clock.advanceMs(revisionCheckIntervalMsDefault);
      const crash = new TypeError('not a coded error');
      await node.rejectPending(crash);
      expect(fatal.map((error) => (error as { code?: string }).code ?? error)).toEqual([
        'SYNOD_CORRUPT_CLUSTER', 'SYNOD_READ_INDEX_BUSY', bug, crash,
      ]);
    });

    it('stop() cancels the ticks and stops reporting', async () => {
      const { node, clock, compactor, compacted } = harness(autoCompaction);
      node.stateMachine.store.currentRevision = 1000;
      clock.advanceMs(revisionCheckIntervalMsDefault);
      compactor.stop();
      await node.applyPending();
      expect(compacted).toEqual([]);
      node.stateMachine.store.currentRevision = 5000;
      clock.advanceMs(10 * revisionCheckIntervalMsDefault);
      compactor.tick();
      expect(node.proposals).toEqual([]);
    });
  });

  describe('periodic mode', () => {
    /** Advances `ms` in steps of `stepMs`, adding one revision per step. */
    function writeFor(h: Harness, ms: number, stepMs: number): void {
      for (let elapsedMs = 0; elapsedMs < ms; elapsedMs += stepMs) {
        h.node.stateMachine.store.currentRevision += 1;
        h.clock.advanceMs(stepMs);
      }
    }

    it('compacts hourly to the revision seen one retention ago (1 h)', async () => {
      const h = harness({ mode: 'periodic', retentionMs: hourMs });
      // One revision per minute: the revision at minute m is 1 + m.
      writeFor(h, hourMs - minuteMs, minuteMs);
      expect(h.node.proposals).toEqual([]);
      writeFor(h, minuteMs, minuteMs);
      // At 60 min the sample from 0 min (revision 1) is exactly one retention old.
      expect(h.node.proposals.map((p) => p.command)).toEqual([{ type: 'compact', revision: 1 }]);
      await h.node.applyPending();
      writeFor(h, hourMs, minuteMs);
      // At 120 min: the sample taken at 60 min, when the revision was 61.
      expect(h.node.takeProposed()).toEqual([61]);
    });

    it('samples every retention/10 and compacts every retention under an hour', async () => {
      const h = harness({ mode: 'periodic', retentionMs: 10 * minuteMs });
      writeFor(h, 10 * minuteMs, 30_000);
      expect(h.node.proposals.map((p) => p.command)).toEqual([{ type: 'compact', revision: 1 }]);
      await h.node.applyPending();
      writeFor(h, 5 * minuteMs, 30_000);
      expect(h.node.proposals).toEqual([]);
      writeFor(h, 5 * minuteMs, 30_000);
      // At 20 min: the sample at 10 min, when two revisions a minute had made it 21.
      expect(h.node.takeProposed()).toEqual([21]);
    });

    it('waits a whole 24 h retention, then compacts hourly, holding few samples', async () => {
      const h = harness({ mode: 'periodic', retentionMs: 24 * hourMs });
      writeFor(h, 24 * hourMs - 6 * minuteMs, 6 * minuteMs);
      expect(h.node.proposals).toEqual([]);
      writeFor(h, 6 * minuteMs, 6 * minuteMs);
      expect(h.node.proposals.map((p) => p.command)).toEqual([{ type: 'compact', revision: 1 }]);
      await h.node.applyPending();
      for (let hour = 1; hour <= 24; hour++) {
        writeFor(h, hourMs, 6 * minuteMs);
        // The revision seen at hour `hour`, 10 writes an hour.
        expect(h.node.proposals.map((p) => p.command)).toEqual([
          { type: 'compact', revision: 1 + 10 * hour },
        ]);
        await h.node.applyPending();
        expect(h.compactor.sampleCount).toBeLessThanOrEqual(24 * 10 + 1);
      }
      expect(h.compacted).toHaveLength(25);
    });

    it('retries a failed compaction at the next sample', async () => {
      const h = harness({ mode: 'periodic', retentionMs: hourMs });
      writeFor(h, hourMs, 6 * minuteMs);
      await h.node.rejectPending(new SynodError('SYNOD_NO_LEADER'));
      writeFor(h, 6 * minuteMs, 6 * minuteMs);
      // At 66 min: the sample from 6 min, after one write.
      expect(h.node.takeProposed()).toEqual([2]);
    });

    it('treats an already compacted target as done and waits an interval', async () => {
      const h = harness({ mode: 'periodic', retentionMs: hourMs });
      h.node.stateMachine.store.currentRevision = 50;
      h.node.stateMachine.store.compactRevision = 50;
      writeFor(h, hourMs, 6 * minuteMs);
      expect(h.node.proposals).toEqual([]);
      writeFor(h, hourMs - 6 * minuteMs, 6 * minuteMs);
      expect(h.node.proposals).toEqual([]);
      writeFor(h, 6 * minuteMs, 6 * minuteMs);
      // At 120 min: the sample at 60 min, when 10 writes had made the revision 60.
      expect(h.node.takeProposed()).toEqual([60]);
    });

    it('samples while following, and compacts at the first tick after winning', () => {
      const h = harness({ mode: 'periodic', retentionMs: hourMs });
      h.node.isLeader = false;
      writeFor(h, 3 * hourMs, 6 * minuteMs);
      expect(h.node.proposals).toEqual([]);
      h.node.isLeader = true;
      writeFor(h, 6 * minuteMs, 6 * minuteMs);
      // At 186 min: the sample at 126 min, after 21 writes.
      expect(h.node.takeProposed()).toEqual([22]);
    });

    it('pauses when stepping down with a compaction due', async () => {
      const h = harness({ mode: 'periodic', retentionMs: hourMs });
      writeFor(h, hourMs, 6 * minuteMs);
      await h.node.applyPending();
      h.node.isLeader = false;
      writeFor(h, 2 * hourMs, 6 * minuteMs);
      expect(h.node.proposals).toEqual([]);
      expect(h.compacted).toEqual([1]);
    });

    it('stop() cancels sampling and compaction', () => {
      const h = harness({ mode: 'periodic', retentionMs: hourMs });
      h.compactor.stop();
      writeFor(h, 3 * hourMs, 6 * minuteMs);
      expect(h.node.proposals).toEqual([]);
      expect(h.compactor.sampleCount).toBe(1);
    });
  });

  describe('with a RaftNode', () => {
    const cleanups: (() => Promise<void>)[] = [];
    afterEach(async () => {
      for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
    });

    it('compacts the leader store to current - retention', async () => {
      const node = await startLeader('synod-compactor-', cleanups);
      const clock = new ManualClock();
      const compacted: number[] = [];
      const compactor = new AutoCompactor({
        node, autoCompaction: { mode: 'revision', retentionRevisions: 2 },
        clock, scheduler: clock, onCompacted: (revision) => compacted.push(revision),
      });
      compactor.start();
      cleanups.push(async () => compactor.stop());
      for (const key of ['a', 'b', 'c', 'd', 'e']) {
        const request = { key: utf8(key), value: utf8('v') };
        const result = await node.propose({ type: 'put', request });
        expect(result.ok).toBe(true);
      }
      const store = node.stateMachine.store;
      const expected = store.currentRevision - 2;
      clock.advanceMs(revisionCheckIntervalMsDefault);
      expect(compactor.compactionInFlight).toBe(true);
      await node.idle();
      await flushPromises();
      expect(store.compactRevision).toBe(expected);
      expect(compacted).toEqual([expected]);
      expect(compactor.compactionInFlight).toBe(false);
    });
  });
});
