import { describe, expect, it } from 'vitest';
import { SeededRandom } from '../base/index.js';
import { newMessage } from '../raft/index.js';
import { runSeed, type RunResult, type SimStats } from './index.js';
import { SimNetwork } from './network.js';
import { reliableNetwork } from './scenario.js';
import { KvStateMachine } from './state-machine.js';
import { Trace } from './trace.js';

/** Seeds every `npm test` runs: the first 300, so a failure names a seed anyone can replay. */
const seedCount = 300;

function failureText(result: RunResult): string {
  const lines = [
    `seed ${result.seed} (npm run sim -- --seed ${result.seed} --verbose):`,
    ...result.violations,
  ];
  if (result.linearizability.ok === false) lines.push(result.linearizability.report);
  return lines.join('\n  ');
}

let seedResults: RunResult[] | null = null;

/** The runs of seeds 1..seedCount, computed once and shared by the tests that inspect them. */
function runAllSeeds(): RunResult[] {
  seedResults ??= Array.from({ length: seedCount }, (_, i) => runSeed(i + 1));
  return seedResults;
}

describe('simulator', () => {
  it(`runs ${seedCount} seeds with no safety, liveness or linearizability violation`, () => {
    const results = runAllSeeds();
    const failures = results.filter(
      (r) => r.violations.length > 0 || r.linearizability.ok === false,
    );
    expect(failures.map(failureText)).toEqual([]);
    // A check that ran out of budget proves nothing; none of these histories should need that much.
    expect(results.filter((r) => r.linearizability.ok === 'unknown').map((r) => r.seed)).toEqual(
      [],
    );
  });

  it('injects every kind of fault and drives every protocol path it exists to test', () => {
    const results = runAllSeeds();
    const total = (key: keyof SimStats): number =>
      results.reduce((sum, r) => sum + r.stats[key], 0);
    const kinds: (keyof SimStats)[] = [
      'drops',
      'duplicates',
      'partitions',
      'asymmetricPartitions',
      'leaderIsolations',
      'crashes',
      'readyCrashes',
      'diskFailures',
      'restarts',
      'snapshotsCreated',
      'snapshotsInstalled',
      'confChangesApplied',
      'reAdds',
      'leaderTransfers',
      'readIndexReads',
      'operationsIndeterminate',
    ];
    const zero = kinds.filter((kind) => total(kind) === 0);
    expect(zero).toEqual([]);
    // Most runs see crashes and partitions, not just a few.
    expect(results.filter((r) => r.stats.crashes > 0).length).toBeGreaterThan(seedCount * 0.8);
    expect(results.filter((r) => r.stats.partitions > 0).length).toBeGreaterThan(seedCount * 0.8);
    // Every Raft option the scenarios vary is exercised both ways.
    const scenarios = results.map((r) => r.scenario);
    expect(new Set(scenarios.map((s) => s.preVote)).size).toBe(2);
    expect(new Set(scenarios.map((s) => s.checkQuorum)).size).toBe(2);
    expect(new Set(scenarios.map((s) => s.readOnlyOption)).size).toBe(2);
    expect(new Set(scenarios.map((s) => s.voters)).size).toBe(2);
    // Clients got answers, and the cluster recovered after every heal.
    expect(results.every((r) => r.stats.operationsAnswered > 0)).toBe(true);
    expect(results.every((r) => r.livenessSteps !== null)).toBe(true);
  });

  it('is deterministic: a seed replays to the same result and the same trace', () => {
    for (const seed of [1, 7, 42]) {
      const first = runSeed(seed);
      const second = runSeed(seed);
      expect(second).toEqual(first);
      expect(second.traceHash).toBe(first.traceHash);
      // Keeping a readable trace changes nothing about the run.
      const verbose = runSeed(seed, { verbose: true });
      expect(verbose.traceHash).toBe(first.traceHash);
      expect(verbose.traceLines.length).toBeGreaterThan(1000);
    }
    expect(runSeed(1).traceHash).not.toBe(runSeed(2).traceHash);
  });

  it('runs with a planted bug switched on in every node', () => {
    const result = runSeed(1, { plantedBug: 'vote-without-log-check', faultSteps: 500 });
    expect(result.scenario.plantedBug).toBe('vote-without-log-check');
    expect(result.steps).toBeGreaterThan(500);
  });
});

describe('KvStateMachine', () => {
  const put = (opId: number, clientId: number, value: string) =>
    ({ kind: 'kv', opId, clientId, key: 'k', call: { kind: 'put', value } }) as const;

  it('applies an operation once, skipping duplicates and ones overtaken by newer ones', () => {
    const machine = new KvStateMachine();
    expect(machine.apply(put(2, 1, 'a'))).toEqual({ kind: 'put' });
    expect(machine.apply(put(2, 1, 'a'))).toBeNull();
    expect(machine.apply(put(1, 1, 'old'))).toBeNull();
    expect(machine.apply(put(1, 2, 'b'))).toEqual({ kind: 'put' });
    expect(machine.get('k')).toBe('b');
  });

  it('restores from its snapshot bytes to an equal state', () => {
    const machine = new KvStateMachine();
    machine.apply(put(1, 1, 'a'));
    machine.apply({
      kind: 'kv',
      opId: 2,
      clientId: 2,
      key: 'j',
      call: { kind: 'cas', expected: null, value: 'c' },
    });
    const restored = KvStateMachine.restore(machine.snapshotData());
    expect(restored.stateHash()).toBe(machine.stateHash());
    expect(restored.apply(put(1, 1, 'again'))).toBeNull();
    expect(KvStateMachine.restore(new Uint8Array()).stateHash()).toBe(
      new KvStateMachine().stateHash(),
    );
  });
});

describe('SimNetwork', () => {
  const message = (from: number, to: number) => newMessage({ type: 'heartbeat', from, to, term: 1 });

  it('cuts links one way only, and loses messages in flight on a link when it is cut', () => {
    const network = new SimNetwork({
      random: new SeededRandom(1),
      trace: new Trace({ verbose: false }),
      rates: reliableNetwork,
    });
    expect(network.send({ message: message(1, 2), sender: 1 }, 0)).toBe(true);
    network.cut(1, 2);
    expect(network.send({ message: message(1, 2), sender: 1 }, 0)).toBe(false);
    expect(network.send({ message: message(2, 1), sender: 2 }, 0)).toBe(true);
    let delivered = 0;
    let lost = 0;
    for (let step = 1; step <= reliableNetwork.delayStepsMax; step++) {
      const due = network.takeDue(step);
      delivered += due.delivered.length;
      lost += due.lost.length;
    }
    expect({ delivered, lost }).toEqual({ delivered: 1, lost: 1 });
    network.healLinks();
    expect(network.send({ message: message(1, 2), sender: 1 }, 10)).toBe(true);
  });
});
