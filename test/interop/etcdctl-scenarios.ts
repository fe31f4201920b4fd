/**
 * etcdctl scenarios that need more than one command in sequence: watches, leases, locks and
 * elections run as child processes next to one-shot commands, and snapshots. Each scenario runs
 * against one target and records a transcript of (step, normalised output); the test compares the
 * transcripts of etcd and Synod step by step. A scenario reads the current revision first and names
 * revisions relative to it (`base+3`), so one scenario's divergence does not cascade into the next.
 */

import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  etcdctl,
  killAllEtcdctl,
  runEtcdctl,
  spawnEtcdctl,
  type EtcdctlProcess,
  type Target,
} from '../support/etcdctl-harness.js';
import { LeaseNames, normalize } from './normalize.js';

/** One step of a scenario: what was done, and what etcdctl printed (normalised). */
export interface Step {
  readonly step: string;
  readonly output: string;
}

/** Records a scenario's steps against one target, masking what legitimately differs. */
export class Transcript {
  readonly steps: Step[] = [];
  readonly leases = new LeaseNames();

  constructor(
    readonly target: Target,
    /** Key prefixes after which lock and election keys carry a lease id in hex. */
    readonly leaseKeyPrefixes: readonly string[] = [],
  ) {}

  /** The revision the scenario started at; JSON header revisions are shown relative to it. */
  base: number | undefined;

  /** Lease ids first (JSON "ID" would otherwise read as a member id), then the common masks. */
  mask(output: string): string {
    const masked = normalize(this.leases.mask(output, this.leaseKeyPrefixes));
    const base = this.base;
    if (base === undefined) return masked;
    return masked.replace(/"revision":(\d+)/g, (_, n: string) => `"revision":base+${Number(n) - base}`);
  }

  /** Records a step; lease ids in its description are named like those in the output. */
  note(step: string, output: string): string {
    const masked = this.mask(output);
    this.steps.push({ step: this.leases.mask(step, this.leaseKeyPrefixes), output: masked });
    return masked;
  }

  /** Runs one etcdctl command and records stdout, or `ERROR: …` with etcdctl's error line. */
  async run(args: readonly string[], step = args.join(' ')): Promise<string> {
    const output = await etcdctl(this.target, args);
    this.note(step, output);
    return output;
  }
}

/** A scenario: steps against one target, recorded in `transcript`. */
export type Scenario = (transcript: Transcript) => Promise<void>;

/** Runs `scenario`; a failed wait is recorded as the last step and its children are killed. */
export async function record(target: Target, scenario: Scenario, leaseKeyPrefixes: readonly string[] = []): Promise<Step[]> {
  const transcript = new Transcript(target, leaseKeyPrefixes);
  try {
    await scenario(transcript);
  } catch (error) {
    transcript.note('ABORTED', error instanceof Error ? error.message : String(error));
  } finally {
    await killAllEtcdctl();
  }
  return transcript.steps;
}

/** The store's current revision, from a Range header. */
async function currentRevision(target: Target): Promise<number> {
  const json = await etcdctl(target, ['get', 'interop-revision-probe', '-w', 'json']);
  const revision = (JSON.parse(json) as { header: { revision: number } }).header.revision;
  if (!Number.isInteger(revision) || revision < 1) throw new Error(`no revision in ${json}`);
  return revision;
}

/** etcdctl's own error lines; the client library's JSON log lines carry timestamps. */
function errorLines(stderr: string): string {
  return stderr
    .split('\n')
    .filter((line) => line.startsWith('Error:'))
    .join('\n');
}

/** `revision N` and `rev=N` relative to `base`, for steps whose output carries a revision. */
function relativeRevisions(output: string, base: number): string {
  return output.replace(/(revision |rev=)(\d+)/g, (_, label: string, n: string) => `${label}base+${Number(n) - base}`);
}

/**
 * watch: history replay from `--rev`, a live event on the same stream, `--prev-kv`, `--prefix`
 * with several events in one revision, and a watch from a compacted revision.
 */
