/**
 * `npm run bench -- kv [options]`: Put, Range (linearizable and serializable), Txn and Watch load
 * over gRPC against a fresh Synod and, when `etcd` is on the PATH, a fresh etcd driven by the same
 * client in the same run, as single members and as 3-member clusters on loopback. Each cell reports
 * throughput, p50/p99 latency, server CPU microseconds per operation and resident memory; the table
 * sets Synod beside etcd with their ratios. See docs/benchmarks.md.
 *
 * Options (defaults in brackets):
 *   --json                 last stdout line `{"results":[…],"failures":[…]}`; progress: stderr
 *   --duration S           measured seconds per cell [3]; a quarter of it (≤ 1 s) warms up first
 *   --clients 1,10,…       concurrent in-flight requests (watch: watchers) [1,10,100,500]
 *   --ops put,…            put, range, range_serializable, txn, watch [all]
 *   --members 1,3          cluster sizes [1,3]
 *   --targets synod,etcd   servers to measure [synod,etcd]
 *   --no-build             use dist/ as it is instead of running `npm run build` first
 *   --cpu-prof DIR         run Synod members under `node --cpu-prof`, write profiles to DIR and
 *                          print each profile's functions by self time
 */

import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { loadEtcdProto, type EtcdProto } from '../src/server/grpc/proto.js';
import { ChannelPool, channelsMax, describeGrpcError } from './kv-grpc.js';
import { operationNames, populate, runCell, type OperationName } from './kv-load.js';
import { totalCpuMicroseconds, totalResidentBytes } from './kv-proc.js';
import { topSelfTimes } from './kv-profile.js';
import {
  clientCpuShare, describeFailure, describeResult, markdownTable, summarize,
  type CellIdentity, type Failure, type Result,
} from './kv-report.js';
import {
  etcdAvailable, memberPids, startTarget, stopTarget, synodEntryPath,
  type RunningTarget, type TargetKind,
} from './kv-targets.js';

/** The validated command line. */
interface KvBenchConfig {
  readonly json: boolean;
  readonly durationMs: number;
  readonly warmupMs: number;
  readonly clients: readonly number[];
  readonly ops: readonly OperationName[];
  readonly members: readonly number[];
  readonly targets: readonly TargetKind[];
  readonly build: boolean;
  readonly cpuProfileDirectory: string | null;
}

const durationSecondsMax = 600;
const clientsMax = 5_000;
const warmupMsMax = 1_000;
/** Allowance per cell beyond its warm-up and window: connecting, creating watchers, draining. */
const cellOverheadMs = 5_000;
/** Allowance per target for starting, populating and stopping. */
const targetOverheadMs = 90_000;
/** How long `npm run build` may take. */
const buildTimeoutMs = 600_000;
/** Functions listed per CPU profile. */
const profileFunctionsListed = 25;

const repositoryRoot = fileURLToPath(new URL('../', import.meta.url));
const usage =
  'usage: npm run bench -- kv [--json] [--duration S] [--clients 1,10,100,500] ' +
  `[--ops ${operationNames.join(',')}] [--members 1,3] [--targets synod,etcd] ` +
  '[--no-build] [--cpu-prof DIR]';

class UsageError extends Error {}

function list<T extends string | number>(
  text: string,
  parse: (item: string) => T | undefined,
  flag: string,
): T[] {
  const items = text.split(',').map((item) => item.trim()).filter((item) => item !== '');
  const parsed = items.map((item) => {
    const value = parse(item);
    if (value === undefined) throw new UsageError(`--${flag}: "${item}" is not allowed`);
    return value;
  });
  if (parsed.length === 0) throw new UsageError(`--${flag} must list at least one value`);
  return [...new Set(parsed)];
}

