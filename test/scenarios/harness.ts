/**
 * A deterministic, step-by-step world for scenario scripts (in the manner of etcd's interaction
 * tests): nodes with in-memory "disks", a message queue the script delivers explicitly, partitions,
 * crashes that lose what was not persisted, and clients whose retries the state machine dedupes by
 * request id (the idempotency the leader-crash cases rely on).
 */

import { assert, SeededRandom } from '../../src/base/index.js';
import {
  MemoryStorage,
  RawNode,
  decodeConfChange,
  type ConfChange,
  type Entry,
  type Message,
  type NodeId,
  type RaftConfigInput,
  type Ready,
} from '../../src/raft/index.js';

const decoder = new TextDecoder();
const encoder = new TextEncoder();

/** A node of the scenario world: its durable disk survives crashes, everything else does not. */
interface ScenarioNode {
  readonly id: NodeId;
  readonly storage: MemoryStorage;
  raft: RawNode | null;
  /** Applied commands in order, as "index/term data"; rebuilt by replay after restart. */
  applied: string[];
  /** Request ids already applied: a retried request is applied once (client-side idempotency). */
  appliedRequestIds: Set<string>;
}

/** The world a script drives. Every method returns the lines it prints. */
export class ScenarioWorld {
  readonly nodes = new Map<NodeId, ScenarioNode>();
  queue: Message[] = [];
  #partition: NodeId[][] | null = null;
  #options: Partial<RaftConfigInput> = {};

  addNodes(ids: NodeId[], voters: NodeId[], learners: NodeId[], options: Partial<RaftConfigInput>): string[] {
    this.#options = options;
    for (const id of ids) {
      const storage = MemoryStorage.bootstrap({ voters, learners });
      const node: ScenarioNode = { id, storage, raft: null, applied: [], appliedRequestIds: new Set() };
      this.nodes.set(id, node);
      this.#start(node);
    }
    return [`nodes ${ids.join(' ')} voters=${voters.join(',')}${learners.length ? ` learners=${learners.join(',')}` : ''}`];
  }