export const watchScenario: Scenario = async (t) => {
  const base = await currentRevision(t.target);
  await t.run(['put', 'w/a', '1']); // base+1
  await t.run(['put', 'w/a', '2']); // base+2
  await t.run(['put', 'w/b', '3']); // base+3
  await t.run(['del', 'w/a']); // base+4

  const history = spawnEtcdctl(t.target, ['watch', '--rev', String(base + 1), 'w/a']);
  await history.waitForOutput(/^DELETE\nw\/a\n\n/m);
  await t.run(['put', 'w/a', '5']); // base+5, delivered live after the replay
  t.note('watch --rev base+1 w/a', await history.waitForOutput(/^PUT\nw\/a\n5\n/m));
  await history.stop('SIGINT');

  // Each event prints the previous key-value before the new one; the delete's new kv has no value.
  const withPrevious = spawnEtcdctl(t.target, ['watch', '--prev-kv', '--rev', String(base + 2), 'w/a']);
  t.note('watch --prev-kv --rev base+2 w/a', await withPrevious.waitForOutput(/^PUT\nw\/a\n5\n/m));
  await withPrevious.stop('SIGINT');

  // Starting at the next revision makes the watch see every put below however fast it starts.
  const prefix = spawnEtcdctl(t.target, ['watch', '--prefix', '--rev', String(base + 6), 'w/']);
  await t.run(['put', 'wx', 'outside the prefix']); // base+6, printed only if the range is wrong
  await t.run(['put', 'w/c/d', '6']); // base+7
  await t.run(['del', 'w/', '--prefix']); // base+8: three deletes in one revision, key order
  t.note('watch --prefix --rev base+6 w/', await prefix.waitForOutput(/^DELETE\nw\/c\/d\n\n/m));
  await prefix.stop('SIGINT');

  t.note('compaction base+5', relativeRevisions(await etcdctl(t.target, ['compaction', String(base + 5)]), base));
  const compacted = await runEtcdctl(t.target, ['watch', '--rev', String(base + 1), 'w/a'], { timeoutMs: 10_000 });
  t.note('watch --rev base+1 w/a after compaction', `exit ${compacted.exitCode}\n${compacted.stdout}${errorLines(compacted.stderr)}`);
};

/** Expires nothing by time: every TTL is long, so `remaining` is masked to a range check. */
function maskRemaining(output: string, grantedSeconds: number): string {
  const inRange = (seconds: string) => Number(seconds) > 0 && Number(seconds) <= grantedSeconds;
  return output
    .replace(/remaining\((\d+)s\)/g, (all, s: string) => (inRange(s) ? 'remaining(0 < r <= granted)' : all))
    .replace(/"ttl":(\d+)/g, (all, s: string) => (inRange(s) ? '"ttl":0 < r <= granted' : all));
}

/**
 * A lease's attached keys in sorted order: etcd lists them from a Go map (`lease.Keys()` ranges
 * over the lease's item set), so its order changes from run to run; the set must match.
 */
function sortAttachedKeys(output: string): string {
  return output
    .replace(/attached keys\(\[([^\]]*)\]\)/g, (_, keys: string) => `attached keys([${keys.split(' ').sort().join(' ')}])`)
    .replace(/"keys":\[([^\]]*)\]/g, (_, keys: string) => `"keys":[${keys.split(',').sort().join(',')}]`);
}

/** `lease list` order follows the lessor's internal order; the set of ids is what must match. */
function sortLeaseList(output: string): string {
  const [head = '', ...ids] = output.split('\n');
  return [head, ...ids.sort()].join('\n');
}

