/**
 * The kv benchmark's workloads and the closed loop that times them.
 *
 * A cell runs `clients` workers, each keeping one request in flight (closed loop), for a warm-up
 * and then a measured window. The window opens and closes at the moments the server's /proc
 * counters are sampled, so operations, latencies and CPU all cover the same interval: an operation
 * counts if it completed inside the window, and its latency is recorded if it also started there.
 */

import { status, type Client, type ClientDuplexStream } from '@grpc/grpc-js';
import { assert, SeededRandom } from '../src/base/index.js';
import { unaryCall, type ChannelPool } from './kv-grpc.js';

/** The workloads, as named in `--ops` and in the JSON results. */
export const operationNames = ['put', 'range', 'range_serializable', 'txn', 'watch'] as const;
export type OperationName = (typeof operationNames)[number];

/** Bytes of every value written. */
export const valueBytes = 256;
/** Keys Put draws from at random: a space far larger than any run writes, so most puts create. */
const putKeySpace = 1 << 24;
/** Keys written before the first cell; Range reads them and Txn compares-and-puts them. */
export const populatedKeysCount = 10_000;
/** Requests in flight while populating. */
const populateConcurrency = 64;
/** Deadline of one request; a request still pending then counts as a failed cell. */
const requestDeadlineMs = 10_000;
/** After the window closes, how long in-flight requests may take before the cell is abandoned. */
const drainTimeoutMs = requestDeadlineMs + 2_000;
/** Time watchers get to be created before a watch cell gives up. */
const watchCreateTimeoutMs = 15_000;

/** What the window observed. */
export interface WindowSample {
  /** The window's bounds, milliseconds on `performance.now()`'s clock. */
  readonly openedMs: number;
  readonly closedMs: number;
  /** Server CPU and memory, from the target's probes. */
  readonly serverCpuMicroseconds: number;
  readonly residentBytes: number;
  /** CPU this bench process used in the window: when it nears a core, the client is the limit. */
  readonly clientCpuMicroseconds: number;
}

/** Samples the server's counters; the runner calls it when the window opens and closes. */
export interface ServerProbe {
  cpuMicroseconds(): number;
  residentBytes(): number;
}

/** The outcome of one cell. */
export interface CellMeasurement {
  readonly operations: number;
  readonly latenciesMs: readonly number[];
  readonly window: WindowSample;
}

/** Parameters shared by every workload. */
export interface CellPlan {
  readonly pool: ChannelPool;
  readonly clients: number;
  readonly warmupMs: number;
  readonly durationMs: number;
  readonly probe: ServerProbe;
  readonly seed: number;
}

const value = Buffer.alloc(valueBytes, 'v');
const encoder = new TextEncoder();

function populatedKey(index: number): Buffer {
  return Buffer.from(encoder.encode(`bench/populated/${String(index).padStart(6, '0')}`));
}

/** Writes the `populatedKeysCount` keys Range and Txn use. */
export async function populate(pool: ChannelPool): Promise<void> {
  let next = 0;
  const worker = async (slot: number) => {
    while (next < populatedKeysCount) {
      const index = next++;
      const request = { key: populatedKey(index), value };
      await unaryCall(pool.kvFor(slot), 'Put', request, requestDeadlineMs);
    }
  };
  await Promise.all(Array.from({ length: populateConcurrency }, (_, slot) => worker(slot)));
}

/** Issues one request of a unary workload for worker `slot`. */
type Issue = (client: Client, random: SeededRandom) => Promise<void>;

