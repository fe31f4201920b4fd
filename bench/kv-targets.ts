/**
 * The servers the kv benchmark measures: a fresh Synod or etcd member or 3-member cluster on
 * loopback, each member a child process with its own free ports and temporary data directory.
 *
 * Both targets are started from the same etcd command line (Synod accepts etcd's flags), waited for
 * with a real check (Maintenance.Status answers and names a leader on every member), and stopped
 * with SIGTERM, then SIGKILL after `stopGraceMs`. Every child is also killed synchronously when the
 * bench process exits for any reason, so no server outlives a run.
 */

import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, openSync, closeSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { credentials, type Client } from '@grpc/grpc-js';
import { assert } from '../src/base/index.js';
import type { EtcdProto } from '../src/server/grpc/proto.js';
import { unaryCall, type GrpcMethod } from './kv-grpc.js';

/** Which server implementation a target runs. */
export type TargetKind = 'synod' | 'etcd';

/** How a target is launched. */
export interface TargetLaunch {
  readonly kind: TargetKind;
  readonly members: number;
  readonly proto: EtcdProto;
  /** Directory for `node --cpu-prof` output of every Synod member; null for no profile. */
  readonly cpuProfileDirectory: string | null;
}

/** One running member process. */
export interface Member {
  readonly name: string;
  readonly clientUrl: string;
  readonly process: ChildProcess;
  readonly logPath: string;
}

/** A started target: its members and the one that leads (where requests are sent). */
export interface RunningTarget {
  readonly kind: TargetKind;
  /** The temporary directory holding every member's data directory and log. */
  readonly root: string;
  readonly members: readonly Member[];
  readonly leader: Member;
}

/** A target that did not start, with a one-line reason for the report. */
export interface FailedTarget {
  readonly kind: TargetKind;
  readonly members: number;
  readonly reason: string;
}

/** How long a target may take to answer Status on every member with a leader elected. */
const readyTimeoutMs = 30_000;
/** Pause between two readiness probes. */
const readyProbeIntervalMs = 100;
/** Deadline of one readiness probe. */
const readyProbeDeadlineMs = 1_000;
/** Time a member gets to exit after SIGTERM (Synod writes its --cpu-prof file then). */
const stopGraceMs = 8_000;

const repositoryRoot = fileURLToPath(new URL('../', import.meta.url));
/** Synod's built entry point; `npm run build` produces it. */
export const synodEntryPath = join(repositoryRoot, 'dist/apps/synod.js');

/** Every child started by this module that has not exited, killed on process exit. */
const liveChildren = new Set<ChildProcess>();
/** Every temporary directory created by this module, removed on process exit. */
const temporaryDirectories = new Set<string>();

process.on('exit', () => {
  for (const child of liveChildren) child.kill('SIGKILL');
  for (const directory of temporaryDirectories) rmSync(directory, { recursive: true, force: true });
});

/** Whether an `etcd` binary is on the PATH. */
export function etcdAvailable(): boolean {
  try {
    execFileSync('etcd', ['--version'], { stdio: 'ignore', timeout: 10_000 });
    return true;
  } catch {
    return false;
  }
}

/** A TCP port on 127.0.0.1 that was free a moment ago. */
async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      assert(address !== null && typeof address === 'object', 'listening server has an address');
      server.close(() => resolve(address.port));
    });
  });
}

interface MemberPlan {
  readonly name: string;
  readonly clientUrl: string;
  readonly peerUrl: string;
  readonly dataDirectory: string;
}

async function planMembers(count: number, root: string): Promise<MemberPlan[]> {
  const plans: MemberPlan[] = [];
  for (let index = 0; index < count; index++) {
    const name = String.fromCharCode('a'.charCodeAt(0) + index);
    plans.push({
      name,
      clientUrl: `http://127.0.0.1:${await freePort()}`,
      peerUrl: `http://127.0.0.1:${await freePort()}`,
      dataDirectory: join(root, name),
    });
  }
  return plans;
}

/** The etcd 3.4 command line of one member; Synod takes the same one. */
function memberFlags(plan: MemberPlan, plans: readonly MemberPlan[]): string[] {
  return [
    `--name=${plan.name}`,
    `--data-dir=${plan.dataDirectory}`,
    `--listen-client-urls=${plan.clientUrl}`,
    `--advertise-client-urls=${plan.clientUrl}`,
    `--listen-peer-urls=${plan.peerUrl}`,
    `--initial-advertise-peer-urls=${plan.peerUrl}`,
    `--initial-cluster=${plans.map((p) => `${p.name}=${p.peerUrl}`).join(',')}`,
    '--initial-cluster-state=new',
    '--initial-cluster-token=synod-bench',
  ];
}