/** lease: grant, put --lease, timetolive [--keys], list, keep-alive --once, revoke. */
export const leaseScenario: Scenario = async (t) => {
  t.base = await currentRevision(t.target);
  const grantA = await t.run(['lease', 'grant', '100']);
  const grantB = await t.run(['lease', 'grant', '200']);
  const idOf = (grant: string) => /^lease ([0-9a-f]{16}) granted/.exec(grant)?.[1] ?? 'missing-lease-id';
  const [a, b] = [idOf(grantA), idOf(grantB)];
  await t.run(['put', `--lease=${a}`, 'l/a', '1'], 'put --lease=<lease A> l/a 1');
  await t.run(['put', `--lease=${a}`, 'l/b', '2'], 'put --lease=<lease A> l/b 2');
  await t.run(['put', `--lease=${b}`, 'l/c', '3'], 'put --lease=<lease B> l/c 3');
  const timeToLive = async (step: string, args: string[]) => {
    const output = await etcdctl(t.target, ['lease', 'timetolive', ...args]);
    t.note(step, sortAttachedKeys(maskRemaining(output, 100)));
  };
  await timeToLive('lease timetolive <lease A>', [a]);
  await timeToLive('lease timetolive --keys <lease A>', ['--keys', a]);
  await timeToLive('lease timetolive --keys <lease A> -w json', ['--keys', a, '-w', 'json']);
  t.note('lease list', sortLeaseList(t.mask(await etcdctl(t.target, ['lease', 'list']))));
  await t.run(['lease', 'keep-alive', '--once', a], 'lease keep-alive --once <lease A>');
  await t.run(['lease', 'keep-alive', '--once', a, '-w', 'json'], 'lease keep-alive --once <lease A> -w json');

  const before = await currentRevision(t.target);
  await t.run(['lease', 'revoke', a], 'lease revoke <lease A>');
  t.note('revisions one revoke of two keys takes', String((await currentRevision(t.target)) - before));
  await t.run(['get', 'l/', '--prefix'], 'get l/ --prefix (l/a and l/b gone with <lease A>)');
  await timeToLive('lease timetolive <lease A> (revoked)', [a]);
  await t.run(['lease', 'keep-alive', '--once', a], 'lease keep-alive --once <lease A> (revoked)');
  await t.run(['lease', 'revoke', a], 'lease revoke <lease A> (revoked)');
  await t.run(['put', `--lease=${a}`, 'l/d', '4'], 'put --lease=<lease A> l/d 4 (revoked)');
  await t.run(['lease', 'revoke', b], 'lease revoke <lease B>');
  await t.run(['get', 'l/', '--prefix'], 'get l/ --prefix (empty)');
  await t.run(['lease', 'list']);
};

/**
 * Waits until `watch` has printed `count` whole events of `type`: the type, key and value lines
 * (etcdctl writes them one by one, so a chunk can end mid-event).
 */
function waitForEvents(watch: EtcdctlProcess, type: 'PUT' | 'DELETE', count: number): Promise<string> {
  return watch.waitForOutput(new RegExp(`(^${type}\\n[^\\n]*\\n[^\\n]*\\n[^]*?){${count}}`, 'm'));
}

/** A lock holder's output: `lock` prints the lock key and its (empty) value, line by line. */
const lockHeld = /^lk\/two\/[0-9a-f]+\n\n/m;

/** lock: a command run under the lock (client-side recipe), then two contenders in turn. */
export const lockScenario: Scenario = async (t) => {
  const base = await currentRevision(t.target);
  const underLock = await etcdctl(t.target, ['lock', 'lk/one', '--', 'sh', '-c', 'echo "key=$ETCD_LOCK_KEY rev=$ETCD_LOCK_REV"']);
  t.note('lock lk/one -- sh -c "echo key=$ETCD_LOCK_KEY rev=$ETCD_LOCK_REV"', relativeRevisions(underLock, base));
  await t.run(['get', 'lk/one', '--prefix'], 'get lk/one --prefix (released when the command exits)');
  await t.run(['lock', 'lk/one', '--', 'sh', '-c', 'exit 3']);

  const events = spawnEtcdctl(t.target, ['watch', '--prefix', '--rev', String((await currentRevision(t.target)) + 1), 'lk/two/']);
  const first = spawnEtcdctl(t.target, ['lock', 'lk/two']);
  t.note('first: lock lk/two', await first.waitForOutput(lockHeld));
  const second = spawnEtcdctl(t.target, ['lock', 'lk/two']);
  // Once the second contender's key exists it can only be waiting: the first still holds the lock.
  await waitForEvents(events, 'PUT', 2);
  t.note('second: lock lk/two, while the first holds it', second.stdout());
  t.note('first: interrupted (unlocks)', `exit ${String(await first.stop('SIGINT'))}`);
  t.note('second: acquires after the first releases', await second.waitForOutput(lockHeld));
  t.note('second: interrupted (unlocks)', `exit ${String(await second.stop('SIGINT'))}`);
  t.note('watch --prefix lk/two/', await waitForEvents(events, 'DELETE', 2));
  await events.stop('SIGINT');
  await t.run(['get', 'lk/', '--prefix']);
};

