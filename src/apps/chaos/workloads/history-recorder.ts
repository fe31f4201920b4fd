/**
 * Records every client operation of a chaos run: times it (milliseconds since the run started),
 * gives it a deadline, classifies how it ended as Jepsen does (ok / failed / unknown), and streams
 * it to a JSON-lines file with bounded memory.
 *
 * Classification follows etcd's error semantics (`classifyError`). The rule that matters: a write
 * whose outcome the client cannot know is `unknown`, never `failed`, because a checker drops failed
 * operations and a wrongly failed write that did commit becomes a false alarm. A read has no
 * effect, so any error ends it as `failed`.
 */

import { once } from 'node:events';
import { createReadStream, createWriteStream, type WriteStream } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { createInterface } from 'node:readline';
import { status as GrpcStatus } from '@grpc/grpc-js';
import { assert } from '../../../base/index.js';
import type { HistoryEntry, OutcomeKind, WorkloadKind } from '../types.js';
import { deadlineIn, isServiceError, type CallContext } from './workload.js';

/** Whether an operation can change the keyspace; decides how an ambiguous error is classified. */
export type Effect = 'read' | 'write';

/** Where recorded entries go. `write` may wait (back-pressure) but never buffers without bound. */
export interface HistorySink {
  write(entry: HistoryEntry): Promise<void>;
  close(): Promise<void>;
}

/** What the workload returns from an operation that reached the server and was answered. */
export interface Performed<Result> {
  /** 'failed' when the server definitely refused it (e.g. a transfer's compare did not hold). */
  readonly outcome: 'ok' | 'failed';
  readonly result: Result;
  /** Why, for 'failed'. */
  readonly error?: string;
}

/** One operation to record. */
export interface OperationRequest<Call> {
  readonly workload: WorkloadKind;
  readonly clientId: number;
  readonly member: string;
  readonly call: Call;
  readonly effect: Effect;
}

/** Options of `HistoryRecorder`. */
export interface HistoryRecorderOptions {
  readonly sink: HistorySink;
  /** `now()` at the start of the run; every recorded time is relative to it. */
  readonly runStartedAtMs: number;
  /** A monotonic clock in milliseconds. Default `performance.now`. */
  readonly now?: () => number;
  /**
   * Deadline of each operation. Default `operationTimeoutMsDefault`. An operation that has not
   * completed by then is cancelled and, if it is a write, recorded as unknown.
   */
  readonly operationTimeoutMs?: number;
}

/**
 * Default per-operation deadline: 1 s. Long enough for a healthy cluster (a commit is a few
 * milliseconds) and shorter than an election, so a client stuck on a partitioned member gives up
 * and tries again rather than idling through the fault; each timeout costs one unknown operation,
 * which the checkers handle (at some search cost for the register).
 */
export const operationTimeoutMsDefault = 1_000;

/** Bytes the file stream may buffer before `write` waits for it to drain. */
export const historyBufferBytesMax = 1024 * 1024;

/** Counts of what was recorded, by outcome. */
export interface RecordedCounts {
  readonly ok: number;
  readonly failed: number;
  readonly unknown: number;
}

/** Times, bounds, classifies and records operations. Shared by every client of a run. */
export class HistoryRecorder {
  readonly #sink: HistorySink;
  readonly #runStartedAtMs: number;
  readonly #now: () => number;
  readonly #operationTimeoutMs: number;
  #counts = { ok: 0, failed: 0, unknown: 0 };

  constructor(options: HistoryRecorderOptions) {
    const operationTimeoutMs = options.operationTimeoutMs ?? operationTimeoutMsDefault;
    assert(Number.isFinite(operationTimeoutMs) && operationTimeoutMs > 0, 'operationTimeoutMs');
    assert(Number.isFinite(options.runStartedAtMs), 'runStartedAtMs must be finite');
    this.#sink = options.sink;
    this.#runStartedAtMs = options.runStartedAtMs;
    this.#now = options.now ?? (() => performance.now());
    this.#operationTimeoutMs = operationTimeoutMs;
  }