const unaryWorkloads: Record<Exclude<OperationName, 'watch'>, Issue> = {
  put: async (client, random) => {
    const key = `bench/put/${random.int(putKeySpace).toString(16).padStart(6, '0')}`;
    await unaryCall(client, 'Put', { key: Buffer.from(key), value }, requestDeadlineMs);
  },
  range: async (client, random) => {
    const request = { key: populatedKey(random.int(populatedKeysCount)) };
    await unaryCall(client, 'Range', request, requestDeadlineMs);
  },
  range_serializable: async (client, random) => {
    const request = { key: populatedKey(random.int(populatedKeysCount)), serializable: true };
    await unaryCall(client, 'Range', request, requestDeadlineMs);
  },
  txn: async (client, random) => {
    const key = populatedKey(random.int(populatedKeysCount));
    // Compare-and-put: the key exists, so mod_revision > 0 holds and the put runs.
    const request = {
      compare: [{ result: 'GREATER', target: 'MOD', key, mod_revision: '0' }],
      success: [{ request_put: { key, value } }],
      failure: [{ request_range: { key } }],
    };
    const response = await unaryCall<{ succeeded: boolean }>(
      client, 'Txn', request, requestDeadlineMs,
    );
    if (!response.succeeded) throw new Error('txn: compare on an existing key failed');
  },
};

/** Runs one cell of `operation`. */
export function runCell(operation: OperationName, plan: CellPlan): Promise<CellMeasurement> {
  return operation === 'watch' ? runWatchCell(plan) : runUnaryCell(unaryWorkloads[operation], plan);
}

/** Opens and closes the measured window on timers; workers read its state. */
class Window {
  openedMs = Infinity;
  closedMs = Infinity;
  #startCpu = 0;
  #startClientCpu = 0;
  sample: WindowSample | null = null;
  readonly closed: Promise<void>;

  constructor(plan: CellPlan) {
    this.closed = new Promise((resolve) => {
      setTimeout(() => {
        this.#startCpu = plan.probe.cpuMicroseconds();
        this.#startClientCpu = clientCpuMicroseconds();
        this.openedMs = performance.now();
        setTimeout(() => {
          this.closedMs = performance.now();
          this.sample = {
            openedMs: this.openedMs,
            closedMs: this.closedMs,
            serverCpuMicroseconds: plan.probe.cpuMicroseconds() - this.#startCpu,
            residentBytes: plan.probe.residentBytes(),
            clientCpuMicroseconds: clientCpuMicroseconds() - this.#startClientCpu,
          };
          resolve();
        }, plan.durationMs);
      }, plan.warmupMs);
    });
  }

  get isClosed(): boolean {
    return this.sample !== null;
  }

  /** Whether an operation that started at `startedMs` and ended now is measured. */
  counts(startedMs: number, endedMs: number): { completed: boolean; timed: boolean } {
    const completed = endedMs >= this.openedMs && endedMs <= this.closedMs;
    return { completed, timed: completed && startedMs >= this.openedMs };
  }
}

function clientCpuMicroseconds(): number {
  const usage = process.cpuUsage();
  return usage.user + usage.system;
}

