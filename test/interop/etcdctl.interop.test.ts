/**
 * Differential interop: the same etcdctl 3.4 commands against real etcd and against Synod, both
 * started with the same etcd command line. Every command's output must match once the values that
 * legitimately differ are masked (see normalize.ts: ids, terms, ports, raft indexes, sizes,
 * versions, hashes, latencies, lease ids, revisions relative to a scenario's start). Three parts:
 * a script of one-shot commands; multi-process scenarios (watch, lease, lock, elect, snapshot) in
 * etcdctl-scenarios.ts; and `check perf --load=s`, which takes about a minute per target. Needs
 * `etcd` and `etcdctl` on the PATH (Debian's etcd-server and etcd-client); run by
 * `npm run test:interop`, which .ci/run calls after installing them. INTEROP_DUMP=1 prints both
 * transcripts.
 */

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  etcdctl,
  killAllEtcdctl,
  runEtcdctl,
  startTarget,
  stopTarget,
  type Target,
} from '../support/etcdctl-harness.js';
import {
  authScenario,
  electScenario,
  leaseScenario,
  lockScenario,
  memberScenario,
  record,
  snapshotScenario,
  watchScenario,
  type Scenario,
  type Step,
} from './etcdctl-scenarios.js';
import { normalize } from './normalize.js';

const dump = process.env.INTEROP_DUMP === '1';

/** The script: each step is etcdctl arguments (and optional stdin). */
const script: ReadonlyArray<{ args: string[]; input?: string }> = [
  { args: ['put', 'foo', 'bar'] },
  { args: ['get', 'foo'] },
  { args: ['put', 'foo2', 'baz'] },
  { args: ['put', 'fop', 'qux'] },
  { args: ['get', 'foo', '--prefix'] },
  { args: ['get', 'foo', '--prefix', '--keys-only'] },
  { args: ['get', 'foo', '--prefix', '--limit', '1'] },
  { args: ['get', 'f', '--prefix', '--sort-by=MODIFY', '--order=DESCEND'] },
  { args: ['get', 'foo', 'fop'] },
  { args: ['get', 'foo', '--from-key'] },
  { args: ['get', 'foo', '-w', 'json'] },
  { args: ['put', 'foo', 'bar2', '--prev-kv'] },
  { args: ['get', 'foo', '--rev', '2'] },
  { args: ['del', 'foo2', '--prev-kv'] },
  { args: ['del', 'nothing'] },
  { args: ['get', 'foo2'] },
  { args: ['txn'], input: 'value("foo") = "bar2"\n\nput result yes\n\nput result no\n\n' },
  { args: ['get', 'result'] },
  { args: ['txn'], input: 'version("missing") > "0"\n\nput result yes2\n\nput result no2\n\n' },
  { args: ['get', 'result', '-w', 'json'] },
  { args: ['compaction', '4'] },
  { args: ['get', 'foo', '--rev', '3'] },
  { args: ['compaction', '4'] },
  { args: ['get', 'foo', '--rev', '99'] },
  { args: ['put', '', 'empty'] },
  { args: ['del', 'f', '--prefix'] },
  { args: ['get', '', '--prefix', '-w', 'json'] },
  { args: ['member', 'list', '-w', 'json'] },
  { args: ['endpoint', 'status', '-w', 'json'] },
  { args: ['endpoint', 'health'] },
  { args: ['endpoint', 'health', '-w', 'json'] },
  { args: ['endpoint', 'hashkv', '-w', 'json'] },
  { args: ['endpoint', 'hashkv', '--rev', '3', '-w', 'json'] },
  // The simple (comma-separated) output of the same maintenance commands.
  { args: ['member', 'list'] },
  { args: ['endpoint', 'status'] },
  { args: ['endpoint', 'hashkv'] },
  { args: ['compaction', '--physical', '6'] },
  { args: ['get', 'result', '--rev', '5'] },
  { args: ['alarm', 'list'] },
  { args: ['alarm', 'disarm'] },
  { args: ['defrag'] },
];

