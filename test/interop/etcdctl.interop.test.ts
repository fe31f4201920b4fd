/**
 * Differential interop: the same etcdctl 3.4 script against real etcd and against Synod, both
 * started with the same etcd command line. Every command's output must match once the values that
 * legitimately differ (cluster and member ids, raft term) are masked. Needs `etcd` and `etcdctl` on
 * the PATH (Debian's etcd-server and etcd-client); run by `npm run test:interop`, which .ci/run calls
 * after installing them. INTEROP_DUMP=1 prints both transcripts.
 */

import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const synodCli = join(import.meta.dirname, '../../src/apps/synod.ts');

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => resolve(typeof address === 'object' && address !== null ? address.port : 0));
    });
  });
}

interface Target {
  readonly name: 'etcd' | 'synod';
  readonly child: ChildProcess;
  readonly clientPort: number;
  readonly dataDir: string;
}

/** Starts `name` with etcd's flags; resolves once its log says it serves clients. */
async function startTarget(name: Target['name']): Promise<Target> {
  const dataDir = await mkdtemp(join(tmpdir(), `interop-${name}-`));
  const clientPort = await freePort();
  const peerPort = await freePort();
  const flags = [
    '--name', 'interop',
    '--data-dir', dataDir,
    '--listen-client-urls', `http://127.0.0.1:${clientPort}`,
    '--advertise-client-urls', `http://127.0.0.1:${clientPort}`,
    '--listen-peer-urls', `http://127.0.0.1:${peerPort}`,
    '--initial-advertise-peer-urls', `http://127.0.0.1:${peerPort}`,
    '--initial-cluster', `interop=http://127.0.0.1:${peerPort}`,
  ];
  const child =
    name === 'etcd'
      ? spawn('etcd', flags, { stdio: ['ignore', 'ignore', 'pipe'] })
      : spawn(process.execPath, ['--import', 'tsx', synodCli, 'server', ...flags], { stdio: ['ignore', 'ignore', 'pipe'] });
  const readyLine = name === 'etcd' ? /ready to serve client requests/ : /serving etcd v3 clients/;
  await new Promise<void>((resolve, reject) => {
    createInterface({ input: child.stderr! }).on('line', (line) => {
      if (readyLine.test(line)) resolve();
    });
    child.once('exit', (code) => reject(new Error(`${name} exited with ${code} before serving`)));
  });
  return { name, child, clientPort, dataDir };
}

async function stopTarget(target: Target): Promise<void> {
  if (target.child.exitCode === null) {
    await new Promise((resolve) => {
      target.child.once('exit', resolve);
      target.child.kill('SIGTERM');
    });
  }
  await rm(target.dataDir, { recursive: true, force: true });
}

/** Runs etcdctl; resolves with stdout, or "ERROR: <first stderr line>" when it fails. */
function etcdctl(target: Target, args: readonly string[], input?: string): Promise<string> {
  return new Promise((resolve) => {
    const child = execFile(
      'etcdctl',
      [`--endpoints=127.0.0.1:${target.clientPort}`, '--command-timeout=5s', ...args],
      { env: { ...process.env, ETCDCTL_API: '3' }, timeout: 20_000 },
      (error, stdout, stderr) => {
        if (error === null) resolve(stdout.trim());
        else resolve(`ERROR: ${stderr.split('\n').find((line) => line.startsWith('Error:')) ?? stderr.trim()}`);
      },
    );
    if (input !== undefined) child.stdin!.end(input);
  });
}

/** Masks what differs between two correct servers: ids and the raft term. */
function normalize(output: string): string {
  return output
    .replace(/"cluster_id":\d+/g, '"cluster_id":ID')
    .replace(/"member_id":\d+/g, '"member_id":ID')
    .replace(/"raft_term":\d+/g, '"raft_term":T')
    // Member ids (MemberList's ID, Status's leader) are hashes of different functions (SHA-1 in
    // etcd, SHA-256 in Synod). Only non-zero ids are masked, so "no leader" (0) still shows.
    .replace(/"(ID|leader)":[1-9]\d*/g, '"$1":ID')
    .replace(/"raftTerm":\d+/g, '"raftTerm":T')
    // Each target listens on its own free ports; the URLs and endpoints are otherwise the same.
    .replace(/127\.0\.0\.1:\d+/g, '127.0.0.1:PORT')
    // Raft indexes count entries etcd proposes for itself (member attributes, cluster version)
    // that Synod does not, so they differ by a constant for the same client history.
    .replace(/"(raftIndex|raftAppliedIndex)":\d+/g, '"$1":N')
    // bbolt and LMDB files differ in size; etcd reports its own version, Synod reports 3.5.0.
    .replace(/"(dbSize|dbSizeInUse)":\d+/g, '"$1":BYTES')
    .replace(/"version":"3\.\d+\.\d+"/g, '"version":"3.x"')
    // HashKV hashes each server's own storage layout (bbolt vs Synod's records); only agreement
    // among members of one implementation is meaningful.
    .replace(/"hash":\d+/g, '"hash":H')
    // endpoint health's latency: "took = 1.2ms" in text (on stderr, read only on failure) and
    // "took":"1.2ms" with -w json; it is wall-clock time, never equal between two runs.
    .replace(/took = [\d.]+(ns|µs|ms|s)/g, 'took = T')
    .replace(/"took":"[^"]*"/g, '"took":"T"');
}

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
  { args: ['alarm', 'list'] },
  { args: ['alarm', 'disarm'] },
  { args: ['defrag'] },
];

describe('etcdctl 3.4 against real etcd and Synod', () => {
  const targets: Target[] = [];
  const outputs = new Map<Target['name'], string[]>();

  beforeAll(async () => {
    targets.push(await startTarget('etcd'), await startTarget('synod'));
    for (const target of targets) {
      const lines: string[] = [];
      for (const step of script) lines.push(normalize(await etcdctl(target, step.args, step.input)));
      outputs.set(target.name, lines);
      if (process.env.INTEROP_DUMP === '1') console.log(target.name, JSON.stringify(lines, null, 1));
    }
  }, 120_000);

  afterAll(async () => {
    for (const target of targets) await stopTarget(target);
  });

  script.forEach((step, i) => {
    it(`etcdctl ${step.args.join(' ')}${step.input ? ' (stdin)' : ''}`, () => {
      expect(outputs.get('synod')![i]).toBe(outputs.get('etcd')![i]);
    });
  });

  it('the script exercised both successes and etcd errors', () => {
    const etcd = outputs.get('etcd')!;
    expect(etcd.some((line) => line.startsWith('ERROR:'))).toBe(true);
    expect(etcd.filter((line) => !line.startsWith('ERROR:')).length).toBeGreaterThan(10);
  });
});
