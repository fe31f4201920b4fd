/**
 * Simulated clients and the history they record. Each client runs one operation at a time: it picks
 * a node (the one it believes leads, usually), hands it a put, get, cas or delete on one of a few
 * keys, and waits. The node answers when it applies the operation itself (or, for a ReadIndex get,
 * when its read point is applied). A client that hears nothing within its timeout, or whose node
 * crashes, gives up: the operation stays in the history without a response (indeterminate), and
 * the client's next operation is a new one with a new id, never a retry.
 *
 * An operation the core refuses outright (no leader, proposal dropped, read queue full) never
 * entered the log, so it is left out of the history as if never sent.
 */

import type { SeededRandom } from '../base/index.js';
import type { KvCall, KvResult, Operation, TimedResponse } from '../check/index.js';
import type { NodeId } from '../raft/index.js';
import type { SimNode } from './node.js';
import type { PendingOperation } from './pending-operations.js';
import type { WorkloadSettings } from './scenario.js';
import type { SimStats } from './stats.js';
import type { Trace } from './trace.js';

/** What clients can see of the cluster: the nodes they can connect to. */
export interface ClientTarget {
  /** Running nodes, in id order. */
  runningNodes(): readonly SimNode[];
}

/** One recorded operation; the response is filled in when it arrives. */
interface Recorded {
  readonly clientId: number;
  readonly key: string;
  readonly call: KvCall;
  readonly invokedAt: number;
  response: TimedResponse<KvResult> | null;
  /**
   * When and with what result some node first applied it (it took effect, whether or not its
   * client heard); null if no node did. ReadIndex gets are never applied.
   */
  applied: TimedResponse<KvResult> | null;
}

interface Client {
  readonly id: number;
  /** The operation in progress, with the step at which the client gives up on it. */
  current: { readonly opId: number; readonly deadlineStep: number } | null;
  nextStep: number;
  leaderGuess: NodeId;
  sequence: number;
  /** The last value this client saw per key, to make cas expectations plausible. */
  readonly seen: Map<string, string | null>;
}

/** The clients of one run. */
export class Workload {
  readonly #settings: WorkloadSettings;
  readonly #random: SeededRandom;
  readonly #stats: SimStats;
  readonly #trace: Trace;
  readonly #clients: Client[] = [];
  readonly #history: Recorded[] = [];
  readonly #byOpId = new Map<number, Recorded>();
  /** Op id → its record and client, while the client waits. */
  readonly #outstanding = new Map<number, { readonly record: Recorded; readonly client: Client }>();
  #nextOpId = 1;
  /** History time: one tick per invocation or response, so real-time order is exact. */
  #clock = 0;
  #step = 0;

