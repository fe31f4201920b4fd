import { describe, expect, it } from 'vitest';
import { AssertionFailure, collectMarks } from '../../base/index.js';
import { utf8 } from '../bytes.js';
import { MvccStore } from '../mvcc-store.js';
import { eventsFor } from './watch-test-kit.js';
import { WatchHub } from './watch-hub.js';

/** One write, spelled `put a=1` or `del a`. */
type Write = `put ${string}=${string}` | `del ${string}`;

/** Applies `writes` to `store`, notifying `hub` when given (as the state machine would). */
function apply(store: MvccStore, writes: readonly Write[], hub?: WatchHub): void {
  for (const write of writes) {
    const [verb, argument] = write.split(' ') as ['put' | 'del', string];
    const [key, value] = argument.split('=') as [string, string | undefined];
    const { events } = verb === 'put'
      ? store.put({ key: utf8(key), value: utf8(value ?? '') })
      : store.deleteRange({ key: utf8(key) });
    hub?.notify(events, store.currentRevision);
  }
}

/** A store holding `writes`, as a snapshot from a member that applied them would. */
function snapshotStore(writes: readonly Write[], compactRevision = 0): MvccStore {
  const store = MvccStore.open();
  apply(store, writes);
  if (compactRevision > 0) store.compact(compactRevision);
  return store;
}

describe('replaceStore (a Raft snapshot replaced the state machine)', () => {
  it('a synced watcher reads what the snapshot skipped, then continues live', () => {
    const store = MvccStore.open();
    const hub = new WatchHub(store);
    const stream = hub.openStream();
    hub.create(stream, { key: utf8('a'), prevKv: true });
    apply(store, ['put a=1'], hub);
    expect(eventsFor(hub.drain(stream), 0)).toEqual(['PUT a=1@2']);

    const restored = snapshotStore(['put a=1', 'put a=2', 'put b=x', 'del a']);
    hub.replaceStore(restored);
    expect(hub.revision).toBe(5);
    hub.requestProgress(stream);
    const caughtUp = hub.drain(stream);
    expect(eventsFor(caughtUp, 0)).toEqual(['PUT a=2@3 prev=1', 'DELETE a@5 prev=2']);
    // The progress response comes only once the watcher has caught up with the new store.
    expect(caughtUp.at(-1)).toMatchObject({ watchId: -1, header: { revision: 5 } });

    apply(restored, ['put a=3'], hub);
    expect(eventsFor(hub.drain(stream), 0)).toEqual(['PUT a=3@6']);
  });

  it('a watcher waiting for a future start keeps waiting, or reads from its start', () => {
    const store = MvccStore.open();
    const hub = new WatchHub(store);
    const stream = hub.openStream();
    hub.create(stream, { key: utf8('a'), startRevision: 4 });
    hub.create(stream, { key: utf8('a'), startRevision: 9 });
    hub.drain(stream);

    hub.replaceStore(snapshotStore(['put a=1', 'put a=2', 'put a=3', 'put a=4']));
    expect(eventsFor(hub.drain(stream), 0)).toEqual(['PUT a=3@4', 'PUT a=4@5']);
    expect(eventsFor(hub.drain(stream), 1)).toEqual([]);
  });

  it('watchers below the new compaction point are canceled after what they buffered', () => {
    const store = MvccStore.open();
    const hub = new WatchHub(store, { watchBufferBytesMax: 100 });
    const stream = hub.openStream();
    hub.create(stream, { key: utf8('a') });
    hub.create(stream, { key: utf8('b') });
    hub.create(stream, { key: utf8('a'), startRevision: 6 });
    hub.drain(stream);
    // Watcher 0 becomes a victim holding revision 2; watcher 1 is synced, at revision 4.
    apply(store, ['put a=1', 'put a=2', 'put c=3'], hub);

    const restored = snapshotStore(['put a=1', 'put a=2', 'put c=3', 'put b=4', 'put a=5',
      'put a=6', 'put a=7'], 6);
    const marks = collectMarks(() => hub.replaceStore(restored));
    expect(marks.get('watch: restored below compaction')).toBe(2);

    const responses = hub.drain(stream);
    expect(eventsFor(responses, 0)).toEqual(['PUT a=1@2']);
    const cancels = responses.filter((response) => response.canceled);
    // Watcher 1 had nothing buffered, so its cancel comes in the first round-robin pass.
    expect(cancels.map((response) => [response.watchId, response.compactRevision]))
      .toEqual([[1, 6], [0, 6]]);
    // Watcher 2 needs nothing below its start, the compaction point itself, so it is kept.
    expect(eventsFor(responses, 2)).toEqual(['PUT a=5@6', 'PUT a=6@7', 'PUT a=7@8']);

    apply(restored, ['put a=8', 'put b=9'], hub);
    expect(eventsFor(hub.drain(stream), 2)).toEqual(['PUT a=8@9']);
    expect(hub.bufferedBytes(stream, 0)).toBeUndefined();
  });

  it('a snapshot at the hub revision changes nothing for synced watchers', () => {
    const store = MvccStore.open();
    const hub = new WatchHub(store);
    const stream = hub.openStream();
    hub.create(stream, { key: utf8('a') });
    apply(store, ['put a=1'], hub);
    hub.drain(stream);
    const restored = snapshotStore(['put a=1']);
    hub.replaceStore(restored);
    expect(hub.drain(stream)).toEqual([]);
    apply(restored, ['put a=2'], hub);
    expect(eventsFor(hub.drain(stream), 0)).toEqual(['PUT a=2@3']);
  });

  it('refuses a store behind the hub: a snapshot never moves a member backwards', () => {
    const store = MvccStore.open();
    const hub = new WatchHub(store);
    apply(store, ['put a=1', 'put a=2'], hub);
    expect(() => hub.replaceStore(snapshotStore(['put a=1']))).toThrow(AssertionFailure);
  });
});
