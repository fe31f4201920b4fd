/**
 * `npm run sim`: runs the deterministic simulator over a range of seeds and reports every seed that
 * broke a safety or liveness invariant or produced a non-linearizable history.
 *
 * ```sh
 * npm run sim -- --seeds 2000 [--start 1] [--json] [--planted-bug NAME] [--workers 2]
 * npm run sim -- --seed 1234 --verbose     # replay one seed with its readable trace
 * ```
 *
 * Seeds run on worker threads (two by default): each seed is independent and deterministic, so the
 * split changes nothing but the wall-clock time. With `--json` the last line printed is one JSON
 * object: {"seeds","steps","faults","violations","linearizability_violations","failed_seeds"}. The
 * exit code is 1 when any seed failed, 2 on a usage error.
 */

import { availableParallelism } from 'node:os';
import { parseArgs } from 'node:util';
import { Worker, isMainThread, parentPort } from 'node:worker_threads';
import type { PlantedBug } from '../raft/index.js';
import { runSeed, type RunOptions, type RunResult, type SimStats } from '../sim/index.js';

const plantedBugs = [
  'commit-previous-term',
  'vote-without-log-check',
  'ack-before-persist',
  'forget-vote-on-restart',
  'defer-vote-sync',
] as const satisfies readonly PlantedBug[];

/** Seeds handed to a worker at a time: few enough to balance the load, enough to amortize. */
const batchSeeds = 8;

/** A run result without its trace lines, as it crosses from a worker. */
type SeedOutcome = Omit<RunResult, 'traceLines'>;

interface CliOptions {
  readonly start: number;
  readonly seeds: number;
  readonly single: number | null;
  readonly json: boolean;
  readonly verbose: boolean;
  readonly workers: number;
  readonly run: RunOptions;
}

/** Messages from the main thread to a worker, and back. */
type ToWorker =
  | { readonly kind: 'run'; readonly seeds: readonly number[]; readonly run: RunOptions }
  | { readonly kind: 'exit' };
type FromWorker = { readonly kind: 'results'; readonly outcomes: readonly SeedOutcome[] };

class UsageError extends Error {}

/** Parses `--name` as an integer ≥ `min`; `fallback` when absent. */
function integerOption(
  name: string,
  text: string | undefined,
  bounds: { readonly fallback: number; readonly min: number },
): number {
  if (text === undefined) return bounds.fallback;
  const value = Number(text);
  if (!Number.isSafeInteger(value) || value < bounds.min) {
    throw new UsageError(`--${name} must be an integer ≥ ${bounds.min}, got ${text}`);
  }
  return value;
}

function parseOptions(argv: readonly string[]): CliOptions {
  const { values } = parseArgs({
    args: [...argv],
    options: {
      seeds: { type: 'string' },
      start: { type: 'string' },
      seed: { type: 'string' },
      json: { type: 'boolean', default: false },
      verbose: { type: 'boolean', default: false },
      'planted-bug': { type: 'string' },
      workers: { type: 'string' },
      'fault-steps': { type: 'string' },
    },
    strict: true,
  });
  const bug = values['planted-bug'];
  if (bug !== undefined && !(plantedBugs as readonly string[]).includes(bug)) {
    throw new UsageError(`--planted-bug must be one of ${plantedBugs.join(', ')}`);
  }
  const seeds = integerOption('seeds', values.seeds, { fallback: 100, min: 1 });
  const workersDefault = seeds >= 2 * batchSeeds ? Math.min(2, availableParallelism()) : 1;
  const faultStepsText = values['fault-steps'];
  const run: RunOptions = {
    plantedBug: (bug as PlantedBug | undefined) ?? null,
    ...(faultStepsText === undefined
      ? {}
      : { faultSteps: integerOption('fault-steps', faultStepsText, { fallback: 0, min: 1 }) }),
  };
  const single =
    values.seed === undefined ? null : integerOption('seed', values.seed, { fallback: 0, min: 0 });
  return {
    start: integerOption('start', values.start, { fallback: 1, min: 0 }),
    seeds,
    single,
    json: values.json,
    verbose: values.verbose,
    workers: integerOption('workers', values.workers, { fallback: workersDefault, min: 1 }),
    run,
  };
}

function failed(outcome: SeedOutcome): boolean {
  return outcome.violations.length > 0 || outcome.linearizability.ok === false;
}

