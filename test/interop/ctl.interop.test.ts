/**
 * `synod ctl` end to end: one real Synod member from `startServer` in this process, the CLI run
 * in process through `ctlMain` with collected stdout/stderr, and the same command run by etcdctl
 * 3.4 against the same member so the bytes can be compared (hence the interop suite: it needs
 * Debian's etcd-client on the PATH). The auth tests turn auth on and off again.
 * Nothing waits on time: the watch tests act on `onStarted`, every other step awaits a reply.
 */

import { execFile, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Connection, channelCredentials } from '../../src/apps/ctl/connection.js';
import { globalConfigOf } from '../../src/apps/ctl/global-flags.js';
import { ctlMain } from '../../src/apps/ctl/index.js';
import { goDuration, humanizeBytes } from '../../src/apps/ctl/simple-output.js';
import { createGrpcServer } from '../../src/server/api/grpc-server.js';
import { MemberAuthSource, authInterceptor } from '../../src/server/auth/auth-interceptor.js';
import { parseServerFlags } from '../../src/server/flags.js';
import { loadEtcdProto } from '../../src/server/grpc/proto.js';
import { startServer, type RunningServer } from '../../src/server/server.js';
import { etcdServices } from '../../src/server/services.js';

const etcdctlPath = 'etcdctl';

