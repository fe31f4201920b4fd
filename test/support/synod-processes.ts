/**
 * Synod members as real processes on loopback, for multi-member tests: each member is
 * `synod server` started from etcd's flags (through tsx, so no build is needed), with its own
 * data directory, client port and peer port. Members can be killed with SIGKILL and restarted on
 * the same directory and ports.
 */

import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { noop } from 'cockatiel';
import { Etcd3 } from 'etcd3';

const cli = join(import.meta.dirname, '../../src/apps/synod.ts');

/** One member's fixed identity. */
export interface MemberSpec {
  readonly name: string;
  readonly clientPort: number;
  readonly peerPort: number;
  readonly dataDir: string;
}

/** Timing flags shared by every member (etcd's names and units), and any other flags. */
export interface ClusterTiming {
  readonly heartbeatIntervalMs: number;
  readonly electionTimeoutMs: number;
  /** More etcd flags for every member, e.g. `['--snapshot-count', '100']`. */
  readonly extraFlags?: readonly string[];
}

/** A port the OS just handed out; free again once the probe closes. */
async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (address === null || typeof address !== 'object') throw new Error('no port');
  return address.port;
}

/** A cluster of `size` members named m1…mN, not yet started. */
export class ProcessCluster {
  readonly members: readonly MemberSpec[];
  readonly timing: ClusterTiming;
  readonly #root: string;
  readonly #children = new Map<string, ChildProcess>();
  readonly #stderr = new Map<string, string[]>();

  private constructor(root: string, members: MemberSpec[], timing: ClusterTiming) {
    this.#root = root;
    this.members = members;
    this.timing = timing;
  }

  static async create(size: number, timing: ClusterTiming): Promise<ProcessCluster> {
    const root = await mkdtemp(join(tmpdir(), 'synod-cluster-'));
    const members: MemberSpec[] = [];
    for (let i = 1; i <= size; i++) {
      members.push({
        name: `m${i}`, clientPort: await freePort(), peerPort: await freePort(),
        dataDir: join(root, `m${i}`),
      });
    }
    return new ProcessCluster(root, members, timing);
  }

  /** `name`'s spec. */
  member(name: string): MemberSpec {
    const member = this.members.find((candidate) => candidate.name === name);
    if (member === undefined) throw new Error(`no member ${name}`);
    return member;
  }

  /** `name`'s peer URL. */
  peerUrl(name: string): string {
    return `http://127.0.0.1:${this.member(name).peerPort}`;
  }

  /**
   * Starts `name` and resolves once it serves clients. By default every member of the cluster is
   * in --initial-cluster; `options.members` names a subset (a smaller first cluster, or the
   * members a joining one is told about), and `options.state: 'existing'` joins a running
   * cluster (after `member add`). `options.flags` are more etcd flags for this member alone.
   */
  start(
    name: string,
    options: { members?: readonly string[]; state?: 'new' | 'existing'; flags?: readonly string[] } = {},
  ): Promise<void> {
    const member = this.member(name);
    const listed = options.members === undefined ? this.members : options.members.map((m) => this.member(m));
    const initialCluster = listed.map((m) => `${m.name}=http://127.0.0.1:${m.peerPort}`).join(',');
    const child = spawn(process.execPath, [
      '--import', 'tsx', cli, 'server',
      '--name', member.name, '--data-dir', member.dataDir,
      '--listen-client-urls', `http://127.0.0.1:${member.clientPort}`,
      '--advertise-client-urls', `http://127.0.0.1:${member.clientPort}`,
      '--listen-peer-urls', `http://127.0.0.1:${member.peerPort}`,
      '--initial-advertise-peer-urls', `http://127.0.0.1:${member.peerPort}`,
      '--initial-cluster', initialCluster, '--initial-cluster-state', options.state ?? 'new',
      '--heartbeat-interval', String(this.timing.heartbeatIntervalMs),
      '--election-timeout', String(this.timing.electionTimeoutMs),
      ...(this.timing.extraFlags ?? []),
      ...(options.flags ?? []),
    ], { stdio: ['ignore', 'ignore', 'pipe'] });
    this.#children.set(name, child);
    const log: string[] = [];
    this.#stderr.set(name, log);
    return new Promise((resolve, reject) => {
      const lines = createInterface({ input: child.stderr! });
      lines.on('line', (line) => {
        if (log.length < 2000) log.push(line);
        if (line.includes('"serving client requests"')) resolve();
      });
      child.once('exit', (code, signal) => reject(new Error(`${name} exited (${code ?? signal}) before serving:\n${log.join('\n')}`)));
    });
  }

  /** Starts every member. */
  async startAll(): Promise<void> {
    await Promise.all(this.members.map((member) => this.start(member.name)));
  }

  /** SIGKILLs `name` and resolves once it is gone. */
  async kill(name: string): Promise<void> {
    await this.#signal(name, 'SIGKILL');
  }

  /** SIGTERMs `name`; resolves with its exit code. */
  async stop(name: string): Promise<number | null> {
    return this.#signal(name, 'SIGTERM');
  }

  /** Resolves with `name`'s exit code once it exits by itself (or at once if it is not running). */
  exited(name: string): Promise<number | null> {
    const child = this.#children.get(name);
    if (child === undefined || !this.isRunning(name)) return Promise.resolve(child?.exitCode ?? null);
    return new Promise((resolve) => child.once('exit', (code) => resolve(code)));
  }

  /** Whether `name` runs. */
  isRunning(name: string): boolean {
    const child = this.#children.get(name);
    return child !== undefined && child.exitCode === null && child.signalCode === null;
  }

  /**
   * A client bound to `name` alone (no failover), so each call goes where the test says. It has
   * no circuit breaker: etcd3's default one stops calling a host for 5 s after 3 recoverable
   * errors in a row, which an election produces, so a test would wait on the client rather
   * than on the member.
   */
  client(name: string): Etcd3 {
    const member = this.member(name);
    return new Etcd3({
      hosts: `127.0.0.1:${member.clientPort}`,
      dialTimeout: 1000,
      faultHandling: { host: () => noop },
    });
  }

  /** The log lines `name` printed in its latest run (for failure messages). */
  logOf(name: string): string {
    return (this.#stderr.get(name) ?? []).join('\n');
  }

  /** Kills whatever runs and removes the data. */
  async destroy(): Promise<void> {
    for (const name of this.#children.keys()) {
      if (this.isRunning(name)) await this.kill(name);
    }
    await rm(this.#root, { recursive: true, force: true });
  }

  #signal(name: string, signal: NodeJS.Signals): Promise<number | null> {
    const child = this.#children.get(name);
    if (child === undefined || !this.isRunning(name)) return Promise.resolve(child?.exitCode ?? null);
    return new Promise((resolve) => {
      child.once('exit', (code) => resolve(code));
      child.kill(signal);
    });
  }
}
