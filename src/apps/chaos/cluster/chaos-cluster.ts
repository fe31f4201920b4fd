/**
 * The cluster under test: N members of one target on loopback, each with a client port, a peer
 * port and a proxy port, and the process operations the nemesis uses (kill, restart, pause,
 * resume, and replacing a member through the Cluster API) plus the harness's view of who leads.
 */

import { existsSync } from 'node:fs';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { assert, SynodError } from '../../../base/index.js';
import type { ChaosMember, ChaosTarget } from '../types.js';
import { MemberProcess, type MemberTiming } from './member-process.js';
import { MembershipClient } from './membership-client.js';
import { StatusClient } from './status-client.js';

/** How long one Status call may take when the harness polls the cluster. */
export const statusTimeoutMs = 500;
/** Deadline of one MemberList, MemberAdd or MemberRemove call. */
const membershipCallTimeoutMs = 3_000;
/** Pause between rounds of membership attempts. */
const membershipRetryMs = 200;
/** How long a removed member gets to exit by itself before it is killed. */
const removedExitTimeoutMs = 5_000;

/** A port the OS just handed out on 127.0.0.1. */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  assert(address !== null && typeof address === 'object', 'a listening server has a port');
  return address.port;
}

/** Options of `ChaosCluster.create`. */
export interface ChaosClusterOptions {
  readonly target: ChaosTarget;
  readonly nodes: number;
  /** Where each member's data directory goes. */
  readonly dataRoot: string;
  readonly timing: MemberTiming;
  readonly extraFlags?: readonly string[];
  readonly extraEnv?: Readonly<Record<string, string>>;
  /** Where each member's output goes, as `<name>.log` (default: kept in memory only). */
  readonly logRoot?: string;
}

/** N members of one target. */
export class ChaosCluster {
  readonly target: ChaosTarget;
  readonly members: readonly ChaosMember[];
  readonly timing: MemberTiming;
  readonly #processes: ReadonlyMap<string, MemberProcess>;
  readonly #status: ReadonlyMap<string, StatusClient>;

  private constructor(options: ChaosClusterOptions, members: ChaosMember[], processes: MemberProcess[]) {
    this.target = options.target;
    this.timing = options.timing;
    this.members = members;
    this.#processes = new Map(processes.map((process) => [process.name, process]));
    this.#status = new Map(members.map((member) => [member.name, new StatusClient(member.clientUrl)]));
  }

  /** Picks ports and data directories; starts nothing. */
  static async create(options: ChaosClusterOptions): Promise<ChaosCluster> {
    const members: ChaosMember[] = [];
    for (let i = 1; i <= options.nodes; i++) {
      members.push({
        name: `n${i}`,
        clientUrl: `http://127.0.0.1:${await freePort()}`,
        peerListenPort: await freePort(),
        peerProxyPort: await freePort(),
      });
    }
    const initialCluster = members.map((m) => `${m.name}=http://127.0.0.1:${m.peerProxyPort}`).join(',');
    if (options.logRoot !== undefined) await mkdir(options.logRoot, { recursive: true });
    const processes: MemberProcess[] = [];
    for (const member of members) {
      const dataDir = join(options.dataRoot, member.name);
      await mkdir(dataDir, { recursive: true });
      processes.push(new MemberProcess({
        target: options.target, member, dataDir, initialCluster, timing: options.timing,
        ...(options.extraFlags === undefined ? {} : { extraFlags: options.extraFlags }),
        ...(options.extraEnv === undefined ? {} : { extraEnv: options.extraEnv }),
        ...(options.logRoot === undefined ? {} : { logPath: join(options.logRoot, `${member.name}.log`) }),
      }));
    }
    return new ChaosCluster(options, members, processes);
  }

  /** The process of member `name`. */
  process(name: string): MemberProcess {
    const found = this.#processes.get(name);
    assert(found !== undefined, `no member ${name}`);
    return found;
  }

  /** The member's current pid (for the network's connection owner lookup). */
  pidOf(name: string): number | null {
    return this.process(name).pid;
  }

