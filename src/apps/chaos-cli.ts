#!/usr/bin/env node
/**
 * `npm run chaos -- [options]` and `synod chaos [options]`: one Jepsen-style run against real
 * Synod or etcd processes on loopback (src/apps/chaos). Prints the verdict; with --json the last
 * line is exactly the summary object. Exits 0 when the history is valid, 1 when not, 2 on bad
 * options.
 */

import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { SynodError } from '../base/index.js';
import { plantedBugVariable, serverPlantedBugs } from '../server/planted-bugs.js';
import { faultKinds } from './chaos/nemesis.js';
import { availabilityTable, campaignTable, type CampaignEntry } from './chaos/campaign.js';
import { runChaos, runnableWorkloads } from './chaos/run.js';
import type { ChaosTarget, FaultKind, WorkloadKind } from './chaos/types.js';

/**
 * The members' --snapshot-count in chaos runs (etcd's default is 100,000): small enough that every
 * run takes many snapshots and compacts the log while faults hit, so restarts, OS-crash rebuilds
 * and lagging followers go through snapshots too, not only through log replay.
 */
const chaosSnapshotCountDefault = 2_000;

const usage = `usage: synod chaos [--target synod|etcd|synod,etcd] [--runs N] [--nodes 3|5] [--time 60s] [--seed N]
  [--faults ${faultKinds.join(',')}] [--workload ${runnableWorkloads.join(',')}]
  [--clients N] [--snapshot-count N] [--out DIR] [--keep-data] [--json]
  [--planted-bug ${serverPlantedBugs.join('|')}]  (Synod only: a deliberate bug the run must catch)`;

/** `120`, `120s`, `2m` → milliseconds. */
export function parseDuration(text: string): number {
  const match = /^(\d+)(ms|s|m)?$/.exec(text);
  if (match === null) throw new SynodError('SYNOD_INVALID_CONFIG', `--time ${text}: expected e.g. 120s or 2m`);
  const value = Number(match[1]);
  const unit = match[2] ?? 's';
  return unit === 'ms' ? value : unit === 's' ? value * 1_000 : value * 60_000;
}

function listOf<T extends string>(flag: string, text: string, allowed: readonly T[]): T[] {
  const items = text.split(',').map((item) => item.trim()).filter((item) => item !== '');
  for (const item of items) {
    if (!allowed.includes(item as T)) throw new SynodError('SYNOD_INVALID_CONFIG', `--${flag} ${item}: expected one of ${allowed.join(', ')}`);
  }
  return items as T[];
}

/** Parses the command line and runs; returns the exit code. */
export async function chaosMain(argv: readonly string[]): Promise<number> {
  let options;
  try {
    const { values } = parseArgs({
      args: [...argv],
      options: {
        target: { type: 'string', default: 'synod' },
        runs: { type: 'string', default: '1' },
        nodes: { type: 'string', default: '3' },
        time: { type: 'string', default: '60s' },
        seed: { type: 'string', default: '1' },
        faults: { type: 'string', default: 'partition,kill,pause' },
        workload: { type: 'string', default: runnableWorkloads.join(',') },
        clients: { type: 'string' },
        'snapshot-count': { type: 'string', default: String(chaosSnapshotCountDefault) },
        out: { type: 'string' },
        'keep-data': { type: 'boolean', default: false },
        'planted-bug': { type: 'string' },
        json: { type: 'boolean', default: false },
        help: { type: 'boolean', default: false },
      },
    });
    if (values.help) {
      console.log(usage);
      return 0;
    }
    const targets = listOf<ChaosTarget>('target', values.target, ['synod', 'etcd']);
    const nodes = Number(values.nodes);
    const runs = Number(values.runs);
    if (targets.length === 0 || !Number.isInteger(nodes) || nodes < 1 || nodes > 7) {
      throw new SynodError('SYNOD_INVALID_CONFIG', '--target synod|etcd[,…] and --nodes 1..7');
    }
    if (!Number.isInteger(runs) || runs < 1 || runs > 1000) throw new SynodError('SYNOD_INVALID_CONFIG', '--runs 1..1000');
    const snapshotCount = Number(values['snapshot-count']);
    if (!Number.isInteger(snapshotCount) || snapshotCount < 1) throw new SynodError('SYNOD_INVALID_CONFIG', '--snapshot-count must be a positive integer');
    options = {
      targets, runs, nodes, json: values.json,
      durationMs: parseDuration(values.time),
      seed: Number.parseInt(values.seed, 10),
      faults: values.faults === 'none' ? [] : listOf<FaultKind>('faults', values.faults, faultKinds),
      workloads: listOf<WorkloadKind>('workload', values.workload, runnableWorkloads),
      ...(values.clients === undefined ? {} : { clientsPerWorkload: Number(values.clients) }),
      ...(values.out === undefined ? {} : { outDir: values.out }),
      keepData: values['keep-data'],
      extraFlags: ['--snapshot-count', String(snapshotCount)],
      ...(values['planted-bug'] === undefined ? {} : { extraEnv: { [plantedBugVariable]: values['planted-bug'] } }),
    };
    if (!Number.isSafeInteger(options.seed)) throw new SynodError('SYNOD_INVALID_CONFIG', '--seed must be an integer');
  } catch (error) {
    console.error(`synod chaos: ${(error as Error).message}\n${usage}`);
    return 2;
  }
  const { targets, runs, json, outDir, ...common } = options;
  const summaries: CampaignEntry[] = [];
  for (let run = 0; run < runs; run++) {
    for (const target of targets) {
      const seed = common.seed + run;
      const single = runs === 1 && targets.length === 1;
      const runOptions = {
        ...common, target, seed, log: (line: string) => console.error(line),
        ...(outDir === undefined ? {} : { outDir: single ? outDir : join(outDir, `${target}-seed${seed}`) }),
      };
      if (single) {
        const outcome = await runChaos(runOptions);
        console.log(outcome.text);
        summaries.push({ seed, summary: outcome.summary, availability: outcome.availability });
        continue;
      }
      // In a campaign one run that cannot even start (no leader within the wait, say) is reported
      // as such and the campaign goes on; the exit code still says something went wrong.
      try {
        const outcome = await runChaos(runOptions);
        console.log(outcome.text);
        summaries.push({ seed, summary: outcome.summary, availability: outcome.availability });
      } catch (error) {
        const message = error instanceof Error ? error.message.split('\n')[0]! : String(error);
        console.log(`chaos: ${target}, seed ${seed}: the run failed: ${message}`);
        summaries.push({ seed, target, error: message });
      }
    }
  }
  const finished = summaries.flatMap((entry) => ('summary' in entry ? [entry.summary] : []));
  if (summaries.length > 1) console.log(`${campaignTable(summaries)}\n\n${availabilityTable(summaries)}`);
  if (json) console.log(JSON.stringify(summaries.length === 1 ? finished[0] : { runs: finished }));
  return summaries.every((entry) => 'summary' in entry && entry.summary.verdict === 'valid') ? 0 : 1;
}

// Run when this file is the entry (npm run chaos); `synod chaos` imports `chaosMain` instead.
const invokedDirectly = process.argv[1] !== undefined && fileURLToPath(import.meta.url) === resolve(process.argv[1]);
if (invokedDirectly) {
  chaosMain(process.argv.slice(2)).then((code) => process.exit(code), (error: unknown) => {
    console.error(error);
    process.exit(3);
  });
}