function spawnMember(
  launch: TargetLaunch,
  member: { plan: MemberPlan; plans: readonly MemberPlan[]; root: string },
): Member {
  const { plan, plans, root } = member;
  const logPath = join(root, `${plan.name}.log`);
  const log = openSync(logPath, 'a');
  const flags = memberFlags(plan, plans);
  const profile = launch.cpuProfileDirectory === null
    ? []
    : [
      '--cpu-prof',
      `--cpu-prof-dir=${launch.cpuProfileDirectory}`,
      `--cpu-prof-name=synod-${plan.name}.cpuprofile`,
    ];
  const stdio: ['ignore', number, number] = ['ignore', log, log];
  const child = launch.kind === 'synod'
    ? spawn(process.execPath, [...profile, synodEntryPath, 'server', ...flags], { stdio })
    : spawn('etcd', flags, { stdio });
  closeSync(log);
  liveChildren.add(child);
  child.once('exit', () => liveChildren.delete(child));
  return { name: plan.name, clientUrl: plan.clientUrl, process: child, logPath };
}

/** Starts a fresh target and waits until every member answers Status with a leader known. */
export async function startTarget(launch: TargetLaunch): Promise<RunningTarget | FailedTarget> {
  assert(launch.members >= 1, 'a target has at least one member');
  const root = mkdtempSync(join(tmpdir(), `synod-bench-${launch.kind}-`));
  temporaryDirectories.add(root);
  const plans = await planMembers(launch.members, root);
  const members = plans.map((plan) => spawnMember(launch, { plan, plans, root }));
  const outcome = await waitReady(launch, members);
  if (typeof outcome === 'string') {
    await stopMembers(members);
    removeDirectory(root);
    return { kind: launch.kind, members: launch.members, reason: outcome };
  }
  return { kind: launch.kind, root, members, leader: outcome };
}

/** The leader once every member is up and agrees on it, or a reason why the target failed. */
async function waitReady(
  launch: TargetLaunch,
  members: readonly Member[],
): Promise<Member | string> {
  const clients = members.map((member) => maintenanceClient(launch.proto, member.clientUrl));
  const deadline = performance.now() + readyTimeoutMs;
  try {
    while (performance.now() < deadline) {
      const exited = members.find((member) => hasExited(member.process));
      if (exited !== undefined) return exitReason(exited);
      const leader = await probeLeader(clients, members);
      if (leader !== null) return leader;
      await new Promise((resolve) => setTimeout(resolve, readyProbeIntervalMs));
    }
    return `not ready after ${readyTimeoutMs / 1000} s ` +
      '(no Status answer with a leader on every member)';
  } finally {
    for (const client of clients) client.close();
  }
}

interface StatusWire {
  readonly header: { readonly member_id: string } | null;
  readonly leader: string;
}

async function probeLeader(
  clients: readonly Client[],
  members: readonly Member[],
): Promise<Member | null> {
  const statuses: StatusWire[] = [];
  for (const client of clients) {
    try {
      const status = await unaryCall<StatusWire>(client, 'Status', {}, readyProbeDeadlineMs);
      statuses.push(status);
    } catch {
      return null;
    }
  }
  const leaderId = statuses[0]?.leader;
  if (leaderId === undefined || leaderId === '0') return null;
  if (!statuses.every((status) => status.leader === leaderId)) return null;
  const index = statuses.findIndex((status) => status.header?.member_id === leaderId);
  return index < 0 ? null : members[index]!;
}

function maintenanceClient(proto: EtcdProto, clientUrl: string): Client {
  const services = proto.packageObject.etcdserverpb as Record<string, unknown>;
  const constructor = services.Maintenance as GrpcMethod;
  return new constructor(clientUrl.replace('http://', ''), credentials.createInsecure());
}

function exitReason(member: Member): string {
  const { exitCode, signalCode } = member.process;
  const how = exitCode !== null ? `exit code ${exitCode}` : `signal ${signalCode}`;
  let lastLine = '';
  try {
    const text = readFileSync(member.logPath, 'utf8');
    const lines = text.split('\n').filter((line) => line.trim() !== '');
    lastLine = lines[lines.length - 1] ?? '';
  } catch {
    lastLine = '(no log)';
  }
  return `member ${member.name} exited (${how}): ${lastLine.slice(0, 300)}`;
}

/** Stops every member and removes the target's data. */
export async function stopTarget(target: RunningTarget): Promise<void> {
  await stopMembers(target.members);
  removeDirectory(target.root);
}

function removeDirectory(directory: string): void {
  rmSync(directory, { recursive: true, force: true });
  temporaryDirectories.delete(directory);
}

/** Stops every member: SIGTERM, then SIGKILL for any still running after `stopGraceMs`. */
async function stopMembers(members: readonly Member[]): Promise<void> {
  await Promise.all(members.map(async (member) => {
    const child = member.process;
    if (hasExited(child)) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), stopGraceMs);
    await exited;
    clearTimeout(timer);
  }));
}

function hasExited(child: ChildProcess): boolean {
  return child.exitCode !== null || child.signalCode !== null;
}

/** Process ids of every member, for CPU and memory accounting. */
export function memberPids(target: RunningTarget): number[] {
  return target.members.map((member) => {
    assert(member.process.pid !== undefined, `member ${member.name} has a pid`);
    return member.process.pid;
  });
}
