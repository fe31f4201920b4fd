import { describe, expect, it } from 'vitest';
import {
  checkWatch, type WatchEventRecord, type WatchHistory, type WatchPutEntry,
  type WatchSessionRecord, type WatcherRecord,
} from './watch-checker.js';

/** Revisions 10..15 under the prefix, each a put of p/<r % 2> = v<r>. */
const committed: WatchEventRecord[] = [10, 11, 12, 13, 14, 15].map(event);

function event(revision: number): WatchEventRecord {
  return { revision, key: `p/${revision % 2}`, value: `v${revision}`, type: 'PUT', atMs: revision };
}

function put(revision: number): WatchPutEntry {
  const { key, value } = event(revision);
  return { workload: 'watch', clientId: 0, member: 'm1', call: { key, value },
    invokedAtMs: revision - 1, completedAtMs: revision, outcome: 'ok', result: { revision } };
}

function session(
  startRevision: number,
  events: readonly WatchEventRecord[],
  end: WatchSessionRecord['end'] = 'failed',
): WatchSessionRecord {
  return { member: 'm1', startRevision, openedAtMs: 0, endedAtMs: 100, end, events };
}

function history(watchers: readonly WatcherRecord[]): WatchHistory {
  return {
    prefix: 'p/',
    writes: committed.map((e) => put(e.revision)),
    watchers,
    groundTruth: { events: committed, complete: true, lastRevision: 15 },
  };
}

const upTo = (last: number) => committed.filter((e) => e.revision <= last);
const after = (first: number) => committed.filter((e) => e.revision >= first);

describe('checkWatch', () => {
  it('passes watchers that resumed after a failure and caught up', () => {
    const verdict = checkWatch(history([
      { watcherId: 0, caughtUp: true, sessions: [session(10, committed, 'stopped')] },
      { watcherId: 1, caughtUp: true,
        sessions: [
          session(10, upTo(12)), session(13, [], 'failed'), session(13, after(13), 'stopped'),
        ] },
    ]));
    expect(verdict.violations).toEqual([]);
    expect(verdict.valid).toBe(true);
    expect(verdict.stats).toMatchObject({ eventsDelivered: 12, reconnects: 2, committedEvents: 6 });
  });

  it('catches a gap: a reconnect that skipped a revision', () => {
    const verdict = checkWatch(history([{ watcherId: 0, caughtUp: true,
      sessions: [session(10, upTo(12)), session(14, after(14), 'stopped')] }]));
    expect(verdict.valid).toBe(false);
    expect(verdict.violations.join('\n')).toMatch(/resumed at revision 14, expected 13/);
    expect(verdict.violations.join('\n'))
      .toMatch(/gap of 1 committed revisions .* first missing 13/);
  });

  it('catches a gap inside one stream', () => {
    const verdict = checkWatch(history([{ watcherId: 0, caughtUp: true,
      sessions: [session(10, committed.filter((e) => e.revision !== 11), 'stopped')] }]));
    expect(verdict.violations).toEqual([expect.stringMatching(/first missing 11$/)]);
  });

  it('catches a duplicate: a reconnect that replayed the last revision', () => {
    const verdict = checkWatch(history([{ watcherId: 0, caughtUp: true,
      sessions: [session(10, upTo(12)), session(12, after(12), 'stopped')] }]));
    expect(verdict.valid).toBe(false);
    expect(verdict.violations.join('\n')).toMatch(/duplicate PUT p\/0=v12@12/);
  });

  it('catches a value the cluster never committed and an acknowledged put missing', () => {
    const wrong = { ...event(13), value: 'bogus' };
    const base = history([{ watcherId: 0, caughtUp: true,
      sessions: [session(10, [...upTo(12), wrong, ...after(14)], 'stopped')] }]);
    const verdict = checkWatch({ ...base, writes: [...base.writes, { ...put(16) }] });
    expect(verdict.violations.join('\n'))
      .toMatch(/delivered PUT p\/1=bogus@13, committed PUT p\/1=v13@13/);
    expect(verdict.lostWrites).toBe(1);
  });

  it('does not blame a watcher for what it could not see', () => {
    const verdict = checkWatch(history([
      // Not caught up: judged up to its last delivered revision.
      { watcherId: 0, caughtUp: false, sessions: [session(10, upTo(12), 'stopped')] },
      // Compacted during a resume: a legitimate cancel, counted, not a violation.
      { watcherId: 1, caughtUp: false,
        sessions: [
          session(10, upTo(11)), { ...session(12, [], 'compacted'), compactRevision: 14 },
        ] },
    ]));
    expect(verdict.violations).toEqual([]);
    expect(verdict.stats['compactedCancels']).toBe(1);
  });

  it('refuses to judge gaps without a complete ground truth', () => {
    const base = history([{ watcherId: 0, caughtUp: true, sessions: [session(10, committed)] }]);
    const verdict = checkWatch({ ...base, groundTruth: { ...base.groundTruth, complete: false } });
    expect(verdict.violations).toEqual([expect.stringMatching(/ground truth incomplete/)]);
  });
});