/** elect: a leader campaigns, an observer follows, the leader is killed and leadership passes. */
export const electScenario: Scenario = async (t) => {
  const events = spawnEtcdctl(t.target, ['watch', '--prefix', '--rev', String((await currentRevision(t.target)) + 1), 'el/']);
  const observer = spawnEtcdctl(t.target, ['elect', '-l', 'el']);
  const alice = spawnEtcdctl(t.target, ['elect', 'el', 'alice']);
  const aliceWon = await alice.waitForOutput(/^el\/[0-9a-f]+\nalice\n/m);
  t.note('elect el alice (campaigns and stays leader)', aliceWon);
  t.note('elect -l el (observes alice)', await observer.waitForOutput(/^alice\n/m));
  const bob = spawnEtcdctl(t.target, ['elect', 'el', 'bob']);
  await waitForEvents(events, 'PUT', 2);
  t.note('elect el bob, while alice leads', bob.stdout());

  // SIGKILL leaves alice's key and session lease behind, as a crashed leader would. Revoking the
  // lease stands in for its 60 s session TTL running out.
  t.note('alice: killed', String(await alice.stop('SIGKILL')));
  const aliceLease = /^el\/([0-9a-f]+)$/m.exec(aliceWon)?.[1] ?? 'missing-lease-id';
  await t.run(['lease', 'revoke', aliceLease], "lease revoke <alice's session lease>");
  t.note('elect el bob (leads once alice is gone)', await bob.waitForOutput(/^bob\n/m));
  t.note('elect -l el (observes bob)', await observer.waitForOutput(/^bob\n/m));
  t.note('bob: interrupted (resigns)', `exit ${String(await bob.stop('SIGINT'))}`);
  t.note('watch --prefix el/', await waitForEvents(events, 'DELETE', 2));
  await events.stop('SIGINT');
  await observer.stop('SIGINT');
  await t.run(['get', 'el', '--prefix']);
};

/** Bytes etcdctl 3.4 appends to a snapshot: the SHA-256 of what precedes it, after 512-byte pages. */
const snapshotTrailerBytes = 32;

/** snapshot save: exit status, message, and the size check etcdctl 3.4 applies (mod 512 == 32). */
export const snapshotScenario: Scenario = async (t) => {
  const directory = await mkdtemp(join(tmpdir(), `interop-snapshot-${t.target.name}-`));
  try {
    const file = join(directory, 'snapshot.db');
    const saved = await runEtcdctl(t.target, ['snapshot', 'save', file]);
    t.note('snapshot save FILE', `exit ${saved.exitCode}\n${saved.stdout.replaceAll(directory, 'DIR')}`);
    const { size } = await stat(file);
    t.note('snapshot size mod 512', String(size % 512));
    t.note('snapshot size > trailer', String(size > snapshotTrailerBytes));
  } finally {
    await rm(directory, { recursive: true, force: true });
  }
};

/**
 * member: add a learner (its peer URL is never served, so it stays unstarted), list, a promote
 * refused because it has not caught up, an update of its peer URL, its removal, and the errors
 * etcd gives for a member that was removed and one that never existed.
 */