  /** Entries recorded so far, by outcome. */
  get counts(): RecordedCounts {
    return { ...this.#counts };
  }

  /**
   * Performs `operation` with a deadline, records it, and returns the entry. Errors the gRPC call
   * rejected with are classified (`classifyError`); any other error is a bug and propagates.
   */
  async perform<Call, Result>(
    request: OperationRequest<Call>,
    operation: (context: CallContext) => Promise<Performed<Result>>,
  ): Promise<HistoryEntry<Call, Result>> {
    const invokedAtMs = this.#elapsedMs();
    const ending = await settle(operation, this.#operationTimeoutMs, request.effect);
    const completedAtMs = this.#elapsedMs();
    assert(completedAtMs >= invokedAtMs, 'the clock is monotonic');
    const entry: HistoryEntry<Call, Result> = {
      workload: request.workload,
      clientId: request.clientId,
      member: request.member,
      call: request.call,
      invokedAtMs,
      completedAtMs,
      ...ending,
    };
    this.#counts[entry.outcome] += 1;
    await this.#sink.write(entry);
    return entry;
  }

  /** Closes the sink; no operation may be performed afterwards. */
  close(): Promise<void> {
    return this.#sink.close();
  }

  #elapsedMs(): number {
    return this.#now() - this.#runStartedAtMs;
  }
}

type Ending<Result> =
  | { readonly outcome: OutcomeKind; readonly result: Result; readonly error?: string }
  | { readonly outcome: 'failed' | 'unknown'; readonly error: string };

async function settle<Result>(
  operation: (context: CallContext) => Promise<Performed<Result>>,
  timeoutMs: number,
  effect: Effect,
): Promise<Ending<Result>> {
  try {
    const performed = await operation(deadlineIn(timeoutMs));
    return performed.error === undefined
      ? { outcome: performed.outcome, result: performed.result }
      : { outcome: performed.outcome, result: performed.result, error: performed.error };
  } catch (error) {
    if (!isServiceError(error)) throw error;
    const classified = classifyError(error, effect);
    return { outcome: classified, error: `${GrpcStatus[error.code]}: ${error.details}` };
  }
}

/**
 * etcd messages of an UNAVAILABLE status that are refusals made before anything was proposed,
 * so even a write definitely did not happen.
 */
const refusedBeforeProposal: readonly string[] = [
  // etcd: the requireLeader interceptor refuses before the handler runs. Synod: `propose` refuses
  // synchronously when the core knows no leader, before appending (raft-node.ts).
  'etcdserver: no leader',
];

/**
 * grpc-js's text when the call never got a transport (the channel was in TRANSIENT_FAILURE and the
 * call was not wait-for-ready): no byte of the request left the client.
 */
const neverSentPrefix = 'No connection established';

/**
 * Classifies an error a gRPC KV call rejected with. Every mapping, and why:
 *
 * | status / message                                   | read   | write   |
 * |----------------------------------------------------|--------|---------|
 * | DEADLINE_EXCEEDED (our deadline)                   | failed | unknown |
 * | CANCELLED (our abort, or the stream reset)         | failed | unknown |
 * | UNAVAILABLE "etcdserver: request timed out…"       | failed | unknown |
 * | UNAVAILABLE "etcdserver: leader changed"           | failed | unknown |
 * | UNAVAILABLE "etcdserver: server stopped"           | failed | unknown |
 * | UNAVAILABLE "etcdserver: no leader"                | failed | failed  |
 * | UNAVAILABLE "No connection established…" (grpc-js) | failed | failed  |
 * | UNAVAILABLE anything else (connection reset…)      | failed | unknown |
 * | RESOURCE_EXHAUSTED (too many requests, no space)   | failed | failed  |
 * | INVALID_ARGUMENT, OUT_OF_RANGE, FAILED_PRECONDITION,|        |         |
 * |   NOT_FOUND, PERMISSION_DENIED, UNAUTHENTICATED,   | failed | failed  |
 * |   UNIMPLEMENTED, ALREADY_EXISTS                    |        |         |
 * | INTERNAL, UNKNOWN, DATA_LOSS, ABORTED, others      | failed | unknown |
 *
 * A read changes nothing, so whatever happened it is `failed` (a checker ignores it). For a write:
 * a timeout (client or server) or a lost connection leaves the proposal possibly committed, so
 * `unknown`. etcd's "too many requests" (and Synod's dropped proposal, which maps to it) and
 * "database space exceeded" are checked before proposing; the argument and precondition errors are
 * validation before proposing, or an apply-time error that leaves the keyspace unchanged (etcd
 * applies a failed txn as a no-op); all are `failed`. Anything unrecognised is `unknown`: a
 * checker that wrongly believes a write did not happen raises false alarms, one that wrongly
 * allows it merely checks less.
 */
export function classifyError(error: { code: number; details: string }, effect: Effect):
  'failed' | 'unknown' {
  if (effect === 'read') return 'failed';
  switch (error.code) {
    case GrpcStatus.UNAVAILABLE:
      if (refusedBeforeProposal.includes(error.details)) return 'failed';
      if (error.details.startsWith(neverSentPrefix)) return 'failed';
      return 'unknown';
    case GrpcStatus.RESOURCE_EXHAUSTED:
    case GrpcStatus.INVALID_ARGUMENT:
    case GrpcStatus.OUT_OF_RANGE:
    case GrpcStatus.FAILED_PRECONDITION:
    case GrpcStatus.NOT_FOUND:
    case GrpcStatus.ALREADY_EXISTS:
    case GrpcStatus.PERMISSION_DENIED:
    case GrpcStatus.UNAUTHENTICATED:
    case GrpcStatus.UNIMPLEMENTED:
      return 'failed';
    default:
      return 'unknown';
  }
}

/** Streams entries to a JSON-lines file, one entry a line, waiting when the buffer is full. */
export class JsonLinesHistoryFile implements HistorySink {
  readonly #stream: WriteStream;

