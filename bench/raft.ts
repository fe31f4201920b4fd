/**
 * The consensus core's throughput, without disks or sockets: 3- and 5-node clusters in one process
 * over a zero-latency in-memory network, each node driven exactly as the Ready contract says (persist
 * to MemoryStorage, send, apply, advance). A client keeps a window of proposals outstanding on the
 * leader; entries are counted when the leader applies them. Reports entries per second and
 * nanoseconds per entry for 64-byte and 1 KiB entries.
 *
 * What it measures is the cost of the Raft logic itself (batching, flow control, commit, apply
 * bookkeeping) across all replicas on one thread: the ceiling the core puts on a real node.
 */

import { SeededRandom } from '../src/base/index.js';
import { MemoryStorage, RawNode, type Message } from '../src/raft/index.js';

interface Result {
  nodes: number;
  entry_bytes: number;
  entries_per_sec: number;
  ns_per_entry: number;
}

/** Proposals the client keeps outstanding (uncommitted) on the leader. */
const windowEntriesMax = 4096;
/** Proposals handed to the leader between two Ready cycles (one append message carries them). */
const proposalsPerRound = 512;
/** Entries kept in each in-memory log before compaction, so memory stays flat over long runs. */
const logEntriesRetained = 20_000;

class Cluster {
  readonly nodes = new Map<number, RawNode>();
  readonly storages = new Map<number, MemoryStorage>();
  readonly applied = new Map<number, number>();
  #inbox: Message[] = [];

  constructor(size: number) {
    const voters = Array.from({ length: size }, (_, i) => i + 1);
    const random = new SeededRandom(42);
    for (const id of voters) {
      const storage = MemoryStorage.bootstrap({ voters, learners: [] });
      this.storages.set(id, storage);
      this.applied.set(id, 0);
      this.nodes.set(id, new RawNode({ id, storage, random: random.fork(), messageBytesMax: 4 * 1024 * 1024 }));
    }
  }

  /** Runs Ready cycles and delivers messages until nothing moves. */
  pump(): void {
    for (;;) {
      let moved = false;
      for (const [id, node] of this.nodes) {
        if (!node.hasReady()) continue;
        moved = true;
        const rd = node.ready();
        for (const m of rd.earlyMessages) this.#inbox.push(m);
        const storage = this.storages.get(id)!;
        if (rd.snapshot !== null) storage.applySnapshot(rd.snapshot);
        storage.append(rd.entries);
        if (rd.hardState !== null) storage.setHardState(rd.hardState);
        for (const m of rd.messages) this.#inbox.push(m);
        if (rd.committedEntries.length > 0) {
          const last = rd.committedEntries[rd.committedEntries.length - 1]!.index;
          this.applied.set(id, last);
          this.#compact(storage, last);
        }
        node.advance(rd);
      }
      if (this.#inbox.length > 0) {
        moved = true;
        const inbox = this.#inbox;
        this.#inbox = [];
        for (const m of inbox) this.nodes.get(m.to)!.step(m);
      }
      if (!moved) return;
    }
  }

  #compact(storage: MemoryStorage, applied: number): void {
    if (applied - storage.firstIndex() < 2 * logEntriesRetained) return;
    const index = applied - logEntriesRetained;
    storage.createSnapshot(index, { voters: [...this.nodes.keys()], learners: [] }, new Uint8Array());
    storage.compact(index);
  }

  electLeader(): RawNode {
    const first = this.nodes.get(1)!;
    first.campaign();
    this.pump();
    if (first.status().role !== 'leader') throw new Error('bench: node 1 failed to become leader');
    return first;
  }
}

function measure(nodes: number, entryBytes: number, entries: number): Result {
  const cluster = new Cluster(nodes);
  const leader = cluster.electLeader();
  const payload = new Uint8Array(entryBytes).fill(7);
  const start = cluster.applied.get(1)!;
  const target = start + entries;
  let proposed = start;
  const began = process.hrtime.bigint();
  while (cluster.applied.get(1)! < target) {
    const room = Math.min(windowEntriesMax - (proposed - cluster.applied.get(1)!), target - proposed, proposalsPerRound);
    for (let i = 0; i < room; i++) leader.propose(payload);
    proposed += Math.max(room, 0);
    cluster.pump();
  }
  const elapsedNs = Number(process.hrtime.bigint() - began);
  return {
    nodes,
    entry_bytes: entryBytes,
    entries_per_sec: Math.round((entries * 1e9) / elapsedNs),
    ns_per_entry: Math.round(elapsedNs / entries),
  };
}

/** Runs the suite; with `json`, the last line is `{"results":[…]}`. */
export function runRaftBench(options: { json: boolean; args: string[] }): void {
  const results: Result[] = [];
  for (const nodes of [3, 5]) {
    for (const entryBytes of [64, 1024]) {
      const entries = entryBytes === 64 ? 400_000 : 200_000;
      measure(nodes, entryBytes, Math.floor(entries / 10)); // Warm-up: let the JIT settle.
      const result = measure(nodes, entryBytes, entries);
      results.push(result);
      if (!options.json || process.stdout.isTTY) {
        console.log(
          `raft ${nodes} nodes, ${String(entryBytes).padStart(4)}-byte entries: ` +
            `${result.entries_per_sec.toLocaleString('en-US')} entries/s, ${result.ns_per_entry} ns/entry`,
        );
      }
    }
  }
  if (options.json) console.log(JSON.stringify({ results }));
}
