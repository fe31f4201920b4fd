/**
 * The watch checker: every watcher saw exactly the prefix's committed events, in revision order,
 * once each, with the committed keys and values, across its reconnects. Pure over the recorded
 * data; the ground truth is one watch from revision 1 taken after the writers stopped (no
 * compaction runs during the workload, so that history is complete).
 *
 * Events are identified by revision: the workload writes one key per request, so each revision
 * under the prefix holds one event. A multi-key Txn would need (revision, key) identities here.
 */

import type { CheckVerdict, HistoryEntry } from '../types.js';

/** One event as a watch stream delivered it. Keys and values are UTF-8 (the workload's own). */
export interface WatchEventRecord {
  /** `kv.mod_revision`: the revision of the put or delete. */
  readonly revision: number;
  readonly key: string;
  readonly value: string;
  readonly type: 'PUT' | 'DELETE';
  /** When the client received it (ms since the run started). */
  readonly atMs: number;
}

/** How one watch stream ended. */
export type WatchSessionEnd =
  /** The workload stopped it. */
  | 'stopped'
  /** The stream failed (error, end, or a cancel without a compact revision). */
  | 'failed'
  /** The server cancelled it because `startRevision` was compacted: legitimate, reported. */
  | 'compacted';

/** One watch stream of one watcher: from its create request to its end. */
export interface WatchSessionRecord {
  readonly member: string;
  readonly startRevision: number;
  readonly openedAtMs: number;
  readonly endedAtMs: number;
  readonly end: WatchSessionEnd;
  /** The server's `compact_revision` when `end` is 'compacted'. */
  readonly compactRevision?: number;
  readonly error?: string;
  readonly events: readonly WatchEventRecord[];
}

/** Everything one watcher client did, sessions in order. */
export interface WatcherRecord {
  readonly watcherId: number;
  readonly sessions: readonly WatchSessionRecord[];
  /** Whether it delivered the prefix's last committed revision before the run ended. */
  readonly caughtUp: boolean;
}

/** A writer's put, as the history records it. */
export type WatchPutEntry = HistoryEntry<
  { readonly key: string; readonly value: string },
  { readonly revision: number }
>;

/** The prefix's committed events, read after the writers stopped. */
export interface WatchGroundTruth {
  readonly events: readonly WatchEventRecord[];
  /** Whether the read reached the prefix's last committed revision. */
  readonly complete: boolean;
  /** The last committed revision of the prefix (0 when it holds nothing). */
  readonly lastRevision: number;
}

/** What the watch workload records. */
export interface WatchHistory {
  readonly prefix: string;
  readonly writes: readonly WatchPutEntry[];
  readonly watchers: readonly WatcherRecord[];
  readonly groundTruth: WatchGroundTruth;
}

/** Violations listed per watcher before the rest are only counted. */
const violationsPerWatcherMax = 20;

/** Checks `history`; see the module comment for the properties. */
export function checkWatch(history: WatchHistory): CheckVerdict {
  const violations: string[] = [];
  const truth = new Map<number, WatchEventRecord>();
  for (const event of history.groundTruth.events) truth.set(event.revision, event);
  if (!history.groundTruth.complete) {
    violations.push(`ground truth incomplete: the final watch from revision 1 did not reach ` +
      `revision ${history.groundTruth.lastRevision}; gaps cannot be judged`);
  }
  const lostWrites = checkWrites(history.writes, truth, violations);
  let delivered = 0;
  let sessions = 0;
  let compactedCancels = 0;
  for (const watcher of history.watchers) {
    const found = checkWatcher(watcher, history.groundTruth, truth);
    violations.push(...found.slice(0, violationsPerWatcherMax));
    if (found.length > violationsPerWatcherMax) {
      violations.push(`watcher ${watcher.watcherId}: ` +
        `${found.length - violationsPerWatcherMax} more violations`);
    }
    sessions += watcher.sessions.length;
    for (const session of watcher.sessions) {
      delivered += session.events.length;
      if (session.end === 'compacted') compactedCancels += 1;
    }
  }
  return {
    checker: 'watch',
    valid: violations.length === 0,
    violations,
    lostWrites,
    stats: {
      writesOk: count(history.writes, 'ok'),
      writesUnknown: count(history.writes, 'unknown'),
      writesFailed: count(history.writes, 'failed'),
      committedEvents: history.groundTruth.events.length,
      watchers: history.watchers.length,
      watchersCaughtUp: history.watchers.filter((watcher) => watcher.caughtUp).length,
      sessions,
      reconnects: sessions - history.watchers.length,
      compactedCancels,
      eventsDelivered: delivered,
    },
  };
}

