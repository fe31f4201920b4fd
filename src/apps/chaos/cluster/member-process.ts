/**
 * One member of the cluster under test as a child process: Synod (`synod server`) or real etcd,
 * started from the same etcd command line. Its peers reach it through its proxy (the advertised
 * peer URL), while it listens on its own peer port behind it, so the network faults of
 * ../network apply to every peer link. The harness can SIGKILL, SIGSTOP/SIGCONT and restart it.
 */

import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, existsSync, type WriteStream } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { ChaosMember, ChaosTarget } from '../types.js';

/** Timing flags every member gets (etcd's defaults). */
export interface MemberTiming {
  readonly heartbeatIntervalMs: number;
  readonly electionTimeoutMs: number;
}

/** Everything needed to (re)start one member. */
export interface MemberLaunch {
  readonly target: ChaosTarget;
  readonly member: ChaosMember;
  readonly dataDir: string;
  /** `name=http://127.0.0.1:<proxy port>,…` for every member. */
  readonly initialCluster: string;
  readonly timing: MemberTiming;
  /** Extra flags. */
  readonly extraFlags?: readonly string[];
  /** Extra environment (e.g. SYNOD_PLANTED_BUG for the planted-bug tests). */
  readonly extraEnv?: Readonly<Record<string, string>>;
  /** A file that collects everything the member prints, across restarts (appended). */
  readonly logPath?: string;
}

/** How `synod server` is started from this build: the compiled CLI, or the sources through tsx. */
function synodCommand(): string[] {
  const compiled = fileURLToPath(new URL('../../synod.js', import.meta.url));
  if (existsSync(compiled)) return [compiled];
  const source = fileURLToPath(new URL('../../synod.ts', import.meta.url));
  return ['--import', 'tsx', source];
}

/**
 * The etcd command line shared by both targets. `state` is 'existing' for a member added to a
 * running cluster (the membership fault's replacement), which starts from an empty data directory.
 */
export function memberFlags(launch: MemberLaunch, state: 'new' | 'existing' = 'new'): string[] {
  const { member, timing } = launch;
  const peerListen = `http://127.0.0.1:${member.peerListenPort}`;
  const peerAdvertised = `http://127.0.0.1:${member.peerProxyPort}`;
  return [
    '--name', member.name,
    '--data-dir', launch.dataDir,
    '--listen-client-urls', member.clientUrl,
    '--advertise-client-urls', member.clientUrl,
    '--listen-peer-urls', peerListen,
    '--initial-advertise-peer-urls', peerAdvertised,
    '--initial-cluster', launch.initialCluster,
    '--initial-cluster-state', state,
    '--initial-cluster-token', 'synod-chaos',
    '--heartbeat-interval', String(timing.heartbeatIntervalMs),
    '--election-timeout', String(timing.electionTimeoutMs),
    ...(launch.extraFlags ?? []),
  ];
}

/** Most log lines kept per member (the tail, for reports). */
export const memberLogLinesMax = 400;

/** A member's process across restarts. */
export class MemberProcess {
  readonly launch: MemberLaunch;
  #child: ChildProcess | null = null;
  #paused = false;
  #initialClusterState: 'new' | 'existing' = 'new';
  #removed = false;
  readonly #log: string[] = [];
  #logFile: WriteStream | null = null;

  constructor(launch: MemberLaunch) {
    this.launch = launch;
  }

  get name(): string {
    return this.launch.member.name;
  }

  /** The running process's pid, or null while down. */
  get pid(): number | null {
    const child = this.#child;
    return child !== null && child.exitCode === null && child.signalCode === null ? child.pid ?? null : null;
  }

  get running(): boolean {
    return this.pid !== null;
  }

  get paused(): boolean {
    return this.#paused;
  }

  /** The last lines the member printed (stdout and stderr). */
  get logTail(): readonly string[] {
    return this.#log;
  }

  /**
   * The member was removed from the cluster: `start` does nothing until `rejoin` (restarting it
   * with an empty data directory would bootstrap a cluster of its own).
   */
  markRemoved(): void {
    this.#removed = true;
  }

  /** It was added back: from now on it starts as a member joining a running cluster. */
  rejoin(): void {
    this.#removed = false;
    this.#initialClusterState = 'existing';
  }

  /** Resolves once the process exits by itself, or after `timeoutMs`; whether it exited. */
  async exited(timeoutMs: number): Promise<boolean> {
    const child = this.#child;
    if (child === null || !this.running) return true;
    return new Promise((resolve) => {
      const timer = setTimeout(() => resolve(false), timeoutMs);
      child.once('exit', () => {
        clearTimeout(timer);
        resolve(true);
      });
    });
  }

  /** Starts the process (not waiting for readiness: see ChaosCluster). */
  start(): void {
    if (this.running || this.#removed) return;
    const flags = memberFlags(this.launch, this.#initialClusterState);
    const [command, args] = this.launch.target === 'synod'
      ? [process.execPath, [...synodCommand(), 'server', ...flags]]
      : ['etcd', flags];
    const child = spawn(command, args, {
      stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...this.launch.extraEnv },
    });
    if (this.#logFile === null && this.launch.logPath !== undefined) {
      this.#logFile = createWriteStream(this.launch.logPath, { flags: 'a' });
    }
    const keep = (chunk: Buffer) => {
      this.#logFile?.write(chunk);
      for (const line of chunk.toString('utf8').split('\n')) {
        if (line === '') continue;
        this.#log.push(line);
        if (this.#log.length > memberLogLinesMax) this.#log.shift();
      }
    };
    child.stdout?.on('data', keep);
    child.stderr?.on('data', keep);
    child.on('error', (error) => this.#log.push(`spawn failed: ${error.message}`));
    this.#child = child;
    this.#paused = false;
  }

  /** Sends `signal` and, for SIGKILL/SIGTERM, waits for the exit. */
  async signal(signal: 'SIGKILL' | 'SIGTERM' | 'SIGSTOP' | 'SIGCONT'): Promise<void> {
    const child = this.#child;
    if (child === null || !this.running) return;
    if (signal === 'SIGSTOP' || signal === 'SIGCONT') {
      child.kill(signal);
      this.#paused = signal === 'SIGSTOP';
      return;
    }
    // A stopped process does not act on SIGTERM until continued.
    if (this.#paused) child.kill('SIGCONT');
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill(signal);
    await exited;
    this.#paused = false;
  }

  /** Flushes and closes the log file (after the last stop). */
  async closeLog(): Promise<void> {
    const file = this.#logFile;
    this.#logFile = null;
    if (file !== null) await new Promise<void>((resolve) => file.end(() => resolve()));
  }
}