/** Rejects after `ms`, so a wedged server cannot hold the bench forever. */
function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not finish within ${ms / 1000} s`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

async function runUnaryCell(issue: Issue, plan: CellPlan): Promise<CellMeasurement> {
  const window = new Window(plan);
  const latenciesMs: number[] = [];
  let operations = 0;
  let failure: unknown = null;
  const seeds = new SeededRandom(plan.seed);
  const worker = async (slot: number) => {
    const client = plan.pool.kvFor(slot);
    const random = seeds.fork();
    while (!window.isClosed && failure === null) {
      const startedMs = performance.now();
      try {
        await issue(client, random);
      } catch (error) {
        failure ??= error;
        return;
      }
      const { completed, timed } = window.counts(startedMs, performance.now());
      if (completed) operations++;
      if (timed) latenciesMs.push(performance.now() - startedMs);
    }
  };
  const workers = Promise.all(Array.from({ length: plan.clients }, (_, slot) => worker(slot)));
  await Promise.race([window.closed, workers]);
  await within(workers, drainTimeoutMs, 'draining in-flight requests');
  if (failure !== null) throw failure;
  assert(window.sample !== null, 'the window closed');
  return { operations, latenciesMs, window: window.sample };
}

interface WatchResponseWire {
  readonly created: boolean;
  readonly canceled: boolean;
  readonly cancel_reason: string;
  readonly events: readonly { readonly kv: { readonly key: Buffer } | null }[];
}

/**
 * `clients` watchers on one prefix, each on its own Watch stream (spread over the pool's
 * connections), and one writer putting keys under it with one put in flight. An operation is one
 * event delivered to one watcher; its latency runs from the moment the writer issued the put.
 */
async function runWatchCell(plan: CellPlan): Promise<CellMeasurement> {
  const prefix = `bench/watch/${plan.seed}/`;
  const sentAtMs: number[] = [];
  const latenciesMs: number[] = [];
  let operations = 0;
  let failure: unknown = null;
  let window: Window | null = null;
  const onEvents = (response: WatchResponseWire) => {
    const nowMs = performance.now();
    for (const event of response.events) {
      const sequence = Number(event.kv?.key.subarray(prefix.length).toString() ?? NaN);
      const startedMs = sentAtMs[sequence];
      if (startedMs === undefined || window === null) continue;
      const { completed, timed } = window.counts(startedMs, nowMs);
      if (completed) operations++;
      if (timed) latenciesMs.push(nowMs - startedMs);
    }
  };
  const onFailure = (error: unknown) => {
    failure ??= error;
  };
  const watchers = Array.from(
    { length: plan.clients },
    (_, slot) => openWatcher(plan.pool.watchFor(slot), prefix, onEvents, onFailure),
  );
  const streams = watchers.map((watcher) => watcher.stream);
  try {
    const created = Promise.all(watchers.map((watcher) => watcher.created));
    await within(created, watchCreateTimeoutMs, 'creating watchers');
  } catch (error) {
    for (const stream of streams) stream.cancel();
    throw error;
  }
  try {
    window = new Window(plan);
    const writer = plan.pool.kvFor(0);
    for (let sequence = 0; !window.isClosed && failure === null; sequence++) {
      sentAtMs[sequence] = performance.now();
      const request = { key: Buffer.from(`${prefix}${sequence}`), value };
      await unaryCall(writer, 'Put', request, requestDeadlineMs);
    }
    await window.closed;
  } finally {
    for (const stream of streams) stream.cancel();
  }
  if (failure !== null) throw failure;
  assert(window.sample !== null, 'the window closed');
  return { operations, latenciesMs, window: window.sample };
}

type WatchStream = ClientDuplexStream<object, WatchResponseWire>;

/** Opens a Watch stream with one watcher on `prefix`; `created` settles when the server answers. */
function openWatcher(
  client: Client,
  prefix: string,
  onEvents: (response: WatchResponseWire) => void,
  onFailure: (error: unknown) => void,
): { stream: WatchStream; created: Promise<void> } {
  const stream = (client as unknown as { Watch(): WatchStream }).Watch();
  const rangeEnd = Buffer.from(prefix);
  rangeEnd[rangeEnd.length - 1] = rangeEnd[rangeEnd.length - 1]! + 1;
  const created = new Promise<void>((resolve, reject) => {
    let confirmed = false;
    stream.on('data', (response: WatchResponseWire) => {
      if (response.canceled) onFailure(new Error(`watch canceled: ${response.cancel_reason}`));
      if (response.created && !confirmed) {
        confirmed = true;
        resolve();
      }
      if (response.events.length > 0) onEvents(response);
    });
    stream.on('error', (error: Error & { code?: number }) => {
      const cancelledByUs = error.code === status.CANCELLED; // The cell ended and cancelled it.
      if (!confirmed) reject(error);
      else if (!cancelledByUs) onFailure(error);
    });
  });
  stream.write({ create_request: { key: Buffer.from(prefix), range_end: rangeEnd } });
  return { stream, created };
}
