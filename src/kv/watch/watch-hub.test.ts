import { describe, expect, it } from 'vitest';
import { collectMarks } from '../../base/index.js';
import { prefixEnd, utf8 } from '../bytes.js';
import { watchCancelReasons } from './types.js';
import { describeEvent, eventsFor, WatchRig } from './watch-test-kit.js';

const zero = new Uint8Array([0]);

describe('live delivery', () => {
  it('a key watcher sees puts and deletes in order with kv and prev_kv', () => {
    const rig = new WatchRig();
    const stream = rig.hub.openStream();
    rig.hub.create(stream, { key: utf8('a'), prevKv: true });
    rig.put('a', '1');
    rig.put('b', 'x');
    rig.put('a', '2');
    rig.del('a');
    const responses = rig.hub.drain(stream);
    expect(responses[0]).toMatchObject({ watchId: 0, created: true, header: { revision: 1 } });
    expect(eventsFor(responses, 0)).toEqual(['PUT a=1@2', 'PUT a=2@4 prev=1', 'DELETE a@5 prev=2']);
    const deleted = responses.at(-1)!.events[0]!;
    expect(deleted.kv).toMatchObject({ version: 0, createRevision: 0, modRevision: 5 });
  });

  it('prefix and all-key ranges; no prev_kv unless asked; filters', () => {
    const rig = new WatchRig();
    const stream = rig.hub.openStream();
    rig.hub.create(stream, { key: utf8('p/'), rangeEnd: prefixEnd(utf8('p/')) });
    rig.hub.create(stream, { key: new Uint8Array(0), rangeEnd: zero, filters: ['NOPUT'] });
    rig.hub.create(stream, { key: utf8('p/'), rangeEnd: zero, filters: ['NODELETE'] });
    rig.put('p/1', 'a');
    rig.put('q', 'b');
    rig.put('o', 'c');
    rig.del('p/', 'p0');
    const responses = rig.hub.drain(stream);
    expect(eventsFor(responses, 0)).toEqual(['PUT p/1=a@2', 'DELETE p/1@5']);
    expect(eventsFor(responses, 1)).toEqual(['DELETE p/1@5']);
    expect(eventsFor(responses, 2)).toEqual(['PUT p/1=a@2', 'PUT q=b@3']);
  });

  it('cancel stops delivery; unknown cancels are ignored', () => {
    const rig = new WatchRig();
    const stream = rig.hub.openStream();
    rig.hub.create(stream, { key: utf8('a') });
    rig.put('a', '1');
    rig.hub.cancel(stream, 0);
    rig.hub.cancel(stream, 7);
    rig.put('a', '2');
    const responses = rig.hub.drain(stream);
    expect(responses.map((r) => [r.watchId, r.created, r.canceled])).toEqual([
      [0, true, false], [0, false, true],
    ]);
  });

  it('assigns ids from 0, honours client ids, rejects duplicates and empty ranges', () => {
    const rig = new WatchRig();
    const stream = rig.hub.openStream();
    rig.hub.create(stream, { key: utf8('a'), watchId: 1 });
    rig.hub.create(stream, { key: utf8('a') });
    rig.hub.create(stream, { key: utf8('a') });
    rig.hub.create(stream, { key: utf8('a'), watchId: 2 });
    rig.hub.create(stream, { key: utf8('b'), rangeEnd: utf8('a') });
    const responses = rig.hub.drain(stream);
    expect(responses.map((r) => r.watchId)).toEqual([1, 0, 2, -1, -1]);
    expect(responses[3]).toMatchObject({ created: true, canceled: true,
      cancelReason: watchCancelReasons.duplicateId });
    expect(responses[4]!.cancelReason).toBe(watchCancelReasons.emptyRange);
  });

  it('a future start revision waits for it', () => {
    const rig = new WatchRig();
    const stream = rig.hub.openStream();
    rig.hub.create(stream, { key: utf8('a'), startRevision: 4 });
    for (let index = 0; index < 4; index++) rig.put('a', `${index}`);
    expect(eventsFor(rig.hub.drain(stream), 0)).toEqual(['PUT a=2@4', 'PUT a=3@5']);
  });
});

describe('history', () => {
  it('a past start revision replays history, then continues live without gaps', () => {
    const rig = new WatchRig();
    rig.put('a', '1');
    rig.put('a', '2');
    rig.del('a');
    const stream = rig.hub.openStream();
    rig.hub.create(stream, { key: utf8('a'), startRevision: 3, prevKv: true });
    rig.put('a', '3');
    expect(eventsFor(rig.hub.drain(stream), 0)).toEqual([
      'PUT a=2@3 prev=1', 'DELETE a@4 prev=2', 'PUT a=3@5',
    ]);
    rig.put('a', '4');
    expect(eventsFor(rig.hub.drain(stream), 0)).toEqual(['PUT a=4@6 prev=3']);
  });

  it('a compacted start revision is created, then canceled with compact_revision', () => {
    const rig = new WatchRig();
    for (let index = 0; index < 5; index++) rig.put('a', `${index}`);
    rig.store.compact(4);
    const stream = rig.hub.openStream();
    rig.hub.create(stream, { key: utf8('a'), startRevision: 3 });
    rig.hub.create(stream, { key: utf8('a'), startRevision: 4 });
    const responses = rig.hub.drain(stream);
    expect(responses[0]).toMatchObject({ watchId: 0, created: true, canceled: false });
    expect(responses[1]).toMatchObject({ watchId: 0, canceled: true, compactRevision: 4 });
    expect(eventsFor(responses, 1)).toEqual(['PUT a=2@4', 'PUT a=3@5', 'PUT a=4@6']);
  });
});