/** The multi-command scenarios, with the key prefixes whose lock and election keys hold lease ids. */
const scenarios: ReadonlyArray<{ name: string; scenario: Scenario; leaseKeyPrefixes?: string[] }> = [
  { name: 'watch --rev, --prev-kv, --prefix, from a compacted revision', scenario: watchScenario },
  { name: 'lease grant, put --lease, timetolive, list, keep-alive --once, revoke', scenario: leaseScenario },
  { name: 'lock -- <cmd>, and two contenders in turn', scenario: lockScenario, leaseKeyPrefixes: ['lk/one/', 'lk/two/'] },
  { name: 'elect, elect -l, and leadership passing on', scenario: electScenario, leaseKeyPrefixes: ['el/'] },
  { name: 'snapshot save', scenario: snapshotScenario },
  { name: 'member add --learner, list, promote, update, remove, and their errors', scenario: memberScenario },
  { name: 'auth enable/disable, user and role commands, allowed and denied requests', scenario: authScenario },
];

/** check perf's result lines, without the progress bar that shares their terminal line. */
function perfResults(output: string): string[] {
  return output
    .split(/[\r\n]+/)
    .map((line) => line.replace(/^.*?(PASS|FAIL|Slowest request took too long)/, '$1'))
    .filter((line) => /^(PASS|FAIL|Slowest request took too long)/.test(line));
}

describe('etcdctl 3.4 against real etcd and Synod', () => {
  let etcd: Target;
  let synod: Target;
  const outputs = new Map<Target['name'], string[]>();

  beforeAll(async () => {
    etcd = await startTarget('etcd');
    synod = await startTarget('synod');
    for (const target of [etcd, synod]) {
      const lines: string[] = [];
      for (const step of script) lines.push(normalize(await etcdctl(target, step.args, step.input)));
      outputs.set(target.name, lines);
      if (dump) console.log(target.name, JSON.stringify(lines, null, 1));
    }
  }, 120_000);

  afterAll(async () => {
    await killAllEtcdctl();
    for (const target of [etcd, synod]) if (target !== undefined) await stopTarget(target);
  });

  script.forEach((step, i) => {
    it(`etcdctl ${step.args.join(' ')}${step.input ? ' (stdin)' : ''}`, () => {
      expect(outputs.get('synod')![i]).toBe(outputs.get('etcd')![i]);
    });
  });

  it('the script exercised both successes and etcd errors', () => {
    const etcdLines = outputs.get('etcd')!;
    expect(etcdLines.some((line) => line.startsWith('ERROR:'))).toBe(true);
    expect(etcdLines.filter((line) => !line.startsWith('ERROR:')).length).toBeGreaterThan(10);
  });

  // Each scenario runs on etcd, then on Synod (never both at once: two shared cores).
  for (const { name, scenario, leaseKeyPrefixes } of scenarios) {
    it(name, async () => {
      const transcripts: Record<Target['name'], Step[]> = {
        etcd: await record(etcd, scenario, leaseKeyPrefixes),
        synod: await record(synod, scenario, leaseKeyPrefixes),
      };
      if (dump) console.log(name, JSON.stringify(transcripts, null, 1));
      // etcd is the reference: it must get through every step before its transcript can judge.
      expect(transcripts.etcd.filter(({ step }) => step === 'ABORTED')).toEqual([]);
      expect(transcripts.synod).toEqual(transcripts.etcd);
    }, 120_000);
  }

  // etcd 3.4's small load: 50 clients, 150 writes/s for 60 s; it passes with a throughput above
  // 90 % of that, no request slower than 0.5 s and a latency stddev under 0.1 s.
  it('check perf --load=s', async () => {
    const verdicts: Record<Target['name'], string[]> = { etcd: [], synod: [] };
    for (const target of [etcd, synod]) {
      const run = await runEtcdctl(target, ['check', 'perf', '--load=s'], { timeoutMs: 150_000 });
      const results = perfResults(`${run.stdout}\n${run.stderr}`);
      // The measurements are the point of this step: always print them. The verdicts compared
      // mask the numbers, which differ from run to run even on one server.
      console.log(`check perf --load=s on ${target.name}: exit ${run.exitCode}\n  ${results.join('\n  ')}`);
      verdicts[target.name] = [`exit ${run.exitCode}`, ...results.map((line) => line.replace(/\d+(\.\d+)?/g, 'X'))];
    }
    expect(verdicts.etcd).toEqual([
      'exit 0',
      'PASS: Throughput is X writes/s',
      'PASS: Slowest request took Xs',
      'PASS: Stddev is Xs',
      'PASS',
    ]);
    expect(verdicts.synod).toEqual(verdicts.etcd);
  }, 330_000);
});