function slim(result: RunResult): SeedOutcome {
  const { traceLines: _traceLines, ...outcome } = result;
  return outcome;
}

function describeFailure(outcome: SeedOutcome): string {
  const scenario = JSON.stringify(outcome.scenario);
  const lines = [`seed ${outcome.seed}: FAILED after ${outcome.steps} steps  ${scenario}`];
  for (const violation of outcome.violations) lines.push(`  ${violation}`);
  if (outcome.linearizability.ok === false) {
    const report = outcome.linearizability.report.replaceAll('\n', '\n    ');
    lines.push(`  linearizability violated: ${report}`);
  }
  const bug = outcome.scenario.plantedBug;
  const bugOption = bug === null ? '' : ` --planted-bug ${bug}`;
  lines.push(`  replay: npm run sim -- --seed ${outcome.seed} --verbose${bugOption}`);
  return lines.join('\n');
}

/** Runs the seeds on `workers` threads (or this one), returning outcomes in seed order. */
async function runSeeds(seeds: readonly number[], options: CliOptions): Promise<SeedOutcome[]> {
  if (options.workers <= 1 || seeds.length <= batchSeeds) {
    return seeds.map((seed) => {
      const outcome = slim(runSeed(seed, options.run));
      if (options.verbose) console.log(summaryLine(outcome));
      return outcome;
    });
  }
  const outcomes: SeedOutcome[] = [];
  let next = 0;
  const takeBatch = (): number[] => {
    const batch = seeds.slice(next, next + batchSeeds);
    next += batch.length;
    return batch;
  };
  const workers = Array.from(
    { length: Math.min(options.workers, Math.ceil(seeds.length / batchSeeds)) },
    () => spawnWorker(),
  );
  await Promise.all(
    workers.map(
      (worker) =>
        new Promise<void>((resolve, reject) => {
          const feed = (): void => {
            const batch = takeBatch();
            const message: ToWorker =
              batch.length === 0
                ? { kind: 'exit' }
                : { kind: 'run', seeds: batch, run: options.run };
            worker.postMessage(message);
            if (batch.length === 0) resolve();
          };
          worker.on('message', (message: FromWorker) => {
            for (const outcome of message.outcomes) {
              outcomes.push(outcome);
              if (options.verbose) console.log(summaryLine(outcome));
            }
            feed();
          });
          worker.on('error', reject);
          worker.on('exit', (code) =>
            code === 0 ? resolve() : reject(new Error(`sim worker exited with code ${code}`)),
          );
          feed();
        }),
    ),
  );
  return outcomes.sort((left, right) => left.seed - right.seed);
}

/**
 * A worker running this very module. Under tsx (a .ts module) the worker registers tsx's loader
 * first, since Node 20 does not pass `--import` hooks on to a worker's entry module.
 */
function spawnWorker(): Worker {
  const self = import.meta.url;
  if (!self.endsWith('.ts')) return new Worker(new URL(self));
  const tsxApi = import.meta.resolve('tsx/esm/api');
  const bootstrap =
    `import(${JSON.stringify(tsxApi)})` +
    `.then((tsx) => { tsx.register(); return import(${JSON.stringify(self)}); })`;
  return new Worker(bootstrap, { eval: true });
}

function serveAsWorker(): void {
  const port = parentPort!;
  port.on('message', (message: ToWorker) => {
    if (message.kind === 'exit') {
      port.close();
      return;
    }
    const outcomes = message.seeds.map((seed) => slim(runSeed(seed, message.run)));
    const reply: FromWorker = { kind: 'results', outcomes };
    port.postMessage(reply);
  });
}

function summaryLine(outcome: SeedOutcome): string {
  let verdict = failed(outcome) ? 'FAILED' : 'ok';
  if (outcome.linearizability.ok === 'unknown') verdict += ' (linearizability undecided)';
  const live = outcome.livenessSteps === null ? 'never' : `${outcome.livenessSteps} steps`;
  return (
    `seed ${outcome.seed}: ${verdict}, ${outcome.steps} steps, ${outcome.faults} faults, ` +
    `${outcome.operations} operations, live after heal in ${live}, trace ${outcome.traceHash}`
  );
}