describe('slow consumers', () => {
  it('a never-drained watcher stays bounded, does not slow a fast one, then catches up', () => {
    const rig = new WatchRig({ watchBufferBytesMax: 1024 });
    const slow = rig.hub.openStream();
    const fast = rig.hub.openStream();
    rig.hub.create(slow, { key: utf8('k'), rangeEnd: utf8('l') });
    rig.hub.create(fast, { key: utf8('k'), rangeEnd: utf8('l') });
    const expected: string[] = [];
    const fastSeen: string[] = [];
    const marks = collectMarks(() => {
      for (let index = 0; index < 200; index++) {
        const revision = rig.put(`k${index % 7}`, `v${index}`);
        expected.push(`PUT k${index % 7}=v${index}@${revision}`);
        fastSeen.push(...eventsFor(rig.hub.drain(fast), 0));
        expect(rig.hub.bufferedBytes(slow, 0)).toBeLessThanOrEqual(1024);
      }
    });
    expect(marks.get('watch: victim')).toBe(1);
    expect(fastSeen).toEqual(expected);
    const slowSeen: string[] = [];
    for (let round = 0; round < 1000; round++) {
      const responses = rig.hub.drain(slow, { responsesMax: 3 });
      if (responses.length === 0) break;
      slowSeen.push(...eventsFor(responses, 0));
      if (round === 5) expected.push(`PUT k0=late@${rig.put('k0', 'late')}`);
    }
    expect(slowSeen).toEqual(expected);
  });

  it('a victim whose history is compacted is canceled after what it buffered', () => {
    const rig = new WatchRig({ watchBufferBytesMax: 100 });
    const stream = rig.hub.openStream();
    rig.hub.create(stream, { key: utf8('a') });
    rig.put('a', '1');
    rig.put('a', '2');
    rig.put('a', '3');
    rig.store.compact(4);
    const responses = rig.hub.drain(stream);
    expect(eventsFor(responses, 0)).toEqual(['PUT a=1@2']);
    expect(responses.at(-1)).toMatchObject({ watchId: 0, canceled: true, compactRevision: 4 });
    rig.put('a', '4');
    expect(rig.hub.drain(stream)).toEqual([]);
  });
});

describe('fragments and progress', () => {
  it('splits a large revision for fragment watchers and reassembles to the same events', () => {
    const rig = new WatchRig({ fragmentBytesMax: 300 });
    for (let index = 0; index < 10; index++) rig.put(`f${index}`, 'x'.repeat(50));
    const stream = rig.hub.openStream();
    rig.hub.create(stream, { key: utf8('f'), rangeEnd: utf8('g'), fragment: true, prevKv: true });
    rig.hub.create(stream, { key: utf8('f'), rangeEnd: utf8('g') });
    rig.del('f', 'g');
    const responses = rig.hub.drain(stream).filter((r) => r.events.length > 0);
    const parts = responses.filter((r) => r.watchId === 0);
    expect(parts.length).toBeGreaterThan(1);
    expect(parts.map((r) => r.fragment)).toEqual([...parts.map(() => true).slice(1), false]);
    const whole = responses.filter((r) => r.watchId === 1);
    expect(whole).toHaveLength(1);
    const joined = parts.flatMap((r) => r.events.map((event) => describeEvent({ ...event,
      prevKv: undefined })));
    expect(joined).toEqual(whole[0]!.events.map(describeEvent));
  });

  it('progress requests wait for sync; progress_notify skips watchers that had events', () => {
    const rig = new WatchRig({ watchBufferBytesMax: 100 });
    const stream = rig.hub.openStream();
    rig.hub.create(stream, { key: utf8('a'), progressNotify: true });
    rig.hub.create(stream, { key: utf8('b'), progressNotify: true });
    rig.put('a', '1');
    rig.put('a', '2');
    rig.hub.requestProgress(stream);
    rig.hub.notifyProgress();
    const first = rig.hub.drain(stream, { responsesMax: 3 });
    expect(first.map((r) => r.watchId)).toEqual([0, 1, 1]);
    const rest = rig.hub.drain(stream);
    expect(eventsFor(rest, 0)).toEqual(['PUT a=1@2', 'PUT a=2@3']);
    expect(rest.at(-1)).toMatchObject({ watchId: -1, events: [], header: { revision: 3 } });
    rig.hub.notifyProgress();
    const periodic = rig.hub.drain(stream);
    expect(periodic.map((r) => [r.watchId, r.header.revision])).toEqual([[1, 3]]);
  });
});
