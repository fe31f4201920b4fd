/**
 * The watch workload: writers put to keys under a prefix while watchers hold Watch streams over
 * it. A watcher whose stream fails reconnects — to the next member — with start_revision = last
 * delivered revision + 1, as etcd's clientv3 does. After the writers stop, the prefix's last
 * committed revision is read, the watchers are given time to catch up to it, and one watch from
 * revision 1 records the committed history the checker compares against (`checkWatch`).
 *
 * The workload never compacts; a compacted cancel is recorded and ends that watcher.
 */

import { setMaxListeners } from 'node:events';
import type { ClientDuplexStream } from '@grpc/grpc-js';
import { assert } from '../../../base/index.js';
import type { EtcdProto } from '../../../server/grpc/proto.js';
import type {
  WatchEventRecord, WatchGroundTruth, WatchHistory, WatchPutEntry, WatchSessionEnd,
  WatchSessionRecord, WatcherRecord,
} from '../checkers/watch-checker.js';
import {
  connectEtcd, deadlineAfter, errorText, listenersMax, outcomeOfError, pause, prefixRangeEnd, revisionOf, unary,
  type EtcdClients, type EtcdEndpoint,
} from './lease-etcd-client.js';

/** Options of `runWatchWorkload`. */
export interface WatchWorkloadOptions {
  readonly proto: EtcdProto;
  readonly endpoints: readonly EtcdEndpoint[];
  /** Ms since the run started; every recorded time comes from it. */
  readonly nowMs: () => number;
  /** How long the writers write. */
  readonly durationMs: number;
  /** Keys are `${prefix}${n}`; nothing else may write under it. */
  readonly prefix: string;
  readonly writers: number;
  readonly watchers: number;
  /** Distinct keys the writers cycle through. Default 8. */
  readonly keysCount?: number;
  /** Pause between one writer's puts. Default 5 ms. */
  readonly writePauseMs?: number;
  /** Deadline of each unary request. Default 2000 ms. */
  readonly requestTimeoutMs?: number;
  /** How long watchers (and the ground-truth read) get to catch up at the end. Default 10 s. */
  readonly catchUpTimeoutMs?: number;
  /** Aborting ends the writers early. */
  readonly signal?: AbortSignal;
}

interface Settings {
  readonly proto: EtcdProto;
  readonly endpoints: readonly EtcdEndpoint[];
  readonly nowMs: () => number;
  readonly prefix: Buffer;
  readonly rangeEnd: Buffer;
  readonly requestTimeoutMs: number;
}

/** Runs the workload and returns what it recorded. */
export async function runWatchWorkload(options: WatchWorkloadOptions): Promise<WatchHistory> {
  assert(options.endpoints.length > 0, 'at least one endpoint');
  assert(options.writers > 0 && options.watchers > 0, 'writers and watchers');
  const prefix = Buffer.from(options.prefix);
  const settings: Settings = {
    proto: options.proto, endpoints: options.endpoints, nowMs: options.nowMs, prefix,
    rangeEnd: prefixRangeEnd(prefix), requestTimeoutMs: options.requestTimeoutMs ?? 2000,
  };
  const catchUpTimeoutMs = options.catchUpTimeoutMs ?? 10_000;
  const startRevision = (await lastRevision(settings, catchUpTimeoutMs)).storeRevision + 1;
  const stopWatchers = new AbortController();
  setMaxListeners(listenersMax, stopWatchers.signal);
  const watchers = Array.from({ length: options.watchers }, (_, watcherId) =>
    new Watcher(settings, watcherId, startRevision, stopWatchers.signal));
  const watching = watchers.map((watcher) => watcher.run());
  const writersDone = deadlineAfter(options.durationMs, options.signal);
  const writes: WatchPutEntry[] = [];
  await Promise.all(Array.from({ length: options.writers }, (_, writerId) => writeLoop({
    settings, writerId, writes, signal: writersDone.signal, keysCount: options.keysCount ?? 8,
    pauseMs: options.writePauseMs ?? 5,
  })));
  writersDone.clear();
  const target = (await lastRevision(settings, catchUpTimeoutMs)).prefixRevision;
  const truth = readGroundTruth(settings, target, catchUpTimeoutMs);
  const caughtUp = new AbortController();
  void Promise.all(watchers.map((watcher) => watcher.reached(target))).then(() => caughtUp.abort());
  await pause(catchUpTimeoutMs, caughtUp.signal);
  stopWatchers.abort();
  await Promise.all(watching);
  return {
    prefix: options.prefix,
    writes,
    watchers: watchers.map((watcher) => watcher.record(target)),
    groundTruth: await truth,
  };
}