  private constructor(stream: WriteStream) {
    this.#stream = stream;
  }

  /** Creates (or truncates) `path` and resolves once it is open. */
  static async open(path: string): Promise<JsonLinesHistoryFile> {
    const stream = createWriteStream(path, { highWaterMark: historyBufferBytesMax });
    await once(stream, 'open');
    return new JsonLinesHistoryFile(stream);
  }

  async write(entry: HistoryEntry): Promise<void> {
    // Each concurrent client holds at most one line beyond the buffer: memory is bounded by
    // historyBufferBytesMax plus one line per client.
    if (!this.#stream.write(`${JSON.stringify(entry)}\n`)) await once(this.#stream, 'drain');
  }

  async close(): Promise<void> {
    this.#stream.end();
    await once(this.#stream, 'finish');
  }
}

/** Reads a JSON-lines history back, one entry at a time, optionally only one workload's. */
export async function* readHistoryFile(
  path: string,
  workload?: WorkloadKind,
): AsyncGenerator<HistoryEntry> {
  const lines = createInterface({ input: createReadStream(path), crlfDelay: Infinity });
  for await (const line of lines) {
    if (line.length === 0) continue;
    const entry = JSON.parse(line) as HistoryEntry;
    if (workload === undefined || entry.workload === workload) yield entry;
  }
}

/** The in-memory sink for tests: holds at most `entriesMax` entries, then refuses. */
export class MemoryHistorySink implements HistorySink {
  readonly entries: HistoryEntry[] = [];
  readonly #entriesMax: number;
  readonly #onEntry: ((entry: HistoryEntry) => void) | undefined;

  /** `onEntry` is told of each entry as it is written (e.g. to end a test run after enough). */
  constructor(options: { entriesMax: number; onEntry?: (entry: HistoryEntry) => void }) {
    assert(Number.isSafeInteger(options.entriesMax) && options.entriesMax > 0, 'entriesMax');
    this.#entriesMax = options.entriesMax;
    this.#onEntry = options.onEntry;
  }

  async write(entry: HistoryEntry): Promise<void> {
    if (this.entries.length >= this.#entriesMax) throw new HistoryFullError(this.#entriesMax);
    this.entries.push(entry);
    this.#onEntry?.(entry);
  }

  async close(): Promise<void> {}
}

/** A `MemoryHistorySink` reached its `entriesMax`. Code `CHAOS_HISTORY_FULL`. */
export class HistoryFullError extends Error {
  readonly code = 'CHAOS_HISTORY_FULL';

  constructor(entriesMax: number) {
    super(`the in-memory history holds at most ${entriesMax} entries`);
    this.name = 'HistoryFullError';
  }
}