  #start(node: ScenarioNode): void {
    // A restart rebuilds the state machine from the last snapshot, then Raft replays the rest.
    const snapshot = node.storage.snapshot();
    this.#install(node, snapshot.data);
    node.raft = new RawNode({
      ...this.#options,
      id: node.id,
      storage: node.storage,
      random: new SeededRandom(node.id),
      applied: snapshot.metadata.index,
    });
  }

  #install(node: ScenarioNode, data: Uint8Array): void {
    node.applied = data.length === 0 ? [] : (JSON.parse(decoder.decode(data)) as string[]);
    node.appliedRequestIds = new Set(node.applied.map((line) => line.split(' ')[1]!.split(':')[0]!));
  }

  /** Snapshots node `id`'s state machine at `index` (≤ applied) and drops the log up to it. */
  compact(id: NodeId, index: number): string[] {
    const node = this.node(id);
    const raft = this.raft(id);
    const applied = node.applied.filter((line) => Number(line.split('/')[0]) <= index);
    node.storage.createSnapshot(index, raft.status().confState, encoder.encode(JSON.stringify(applied)));
    node.storage.compact(index);
    return [formatLog(node)];
  }

  node(id: NodeId): ScenarioNode {
    const node = this.nodes.get(id);
    assert(node !== undefined, `no node ${id}`);
    return node;
  }

  raft(id: NodeId): RawNode {
    const raft = this.node(id).raft;
    if (raft === null) throw new Error(`node ${id} is down`);
    return raft;
  }

  /** Replaces node `id`'s durable log with entries of `terms` (index 1..n) and restarts it. */
  setLog(id: NodeId, terms: number[], hardTerm: number, commit: number): string[] {
    const node = this.node(id);
    node.storage.append(terms.map((term, i) => ({ term, index: i + 1, type: 'normal' as const, data: encoder.encode(`t${term}i${i + 1}`) })));
    node.storage.setHardState({ term: hardTerm, vote: 0, commit });
    this.#start(node);
    return [formatLog(this.node(id))];
  }

  /** Handles node `id`'s Ready per the contract; with `crashBeforePersist`, sends early messages and dies. */
  processReady(id: NodeId, options: { crashBeforePersist: boolean }): string[] {
    const node = this.node(id);
    const raft = node.raft;
    if (raft === null || !raft.hasReady()) return [];
    const rd = raft.ready();
    const out = describeReady(id, rd);
    this.queue.push(...rd.earlyMessages);
    if (options.crashBeforePersist) {
      node.raft = null;
      out.push(`${id} crashed before persisting`);
      return out;
    }
    if (rd.snapshot !== null) {
      node.storage.applySnapshot(rd.snapshot);
      this.#install(node, rd.snapshot.data);
    }
    node.storage.append(rd.entries);
    if (rd.hardState !== null) node.storage.setHardState(rd.hardState);
    this.queue.push(...rd.messages);
    for (const entry of rd.committedEntries) this.#apply(node, entry, out);
    for (const rs of rd.readStates) out.push(`${id} read-state index=${rs.index} ctx=${decoder.decode(rs.context)}`);
    raft.advance(rd);
    return out;
  }

  #apply(node: ScenarioNode, entry: Entry, out: string[]): void {
    // Membership changes and empty entries show in the ready lines; `applied` lists commands only.
    if (entry.type === 'conf-change' || entry.data.length === 0) return;
    const data = decoder.decode(entry.data);
    const requestId = data.split(':')[0]!;
    if (data.includes(':') && node.appliedRequestIds.has(requestId)) {
      out.push(`${node.id} apply ${entry.index}/${entry.term} ${data}: duplicate request ${requestId} ignored`);
      return;
    }
    node.appliedRequestIds.add(requestId);
    node.applied.push(`${entry.index}/${entry.term} ${data}`);
  }

  /** Delivers queued messages (to `targets`, or all); those crossing a partition or to a dead node drop. */
  deliver(targets: NodeId[] | null): string[] {
    const out: string[] = [];
    const pending = this.queue;
    this.queue = [];
    for (const m of pending) {
      if (targets !== null && !targets.includes(m.to)) {
        this.queue.push(m);
        continue;
      }
      const to = this.nodes.get(m.to);
      if (to === undefined || to.raft === null) {
        out.push(`${formatMessage(m)} DROPPED (node down)`);
      } else if (!this.#connected(m.from, m.to)) {
        out.push(`${formatMessage(m)} DROPPED (partition)`);
      } else {
        out.push(formatMessage(m));
        to.raft.step(m);
      }
    }
    return out;
  }

  #connected(a: NodeId, b: NodeId): boolean {
    if (this.#partition === null) return true;
    return this.#partition.some((group) => group.includes(a) && group.includes(b));
  }

  /** Processes readies and delivers messages until nothing moves (bounded). */
  stabilize(ids: NodeId[] | null): string[] {
    const out: string[] = [];
    for (let round = 0; round < 1000; round++) {
      let moved = false;
      for (const id of ids ?? [...this.nodes.keys()]) {
        const lines = this.processReady(id, { crashBeforePersist: false });
        if (lines.length > 0) moved = true;
        out.push(...lines);
      }
      const delivered = this.deliver(ids);
      if (delivered.length > 0) moved = true;
      out.push(...delivered);
      if (!moved) return out;
    }
    throw new Error('stabilize did not converge in 1000 rounds');
  }

  /**
   * Ticks every live node `count` times, stabilizing after each tick. Prints only role changes:
   * heartbeats would drown the story.
   */
  tickAll(count: number): string[] {
    const out: string[] = [];
    for (let tick = 1; tick <= count; tick++) {
      for (const node of this.nodes.values()) node.raft?.tick();
      for (const line of this.stabilize(null)) if (line.includes(' role=')) out.push(`tick ${tick}: ${line.replace(/ (hard|persist|apply)=.*$/, '')}`);
    }
    return out;
  }

  partition(groups: NodeId[][]): void {
    this.#partition = groups;
  }

  heal(): void {
    this.#partition = null;
  }

  crash(id: NodeId): void {
    this.node(id).raft = null;
  }

  restart(id: NodeId): void {
    const node = this.node(id);
    assert(node.raft === null, `node ${id} is running`);
    this.#start(node);
  }

  propose(id: NodeId, data: string): string[] {
    return attempt(() => this.raft(id).propose(encoder.encode(data)), `${id} propose ${data}`);
  }

  proposeConfChange(id: NodeId, change: ConfChange): string[] {
    return attempt(() => this.raft(id).proposeConfChange(change), `${id} propose-conf-change ${formatConfChange(change)}`);
  }

  readIndex(id: NodeId, context: string): string[] {
    return attempt(() => this.raft(id).readIndex(encoder.encode(context)), `${id} read-index ${context}`);
  }
}