interface WriteLoopOptions {
  readonly settings: Settings;
  readonly writerId: number;
  readonly writes: WatchPutEntry[];
  readonly signal: AbortSignal;
  readonly keysCount: number;
  readonly pauseMs: number;
}

/** One writer: unique values, one put at a time, moving to the next member after an error. */
async function writeLoop(options: WriteLoopOptions): Promise<void> {
  const { settings, writerId, writes, signal } = options;
  const prefix = settings.prefix.toString();
  let memberIndex = writerId;
  let clients = connectTo(settings, memberIndex);
  for (let sequence = 0; !signal.aborted; sequence += 1) {
    const call = {
      key: `${prefix}${sequence % options.keysCount}`, value: `w${writerId}-${sequence}`,
    };
    const invokedAtMs = settings.nowMs();
    const base = { workload: 'watch' as const, clientId: writerId, member: clients.member, call };
    try {
      const response = await unary<{ header: { revision: string } }>(clients.kv, 'Put', {
        key: Buffer.from(call.key), value: Buffer.from(call.value),
      }, settings.requestTimeoutMs);
      const revision = revisionOf(response.header.revision);
      writes.push({
        ...base, invokedAtMs, completedAtMs: settings.nowMs(), outcome: 'ok', result: { revision },
      });
    } catch (error) {
      writes.push({ ...base, invokedAtMs, completedAtMs: settings.nowMs(),
        outcome: outcomeOfError(error), error: errorText(error) });
      clients.close();
      memberIndex += 1;
      clients = connectTo(settings, memberIndex);
    }
    await pause(options.pauseMs, signal);
  }
  clients.close();
}

function connectTo(settings: Settings, index: number): EtcdClients {
  const endpoint = settings.endpoints[index % settings.endpoints.length];
  assert(endpoint !== undefined, 'endpoint exists');
  return connectEtcd(settings.proto, endpoint);
}

interface Revisions {
  /** The store's revision (header). */
  readonly storeRevision: number;
  /** The largest mod revision under the prefix (keys are never deleted here). */
  readonly prefixRevision: number;
}

/** A linearizable Range over the prefix, retried on every member until `timeoutMs`. */
async function lastRevision(settings: Settings, timeoutMs: number): Promise<Revisions> {
  const deadline = deadlineAfter(timeoutMs);
  try {
    return await lastRevisionBefore(settings, deadline.signal);
  } finally {
    deadline.clear();
  }
}

async function lastRevisionBefore(settings: Settings, deadline: AbortSignal): Promise<Revisions> {
  for (let attempt = 0; ; attempt += 1) {
    const clients = connectTo(settings, attempt);
    try {
      const response = await unary<{
        header: { revision: string }; kvs: { mod_revision: string }[];
      }>(clients.kv, 'Range', {
        key: settings.prefix, range_end: settings.rangeEnd, keys_only: true,
      }, settings.requestTimeoutMs);
      const modRevisions = response.kvs.map((kv) => revisionOf(kv.mod_revision));
      return {
        storeRevision: revisionOf(response.header.revision),
        prefixRevision: Math.max(0, ...modRevisions),
      };
    } catch (error) {
      if (deadline.aborted) throw error;
      await pause(100, deadline);
    } finally {
      clients.close();
    }
  }
}

/** One watch from revision 1 to `target`: the committed history of the prefix. */
async function readGroundTruth(
  settings: Settings,
  target: number,
  timeoutMs: number,
): Promise<WatchGroundTruth> {
  const events: WatchEventRecord[] = [];
  if (target === 0) return { events, complete: true, lastRevision: 0 };
  const timeout = deadlineAfter(timeoutMs);
  const deadline = timeout.signal;
  for (let attempt = 0; !deadline.aborted; attempt += 1) {
    const clients = connectTo(settings, attempt);
    const last = events.at(-1)?.revision ?? 0;
    const session = await watchSession({
      settings, clients, startRevision: last + 1, stop: deadline,
      onEvent: (event) => {
        events.push(event);
        return event.revision >= target;
      },
    });
    clients.close();
    if ((events.at(-1)?.revision ?? 0) >= target || session.end === 'compacted') break;
    await pause(100, deadline);
  }
  timeout.clear();
  const complete = (events.at(-1)?.revision ?? 0) >= target;
  return { events, complete, lastRevision: target };
}

