/**
 * `synod ctl` end to end: one real Synod member from `startServer` in this process, the CLI run
 * in process through `ctlMain` with collected stdout/stderr, and the same command run by etcdctl
 * 3.4 against the same member so the bytes can be compared (hence the interop suite: it needs
 * Debian's etcd-client on the PATH). Auth, users, roles and membership are in
 * ctl-auth.interop.test.ts; the harness is ctl-harness.ts.
 * Nothing waits on time: the watch tests act on `onStarted`, every other step awaits a reply.
 */

import { existsSync } from 'node:fs';
import { stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { channelCredentials } from '../../src/apps/ctl/connection.js';
import {
  base64, ctl, ctlJson, currentRevision, etcdctl, expectSameAsEtcdctl, member, printed,
  selfSignedPair, shiftRevisions, signal, startCtlMember, stopCtlMember, type Outcome
} from './ctl-harness.js';

beforeAll(startCtlMember);
afterAll(stopCtlMember);

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
    expect(row).toContain(`| ${member.endpoint} |`);
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
      `^${member.endpoint} is healthy: ` +
      'successfully committed proposal: took = [\\d.]+(µs|ms|s)\\n$'));
    const dead = await ctl(['endpoint', 'health', '-w', 'json'], { endpoints: '127.0.0.1:1' });
    expect(dead.code).toBe(1);
    expect(JSON.parse(dead.stdout)).toEqual([
      { endpoint: '127.0.0.1:1', health: false, took: '', error: 'cannot connect to 127.0.0.1:1' },
    ]);
    expect(dead.stderr).toBe('Error: unhealthy cluster\n');
  });

  it('snapshot save writes whole 512-byte pages plus the trailing SHA-256', async () => {
    const path = join(member.scratch, 'backup.snap');
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
      endpoints: null, env: { ETCDCTL_ENDPOINTS: member.endpoint },
    });
    expect(etcdctlVariable).toEqual(printed('env-value\n'));
    const ours = await ctl(['get', 'env-key'], {
      endpoints: null,
      env: {
        SYNODCTL_ENDPOINTS: member.endpoint, ETCDCTL_ENDPOINTS: '127.0.0.1:1',
        SYNODCTL_WRITE_OUT: 'json',
      },
    });
    expect(JSON.parse(ours.stdout)).toHaveProperty('count', 1);
    const env = { SYNODCTL_WRITE_OUT: 'json' };
    const flag = await ctl(['get', 'env-key', '-w', 'simple'], { env });
    expect(flag).toEqual(printed('env-key\nenv-value\n'));
  });

  it('skips an unreachable endpoint for reads and writes', async () => {
    const endpoints = `127.0.0.1:1,${member.endpoint}`;
    expect(await ctl(['put', 'failover', 'yes'], { endpoints })).toEqual(printed('OK\n'));
    expect(await ctl(['get', 'failover'], { endpoints })).toEqual(printed('failover\nyes\n'));
    expect(await ctl(['get', 'failover'], { endpoints: '127.0.0.1:1' }))
      .toEqual({ code: 1, stdout: '', stderr: 'Error: cannot connect to 127.0.0.1:1\n' });
  });

  it('builds TLS credentials from --cacert/--cert/--key and names a missing file', async () => {
    const absent = join(member.scratch, 'absent-ca.pem');
    expect(await ctl(['--cacert', absent, 'get', 'k'])).toEqual({
      code: 1, stdout: '', stderr: `Error: open ${absent}: no such file or directory\n`,
    });
    expect(firstLine(await ctl(['--cert', 'client.pem', 'get', 'k'])))
      .toBe('Error: --cert and --key must be given together');
    const plain = ['127.0.0.1:2379'];
    expect(channelCredentials({ tls: null, endpoints: plain })._isSecure()).toBe(false);
    const https = ['https://127.0.0.1:2379'];
    expect(channelCredentials({ tls: null, endpoints: https })._isSecure()).toBe(true);
    const garbage = join(member.scratch, 'garbage.pem');
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
