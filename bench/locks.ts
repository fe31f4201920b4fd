/**
 * `npm run bench -- locks [--json] [--duration-ms N] [--backends a,b]`: the distributed lock
 * comparison. For every backend in one run — Synod, real etcd, Redis, Redlock over 3 Redis
 * servers, PostgreSQL, SQLite — it measures acquire/release throughput and acquire latency with
 * 1, 10 and 100 contenders over 1 and 100 lock names (throughput.ts), then runs the safety cases
 * (safety.ts): a holder frozen past its TTL for every backend, and the backend's own server fault
 * (a Synod/etcd leader killed, a Redis primary restarted, PostgreSQL restarted). With --json the
 * last line is exactly one JSON object: {"results":[…],"safety":[…]}.
 *
 * Every backend runs on this machine on loopback, single-node (Redlock: three independent Redis
 * servers), with the same SDK and LockBackend interface, so the numbers compare the systems, not
 * clients. The machine is shared and noisy: compare ratios within one run, not across runs.
 */

import { parseArgs } from 'node:util';
import { loadEtcdProto } from '../src/server/grpc/proto.js';
import type { LockBackendKind } from '../src/client/locks/lock.js';
import { startClusterTarget } from '../test/client/cluster-target.js';
import { openLockBackend, type LockBackendSpec } from './locks/backend-spec.js';
import { lockServers, type LockServer } from './locks/servers.js';
import { runSafetyCase, type SafetyOutcome } from './locks/safety.js';
import { runThroughputCell, type ThroughputCell } from './locks/throughput.js';

const contenderCounts = [1, 10, 100] as const;
const nameCounts = [1, 100] as const;
const allBackends: readonly LockBackendKind[] = ['synod', 'etcd', 'redis', 'redlock', 'postgres', 'sqlite'];

/** A row of the throughput table. */
type ResultRow = { backend: LockBackendKind } & ThroughputCell;
/** A row of the safety table. */
type SafetyRow = Pick<SafetyOutcome, 'backend' | 'fault' | 'mutual_exclusion_held'>;

function log(line: string): void {
  process.stderr.write(`${line}\n`);
}

async function measureThroughput(server: LockServer, durationMs: number): Promise<ResultRow[]> {
  const rows: ResultRow[] = [];
  for (const contenders of contenderCounts) {
    for (const names of nameCounts) {
      const cell = await runThroughputCell({
        open: () => openLockBackend(server.spec), contenders, names, durationMs,
        namePrefix: `bench-${contenders}-${names}`,
      });
      rows.push({ backend: server.kind, ...cell });
      log(`locks: ${server.kind} contenders=${contenders} names=${names}: ${cell.acquires_per_sec}/s p50 ${cell.p50_ms} ms p99 ${cell.p99_ms} ms`);
    }
  }
  return rows;
}

async function pauseSafety(server: LockServer): Promise<SafetyRow> {
  const outcome = await runSafetyCase({ backend: server.kind, fault: 'holder-pause', spec: server.safetySpec });
  log(`locks: safety ${server.kind} holder-pause: held=${outcome.mutual_exclusion_held} ${JSON.stringify(outcome.verdict)}`);
  return { backend: outcome.backend, fault: outcome.fault, mutual_exclusion_held: outcome.mutual_exclusion_held };
}

/**
 * The session TTL of the leader-kill case: longer than an election plus a failover (about 2 s with
 * etcd's default timing), so the case tests the failover, not an expiry; the pause case covers expiry.
 */
const leaderKillTtlMs = 6_000;

/** The leader-kill case needs three members: a cluster of its own. */
async function leaderKillSafety(kind: 'synod' | 'etcd', ttlMs: number): Promise<SafetyRow> {
  const cluster = await startClusterTarget(kind);
  try {
    const spec: LockBackendSpec = { kind, endpoints: await cluster.endpointsLeaderFirst(), ttlMs };
    const outcome = await runSafetyCase({
      backend: kind, fault: 'leader-kill', spec, inject: async () => void (await cluster.killLeader()),
    });
    log(`locks: safety ${kind} leader-kill: held=${outcome.mutual_exclusion_held} ${JSON.stringify(outcome.verdict)}`);
    return { backend: kind, fault: 'leader-kill', mutual_exclusion_held: outcome.mutual_exclusion_held };
  } finally {
    await cluster.stop();
  }
}

async function serverFaultSafety(server: LockServer): Promise<SafetyRow | null> {
  if (server.kind === 'synod' || server.kind === 'etcd') return leaderKillSafety(server.kind, leaderKillTtlMs);
  if (server.fault === null) return null;
  const { fault, inject } = server.fault;
  const outcome = await runSafetyCase({ backend: server.kind, fault, spec: server.safetySpec, inject });
  log(`locks: safety ${server.kind} ${fault}: held=${outcome.mutual_exclusion_held} ${JSON.stringify(outcome.verdict)}`);
  return { backend: server.kind, fault, mutual_exclusion_held: outcome.mutual_exclusion_held };
}

/** The suite's entry point (bench/index.ts). */
export async function runLocksBench(options: { json: boolean; args: string[] }): Promise<void> {
  const { values } = parseArgs({
    args: options.args,
    options: {
      json: { type: 'boolean', default: false },
      'duration-ms': { type: 'string', default: '2000' },
      backends: { type: 'string', default: allBackends.join(',') },
    },
  });
  const durationMs = Number(values['duration-ms']);
  const chosen = values.backends.split(',') as LockBackendKind[];
  const unknown = chosen.filter((kind) => !allBackends.includes(kind));
  if (unknown.length > 0 || !Number.isInteger(durationMs) || durationMs <= 0) {
    throw new Error(`usage: npm run bench -- locks [--json] [--duration-ms N] [--backends ${allBackends.join(',')}]`);
  }
  const proto = loadEtcdProto();
  const results: ResultRow[] = [];
  const safety: SafetyRow[] = [];
  for (const kind of chosen) {
    const server = await lockServers[kind]({ proto });
    try {
      results.push(...await measureThroughput(server, durationMs));
      safety.push(await pauseSafety(server));
      const faulted = await serverFaultSafety(server);
      if (faulted !== null) safety.push(faulted);
    } finally {
      await server.stop();
    }
  }
  printTables(results, safety);
  if (options.json) console.log(JSON.stringify({ results, safety }));
}

function printTables(results: readonly ResultRow[], safety: readonly SafetyRow[]): void {
  log('\n| backend | contenders | names | acquires/s | p50 ms | p99 ms |\n| --- | ---: | ---: | ---: | ---: | ---: |');
  for (const row of results) {
    log(`| ${row.backend} | ${row.contenders} | ${row.names} | ${row.acquires_per_sec} | ${row.p50_ms} | ${row.p99_ms} |`);
  }
  log('\n| backend | fault | mutual exclusion held |\n| --- | --- | --- |');
  for (const row of safety) log(`| ${row.backend} | ${row.fault} | ${row.mutual_exclusion_held ? 'yes' : 'NO'} |`);
}