interface WatchSessionOptions {
  readonly settings: Settings;
  readonly clients: EtcdClients;
  readonly startRevision: number;
  readonly stop: AbortSignal;
  /** Called per event in order; returning true ends the session as 'stopped'. */
  readonly onEvent: (event: WatchEventRecord) => boolean;
}

interface WireWatchResponse {
  readonly canceled: boolean;
  readonly compact_revision: string;
  readonly cancel_reason: string;
  readonly events: readonly {
    readonly type: 'PUT' | 'DELETE';
    readonly kv: { key: Buffer; value: Buffer; mod_revision: string } | null;
  }[];
}

/** One Watch stream over the prefix from `startRevision`, until it ends for any reason. */
function watchSession(options: WatchSessionOptions): Promise<WatchSessionRecord> {
  const { settings, clients, startRevision, stop, onEvent } = options;
  const openedAtMs = settings.nowMs();
  const events: WatchEventRecord[] = [];
  const stream = (clients.watch['Watch'] as () => ClientDuplexStream<object, WireWatchResponse>)
    .call(clients.watch);
  return new Promise((resolve) => {
    let done = false;
    const finish = (end: WatchSessionEnd, detail: { compactRevision?: number; error?: string }) => {
      if (done) return;
      done = true;
      stop.removeEventListener('abort', onStop);
      stream.cancel();
      resolve({ member: clients.member, startRevision, openedAtMs, endedAtMs: settings.nowMs(),
        end, events, ...detail });
    };
    const onStop = () => finish('stopped', {});
    stop.addEventListener('abort', onStop, { once: true });
    if (stop.aborted) onStop();
    stream.on('data', (response: WireWatchResponse) => {
      if (done) return;
      for (const event of response.events) {
        if (event.kv === null) continue;
        const record: WatchEventRecord = {
          revision: revisionOf(event.kv.mod_revision), key: event.kv.key.toString(),
          value: event.kv.value.toString(), type: event.type, atMs: settings.nowMs(),
        };
        events.push(record);
        if (onEvent(record)) return finish('stopped', {});
      }
      if (!response.canceled) return;
      const compactRevision = revisionOf(response.compact_revision);
      if (compactRevision > 0) finish('compacted', { compactRevision });
      else finish('failed', { error: `canceled: ${response.cancel_reason}` });
    });
    stream.on('error', (error) => finish('failed', { error: errorText(error) }));
    stream.on('end', () => finish('failed', { error: 'stream ended' }));
    if (done) return;
    stream.write({ create_request: {
      key: settings.prefix, range_end: settings.rangeEnd, start_revision: String(startRevision),
    } });
  });
}

/** One watcher client: sessions in sequence, each resuming after the last delivered revision. */
class Watcher {
  readonly #settings: Settings;
  readonly #watcherId: number;
  readonly #firstRevision: number;
  readonly #stop: AbortSignal;
  readonly #sessions: WatchSessionRecord[] = [];
  #lastRevision = 0;
  #target: { revision: number; resolve: () => void } | null = null;

  constructor(settings: Settings, watcherId: number, firstRevision: number, stop: AbortSignal) {
    this.#settings = settings;
    this.#watcherId = watcherId;
    this.#firstRevision = firstRevision;
    this.#stop = stop;
  }

  async run(): Promise<void> {
    for (let attempt = 0; !this.#stop.aborted; attempt += 1) {
      const clients = connectTo(this.#settings, this.#watcherId + attempt);
      const startRevision = this.#lastRevision > 0 ? this.#lastRevision + 1 : this.#firstRevision;
      const session = await watchSession({
        settings: this.#settings, clients, startRevision, stop: this.#stop,
        onEvent: (event) => this.#onEvent(event),
      });
      clients.close();
      this.#sessions.push(session);
      if (session.end === 'compacted') return;
      if (session.end === 'failed') await pause(100, this.#stop);
    }
  }

  /** Resolves once a delivered revision reaches `revision`. */
  reached(revision: number): Promise<void> {
    if (this.#lastRevision >= revision) return Promise.resolve();
    return new Promise((resolve) => {
      this.#target = { revision, resolve };
    });
  }

  record(target: number): WatcherRecord {
    return {
      watcherId: this.#watcherId, sessions: this.#sessions, caughtUp: this.#lastRevision >= target,
    };
  }

  #onEvent(event: WatchEventRecord): boolean {
    this.#lastRevision = Math.max(this.#lastRevision, event.revision);
    if (this.#target !== null && this.#lastRevision >= this.#target.revision) {
      this.#target.resolve();
      this.#target = null;
    }
    return false;
  }
}
