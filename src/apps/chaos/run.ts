/**
 * One chaos run: start N members of a target behind the peer network, drive the workloads from
 * concurrent clients while the nemesis injects faults, heal everything, take each workload's
 * final read, check the history, measure write availability, and write the report.
 */

import { setMaxListeners } from 'node:events';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AssertionFailure, SeededRandom } from '../../base/index.js';
import { loadEtcdProto } from '../../server/grpc/proto.js';
import { writeUnavailability, type AvailabilityByKind } from './availability.js';
import { ChaosCluster } from './cluster/chaos-cluster.js';
import { PeerNetwork } from './network/peer-network.js';
import { Nemesis } from './nemesis.js';
import { runStreamWorkload, streamWorkloadKinds } from './stream-workloads.js';
import { htmlReport, summarize, textReport, type ChaosSummary } from './report.js';
import type { ChaosTarget, CheckVerdict, FaultKind, FaultRecord, HistoryEntry, WorkloadKind } from './types.js';
import { bankWorkload } from './workloads/bank-workload.js';
import { HistoryRecorder, JsonLinesHistoryFile, readHistoryFile } from './workloads/history-recorder.js';
import { registerWorkload } from './workloads/register-workload.js';
import { setWorkload } from './workloads/set-workload.js';
import { createKvClient, type Workload, type WorkloadClient } from './workloads/workload.js';

/** The workloads whose clients the runner drives one operation at a time. */
const operationWorkloads: readonly WorkloadKind[] = Object.freeze(['register', 'bank', 'set']);

/** Every workload `runChaos` can drive. */
export const runnableWorkloads: readonly WorkloadKind[] = Object.freeze([
  ...operationWorkloads, ...streamWorkloadKinds,
]);

/** Options of one run. */
export interface ChaosOptions {
  readonly target: ChaosTarget;
  readonly nodes: number;
  readonly durationMs: number;
  readonly faults: readonly FaultKind[];
  readonly workloads: readonly WorkloadKind[];
  readonly seed: number;
  /** Concurrent clients per workload (default 2 per member). */
  readonly clientsPerWorkload?: number;
  /** Where the history, report and data go (default: a new temp directory). */
  readonly outDir?: string;
  /** Keep the members' data directories (default: removed). */
  readonly keepData?: boolean;
  /** Extra server flags for every member. */
  readonly extraFlags?: readonly string[];
  /** Extra environment for every member (the planted-bug tests set SYNOD_PLANTED_BUG). */
  readonly extraEnv?: Readonly<Record<string, string>>;
  /** Progress lines (default: none). */
  readonly log?: (line: string) => void;
}

/** What a run produced. */
export interface ChaosOutcome {
  readonly summary: ChaosSummary;
  readonly text: string;
  /** Write unavailability per fault kind (also in summary.json). */
  readonly availability: readonly AvailabilityByKind[];
  /** The faults as injected and healed (also in the HTML report). */
  readonly faults: readonly FaultRecord[];
}

/** How long the cluster may take to elect a leader at start and after the faults heal. */
export const leaderWaitMs = 30_000;
/** Etcd's default timing, used for both targets. */
const timing = Object.freeze({ heartbeatIntervalMs: 100, electionTimeoutMs: 1_000 });

function workloadOf(kind: WorkloadKind): Workload {
  switch (kind) {
    case 'register': return registerWorkload() as Workload;
    case 'bank': return bankWorkload() as Workload;
    case 'set': return setWorkload() as Workload;
    default: throw new AssertionFailure(`workload ${kind} is not an operation workload`);
  }
}