function count(writes: readonly WatchPutEntry[], outcome: WatchPutEntry['outcome']): number {
  return writes.filter((write) => write.outcome === outcome).length;
}

/** Every acknowledged put must be in the ground truth at its revision; returns how many are not. */
function checkWrites(
  writes: readonly WatchPutEntry[],
  truth: ReadonlyMap<number, WatchEventRecord>,
  violations: string[],
): number {
  let lost = 0;
  for (const write of writes) {
    if (write.outcome !== 'ok' || write.result === undefined) continue;
    const event = truth.get(write.result.revision);
    if (event?.type === 'PUT' && event.key === write.call.key && event.value === write.call.value) {
      continue;
    }
    lost += 1;
    violations.push(`acknowledged put ${write.call.key}=${write.call.value} at revision ` +
      `${write.result.revision} (client ${write.clientId}, ok at ${write.completedAtMs} ms) is ` +
      `not in the committed history` + (event ? ` (revision holds ${describe(event)})` : ''));
  }
  return lost;
}

function describe(event: WatchEventRecord): string {
  return `${event.type} ${event.key}=${event.value}@${event.revision}`;
}

/** The violations of one watcher: order, duplicates, values, resumption, gaps. */
function checkWatcher(
  watcher: WatcherRecord,
  groundTruth: WatchGroundTruth,
  truth: ReadonlyMap<number, WatchEventRecord>,
): string[] {
  const name = `watcher ${watcher.watcherId}`;
  const found: string[] = [];
  const seen = new Set<string>();
  const deliveredRevisions = new Set<number>();
  let last = 0;
  let coverageEnd: number | null = null;
  const first = watcher.sessions[0]?.startRevision ?? 1;
  for (const [index, session] of watcher.sessions.entries()) {
    // Invariant of the resume rule: start at the last delivered revision + 1, or where it began.
    const expectedStart = last > 0 ? last + 1 : first;
    if (session.startRevision !== expectedStart) {
      found.push(`${name}: session ${index} on ${session.member} resumed at revision ` +
        `${session.startRevision}, expected ${expectedStart} (last delivered ${last})`);
    }
    for (const event of session.events) {
      const identity = `${event.revision}\u0000${event.key}`;
      const where = `${name}: session ${index} at ${event.atMs} ms`;
      if (seen.has(identity)) {
        found.push(`${where}: duplicate ${describe(event)}`);
        continue;
      }
      seen.add(identity);
      deliveredRevisions.add(event.revision);
      if (event.revision < last) found.push(`${where}: ${describe(event)} after revision ${last}`);
      if (event.revision < session.startRevision) {
        found.push(`${where}: ${describe(event)} before start revision ${session.startRevision}`);
      }
      last = Math.max(last, event.revision);
      const committed = truth.get(event.revision);
      if (committed === undefined) {
        found.push(`${where}: ${describe(event)} was never committed under the prefix`);
      } else if (committed.key !== event.key || committed.value !== event.value ||
          committed.type !== event.type) {
        found.push(`${where}: delivered ${describe(event)}, committed ${describe(committed)}`);
      }
    }
    if (session.end === 'compacted') {
      coverageEnd = last;
      break;
    }
  }
  coverageEnd ??= watcher.caughtUp ? groundTruth.lastRevision : last;
  const missing = [...truth.keys()]
    .filter((revision) => revision >= first && revision <= coverageEnd)
    .filter((revision) => !deliveredRevisions.has(revision))
    .sort((a, b) => a - b);
  if (missing.length > 0) {
    found.push(`${name}: gap of ${missing.length} committed revisions in [${first}, ` +
      `${coverageEnd}], first missing ${missing.slice(0, 10).join(', ')}`);
  }
  return found;
}
