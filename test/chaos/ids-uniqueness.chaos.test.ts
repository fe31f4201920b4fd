// Global ids stay unique through a Synod cluster's failures: five child processes draw segment
// ids (one tag they all share) and Snowflake ids (worker ids leased from the cluster) while the
// parent kills the Raft leader and SIGKILLs and replaces children. Every id a child wrote is
// checked: no id repeats across all processes and generator instances, and each instance's ids
// strictly increase. Children write 8-byte records synchronously, so a SIGKILL loses at most the
// tail of one record (dropped before the check).
import { fork, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import { startClusterTarget, type ClusterTarget } from '../client/cluster-target.js';

const children = 5;
/** Ids per generator kind per child: 5 children × 2 kinds × 500 000 = 5 million, plus replacements. */
const quotaPerKind = 500_000;
/** Pause between batches of 2 000 in a child: about 25 000 ids/s per kind, so a run lasts ~20 s. */
const pauseMs = 80;
const leaderKillEveryMs = 4_000;
const childKillEveryMs = 3_000;
/**
 * Faults stop once this many of each were injected: a replacement child starts its quota from
 * zero, so faults without end would keep every slot from ever finishing. Counting faults rather
 * than timing a window keeps the run's strength the same on a slow machine, where elections and
 * child starts take longer.
 */
const leaderKillsWanted = 4;
const childKillsWanted = 6;
const childScript = fileURLToPath(new URL('./ids-child.ts', import.meta.url));

let cluster: ClusterTarget;
let outputDirectory: string;

beforeAll(async () => {
  cluster = await startClusterTarget('synod', 17);
  outputDirectory = await mkdtemp(join(tmpdir(), 'synod-ids-chaos-'));
});
afterAll(async () => {
  await cluster?.stop();
  if (outputDirectory !== undefined) await rm(outputDirectory, { recursive: true, force: true });
});

/** A running child and whether it finished its quota. */
interface Child {
  readonly process: ChildProcess;
  done: boolean;
  readonly exited: Promise<number | null>;
}

/** How a child runs: where its files go, its quota, and the planted bug it runs with, if any. */
interface ChildRun {
  readonly directory: string;
  readonly quota: number;
  readonly pauseMs: number;
  readonly planted?: 'unshared-stores';
}

function startChild(run: ChildRun, name: string, slot: number): Child {
  const child = fork(childScript, [
    cluster.endpoints.join(','), run.directory, name, String(run.quota), String(run.pauseMs),
    String(slot),
  ], {
    execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    env: { ...process.env, SYNOD_IDS_CHILD_PLANTED: run.planted ?? '' },
  });
  const state: Child = {
    process: child, done: false,
    exited: once(child, 'exit').then(([code]) => code as number | null),
  };
  child.on('message', (message: { done?: boolean }) => {
    if (message.done === true) state.done = true;
  });
  started.push(state);
  return state;
}

/** Every id file's records, file by file. */
async function readIdFiles(directory: string): Promise<Map<string, BigInt64Array>> {
  const files = new Map<string, BigInt64Array>();
  for (const name of (await readdir(directory)).sort()) {
    const bytes = await readFile(join(directory, name));
    const whole = bytes.subarray(0, bytes.length - (bytes.length % 8));
    const ids = new BigInt64Array(whole.length / 8);
    for (let i = 0; i < ids.length; i++) ids[i] = whole.readBigInt64BE(i * 8);
    files.set(name, ids);
  }
  return files;
}

const started: Child[] = [];
afterEach(() => {
  for (const child of started) if (child.process.exitCode === null) child.process.kill('SIGKILL');
});

it('never repeats an id across 5 processes through leader kills and process restarts', async () => {
  const run: ChildRun = {
    directory: await mkdtemp(join(outputDirectory, 'run-')), quota: quotaPerKind, pauseMs,
  };
  const running = new Map<string, Child>();
  let generation = 0;
  for (let index = 0; index < children; index++) running.set(`c${index}`, startChild(run, `c${index}-g0`, index));
  let leaderKills = 0;
  let childKills = 0;
  let nextLeaderKillMs = performance.now() + leaderKillEveryMs;
  let nextChildKillMs = performance.now() + childKillEveryMs;
  // The fault loop: runs until every child slot finished its quota and every fault was injected
  // (children normally outlast the faults: each replacement starts its quota over).
  while ([...running.values()].some((child) => !child.done) || leaderKills < leaderKillsWanted) {
    await new Promise((resolve) => setTimeout(resolve, 250));
    // A child that failed on its own (not killed here) ends the run: its error is on stderr.
    for (const [slot, child] of running) {
      if (child.process.exitCode !== null && child.process.exitCode !== 0) {
        expect.fail(`child ${slot} exited with ${child.process.exitCode}`);
      }
    }
    const nowMs = performance.now();
    if (nowMs >= nextLeaderKillMs && leaderKills < leaderKillsWanted) {
      await cluster.killLeader();
      leaderKills += 1;
      nextLeaderKillMs = performance.now() + leaderKillEveryMs;
    }
    if (nowMs >= nextChildKillMs && childKills < childKillsWanted) {
      const victims = [...running.entries()].filter(([, child]) => !child.done);
      if (victims.length > 0) {
        const [slot, victim] = victims[(childKills * 3) % victims.length]!;
        victim.process.kill('SIGKILL');
        await victim.exited;
        generation += 1;
        running.set(slot, startChild(run, `${slot}-g${generation}`, Number(slot.slice(1))));
        childKills += 1;
      }
      nextChildKillMs = performance.now() + childKillEveryMs;
    }
  }
  const codes = await Promise.all([...running.values()].map((child) => child.exited));
  expect(codes).toEqual(new Array(children).fill(0));
  expect(leaderKills).toBe(leaderKillsWanted);
  expect(childKills).toBe(childKillsWanted);

  const verdict = checkIds(await readIdFiles(run.directory));
  expect(verdict.outOfOrder).toEqual([]);
  expect(verdict.repeated).toEqual({ segment: 0, snowflake: 0 });
  // Every slot's last child finished its quota of each kind.
  expect(verdict.drawn.segment).toBeGreaterThanOrEqual(children * quotaPerKind);
  expect(verdict.drawn.snowflake).toBeGreaterThanOrEqual(children * quotaPerKind);
  const total = verdict.drawn.segment + verdict.drawn.snowflake;
  console.log(`ids chaos: ${total} ids in ${verdict.instances} generator instances, ` +
    `${leaderKills} leader kills, ${childKills} process kills`);
}, 240_000);

it('catches a planted bug: every process with its own segment store and one static worker id', async () => {
  // Without the shared store and the leases, processes hand out the same ids: the check must say
  // so. A planted child announces it is ready and waits for the go, so both draw at once.
  const run: ChildRun = {
    directory: await mkdtemp(join(outputDirectory, 'planted-')), quota: 200_000, pauseMs: 0,
    planted: 'unshared-stores',
  };
  const planted = [startChild(run, 'p0', 0), startChild(run, 'p1', 1)];
  await Promise.all(planted.map((child) => new Promise<void>((resolve) => {
    child.process.on('message', (message: { ready?: boolean }) => {
      if (message.ready === true) resolve();
    });
  })));
  for (const child of planted) child.process.send({ go: true });
  expect(await Promise.all(planted.map((child) => child.exited))).toEqual([0, 0]);
  const verdict = checkIds(await readIdFiles(run.directory));
  expect(verdict.outOfOrder).toEqual([]);
  expect(verdict.repeated.segment).toBeGreaterThan(0);
  expect(verdict.repeated.snowflake).toBeGreaterThan(0);
}, 120_000);

type Kind = 'segment' | 'snowflake';

/** The check: ids out of order within a file, ids drawn more than once per kind, ids per kind. */
function checkIds(files: Map<string, BigInt64Array>): {
  outOfOrder: string[]; repeated: Record<Kind, number>; drawn: Record<Kind, number>; instances: number;
} {
  const outOfOrder: string[] = [];
  for (const [name, ids] of files) {
    for (let i = 1; i < ids.length; i++) {
      if (ids[i]! <= ids[i - 1]!) {
        outOfOrder.push(`${name}: id ${ids[i]} after ${ids[i - 1]}`);
        break;
      }
    }
  }
  const repeated = { segment: 0, snowflake: 0 };
  const drawn = { segment: 0, snowflake: 0 };
  for (const kind of ['segment', 'snowflake'] as const) {
    const ofKind = [...files].filter(([name]) => name.includes(`-${kind}-`)).map(([, ids]) => ids);
    const all = new BigInt64Array(ofKind.reduce((sum, ids) => sum + ids.length, 0));
    let offset = 0;
    for (const ids of ofKind) {
      all.set(ids, offset);
      offset += ids.length;
    }
    all.sort();
    for (let i = 1; i < all.length; i++) if (all[i] === all[i - 1]) repeated[kind] += 1;
    drawn[kind] = all.length;
  }
  return { outOfOrder, repeated, drawn, instances: files.size };
}