/** Runs one chaos test end to end; always stops the members it started. */
export async function runChaos(options: ChaosOptions): Promise<ChaosOutcome> {
  const log = options.log ?? (() => undefined);
  const outDir = options.outDir ?? await mkdtemp(join(tmpdir(), `synod-chaos-${options.target}-`));
  await mkdir(outDir, { recursive: true });
  const dataRoot = join(outDir, 'data');
  const workloads = options.workloads.filter((kind) => operationWorkloads.includes(kind)).map(workloadOf);
  const streamKinds = options.workloads.filter((kind) => streamWorkloadKinds.includes(kind));
  const cluster = await ChaosCluster.create({
    target: options.target, nodes: options.nodes, dataRoot, timing, logRoot: join(outDir, 'logs'),
    ...(options.extraFlags === undefined ? {} : { extraFlags: options.extraFlags }),
    ...(options.extraEnv === undefined ? {} : { extraEnv: options.extraEnv }),
  });
  const network = await PeerNetwork.start(
    cluster.members.map((member) => ({ ...member, pid: () => cluster.pidOf(member.name) })),
    { random: new SeededRandom(options.seed ^ 0x5eed) },
  );
  const proto = loadEtcdProto();
  const clients: WorkloadClient[] = cluster.members.map((member) => {
    const address = member.clientUrl.replace('http://', '');
    return { member: member.name, address, kv: createKvClient({ address, proto }) };
  });
  try {
    cluster.startAll();
    log(`${options.target}: leader ${await cluster.waitForLeader(leaderWaitMs)}`);
    for (const workload of workloads) await workload.setup(clients);
    const historyPath = join(outDir, 'history.jsonl');
    const sink = await JsonLinesHistoryFile.open(historyPath);
    const startedAtMs = performance.now();
    const recorder = new HistoryRecorder({ sink, runStartedAtMs: startedAtMs });
    const nowMs = () => performance.now() - startedAtMs;
    const stop = new AbortController();
    // Every client and stream listens on this one signal; the default warning at 10 is noise.
    setMaxListeners(10_000, stop.signal);
    const nemesis = new Nemesis({ cluster, network, kinds: options.faults, seed: options.seed, nowMs });
    const nemesisDone = options.faults.length === 0 ? Promise.resolve() : nemesis.run(stop.signal);
    const perWorkload = options.clientsPerWorkload ?? 2 * options.nodes;
    const running = workloads.flatMap((workload) => Array.from({ length: perWorkload }, (_, clientId) =>
      workload.startClient({ clientId, client: clients[clientId % clients.length]!, recorder, signal: stop.signal })));
    const streams = streamKinds.map((kind) => runStreamWorkload(kind, {
      proto, endpoints: cluster.members, nowMs, durationMs: options.durationMs, signal: stop.signal,
      clients: perWorkload, electionTimeoutMs: timing.electionTimeoutMs,
    }));
    const timer = setTimeout(() => stop.abort(), options.durationMs);
    await Promise.all(running);
    clearTimeout(timer);
    await nemesisDone;
    const endMs = nowMs();
    await recorder.close();
    log(`workloads stopped after ${Math.round(endMs)} ms; ${nemesis.records.length} faults; healing`);
    network.heal();
    for (const member of cluster.members) {
      const process = cluster.process(member.name);
      if (process.paused) await cluster.resume(member.name);
      if (!process.running) cluster.restart(member.name);
    }
    await cluster.waitForLeader(leaderWaitMs);
    const streamResults = await Promise.all(streams);
    const history: HistoryEntry[] = [];
    for await (const entry of readHistoryFile(historyPath)) history.push(entry);
    const verdicts: CheckVerdict[] = [];
    for (const workload of workloads) {
      const finalRead = await workload.final(clients);
      verdicts.push(workload.check(history.filter((entry) => entry.workload === workload.kind), finalRead));
    }
    for (const result of streamResults) {
      verdicts.push(result.check(nemesis.records));
      history.push(...result.entries);
    }
    const availability = writeUnavailability({ history, faults: nemesis.records, isWrite, endMs });
    const run = {
      target: options.target, nodes: options.nodes, seed: options.seed, durationMs: endMs,
      history, faults: nemesis.records, verdicts, availability,
    };
    const reportPath = join(outDir, 'report.html');
    const summary = summarize(run, reportPath);
    await writeFile(reportPath, htmlReport(run, summary));
    await writeFile(join(outDir, 'summary.json'), `${JSON.stringify({ ...summary, availability })}\n`);
    return { summary, text: textReport(run, summary), availability, faults: nemesis.records };
  } finally {
    for (const client of clients) client.kv.close();
    await cluster.killAll();
    await network.close();
    if (options.keepData !== true) await rm(dataRoot, { recursive: true, force: true });
  }
}

/** Whether an entry changes the keyspace when it succeeds (for availability). */
function isWrite(entry: HistoryEntry): boolean {
  if (entry.workload === 'set' || entry.workload === 'bank') {
    return (entry.call as { kind?: string } | null)?.kind !== 'read';
  }
  if (entry.workload === 'register') {
    const kind = (entry.call as { kind?: string } | null)?.kind;
    return kind === 'put' || kind === 'cas';
  }
  return false;
}