function parseConfig(args: readonly string[]): KvBenchConfig {
  const { values } = parseArgs({
    args: [...args],
    strict: true,
    allowPositionals: false,
    options: {
      json: { type: 'boolean', default: false },
      duration: { type: 'string', default: '3' },
      clients: { type: 'string', default: '1,10,100,500' },
      ops: { type: 'string', default: operationNames.join(',') },
      members: { type: 'string', default: '1,3' },
      targets: { type: 'string', default: 'synod,etcd' },
      'no-build': { type: 'boolean', default: false },
      'cpu-prof': { type: 'string' },
    },
  });
  const durationSeconds = Number(values.duration);
  if (!(durationSeconds > 0 && durationSeconds <= durationSecondsMax)) {
    throw new UsageError(`--duration must be a number of seconds in (0, ${durationSecondsMax}]`);
  }
  const positive = (max: number) => (item: string) => {
    const value = Number(item);
    return Number.isSafeInteger(value) && value >= 1 && value <= max ? value : undefined;
  };
  const member = (item: string) => (item === '1' ? 1 : item === '3' ? 3 : undefined);
  const oneOf = <T extends string>(names: readonly T[]) =>
    (item: string) => names.find((name) => name === item);
  const durationMs = durationSeconds * 1000;
  return Object.freeze({
    json: values.json,
    durationMs,
    warmupMs: Math.min(warmupMsMax, durationMs / 4),
    clients: list(values.clients, positive(clientsMax), 'clients'),
    ops: list(values.ops, oneOf(operationNames), 'ops'),
    members: list(values.members, member, 'members'),
    targets: list(values.targets, oneOf(['synod', 'etcd'] as const), 'targets'),
    build: !values['no-build'],
    cpuProfileDirectory: values['cpu-prof'] === undefined ? null : resolve(values['cpu-prof']),
  });
}

/** Runs the suite; with `json`, the last stdout line is one JSON object with every result. */
export async function runKvBench(options: { json: boolean; args: string[] }): Promise<void> {
  let config: KvBenchConfig;
  try {
    config = parseConfig(options.args);
  } catch (error) {
    console.error(`${(error as Error).message}\n${usage}`);
    process.exitCode = 2;
    return;
  }
  // Progress goes to stderr under --json so that stdout ends with exactly one JSON line.
  const log = config.json ? console.error : console.log;
  const bench = new KvBench(config, log);
  const stopOnSignal = (signal: NodeJS.Signals) => {
    console.error(`bench: ${signal}, stopping every server`);
    process.exit(130); // The exit hook in kv-targets.ts kills every child synchronously.
  };
  process.once('SIGINT', stopOnSignal);
  process.once('SIGTERM', stopOnSignal);
  const watchdog = setTimeout(() => {
    const seconds = Math.round(bench.budgetMs / 1000);
    console.error(`bench: gave up after ${seconds} s, stopping every server`);
    process.exit(1);
  }, bench.budgetMs);
  watchdog.unref();
  try {
    await bench.run();
  } finally {
    clearTimeout(watchdog);
    process.off('SIGINT', stopOnSignal);
    process.off('SIGTERM', stopOnSignal);
  }
  log(`\n${markdownTable(bench.results, bench.failures)}`);
  if (config.json) {
    console.log(JSON.stringify({ results: bench.results, failures: bench.failures }));
  }
}

class KvBench {
  readonly results: Result[] = [];
  readonly failures: Failure[] = [];
  readonly budgetMs: number;
  readonly #config: KvBenchConfig;
  readonly #log: (line: string) => void;
  #proto: EtcdProto | null = null;

  constructor(config: KvBenchConfig, log: (line: string) => void) {
    this.#config = config;
    this.#log = log;
    const targets = config.targets.length * config.members.length;
    const cells = targets * config.ops.length * config.clients.length;
    const cellMs = config.warmupMs + config.durationMs + cellOverheadMs;
    this.budgetMs = cells * cellMs + targets * targetOverheadMs;
  }

  async run(): Promise<void> {
    const kinds = this.#availableTargets();
    if (kinds.length === 0) return;
    this.#proto = loadEtcdProto();
    for (const members of this.#config.members) {
      const running: RunningTarget[] = [];
      try {
        for (const kind of kinds) {
          const target = await this.#start(kind, members);
          if (target !== null) running.push(target);
        }
        await this.#runCells(members, running);
      } finally {
        await Promise.all(running.map((target) => stopTarget(target)));
      }
      this.#reportProfiles();
    }
  }