function attempt(body: () => void, what: string): string[] {
  try {
    body();
    return [`${what}: ok`];
  } catch (error) {
    const code = (error as { code?: string }).code ?? String(error);
    return [`${what}: ${code}`];
  }
}

/** One line per durable entry term, with the hard state. */
export function formatLog(node: ScenarioNode): string {
  const first = node.storage.firstIndex();
  const last = node.storage.lastIndex();
  const entries = last >= first ? node.storage.entries(first, last + 1, Number.MAX_SAFE_INTEGER) : [];
  const { hardState } = node.storage.initialState();
  const terms = entries.map((e) => `${e.term}`).join(',');
  const snap = first > 1 ? ` snapshot=${first - 1}` : '';
  return `${node.id} log terms=[${terms}]${snap} term=${hardState.term} vote=${hardState.vote} commit=${hardState.commit}`;
}

function describeReady(id: NodeId, rd: Ready): string[] {
  const out: string[] = [];
  const parts: string[] = [];
  if (rd.softState !== null) parts.push(`role=${rd.softState.role} leader=${rd.softState.leader}`);
  if (rd.hardState !== null) parts.push(`hard=${rd.hardState.term}/${rd.hardState.vote}/${rd.hardState.commit}`);
  if (rd.entries.length > 0) parts.push(`persist=[${rd.entries.map(formatEntry).join(' ')}]`);
  if (rd.snapshot !== null) parts.push(`snapshot=${rd.snapshot.metadata.index}/${rd.snapshot.metadata.term}`);
  if (rd.committedEntries.length > 0) parts.push(`apply=[${rd.committedEntries.map(formatEntry).join(' ')}]`);
  if (parts.length > 0) out.push(`${id} ready ${parts.join(' ')}`);
  return out;
}

function formatEntry(entry: Entry): string {
  if (entry.type === 'conf-change') return `${entry.index}/${entry.term}(${formatConfChange(decodeConfChange(entry.data))})`;
  const data = decoder.decode(entry.data);
  return data.length === 0 ? `${entry.index}/${entry.term}` : `${entry.index}/${entry.term}(${data})`;
}

function formatConfChange(change: ConfChange): string {
  return `${change.type} ${change.nodeId}`;
}

/** A message as one line: "1->2 app term=2 log=1/3 commit=3 entries=[...]". */
export function formatMessage(m: Message): string {
  const parts = [`${m.from}->${m.to} ${m.type} term=${m.term}`];
  if (m.type === 'app' || m.type === 'vote' || m.type === 'pre-vote') parts.push(`log=${m.logTerm}/${m.index}`);
  if (m.type === 'app-resp' || m.type === 'read-index-resp') parts.push(`index=${m.index}`);
  if (m.type === 'app' || m.type === 'heartbeat') parts.push(`commit=${m.commit}`);
  if (m.entries.length > 0) parts.push(`entries=[${m.entries.map(formatEntry).join(' ')}]`);
  if (m.reject) parts.push(m.type === 'app-resp' ? `rejected hint=${m.rejectHint}/${m.logTerm}` : 'rejected');
  if (m.snapshot !== null) parts.push(`snapshot=${m.snapshot.metadata.index}/${m.snapshot.metadata.term}`);
  if (m.context.length > 0) parts.push(`ctx=${decoder.decode(m.context)}`);
  return parts.join(' ');
}