  constructor(options: {
    readonly settings: WorkloadSettings;
    readonly random: SeededRandom;
    readonly stats: SimStats;
    readonly trace: Trace;
  }) {
    this.#settings = options.settings;
    this.#random = options.random;
    this.#stats = options.stats;
    this.#trace = options.trace;
    for (let id = 1; id <= this.#settings.clientCount; id++) {
      this.#clients.push({
        id,
        current: null,
        nextStep: this.#random.int(10),
        leaderGuess: 0,
        sequence: 0,
        seen: new Map(),
      });
    }
  }

  /** Expires timed-out operations and issues new ones. */
  tick(step: number, target: ClientTarget): void {
    this.#step = step;
    for (const client of this.#clients) {
      if (client.current !== null) {
        if (step >= client.current.deadlineStep) this.#giveUp(client, 'timeout');
        continue;
      }
      if (step >= client.nextStep) this.#issue(client, target);
    }
  }

  /** A node answers `operation`; ignored if its client already gave up. */
  respond(operation: PendingOperation, result: KvResult, from: SimNode): void {
    const entry = this.#outstanding.get(operation.command.opId);
    if (entry === undefined) return;
    const { record, client } = entry;
    this.#outstanding.delete(operation.command.opId);
    record.response = { respondedAt: ++this.#clock, result };
    if (result.kind === 'get') client.seen.set(record.key, result.value);
    client.current = null;
    client.nextStep = this.#step + this.#thinkSteps();
    client.leaderGuess = from.leader;
    this.#stats.operationsAnswered++;
    this.#trace.event('answer', [client.id, operation.command.opId], () => {
      const answer = `answered by n${from.id}: ${JSON.stringify(result)}`;
      return `client ${client.id} op ${operation.command.opId} ${answer}`;
    });
  }

  /** Their node went down: these clients will never hear back. */
  abandon(operations: readonly PendingOperation[]): void {
    for (const operation of operations) {
      const entry = this.#outstanding.get(operation.command.opId);
      if (entry !== undefined) this.#giveUp(entry.client, 'node down');
    }
  }

  /** Gives up on every operation still waiting (the run is over). */
  finish(): void {
    for (const client of this.#clients)
      if (client.current !== null) this.#giveUp(client, 'run ended');
  }

  /** The first apply anywhere of operation `opId`, with its result. */
  markApplied(opId: number, result: KvResult): void {
    const record = this.#byOpId.get(opId);
    if (record !== undefined && record.applied === null) {
      record.applied = { respondedAt: ++this.#clock, result };
    }
  }

  /**
   * The history the clients observed, in invocation order. An operation its client never heard
   * back about and no node ever applied is left out: every response comes from a state machine, so
   * none reflects it, and leaving it out is the same as letting it take effect after the run
   * (which the checker would otherwise have to discover by search, at a cost exponential in the
   * number of such operations).
   */
  history(): Operation[] {
    const history: Operation[] = [];
    for (const { applied, ...operation } of this.#history) {
      if (operation.response !== null || applied !== null) history.push(operation);
    }
    return history;
  }

  /**
   * The observed history with every applied but unanswered operation completed at its first
   * apply, with the result it had there. In correct Raft an operation takes effect when it
   * commits, before any node applies it, so this history is linearizable too; it only has fewer
   * open ends, which keeps the search small. Its linearization is one of the observed history.
   */
  resolvedHistory(): Operation[] {
    const history: Operation[] = [];
    for (const { applied, ...operation } of this.#history) {
      if (operation.response !== null) history.push(operation);
      else if (applied !== null) history.push({ ...operation, response: applied });
    }
    return history;
  }

  #giveUp(client: Client, why: string): void {
    const current = client.current!;
    this.#outstanding.delete(current.opId);
    client.current = null;
    client.nextStep = this.#step + this.#thinkSteps();
    client.leaderGuess = 0;
    this.#stats.operationsIndeterminate++;
    this.#trace.event(
      'give-up',
      [client.id, current.opId],
      () => `client ${client.id} op ${current.opId} indeterminate (${why})`,
    );
  }

  #issue(client: Client, target: ClientTarget): void {
    const nodes = target.runningNodes();
    const node = this.#chooseNode(client, nodes);
    if (node === null) {
      client.nextStep = this.#step + 1 + this.#thinkSteps();
      return;
    }
    const key = this.#settings.keys[this.#random.int(this.#settings.keys.length)]!;
    const call = this.#chooseCall(client, key);
    const opId = this.#nextOpId++;
    const operation: PendingOperation = {
      command: { kind: 'kv', opId, clientId: client.id, key, call },
      readIndex: call.kind === 'get' && this.#random.chance(this.#settings.readIndexShare),
    };
    // Record the invocation first: the node may answer before submit returns (a lease read).
    const record: Recorded = {
      clientId: client.id,
      key,
      call,
      invokedAt: ++this.#clock,
      response: null,
      applied: null,
    };
    this.#outstanding.set(opId, { record, client });
    client.current = { opId, deadlineStep: this.#step + this.#settings.timeoutSteps };
    if (!node.submit(operation)) {
      this.#outstanding.delete(opId);
      client.current = null;
      client.nextStep = this.#step + 1 + this.#thinkSteps();
      client.leaderGuess = node.leader;
      this.#stats.operationsRefused++;
      return;
    }
    this.#history.push(record);
    this.#byOpId.set(opId, record);
    this.#stats.operationsInvoked++;
    if (call.kind === 'put' || call.kind === 'cas') client.seen.set(key, call.value);
    this.#trace.event('invoke', [client.id, opId, node.id], () => {
      const how = operation.readIndex ? ' (read index)' : '';
      return `client ${client.id} op ${opId} ${describeCall(key, call)}${how} → n${node.id}`;
    });
  }

  #chooseNode(client: Client, nodes: readonly SimNode[]): SimNode | null {
    if (nodes.length === 0) return null;
    const guessed = nodes.find((node) => node.id === client.leaderGuess);
    if (guessed !== undefined && this.#random.chance(0.8)) return guessed;
    return nodes[this.#random.int(nodes.length)]!;
  }

  #chooseCall(client: Client, key: string): KvCall {
    const roll = this.#random.float();
    const value = `${client.id}.${++client.sequence}`;
    if (roll < 0.35) return { kind: 'get' };
    if (roll < 0.65) return { kind: 'put', value };
    if (roll < 0.9) {
      const seen = client.seen.get(key);
      const expected = seen === undefined || this.#random.chance(0.2) ? null : seen;
      return { kind: 'cas', expected, value };
    }
    return { kind: 'delete' };
  }

  #thinkSteps(): number {
    return this.#random.int(this.#settings.thinkStepsMax + 1);
  }
}

function describeCall(key: string, call: KvCall): string {
  switch (call.kind) {
    case 'get':
      return `get(${key})`;
    case 'put':
      return `put(${key}, ${call.value})`;
    case 'delete':
      return `delete(${key})`;
    case 'cas':
      return `cas(${key}, ${call.expected ?? 'absent'} → ${call.value})`;
  }
}