/** What one run printed and returned. */
interface Outcome {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

interface RunOptions {
  readonly stdin?: string;
  readonly env?: Record<string, string>;
  readonly signal?: AbortSignal;
  readonly onStarted?: () => void;
  readonly onStdout?: (stdout: string) => void;
  /** Replaces the test member as `--endpoints`; null passes no `--endpoints` at all. */
  readonly endpoints?: string | null;
}

let server: RunningServer;
let endpoint: string;
let scratch: string;

/** A successful run that printed `stdout` and nothing on stderr. */
const printed = (stdout: string): Outcome => ({ code: 0, stdout, stderr: '' });

/** Runs `synod ctl` in process. */
async function ctl(args: readonly string[], options: RunOptions = {}): Promise<Outcome> {
  let stdout = '';
  let stderr = '';
  const endpoints = options.endpoints === undefined ? ['--endpoints', endpoint]
    : options.endpoints === null ? [] : ['--endpoints', options.endpoints];
  const code = await ctlMain([...endpoints, ...args], {
    stdout: {
      write: (text: string) => {
        stdout += text;
        options.onStdout?.(stdout);
      },
    },
    stderr: { write: (text: string) => (stderr += text) },
    readStdin: async () => options.stdin ?? '',
    env: options.env ?? {},
    interrupt: options.signal ?? new AbortController().signal,
    ...(options.onStarted === undefined ? {} : { onStarted: options.onStarted }),
  });
  return { code, stdout, stderr };
}

/** Runs `synod ctl` and parses its `-w json` output. */
async function ctlJson<Shape>(args: readonly string[], options: RunOptions = {}): Promise<Shape> {
  const { stdout } = await ctl([...args, '-w', 'json'], options);
  return JSON.parse(stdout) as Shape;
}

/** Runs etcdctl 3.4 against the same member; stderr keeps only its `Error:` lines. */
function etcdctl(args: readonly string[], stdin = ''): Promise<Outcome> {
  return new Promise((resolve, reject) => {
    const child = spawn(etcdctlPath, [`--endpoints=${endpoint}`, ...args], {
      env: { PATH: process.env['PATH'] ?? '', ETCDCTL_API: '3' },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      const errors = stderr.split('\n').filter((line) => line.startsWith('Error:'));
      resolve({ code: code ?? -1, stdout, stderr: errors.map((line) => `${line}\n`).join('') });
    });
    child.stdin.end(stdin);
  });
}

/** Expects `synod ctl` and etcdctl to print the same bytes and exit alike for each command. */
async function expectSameAsEtcdctl(commands: readonly (readonly string[])[]): Promise<void> {
  for (const args of commands) expect(await ctl(args), args.join(' ')).toEqual(await etcdctl(args));
}

/** The current revision, from a Range header. */
async function currentRevision(): Promise<number> {
  const range = await ctlJson<{ header: { revision: number } }>(['get', 'revision-probe']);
  return range.header.revision;
}

/** Adds `delta` to the numbers of `fields`: the same write's JSON made `delta` revisions later. */
function shiftRevisions(json: string, delta: number, fields: readonly string[]): string {
  return json.replace(new RegExp(`"(${fields.join('|')})":(\\d+)`, 'g'),
    (_, field: string, n: string) => `"${field}":${Number(n) + delta}`);
}

const base64 = (text: string): string => Buffer.from(text).toString('base64');

/** A promise and the function that resolves it, for `onStarted`. */
function signal(): { readonly fired: Promise<void>; readonly fire: () => void } {
  let fire!: () => void;
  const fired = new Promise<void>((resolve) => (fire = resolve));
  return { fired, fire };
}

beforeAll(async () => {
  scratch = await mkdtemp(join(tmpdir(), 'synod-ctl-test-'));
  const proto = loadEtcdProto();
  const config = parseServerFlags([
    '--data-dir', join(scratch, 'data'), '--listen-client-urls', 'http://127.0.0.1:0',
  ], {});
  // Wired as src/apps/synod.ts wires a member: the auth interceptor checks every call.
  const authSource = new MemberAuthSource();
  server = await startServer({
    config, logger: pino({ level: 'silent' }),
    grpc: createGrpcServer({ proto, interceptors: [authInterceptor({ source: authSource })] }),
    registerServices: etcdServices(proto, { authSource }), synodVersion: '0.0.0-test',
  });
  await new Promise<void>((resolve) => {
    if (server.node.isLeader) return resolve();
    const unsubscribe = server.node.onSoftState(() => {
      if (!server.node.isLeader) return;
      unsubscribe();
      resolve();
    });
  });
  endpoint = `127.0.0.1:${server.clientPort}`;
});

afterAll(async () => {
  await server?.close();
  await rm(scratch, { recursive: true, force: true });
});

describe('synod ctl: keys', () => {
  it('put then get round-trips in simple and json output, byte for byte as etcdctl', async () => {
    expect(await ctl(['put', 'greeting', 'hello world'])).toEqual(printed('OK\n'));
    expect(await ctl(['get', 'greeting'])).toEqual(printed('greeting\nhello world\n'));
    const json = await ctl(['get', 'greeting', '-w', 'json']);
    const range = JSON.parse(json.stdout) as { kvs: Record<string, unknown>[]; count: number };
    expect(range.kvs[0]).toMatchObject({
      key: base64('greeting'), value: base64('hello world'), version: 1,
    });
    expect(range.count).toBe(1);
    // 64-bit ids print as JSON numbers at full precision, never rounded through a double.
    expect(json.stdout).toMatch(
      /^\{"header":\{"cluster_id":\d+,"member_id":\d+,"revision":\d+,"raft_term":\d+\},"kvs"/);
    expect(await ctl(['put', 'greeting', 'hi', '--prev-kv']))
      .toEqual(printed('OK\ngreeting\nhello world\n'));
    expect((await ctl(['get', 'greeting', '--hex'])).stdout)
      .toBe('\\x67\\x72\\x65\\x65\\x74\\x69\\x6e\\x67\n\\x68\\x69\n');
    expect((await ctl(['get', 'greeting', '--print-value-only'])).stdout).toBe('hi\n');
    expect(await ctl(['get', 'absent'])).toEqual(printed(''));
    await expectSameAsEtcdctl([
      ['get', 'greeting'], ['get', 'greeting', '-w', 'json'], ['get', 'greeting', '--hex'],
      ['get', 'absent', '-w', 'json'],
    ]);
    const ours = await ctl(['put', 'greeting', 'hi', '-w', 'json', '--prev-kv']);
    const theirs = await etcdctl(['put', 'greeting', 'hi', '-w', 'json', '--prev-kv']);
    const oneLater = shiftRevisions(ours.stdout, 1, ['revision', 'mod_revision']);
    expect(theirs.stdout).toBe(oneLater.replace('"version":2', '"version":3'));
    await expectSameAsEtcdctl([['put', 'greeting', 'hi', '--prev-kv']]);
  });

  it('get --prefix --keys-only --limit prints keys with empty values, and more', async () => {
    for (const name of ['a', 'b', 'c']) await ctl(['put', `fruit/${name}`, `value-${name}`]);
    await ctl(['put', 'fruitless', 'outside the prefix']);
    const page = ['get', 'fruit/', '--prefix', '--keys-only', '--limit', '2'];
    expect(await ctl(page)).toEqual(printed('fruit/a\n\nfruit/b\n\n'));
    type Range = { kvs: Record<string, unknown>[]; more: boolean; count: number };
    const json = await ctlJson<Range>(page);
    expect(json.more).toBe(true);
    expect(json.count).toBe(3);
    expect(json.kvs.map((kv) => 'value' in kv)).toEqual([false, false]);
    expect((await ctl(['get', 'fruit/', '--prefix', '--count-only'])).stdout).toBe('3\n');
    const descending = ['get', 'fruit/', '--prefix', '--order', 'DESCEND', '--print-value-only'];
    expect((await ctl(descending)).stdout).toBe('value-c\nvalue-b\nvalue-a\n');
    await expectSameAsEtcdctl([
      page, [...page, '-w', 'json'], ['get', 'fruit/a', 'fruit/c', '-w', 'json'],
      ['get', 'fruit/', '--from-key', '--sort-by', 'VALUE', '--order', 'DESCEND'],
    ]);
  });

  it('del --prev-kv prints the count and the deleted pairs, as etcdctl', async () => {
    await ctl(['put', 'doomed', 'bye']);
    expect(await ctl(['del', 'doomed', '--prev-kv'])).toEqual(printed('1\ndoomed\nbye\n'));
    expect(await ctl(['del', 'doomed'])).toEqual(printed('0\n'));
    expect(await ctl(['get', 'doomed'])).toEqual(printed(''));
    await ctl(['put', 'doomed', 'bye']);
    expect(await etcdctl(['del', 'doomed', '--prev-kv'])).toEqual(printed('1\ndoomed\nbye\n'));
    await ctl(['put', 'doomed', 'bye']);
    const ours = await ctl(['del', 'doomed', '--prev-kv', '-w', 'json']);
    await ctl(['put', 'doomed', 'bye']);
    const theirs = await etcdctl(['del', 'doomed', '--prev-kv', '-w', 'json']);
    const revisions = ['revision', 'mod_revision', 'create_revision'];
    expect(theirs.stdout).toBe(shiftRevisions(ours.stdout, 2, revisions));
  });
});

describe('synod ctl: txn', () => {
  /** etcdctl's txn text: compares, blank, success ops, blank, failure ops, blank. */
  const text = (compare: string) => [
    compare, 'mod("txn/k") > "0"', '',
    'put txn/k "value two"', 'get txn/k', '',
    'put txn/other x', 'del txn/k --prev-kv', '', '',
  ].join('\n');

  it('reads compares and both branches from stdin, printing as etcdctl', async () => {
    await ctl(['put', 'txn/k', 'one']);
    const matches = text('value("txn/k") = "one"');
    expect(await ctl(['txn'], { stdin: matches }))
      .toEqual(printed('SUCCESS\n\nOK\n\ntxn/k\nvalue two\n'));
    expect(await ctl(['txn'], { stdin: matches }))
      .toEqual(printed('FAILURE\n\nOK\n\n1\ntxn/k\nvalue two\n'));
    expect(await ctl(['get', 'txn/other'])).toEqual(printed('txn/other\nx\n'));
    // The failure branch deleted txn/k; `mod("txn/k") > "0"` needs it back.
    await ctl(['put', 'txn/k', 'one']);
    const json = await ctlJson<{ succeeded?: boolean; responses: Record<string, object>[] }>(
      ['txn'], { stdin: text('version("txn/absent") = "0"') });
    expect(json.succeeded).toBe(true);
    expect(Object.keys(json.responses[0]!['Response']!)).toEqual(['ResponsePut']);
    const malformed = await ctl(['txn'], { stdin: 'bogus\n\n\n\n' });
    expect(malformed.code).toBe(2);
    expect(malformed.stderr).toMatch(/^Error: malformed comparison: bogus\n/);
    await ctl(['put', 'txn/k', 'one']);
    const ours = await ctl(['txn'], { stdin: matches });
    await ctl(['put', 'txn/k', 'one']);
    expect(await etcdctl(['txn'], matches)).toEqual(ours);
  });
});

describe('synod ctl: leases', () => {
  it('grants, shows time to live with keys, and revokes a lease', async () => {
    const granted = await ctl(['lease', 'grant', '100']);
    const id = /^lease ([0-9a-f]{16}) granted with TTL\(100s\)\n$/.exec(granted.stdout)?.[1];
    expect(id, granted.stdout).toBeDefined();
    expect(await ctl(['put', 'leased', 'v', '--lease', id!])).toEqual(printed('OK\n'));
    const alive = await ctl(['lease', 'timetolive', id!, '--keys']);
    const remaining = new RegExp(`^lease ${id} granted with TTL\\(100s\\), ` +
      'remaining\\((\\d+)s\\), attached keys\\(\\[leased\\]\\)\\n$').exec(alive.stdout)?.[1];
    expect(Number(remaining), alive.stdout).toBeGreaterThan(0);
    expect(Number(remaining)).toBeLessThanOrEqual(100);
    expect(await ctlJson(['lease', 'timetolive', id!, '--keys']))
      .toMatchObject({ id: parseInt(id!, 16), 'granted-ttl': 100, keys: [base64('leased')] });
    expect((await ctl(['lease', 'list'])).stdout).toContain(`\n${id}\n`);
    expect(await ctl(['lease', 'keep-alive', '--once', id!]))
      .toEqual(printed(`lease ${id} keepalived with TTL(100)\n`));
    expect(await ctl(['lease', 'revoke', id!])).toEqual(printed(`lease ${id} revoked\n`));
    expect(await ctl(['lease', 'timetolive', id!]))
      .toEqual(printed(`lease ${id} already expired\n`));
    expect(await ctl(['get', 'leased'])).toEqual(printed(''));
    const again = await ctl(['lease', 'revoke', id!]);
    expect(again).toEqual({
      code: 1, stdout: '',
      stderr: 'Error: failed to revoke lease (etcdserver: requested lease not found)\n',
    });
    expect(await etcdctl(['lease', 'revoke', id!])).toEqual(again);
    await expectSameAsEtcdctl([['lease', 'timetolive', id!, '-w', 'json']]);
  });
});

describe('synod ctl: watch', () => {
  it('watch --count 1 prints a put made after the watch started, then exits 0', async () => {
    const started = signal();
    const watching = ctl(['watch', 'watched', '--prev-kv', '--count', '1'], {
      onStarted: started.fire,
    });
    await started.fired;
    await ctl(['put', 'watched', 'first']);
    expect(await watching).toEqual(printed('PUT\nwatched\nfirst\n'));
  });

  it('runs until interrupted (SIGINT), printing each event with its previous value', async () => {
    const interrupt = new AbortController();
    const started = signal();
    const twoLines = signal();
    const watching = ctl(['watch', 'watched', '--prev-kv', '-w', 'json'], {
      signal: interrupt.signal, onStarted: started.fire,
      onStdout: (stdout) => stdout.split('\n').length > 2 && twoLines.fire(),
    });
    await started.fired;
    await ctl(['put', 'watched', 'second']);
    await ctl(['del', 'watched']);
    await twoLines.fired;
    interrupt.abort();
    const outcome = await watching;
    expect(outcome.code).toBe(130);
    type Response = { Events: Record<string, { value?: string } | number>[]; Canceled: boolean };
    const lines = outcome.stdout.trim().split('\n');
    const [put, deletion] = lines.map((line) => JSON.parse(line) as Response);
    expect(put!.Events[0])
      .toMatchObject({ kv: { value: base64('second') }, prev_kv: { value: base64('first') } });
    expect(deletion!.Events[0]).toMatchObject({ type: 1, prev_kv: { value: base64('second') } });
    expect(deletion!.Canceled).toBe(false);
  });
});

describe('synod ctl: cluster and maintenance', () => {
  it('prints endpoint status and member list tables exactly as etcdctl', async () => {
    const table = await ctl(['endpoint', 'status', '-w', 'table']);
    expect(table.code).toBe(0);
    const [border, header, , row] = table.stdout.split('\n');
    expect(border).toMatch(/^\+-+(\+-+){9}\+$/);
    const titles = ['VERSION', 'DB SIZE', 'IS LEADER', 'IS LEARNER', 'RAFT TERM', 'RAFT INDEX',
      'RAFT APPLIED INDEX', 'ERRORS'];
    expect(header).toMatch(new RegExp(`^\\| +ENDPOINT +\\| +ID +\\| ${titles.join(' \\| ')} \\|$`));
    expect(row).toContain(`| ${endpoint} |`);
    expect(row).toMatch(/\| +true \| +false \|/);
    expect((await ctl(['member', 'list'])).stdout)
      .toMatch(/^[0-9a-f]+, started, default, http:\/\/localhost:2380, /);
    // Removing a member that does not exist fails whether or not the server implements
    // membership changes yet (UNIMPLEMENTED today): one Error line with the server's message.
    const removed = await ctl(['member', 'remove', 'fedcba9876543210']);
    expect(removed.code).toBe(1);
    expect(removed.stderr).toMatch(/^Error: \S.*\n$/);
    await expectSameAsEtcdctl([
      ['endpoint', 'status', '-w', 'table'], ['endpoint', 'status'],
      ['endpoint', 'status', '-w', 'json'], ['member', 'list', '-w', 'table'],
      ['member', 'list', '-w', 'json'], ['endpoint', 'hashkv'], ['alarm', 'list', '-w', 'json'],
      ['defrag'],
    ]);
  });

  it('endpoint health reports on stderr as etcdctl, and fails for a dead endpoint', async () => {
    const healthy = await ctl(['endpoint', 'health']);
    expect(healthy.code).toBe(0);
    expect(healthy.stderr).toMatch(new RegExp(
      `^${endpoint} is healthy: successfully committed proposal: took = [\\d.]+(µs|ms|s)\\n$`));
    const dead = await ctl(['endpoint', 'health', '-w', 'json'], { endpoints: '127.0.0.1:1' });
    expect(dead.code).toBe(1);
    expect(JSON.parse(dead.stdout)).toEqual([
      { endpoint: '127.0.0.1:1', health: false, took: '', error: 'cannot connect to 127.0.0.1:1' },
    ]);
    expect(dead.stderr).toBe('Error: unhealthy cluster\n');
  });

  it('snapshot save writes whole 512-byte pages plus the trailing SHA-256', async () => {
    const path = join(scratch, 'backup.snap');
    expect(await ctl(['snapshot', 'save', path])).toEqual(printed(`Snapshot saved at ${path}\n`));
    expect((await stat(path)).size % 512).toBe(32);
    expect(existsSync(`${path}.part`)).toBe(false);
  });

  it('get --rev on a compacted revision prints etcd\'s message and exits 1', async () => {
    await ctl(['put', 'history', 'old']);
    const old = await currentRevision();
    await ctl(['put', 'history', 'new']);
    expect(await ctl(['compaction', String(old + 1)]))
      .toEqual(printed(`compacted revision ${old + 1}\n`));
    const compacted = await ctl(['get', 'history', '--rev', String(old)]);
    expect(compacted).toEqual({
      code: 1, stdout: '',
      stderr: 'Error: etcdserver: mvcc: required revision has been compacted\n',
    });
    expect((await ctl(['get', 'history', '--rev', String(old + 1000)])).stderr)
      .toBe('Error: etcdserver: mvcc: required revision is a future revision\n');
    expect(await etcdctl(['get', 'history', '--rev', String(old)])).toEqual(compacted);
  });
});

describe('synod ctl: command line', () => {
  const firstLine = (outcome: Outcome) => outcome.stderr.split('\n')[0];

  it('exits 2 with an Error line for usage errors, before sending anything', async () => {
    const missing = await ctl(['get']);
    expect(missing.code).toBe(2);
    expect(firstLine(missing))
      .toBe('Error: get command needs one argument as key and an optional argument as range_end');
    const badFlag = await ctl(['get', 'k', '--bogus']);
    expect(badFlag.code).toBe(2);
    expect(firstLine(badFlag)).toMatch(/^Error: Unknown option '--bogus'/);
    const before = await currentRevision();
    const table = await ctl(['put', 'never', 'written', '-w', 'table']);
    expect(table.code).toBe(2);
    expect(firstLine(table)).toBe('Error: table not supported as output format');
    expect(await currentRevision()).toBe(before);
    expect(firstLine(await ctl(['lease', 'frobnicate'])))
      .toBe('Error: unknown subcommand "frobnicate" for "lease"');
    expect((await ctl(['--help'])).stdout).toContain('synod ctl lease keep-alive ID [--once]');
    expect((await ctl([])).code).toBe(2);
  });

  it('reads SYNODCTL_* before ETCDCTL_* environment variables, flags before both', async () => {
    await ctl(['put', 'env-key', 'env-value']);
    const etcdctlVariable = await ctl(['get', 'env-key', '--print-value-only'], {
      endpoints: null, env: { ETCDCTL_ENDPOINTS: endpoint },
    });
    expect(etcdctlVariable).toEqual(printed('env-value\n'));
    const ours = await ctl(['get', 'env-key'], {
      endpoints: null,
      env: {
        SYNODCTL_ENDPOINTS: endpoint, ETCDCTL_ENDPOINTS: '127.0.0.1:1', SYNODCTL_WRITE_OUT: 'json',
      },
    });
    expect(JSON.parse(ours.stdout)).toHaveProperty('count', 1);
    const env = { SYNODCTL_WRITE_OUT: 'json' };
    const flag = await ctl(['get', 'env-key', '-w', 'simple'], { env });
    expect(flag).toEqual(printed('env-key\nenv-value\n'));
  });

  it('skips an unreachable endpoint for reads and writes', async () => {
    const endpoints = `127.0.0.1:1,${endpoint}`;
    expect(await ctl(['put', 'failover', 'yes'], { endpoints })).toEqual(printed('OK\n'));
    expect(await ctl(['get', 'failover'], { endpoints })).toEqual(printed('failover\nyes\n'));
    expect(await ctl(['get', 'failover'], { endpoints: '127.0.0.1:1' }))
      .toEqual({ code: 1, stdout: '', stderr: 'Error: cannot connect to 127.0.0.1:1\n' });
  });

  it('builds TLS credentials from --cacert/--cert/--key and names a missing file', async () => {
    const absent = join(scratch, 'absent-ca.pem');
    expect(await ctl(['--cacert', absent, 'get', 'k'])).toEqual({
      code: 1, stdout: '', stderr: `Error: open ${absent}: no such file or directory\n`,
    });
    expect(firstLine(await ctl(['--cert', 'client.pem', 'get', 'k'])))
      .toBe('Error: --cert and --key must be given together');
    const plain = ['127.0.0.1:2379'];
    expect(channelCredentials({ tls: null, endpoints: plain })._isSecure()).toBe(false);
    const https = ['https://127.0.0.1:2379'];
    expect(channelCredentials({ tls: null, endpoints: https })._isSecure()).toBe(true);
    const garbage = join(scratch, 'garbage.pem');
    await writeFile(garbage, 'not a certificate');
    expect(() => channelCredentials({ tls: { cacert: garbage }, endpoints: plain }))
      .toThrow(/invalid TLS files: --cacert .* holds no PEM certificate/);
    const pair = await selfSignedPair();
    if (pair === null) return;
    const files = { cacert: pair.cert, cert: pair.cert, key: pair.key };
    expect(channelCredentials({ tls: files, endpoints: plain })._isSecure()).toBe(true);
    expect(() => channelCredentials({ tls: { ...files, key: garbage }, endpoints: plain }))
      .toThrow(/invalid TLS files/);
  });
});

describe('synod ctl: auth, users and roles', () => {
  // The three tests run in order on the member's auth state; afterAll leaves auth off and no
  // users or roles, whatever failed (through etcdctl, in case synod ctl is what broke).
  const root = 'root:rootpw';
  /** `--user NAME:PASSWORD`, a global flag before the command. */
  const as = (user: string, args: readonly string[]): string[] => ['--user', user, ...args];
  const authFailed = 'Error: etcdserver: authentication failed, invalid user ID or password\n';

  afterAll(async () => {
    await etcdctl(as(root, ['auth', 'disable']));
    for (const user of ['root', 'alice', 'bob', 'carol']) await etcdctl(['user', 'delete', user]);
    for (const role of ['root', 'reader', 'writer']) await etcdctl(['role', 'delete', role]);
    for (const key of ['app/', 'log', 'other']) await etcdctl(['del', key, '--prefix']);
  });

  it('adds users and roles, grants and shows them, byte for byte as etcdctl', async () => {
    // No root user yet: both fail alike.
    await expectSameAsEtcdctl([['auth', 'enable']]);
    expect(await ctl(['user', 'add', 'root', '--new-user-password=rootpw']))
      .toEqual(printed('User root created\n'));
    expect(await ctl(['role', 'add', 'reader'])).toEqual(printed('Role reader created\n'));
    expect(await ctl(['role', 'grant-permission', 'reader', 'read', 'app/', '--prefix']))
      .toEqual(printed('Role reader updated\n'));
    expect(await ctl(['role', 'add', 'writer'])).toEqual(printed('Role writer created\n'));
    // Granting a permission the role has already is accepted again, so etcdctl can repeat it.
    await expectSameAsEtcdctl([
      ['role', 'grant-permission', 'writer', 'readwrite', 'app/', '--prefix'],
      ['role', 'grant-permission', 'writer', 'write', 'log', 'loh'],
      ['role', 'grant-permission', 'writer', 'READ', 'open/', '--from-key'],
    ]);
    // Both prompts answered from piped stdin, as etcdctl's speakeasy reads them.
    const prompts = 'Password of alice: \nType password of alice again for confirmation: \n';
    expect(await ctl(['user', 'add', 'alice'], { stdin: 'alicepw\nalicepw\n' }))
      .toEqual(printed(`${prompts}User alice created\n`));
    expect(await ctl(['user', 'add', 'bob', '--interactive=false'], { stdin: ' bobpw\n' }))
      .toEqual(printed('User bob created\n'));
    const mismatch = await ctl(['user', 'add', 'carol'], { stdin: 'one\ntwo\n' });
    expect(mismatch.code).toBe(2);
    expect(mismatch.stderr.split('\n')[0]).toBe('Error: given passwords are different');
    expect(await ctl(['user', 'grant-role', 'alice', 'reader']))
      .toEqual(printed('Role reader is granted to user alice\n'));
    expect(await ctl(['user', 'grant-role', 'bob', 'writer']))
      .toEqual(printed('Role writer is granted to user bob\n'));
    expect(await ctl(['user', 'get', 'bob'])).toEqual(printed('User: bob\nRoles: writer\n'));
    expect(await ctl(['role', 'get', 'writer'])).toEqual(printed([
      'Role writer', 'KV Read:', '\t[app/, app0) (prefix app/)', '\t[open/, <open ended>',
      'KV Write:', '\t[app/, app0) (prefix app/)', '\t[log, loh) (prefix log)', '',
    ].join('\n')));
    const table = await ctl(['user', 'list', '-w', 'table']);
    expect(table.code).toBe(2);
    expect(table.stderr.split('\n')[0]).toBe('Error: table not supported as output format');
    await expectSameAsEtcdctl([
      ['role', 'add', 'reader'], ['user', 'add', 'alice:again'],
      ['user', 'grant-role', 'bob', 'nosuchrole'], ['user', 'list'], ['role', 'list'],
      ['user', 'get', 'bob'], ['user', 'get', 'bob', '-w', 'json'],
      ['user', 'get', 'bob', '--detail'], ['user', 'get', 'bob', '--detail', '-w', 'json'],
      ['role', 'get', 'writer'], ['role', 'get', 'writer', '-w', 'json'], ['user', 'get', 'nobody'],
      ['user', 'list', '-w', 'json'], ['role', 'list', '-w', 'json'],
    ]);
  });

  it('enables auth; each call carries --user\'s token, allowed or denied as etcdctl', async () => {
    await ctl(['put', 'app/x', '1']);
    // root has no root role yet: auth enable creates it and grants it, as etcdctl 3.4 does.
    expect(await ctl(['auth', 'enable'])).toEqual(printed('Authentication Enabled\n'));
    expect(await ctl(as(root, ['user', 'get', 'root'])))
      .toEqual(printed('User: root\nRoles: root\n'));
    await expectSameAsEtcdctl([
      ['get', 'app/x'], as('alice:alicepw', ['get', 'app/x']),
      as('alice:alicepw', ['get', 'app/', '--prefix', '--keys-only']),
      as('alice:alicepw', ['put', 'app/x', '2']), as('alice:alicepw', ['get', 'other']),
      as('bob:bobpw', ['put', 'log', 'line']), as('bob:bobpw', ['put', 'log', 'line', '--prev-kv']),
      as('bob:bobpw', ['put', 'other', '1']), as('bob:bobpw', ['user', 'list']),
      as(root, ['user', 'list']), as(root, ['role', 'get', 'root']),
      ['--user', 'root', '--password', 'rootpw', 'role', 'list'],
      // An empty password sends no Authenticate at all: the call goes without a token.
      as('alice:', ['get', 'app/x']),
    ]);
    for (const user of ['alice:wrong', 'nobody:pw']) {
      const ours = await ctl(as(user, ['get', 'app/x']));
      expect(ours).toEqual({ code: 1, stdout: '', stderr: authFailed });
      // etcdctl exits 2 (its ExitBadConnection) where synod ctl exits 1: docs/ctl.md.
      expect(await etcdctl(as(user, ['get', 'app/x']))).toEqual({ ...ours, code: 2 });
    }
    const prompt = ['--user', 'alice', 'get', 'app/x', '--print-value-only'];
    const prompted = await ctl(prompt, { stdin: 'alicepw\n' });
    expect(prompted).toEqual(printed('Password: \n1\n'));
    expect(await etcdctl(prompt, 'alicepw\n')).toEqual(prompted);
    expect(await ctl(['get', 'app/x', '--print-value-only'], { env: { ETCDCTL_USER: root } }))
      .toEqual(printed('1\n'));
    const txn = 'value("app/x") = "1"\n\nput app/z 4\n\nput other 5\n\n';
    const denied = await ctl(as('bob:bobpw', ['txn']), { stdin: txn });
    expect(denied)
      .toEqual({ code: 1, stdout: '', stderr: 'Error: etcdserver: permission denied\n' });
    expect(await etcdctl(as('bob:bobpw', ['txn']), txn)).toEqual(denied);
    // A stream carries the token too.
    const started = signal();
    const watching = ctl(as('bob:bobpw', ['watch', 'app/w', '--count', '1']), {
      onStarted: started.fire,
    });
    await started.fired;
    expect(await ctl(as('bob:bobpw', ['put', 'app/w', 'seen']))).toEqual(printed('OK\n'));
    expect(await watching).toEqual(printed('PUT\napp/w\nseen\n'));
  });

  it('revokes, changes a password, deletes and disables auth under root, as etcdctl', async () => {
    await expectSameAsEtcdctl([
      as(root, ['user', 'revoke-role', 'root', 'root']), as(root, ['user', 'delete', 'root']),
      as(root, ['user', 'revoke-role', 'alice', 'writer']),
    ]);
    expect(await ctl(as(root, ['role', 'revoke-permission', 'reader', 'app/', '--prefix'])))
      .toEqual(printed('Permission of range [app/, app0) is revoked from role reader\n'));
    await expectSameAsEtcdctl([
      as(root, ['role', 'revoke-permission', 'reader', 'app/', '--prefix']),
      as('alice:alicepw', ['get', 'app/x']),
    ]);
    const passwd = as(root, ['user', 'passwd', 'bob', '--interactive=false']);
    expect(await ctl(passwd, { stdin: 'bobpw2\n' })).toEqual(printed('Password updated\n'));
    expect(await ctl(as('bob:bobpw', ['get', 'app/x'])))
      .toEqual({ code: 1, stdout: '', stderr: authFailed });
    expect(await ctl(as('bob:bobpw2', ['get', 'app/x', '--print-value-only'])))
      .toEqual(printed('1\n'));
    // A token the server stops taking (root's password set again) is renewed once and the call
    // sent again, as clientv3's retry interceptor does.
    const connection = new Connection({
      config: globalConfigOf({ endpoints: endpoint }, {}), proto: loadEtcdProto(),
      credentials: async () => ({ name: 'root', password: 'rootpw' }),
    });
    try {
      const users = async () => (await connection.unary<{ users: string[] }>({
        service: 'Auth', method: 'UserList', request: {}, kind: 'read',
      })).users;
      expect(await users()).toContain('alice');
      const again = as(root, ['user', 'passwd', 'root', '--interactive=false']);
      expect(await ctl(again, { stdin: 'rootpw\n' })).toEqual(printed('Password updated\n'));
      expect(await users()).toContain('alice');
    } finally {
      await connection.close();
    }
    const status = await ctl(as(root, ['auth', 'status']));
    expect(status.stdout).toMatch(/^Authentication Status: true\nAuthRevision: \d+\n$/);
    expect(await ctl(as(root, ['user', 'delete', 'bob']))).toEqual(printed('User bob deleted\n'));
    expect(await ctl(as(root, ['role', 'delete', 'writer'])))
      .toEqual(printed('Role writer deleted\n'));
    await expectSameAsEtcdctl([
      as(root, ['role', 'delete', 'writer']), as(root, ['user', 'list']),
      as(root, ['user', 'get', 'alice', '-w', 'json']),
    ]);
    expect(await ctl(as(root, ['auth', 'disable']))).toEqual(printed('Authentication Disabled\n'));
    expect(await ctl(['get', 'app/x', '--print-value-only'])).toEqual(printed('1\n'));
    expect(await ctlJson(['auth', 'status'])).not.toHaveProperty('enabled');
  });
});

describe('synod ctl: output helpers', () => {
  it('sizes and durations print as go-humanize and Go do', () => {
    expect([7, 65572, 1568, 999_999, 2_500_000_000].map(humanizeBytes))
      .toEqual(['7 B', '66 kB', '1.6 kB', '1000 kB', '2.5 GB']);
    expect([0n, 999n, 1_500n, 4_528_736n, 2_000_000_000n].map(goDuration))
      .toEqual(['0s', '999ns', '1.5µs', '4.528736ms', '2s']);
  });
});

describe('synod ctl: membership changes', () => {
  // Last in the file: a learner leaves the quorum alone, but a server bug here must not cascade
  // into the other tests. Servers without runtime reconfiguration answer UNIMPLEMENTED.
  it('member add --learner prints the lines that start the member, or the refusal', async () => {
    const peer = 'http://127.0.0.1:9';
    const added = await ctl(['member', 'add', 'newcomer', '--peer-urls', peer, '--learner']);
    if (added.code !== 0) {
      expect(added).toMatchObject({ code: 1, stdout: '' });
      expect(added.stderr).toMatch(/^Error: \S.*\n$/);
      return;
    }
    const [first, blank, name, cluster, peers, state] = added.stdout.split('\n');
    const id = /^Member ([ 0-9a-f]{16}) added to cluster [ 0-9a-f]{16}$/.exec(first!)?.[1]?.trim();
    expect(id, added.stdout).toBeDefined();
    expect([blank, name, peers, state]).toEqual([
      '', 'ETCD_NAME="newcomer"', `ETCD_INITIAL_ADVERTISE_PEER_URLS="${peer}"`,
      'ETCD_INITIAL_CLUSTER_STATE="existing"',
    ]);
    const prefix = 'ETCD_INITIAL_CLUSTER="';
    expect(cluster!.startsWith(prefix)).toBe(true);
    expect(cluster!.slice(prefix.length, -1).split(',')).toContain(`newcomer=${peer}`);
    expect((await ctl(['member', 'list'])).stdout)
      .toContain(`${id}, unstarted, , ${peer}, , true\n`);
    expect((await ctl(['member', 'remove', id!])).stdout)
      .toMatch(new RegExp(`^Member +${id} removed from cluster [ 0-9a-f]{16}\n$`));
  });
});

/** A self-signed certificate and its key from openssl, or null where openssl is missing. */
async function selfSignedPair(): Promise<{ cert: string; key: string } | null> {
  const cert = join(scratch, 'client.pem');
  const key = join(scratch, 'client-key.pem');
  try {
    await promisify(execFile)('openssl', [
      'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
      '-days', '1', '-subj', '/CN=synod-ctl-test', '-keyout', key, '-out', cert,
    ]);
  } catch {
    return null;
  }
  expect((await readFile(cert, 'utf8')).startsWith('-----BEGIN CERTIFICATE-----')).toBe(true);
  return { cert, key };
}