  /** Builds Synod when asked and drops targets that cannot run here, recording why. */
  #availableTargets(): TargetKind[] {
    const kinds: TargetKind[] = [];
    for (const kind of this.#config.targets) {
      const reason = kind === 'etcd' ? this.#etcdMissing() : this.#synodMissing();
      if (reason === null) kinds.push(kind);
      else {
        for (const members of this.#config.members) {
          this.#fail({ target: kind, members, op: null, clients: null, reason });
        }
      }
    }
    return kinds;
  }

  #etcdMissing(): string | null {
    return etcdAvailable() ? null : 'etcd is not on the PATH';
  }

  #synodMissing(): string | null {
    if (this.#config.build) {
      this.#log('bench: npm run build');
      try {
        execFileSync('npm', ['run', 'build', '--silent'], {
          cwd: repositoryRoot,
          stdio: ['ignore', 2, 2], // Keep stdout for the results.
          timeout: buildTimeoutMs,
        });
      } catch {
        return 'npm run build failed (see above; --no-build runs dist/ as it is)';
      }
    }
    return existsSync(synodEntryPath) ? null : `${synodEntryPath} is missing: run npm run build`;
  }

  async #start(kind: TargetKind, members: number): Promise<RunningTarget | null> {
    this.#log(`bench: starting ${kind} with ${members} member(s)`);
    const cpuProfileDirectory = kind === 'synod' ? this.#config.cpuProfileDirectory : null;
    const target = await startTarget({ kind, members, proto: this.#proto!, cpuProfileDirectory });
    if ('reason' in target) {
      this.#fail({ target: kind, members, op: null, clients: null, reason: target.reason });
      return null;
    }
    const clientUrl = target.leader.clientUrl;
    const pool = new ChannelPool({ proto: this.#proto!, clientUrl, channels: channelsMax });
    try {
      await populate(pool);
      return target;
    } catch (error) {
      const reason = `populating keys failed: ${describeGrpcError(error)}`;
      this.#fail({ target: kind, members, op: null, clients: null, reason });
      await stopTarget(target);
      return null;
    } finally {
      pool.close();
    }
  }

  async #runCells(members: number, running: readonly RunningTarget[]): Promise<void> {
    let seed = 1;
    for (const op of this.#config.ops) {
      const broken = new Set<TargetKind>(); // A target that failed an op skips its larger cells.
      for (const clients of this.#config.clients) {
        seed++;
        for (const target of running) {
          if (broken.has(target.kind)) continue;
          const ok = await this.#runCell(target, { members, op, clients, seed });
          if (!ok) broken.add(target.kind);
        }
      }
    }
  }

  async #runCell(
    target: RunningTarget,
    cell: { members: number; op: OperationName; clients: number; seed: number },
  ): Promise<boolean> {
    const pids = memberPids(target);
    const pool = new ChannelPool({
      proto: this.#proto!,
      clientUrl: target.leader.clientUrl,
      channels: Math.min(cell.clients, channelsMax),
    });
    const identity: CellIdentity = {
      target: target.kind, members: cell.members, op: cell.op, clients: cell.clients,
    };
    try {
      const measurement = await runCell(cell.op, {
        pool,
        clients: cell.clients,
        warmupMs: this.#config.warmupMs,
        durationMs: this.#config.durationMs,
        probe: {
          cpuMicroseconds: () => totalCpuMicroseconds(pids),
          residentBytes: () => totalResidentBytes(pids),
        },
        seed: cell.seed,
      });
      const result = summarize(identity, measurement);
      this.results.push(result);
      this.#log(describeResult(result, clientCpuShare(measurement)));
      return true;
    } catch (error) {
      this.#fail({ ...identity, reason: describeGrpcError(error) });
      return false;
    } finally {
      pool.close();
    }
  }

  #fail(failure: Failure): void {
    this.failures.push(failure);
    this.#log(describeFailure(failure));
  }

  /** Prints the heaviest functions of every profile Synod wrote, once its members have exited. */
  #reportProfiles(): void {
    const directory = this.#config.cpuProfileDirectory;
    if (directory === null || !existsSync(directory)) return;
    for (const file of readdirSync(directory).filter((name) => name.endsWith('.cpuprofile'))) {
      this.#log(`\nself time in ${file}:`);
      const path = join(directory, file);
      const entries = topSelfTimes({ path, count: profileFunctionsListed, root: repositoryRoot });
      for (const entry of entries) {
        const share = `${(entry.share * 100).toFixed(1).padStart(5)}%`;
        this.#log(`${share}  ${String(entry.selfMs).padStart(8)} ms  ${entry.location}`);
      }
    }
  }
}