function replaySingle(seed: number, options: CliOptions): number {
  const result = runSeed(seed, { ...options.run, verbose: options.verbose });
  for (const line of result.traceLines) console.log(line);
  console.log(summaryLine(result));
  console.log(`stats: ${JSON.stringify(result.stats)}`);
  console.log(`scenario: ${JSON.stringify(result.scenario)}`);
  if (failed(result)) console.log(describeFailure(result));
  if (options.json) console.log(JSON.stringify(totals([slim(result)])));
  return failed(result) ? 1 : 0;
}

/** The machine-readable summary: the last line printed with `--json`. */
interface Totals {
  readonly seeds: number;
  readonly steps: number;
  readonly faults: number;
  readonly violations: number;
  readonly linearizability_violations: number;
  readonly failed_seeds: readonly number[];
}

function totals(outcomes: readonly SeedOutcome[]): Totals {
  const sum = (pick: (outcome: SeedOutcome) => number): number =>
    outcomes.reduce((total, outcome) => total + pick(outcome), 0);
  return {
    seeds: outcomes.length,
    steps: sum((o) => o.steps),
    faults: sum((o) => o.faults),
    violations: sum((o) => o.violations.length),
    linearizability_violations: outcomes.filter((o) => o.linearizability.ok === false).length,
    failed_seeds: outcomes.filter(failed).map((outcome) => outcome.seed),
  };
}

function printSummary(
  outcomes: readonly SeedOutcome[],
  elapsedMs: number,
  options: CliOptions,
): void {
  const stat = (key: keyof SimStats): number =>
    outcomes.reduce((total, outcome) => total + outcome.stats[key], 0);
  const summary = totals(outcomes);
  const undecided = outcomes.filter((outcome) => outcome.linearizability.ok === 'unknown');
  const last = options.start + outcomes.length - 1;
  const bug = options.run.plantedBug ? `, planted bug ${options.run.plantedBug}` : '';
  const operations = outcomes.reduce((total, outcome) => total + outcome.operations, 0);
  const lines = [
    `seeds run: ${outcomes.length} (${options.start}..${last})${bug}`,
    `steps: ${summary.steps}`,
    `faults injected: ${summary.faults} (drops ${stat('drops')}, ` +
      `duplicates ${stat('duplicates')}, partitions ${stat('partitions')}, ` +
      `crashes ${stat('crashes')}, of which in a Ready ` +
      `${stat('readyCrashes')} and disk failures ${stat('diskFailures')})`,
    `exercised: snapshots installed ${stat('snapshotsInstalled')}, conf changes applied ` +
      `${stat('confChangesApplied')}, re-adds ${stat('reAdds')}, elections ${stat('elections')}, ` +
      `operations ${operations} (ReadIndex reads ${stat('readIndexReads')})`,
    `invariant violations: ${summary.violations}`,
    `linearizability violations: ${summary.linearizability_violations}` +
      (undecided.length === 0
        ? ''
        : ` (undecided within the search budget: seeds ${undecided.map((o) => o.seed).join(' ')})`),
    `failed seeds: ${summary.failed_seeds.length === 0 ? 'none' : summary.failed_seeds.join(' ')}`,
    `time: ${(elapsedMs / 1000).toFixed(1)} s ` +
      `(${(elapsedMs / Math.max(1, outcomes.length)).toFixed(1)} ms per seed, ` +
      `${options.workers} worker${options.workers === 1 ? '' : 's'})`,
  ];
  for (const line of lines) console.log(line);
  if (options.json) console.log(JSON.stringify(summary));
}

async function main(argv: readonly string[]): Promise<number> {
  let options: CliOptions;
  try {
    options = parseOptions(argv);
  } catch (error) {
    if (!(error instanceof UsageError || (error instanceof Error && 'code' in error))) throw error;
    console.error(`sim: ${error.message}`);
    return 2;
  }
  if (options.single !== null) return replaySingle(options.single, options);
  const seeds = Array.from({ length: options.seeds }, (_, i) => options.start + i);
  const startedMs = performance.now();
  const outcomes = await runSeeds(seeds, options);
  const elapsedMs = performance.now() - startedMs;
  for (const outcome of outcomes) if (failed(outcome)) console.log(describeFailure(outcome));
  printSummary(outcomes, elapsedMs, options);
  return outcomes.some(failed) ? 1 : 0;
}

if (isMainThread) {
  process.exitCode = await main(process.argv.slice(2));
} else {
  serveAsWorker();
}