  startAll(): void {
    for (const process of this.#processes.values()) process.start();
  }

  async kill(name: string): Promise<void> {
    await this.process(name).signal('SIGKILL');
  }

  /**
   * Kills member `name` the way an OS crash would, losing what it wrote without fsync. Synod's
   * Raft log syncs before anything is acknowledged, but its MVCC backend commits without fsync
   * and leans on the log (src/storage/kv-backend.ts): a marker holding the OS boot id tells a
   * restart whether the page cache survived. Rewriting that marker with a foreign boot id makes
   * the restart see a reboot, discard the backend and rebuild it from the snapshot and the log —
   * the worst case of an OS crash, on the real recovery path. etcd syncs both its WAL and its
   * bbolt commits, so for etcd this is a plain SIGKILL: it has nothing unsynced to lose.
   */
  async loseUnsynced(name: string): Promise<void> {
    const process = this.process(name);
    await process.signal('SIGKILL');
    if (this.target !== 'synod') return;
    const marker = join(process.launch.dataDir, 'kv', 'unsynced.boot-id');
    if (existsSync(marker)) await writeFile(marker, 'boot-before-the-emulated-crash');
  }

  /**
   * Replacing a failed machine, first half: removes member `name` (Cluster.MemberRemove through
   * another live member, retried until `timeoutMs`), waits for it to exit as a removed member does
   * (or kills it) and wipes its data directory. Resolves with the removed id.
   */
  async removeMember(name: string, timeoutMs: number): Promise<string> {
    // The id found by the first listing. A MemberRemove whose answer was lost (a deadline under
    // load, a leader change) may still have applied: a retry that no longer lists this id knows
    // the removal happened, rather than reporting the member as never there.
    let targetId: string | null = null;
    const id = await this.#throughOthers(name, timeoutMs, async (client) => {
      const members = await client.list(membershipCallTimeoutMs);
      if (targetId === null) {
        const listed = members.find((member) => member.name === name);
        if (listed === undefined) throw new SynodError('SYNOD_MEMBER_NOT_FOUND', `${name} is not a member`);
        targetId = listed.id;
      } else if (!members.some((member) => member.id === targetId)) {
        return targetId;
      }
      await client.remove(targetId, membershipCallTimeoutMs);
      return targetId;
    });
    const process = this.process(name);
    process.markRemoved();
    if (!(await process.exited(removedExitTimeoutMs))) await process.signal('SIGKILL');
    await rm(process.launch.dataDir, { recursive: true, force: true });
    await mkdir(process.launch.dataDir, { recursive: true });
    return id;
  }

  /**
   * Second half: adds `name` back as a new voting member at its old peer URL (MemberAdd, retried
   * until `timeoutMs`) and starts it empty to join the running cluster. Resolves with its new id.
   */
  async addMember(name: string, timeoutMs: number): Promise<string> {
    const member = this.members.find((candidate) => candidate.name === name)!;
    const id = await this.#throughOthers(name, timeoutMs,
      (client) => client.add(`http://127.0.0.1:${member.peerProxyPort}`, membershipCallTimeoutMs));
    const process = this.process(name);
    process.rejoin();
    process.start();
    return id;
  }

  /** `call` through each live member but `name` in turn until one succeeds or `timeoutMs` passes. */
  async #throughOthers<T>(name: string, timeoutMs: number, call: (client: MembershipClient) => Promise<T>): Promise<T> {
    const deadline = performance.now() + timeoutMs;
    let lastError: unknown = new Error('no live member to ask');
    while (performance.now() < deadline) {
      for (const other of this.members) {
        const process = this.process(other.name);
        if (other.name === name || !process.running || process.paused) continue;
        const client = new MembershipClient(other.clientUrl);
        try {
          return await call(client);
        } catch (error) {
          lastError = error;
        } finally {
          client.close();
        }
      }
      await new Promise((resolve) => setTimeout(resolve, membershipRetryMs));
    }
    throw lastError;
  }

  restart(name: string): void {
    this.process(name).start();
  }

  async pause(name: string): Promise<void> {
    await this.process(name).signal('SIGSTOP');
  }

  async resume(name: string): Promise<void> {
    await this.process(name).signal('SIGCONT');
  }

  /** Stops every member (SIGTERM) and closes the harness's clients. */
  async stopAll(): Promise<void> {
    await Promise.all([...this.#processes.values()].map((process) => process.signal('SIGTERM')));
    for (const client of this.#status.values()) client.close();
  }

  /** SIGKILLs whatever still runs (cleanup on any exit path). */
  async killAll(): Promise<void> {
    await Promise.all([...this.#processes.values()].map(async (process) => {
      await process.signal('SIGKILL');
      await process.closeLog();
    }));
    for (const client of this.#status.values()) client.close();
  }

  /**
   * The name of the member every running, unpaused member names as leader, or null when they do
   * not agree (an election in progress, a partition, a member not answering).
   */
  async agreedLeader(): Promise<string | null> {
    const live = this.members.filter((m) => this.process(m.name).running && !this.process(m.name).paused);
    let answers;
    try {
      answers = await Promise.all(live.map((m) => this.#status.get(m.name)!.status(statusTimeoutMs)));
    } catch {
      return null;
    }
    const leaders = new Set(answers.map((answer) => answer.leaderId));
    if (leaders.size !== 1 || leaders.has('0')) return null;
    const leaderId = answers[0]!.leaderId;
    const index = answers.findIndex((answer) => answer.memberId === leaderId);
    return index === -1 ? null : live[index]!.name;
  }

  /** Polls until the running members agree on a leader; throws after `timeoutMs`. */
  async waitForLeader(timeoutMs: number): Promise<string> {
    const deadline = performance.now() + timeoutMs;
    while (performance.now() < deadline) {
      const leader = await this.agreedLeader();
      if (leader !== null) return leader;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    const tails = this.members.map((m) => `${m.name}: ${this.process(m.name).logTail.slice(-3).join(' | ')}`);
    throw new SynodError('SYNOD_NO_LEADER', `no agreed leader within ${timeoutMs} ms\n${tails.join('\n')}`);
  }
}