export const memberScenario: Scenario = async (t) => {
  // etcdctl prints ids with %16x (space-padded): mask them like the list's ids.
  // ETCD_INITIAL_CLUSTER follows the members' id order too: sort its entries.
  const maskIds = (output: string, id: string) => output.replace(/(Member|cluster)\s+[0-9a-f]+/g, '$1 ID')
    .replaceAll(id, 'ID')
    .replace(/ETCD_INITIAL_CLUSTER="([^"]*)"/, (_, list: string) => `ETCD_INITIAL_CLUSTER="${list.split(',').sort().join(',')}"`);
  const added = await etcdctl(t.target, ['member', 'add', 'newbie', '--learner', '--peer-urls=http://127.0.0.1:1']);
  const id = /Member\s+([0-9a-f]+) added/.exec(added)?.[1] ?? 'missing-member-id';
  t.note('member add newbie --learner --peer-urls=http://127.0.0.1:1', maskIds(added, id));
  // Members are listed by id, and ids differ between the two clusters: compare them in a fixed order.
  const sortedList = (output: string) => output.trim().split('\n').sort().join('\n');
  t.note('member list (sorted)', sortedList(t.mask(maskIds(await etcdctl(t.target, ['member', 'list']), id))));
  const listed = JSON.parse(await etcdctl(t.target, ['member', 'list', '-w', 'json'])) as { members: { ID: unknown }[] };
  t.note('member list -w json (members, ids dropped, sorted)', listed.members
    .map(({ ID: _id, ...rest }) => t.mask(JSON.stringify(rest))).sort().join('\n'));
  // Not compared: a second add of the same peer URL. etcd 3.4's member id hashes the URLs and the
  // wall-clock second, so within one second it answers "member ID already exist", later "Peer URLs
  // already exists" (Synod's answer: its ids never collide).
  await t.run(['member', 'add', 'second', '--learner', '--peer-urls=http://127.0.0.1:2'], 'member add second --learner (one learner at a time)');
  await t.run(['member', 'promote', id], 'member promote <newbie> (not caught up)');
  // No listing after the update: etcd 3.4's MemberUpdate drops the learner flag from its record
  // (it then lists the learner as a voter); Synod keeps it.
  t.note('member update <newbie>', maskIds(await etcdctl(t.target, ['member', 'update', id, '--peer-urls=http://127.0.0.1:3']), id));
  t.note('member remove <newbie>', maskIds(await etcdctl(t.target, ['member', 'remove', id]), id));
  await t.run(['member', 'remove', id], 'member remove <newbie> (removed)');
  await t.run(['member', 'remove', '1234abcd'], 'member remove 1234abcd (never a member)');
  await t.run(['member', 'list']);
};

/** etcdctl with `--user name:password`: a global flag, before the command. */
function as(user: string, args: readonly string[]): string[] {
  return [`--user=${user}`, ...args];
}

/**
 * auth, user, role: users with read-only and read-write roles on a prefix and a write-only key,
 * the errors of user and role management, then with auth on each allowed and denied path
 * (including Txn branches and compares, and prev_kv needing read), a wrong password, a missing
 * user, root-only commands, the changes etcd forbids on root, revoking a permission, a password
 * change, and auth disable. (etcdctl 3.4's `auth enable` creates the root role and grants it to
 * root itself, so its "root user does not have root role" error cannot be reached from etcdctl.)
 * The finally block leaves the target with auth off and no users or roles, whatever failed.
 */
