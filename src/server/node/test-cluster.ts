/**
 * Test kit for `RaftNode`: members in one process over an in-memory transport that delivers with
 * `queueMicrotask` (no timers), each on its own `RaftLogStore` in a temp directory.
 */

import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { assert, SeededRandom } from '../../base/index.js';
import { KvStateMachine } from '../../kv/index.js';
import type { Message, NodeId } from '../../raft/index.js';
import { RaftLogStore } from '../../storage/index.js';
import { deferred, type Deferred } from './deferred.js';
import { RaftNode, type RaftNodeOptions, type Transport } from './raft-node.js';

/** Routes messages between members in memory; messages to stopped members are dropped. */
export class MemoryNetwork {
  readonly #nodes = new Map<NodeId, RaftNode>();
  #inflight = 0;
  #drained: Deferred<void> | null = null;

  /** A transport for one member. */
  transportOf(): Transport {
    return { send: (messages) => this.#send(messages) };
  }

  /** Attaches (or replaces) a member. */
  attach(node: RaftNode): void {
    this.#nodes.set(node.id, node);
  }

  /** Detaches a member: its messages in flight and later ones are dropped. */
  detach(id: NodeId): void {
    this.#nodes.delete(id);
  }

  /** Resolves when no message is in flight. */
  async drained(): Promise<void> {
    if (this.#inflight === 0) return;
    this.#drained ??= deferred<void>();
    await this.#drained.promise;
  }

  /** Messages queued for delivery. */
  get inflight(): number {
    return this.#inflight;
  }

  #send(messages: readonly Message[]): void {
    for (const message of messages) {
      this.#inflight += 1;
      queueMicrotask(() => this.#deliver(message));
    }
  }

  #deliver(message: Message): void {
    this.#inflight -= 1;
    this.#nodes.get(message.to)?.receive(message);
    if (this.#inflight === 0 && this.#drained !== null) {
      const drained = this.#drained;
      this.#drained = null;
      drained.resolve();
    }
  }
}

/** Node options every member of a test cluster gets. */
export type TestClusterOptions = Pick<RaftNodeOptions, 'snapshotCount' | 'snapshotCatchUpEntries'>;

/** One member's parts. */
export interface Member {
  readonly id: NodeId;
  readonly directory: string;
  store: RaftLogStore;
  node: RaftNode;
}

/** A cluster of `voters` members; call `close()` in afterEach. */
export class TestCluster {
  readonly network = new MemoryNetwork();
  readonly members = new Map<NodeId, Member>();
  readonly #voters: NodeId[];
  readonly #options: TestClusterOptions;
  #root = '';
  #incarnation = 0;

  private constructor(voters: NodeId[], options: TestClusterOptions) {
    this.#voters = voters;
    this.#options = options;
  }

  /** Creates and starts members `1..size` in a fresh temp directory. */
  static async start(size: number, options: TestClusterOptions = {}): Promise<TestCluster> {
    const voters = Array.from({ length: size }, (_, i) => i + 1);
    const cluster = new TestCluster(voters, options);
    cluster.#root = await mkdtemp(join(tmpdir(), 'synod-raft-node-'));
    for (const id of voters) await cluster.restart(id);
    return cluster;
  }

  /** The member `id`. */
  member(id: NodeId): Member {
    const member = this.members.get(id);
    assert(member !== undefined, `no member ${id}`);
    return member;
  }

  /** (Re)opens member `id` from its directory, with a fresh in-memory state machine; starts it. */
  async restart(id: NodeId): Promise<Member> {
    const directory = join(this.#root, `member-${id}`);
    const bootstrapConfState = { voters: this.#voters, learners: [] };
    const store = await RaftLogStore.open({ path: directory, bootstrapConfState });
    this.#incarnation += 1;
    const node = new RaftNode({
      id,
      store,
      stateMachine: KvStateMachine.open(),
      transport: this.network.transportOf(),
      random: new SeededRandom(id * 1000 + this.#incarnation),
      tickIntervalMs: 100,
      electionTicks: 10,
      ticker: 'manual',
      ...this.#options,
    });
    const member = { id, directory, store, node };
    this.members.set(id, member);
    this.network.attach(node);
    node.start();
    return member;
  }

  /** Stops member `id` and closes its store; its directory stays. */
  async stopMember(id: NodeId): Promise<void> {
    const member = this.member(id);
    this.network.detach(id);
    this.members.delete(id);
    await member.node.stop();
    await member.store.close();
  }

  /** Waits until no message is in flight and no member handles a Ready. */
  async settle(): Promise<void> {
    for (let round = 0; round < 10_000; round++) {
      const nodes = [...this.members.values()].map((member) => member.node);
      await Promise.all([this.network.drained(), ...nodes.map((node) => node.idle())]);
      if (this.network.inflight === 0 && (await allIdle(nodes))) return;
    }
    assert(false, 'cluster did not settle');
  }

  /** Ticks member `id` until it leads, settling after each tick. */
  async elect(id: NodeId): Promise<void> {
    const node = this.member(id).node;
    for (let ticks = 0; ticks < 100 && !node.isLeader; ticks++) {
      node.tick();
      await this.settle();
    }
    assert(node.isLeader, `member ${id} did not win an election`);
  }

  /** Stops every member, closes stores, removes the temp directory. */
  async close(): Promise<void> {
    for (const id of [...this.members.keys()]) await this.stopMember(id);
    if (this.#root !== '') await rm(this.#root, { recursive: true, force: true });
  }
}

async function allIdle(nodes: readonly RaftNode[]): Promise<boolean> {
  await Promise.resolve();
  return nodes.every((node) => !node.busy);
}
