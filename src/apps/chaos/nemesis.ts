/**
 * The nemesis: injects one fault at a time on a seeded schedule — a quiet period, a fault held for
 * a while, then its heal — and records each as a `FaultRecord`. Process faults go through the
 * cluster, link faults through the peer network. The same seed gives the same sequence of fault
 * kinds, targets and durations (what the processes do in between is not deterministic).
 */

import { SeededRandom } from '../../base/index.js';
import type { ChaosCluster } from './cluster/chaos-cluster.js';
import type { FaultKind, FaultRecord } from './types.js';

/** The link faults the nemesis needs from the peer network. */
export interface NetworkFaults {
  cut(from: string, to: string): void;
  partition(groups: readonly (readonly string[])[]): void;
  setLatency(options: { meanMs: number; jitterMs: number } | null): void;
  resetAll(): void;
  heal(): void;
}

/** Every fault kind the nemesis knows. */
export const faultKinds: readonly FaultKind[] = Object.freeze([
  'partition', 'partition-one-way', 'latency', 'reset', 'kill', 'kill-leader', 'kill-majority', 'pause',
  'lose-unsynced', 'member-replace',
]);

/** How long the membership fault keeps asking for its MemberRemove or MemberAdd. */
const membershipChangeTimeoutMs = 15_000;

/** Options of `Nemesis`. */
export interface NemesisOptions {
  readonly cluster: ChaosCluster;
  readonly network: NetworkFaults;
  readonly kinds: readonly FaultKind[];
  readonly seed: number;
  /** Milliseconds since the run started (the history's clock). */
  readonly nowMs: () => number;
  /** Quiet time between faults, ms: drawn from [min, max]. */
  readonly quietMs?: { readonly min: number; readonly max: number };
  /** How long a fault is held, ms: drawn from [min, max]. Pauses outlast the election timeout. */
  readonly holdMs?: { readonly min: number; readonly max: number };
}

/** A fault being held, and how to heal it (a heal may add a note to the record). */
interface ActiveFault {
  readonly kind: FaultKind;
  readonly detail: string;
  readonly heal: () => Promise<string | void>;
}

/** Runs faults until aborted, then heals whatever is active. */
export class Nemesis {
  readonly #options: NemesisOptions;
  readonly #random: SeededRandom;
  readonly #records: FaultRecord[] = [];

  constructor(options: NemesisOptions) {
    this.#options = options;
    this.#random = new SeededRandom(options.seed);
  }

  /** The faults injected so far. */
  get records(): readonly FaultRecord[] {
    return this.#records;
  }

  /** Injects faults until `signal` aborts; resolves once the last fault is healed. */
  async run(signal: AbortSignal): Promise<void> {
    if (this.#options.kinds.length === 0) return; // A fault-free run: the control experiment.
    const quiet = this.#options.quietMs ?? { min: 1_000, max: 3_000 };
    const electionMs = this.#options.cluster.timing.electionTimeoutMs;
    const hold = this.#options.holdMs ?? { min: 2 * electionMs, max: 6 * electionMs };
    while (!signal.aborted) {
      await delay(this.#between(quiet), signal);
      if (signal.aborted) break;
      const kind = this.#options.kinds[this.#random.int(this.#options.kinds.length)]!;
      const startedAtMs = this.#options.nowMs();
      const fault = await this.#inject(kind);
      const index = this.#records.push({ kind, startedAtMs, healedAtMs: null, detail: fault.detail }) - 1;
      if (kind !== 'reset') await delay(this.#between(hold), signal);
      const note = await fault.heal();
      const detail = typeof note === 'string' ? `${fault.detail}; ${note}` : fault.detail;
      this.#records[index] = { ...this.#records[index]!, detail, healedAtMs: this.#options.nowMs() };
    }
  }

  #between(range: { min: number; max: number }): number {
    return range.min + this.#random.int(range.max - range.min + 1);
  }

  #names(): string[] {
    return this.#options.cluster.members.map((member) => member.name);
  }

  #pick(names: readonly string[]): string {
    return names[this.#random.int(names.length)]!;
  }

  #shuffled(): string[] {
    const names = this.#names();
    for (let i = names.length - 1; i > 0; i--) {
      const j = this.#random.int(i + 1);
      [names[i], names[j]] = [names[j]!, names[i]!];
    }
    return names;
  }

  async #inject(kind: FaultKind): Promise<ActiveFault> {
    const { cluster, network } = this.#options;
    switch (kind) {
      case 'partition': {
        const names = this.#shuffled();
        const minority = names.slice(0, Math.floor(names.length / 2));
        const majority = names.slice(minority.length);
        network.partition([minority, majority]);
        return { kind, detail: `${minority.join(',')} | ${majority.join(',')}`, heal: async () => network.heal() };
      }
      case 'partition-one-way': {
        const isolated = this.#pick(this.#names());
        for (const other of this.#names()) if (other !== isolated) network.cut(isolated, other);
        return { kind, detail: `${isolated} cannot send`, heal: async () => network.heal() };
      }
      case 'latency':
        network.setLatency({ meanMs: 50, jitterMs: 50 });
        return { kind, detail: '50±50 ms per chunk', heal: async () => network.heal() };
      case 'reset':
        network.resetAll();
        return { kind, detail: 'every peer connection', heal: async () => undefined };
      case 'kill':
      case 'kill-leader': {
        const leader = kind === 'kill-leader' ? await cluster.agreedLeader() : null;
        const victim = leader ?? this.#pick(this.#names());
        await cluster.kill(victim);
        return { kind, detail: victim, heal: async () => cluster.restart(victim) };
      }
      case 'kill-majority': {
        const victims = this.#shuffled().slice(0, Math.floor(this.#names().length / 2) + 1);
        await Promise.all(victims.map((name) => cluster.kill(name)));
        return {
          kind, detail: victims.join(','),
          heal: async () => {
            for (const name of victims) cluster.restart(name);
          },
        };
      }
      case 'lose-unsynced': {
        const victim = this.#pick(this.#names());
        await cluster.loseUnsynced(victim);
        return { kind, detail: victim, heal: async () => cluster.restart(victim) };
      }
      case 'member-replace': {
        // The leader a third of the time: removing the leader must be safe too.
        const victim = (this.#random.int(3) === 0 ? await cluster.agreedLeader() : null) ?? this.#pick(this.#names());
        let removed: string;
        try {
          removed = await cluster.removeMember(victim, membershipChangeTimeoutMs);
        } catch (error) {
          // Refused or unanswered (no leader meanwhile): nothing changed, nothing to heal.
          return { kind, detail: `${victim}: MemberRemove failed (${describe(error)})`, heal: async () => undefined };
        }
        return {
          kind, detail: `${victim} (id ${removed}) removed and wiped`,
          heal: () => cluster.addMember(victim, membershipChangeTimeoutMs).then(
            (id) => `added back as ${id}`,
            // It stays out; the other members carry on, as after an operator's failed add.
            (error: unknown) => `MemberAdd failed (${describe(error)}): left out`),
        };
      }
      case 'pause': {
        const victim = (this.#random.int(2) === 0 ? await cluster.agreedLeader() : null) ?? this.#pick(this.#names());
        await cluster.pause(victim);
        return { kind, detail: victim, heal: () => cluster.resume(victim) };
      }
    }
  }
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message.split('\n')[0]!.slice(0, 160) : String(error);
}

/** Resolves after `ms`, or at once when `signal` aborts. */
function delay(ms: number, signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done(): void {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}