export const authScenario: Scenario = async (t) => {
  const root = 'root:rootpw';
  try {
    await t.run(['auth', 'enable'], 'auth enable (no root user)');
    await t.run(['user', 'add', 'root', '--new-user-password=rootpw']);
    await t.run(['role', 'add', 'reader']);
    await t.run(['role', 'grant-permission', 'reader', 'read', 'app/', '--prefix']);
    await t.run(['role', 'add', 'writer']);
    await t.run(['role', 'grant-permission', 'writer', 'readwrite', 'app/', '--prefix']);
    await t.run(['role', 'grant-permission', 'writer', 'write', 'log', 'loh']);
    await t.run(['role', 'add', 'reader'], 'role add reader (exists)');
    await t.run(['user', 'add', 'alice', '--new-user-password=alicepw']);
    await t.run(['user', 'grant-role', 'alice', 'reader']);
    await t.run(['user', 'add', 'bob', '--new-user-password=bobpw']);
    await t.run(['user', 'grant-role', 'bob', 'writer']);
    await t.run(['user', 'grant-role', 'bob', 'nosuchrole']);
    await t.run(['user', 'add', 'alice', '--new-user-password=again'], 'user add alice (exists)');
    await t.run(['user', 'list']);
    await t.run(['role', 'list']);
    await t.run(['user', 'get', 'bob']);
    await t.run(['user', 'get', 'bob', '--detail']);
    await t.run(['role', 'get', 'writer']);
    await t.run(['user', 'get', 'nobody']);
    await t.run(['put', 'app/x', '1']);
    await t.run(['auth', 'enable']);

    await t.run(['get', 'app/x'], 'get app/x (no user)');
    await t.run(as('alice:wrong', ['get', 'app/x']));
    await t.run(as('nobody:pw', ['get', 'app/x']));
    await t.run(as('alice:alicepw', ['get', 'app/x']));
    await t.run(as('alice:alicepw', ['get', 'app/', '--prefix', '--keys-only']));
    await t.run(as('alice:alicepw', ['put', 'app/x', '2']));
    await t.run(as('alice:alicepw', ['get', 'other']));
    await t.run(as('bob:bobpw', ['put', 'app/x', '2']));
    await t.run(as('bob:bobpw', ['put', 'app/y', '3', '--prev-kv']));
    await t.run(as('bob:bobpw', ['put', 'log', 'line']));
    await t.run(as('bob:bobpw', ['put', 'log', 'line', '--prev-kv']), '--user=bob:bobpw put log line --prev-kv (write only)');
    await t.run(as('bob:bobpw', ['put', 'other', '1']));
    await t.run(as('bob:bobpw', ['del', 'app/y']));
    const txn = (input: string, step: string) => etcdctl(t.target, as('bob:bobpw', ['txn']), input).then((out) => t.note(step, out));
    await txn('value("app/x") = "2"\n\nput app/z 4\n\nput other 5\n\n', 'txn as bob: failure branch outside app/');
    await txn('value("other") = "1"\n\nput app/z 4\n\n\n', 'txn as bob: compare outside app/');
    await txn('value("app/x") = "2"\n\nput app/z 4\n\nput app/w 5\n\n', 'txn as bob: both branches inside app/');
    await t.run(as('bob:bobpw', ['user', 'list']), 'user list as bob (root only)');
    await t.run(as('bob:bobpw', ['compaction', '1']), 'compaction as bob (root only)');
    await t.run(as(root, ['get', 'app/', '--prefix']));
    await t.run(as(root, ['user', 'revoke-role', 'root', 'root']));
    await t.run(as(root, ['user', 'delete', 'root']));
    await t.run(as(root, ['user', 'revoke-role', 'alice', 'writer']), 'user revoke-role alice writer (never granted)');
    await t.run(as(root, ['role', 'revoke-permission', 'reader', 'app/', '--prefix']));
    await t.run(as(root, ['role', 'revoke-permission', 'reader', 'app/', '--prefix']), 'role revoke-permission reader app/ --prefix (again)');
    await t.run(as('alice:alicepw', ['get', 'app/x']), 'get app/x as alice (permission revoked)');
    const passwd = await etcdctl(t.target, as(root, ['user', 'passwd', 'bob', '--interactive=false']), 'bobpw2\n');
    t.note('user passwd bob --interactive=false', passwd);
    await t.run(as('bob:bobpw', ['get', 'app/x']), 'get app/x as bob (old password)');
    await t.run(as('bob:bobpw2', ['get', 'app/x']), 'get app/x as bob (new password)');
    await t.run(as(root, ['user', 'delete', 'bob']));
    await t.run(as(root, ['role', 'delete', 'writer']));
    await t.run(as(root, ['role', 'delete', 'writer']), 'role delete writer (gone)');
    await t.run(as(root, ['user', 'list']));
    await t.run(as(root, ['auth', 'disable']));
    await t.run(['get', 'app/x'], 'get app/x (auth off)');
  } finally {
    await etcdctl(t.target, as(root, ['auth', 'disable']));
    for (const user of ['root', 'alice', 'bob']) await etcdctl(t.target, ['user', 'delete', user]);
    for (const role of ['root', 'reader', 'writer']) await etcdctl(t.target, ['role', 'delete', role]);
    for (const key of ['app/', 'log', 'other']) await etcdctl(t.target, ['del', key, '--prefix']);
  }
};
