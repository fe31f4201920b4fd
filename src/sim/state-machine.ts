/**
 * The replicated application: a map of key → string, and the encoding of client commands as log
 * entry bytes. Each command carries a unique operation id so the node that received it can answer
 * its client when the node itself applies the entry. Liveness probes are entries the map ignores.
 *
 * The network may duplicate a forwarded proposal, so one command can be committed twice. Like the
 * client sessions of thesis §6.3, the state machine remembers the highest operation id applied per
 * client and skips any command at or below it. A client runs one operation at a time with rising
 * ids, so a skipped command is either a duplicate or one its client gave up on before issuing a
 * newer one (an indeterminate operation that never takes effect).
 */

import { assert, unreachable } from '../base/index.js';
import type { KvCall, KvResult } from '../check/index.js';
import { hashString } from './trace.js';

/** A client operation as it travels through the log. */
export interface KvCommand {
  readonly kind: 'kv';
  /** Unique across the run; never reused, so no deduplication is needed. */
  readonly opId: number;
  readonly clientId: number;
  readonly key: string;
  readonly call: KvCall;
}

/** A liveness probe: a fresh proposal that must commit everywhere after the faults heal. */
export interface ProbeCommand {
  readonly kind: 'probe';
  readonly probeId: number;
}

/** What a normal entry's bytes decode to. */
export type Command = KvCommand | ProbeCommand;

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** The entry bytes of `command`. */
export function encodeCommand(command: Command): Uint8Array {
  return encoder.encode(JSON.stringify(command));
}

/** Decodes entry bytes written by `encodeCommand`; the leader's empty entry decodes to null. */
export function decodeCommand(data: Uint8Array): Command | null {
  if (data.length === 0) return null;
  const command = JSON.parse(decoder.decode(data)) as Command;
  // Only this simulator writes entries, so a malformed one is a bug (or corruption by the core).
  assert(command.kind === 'kv' || command.kind === 'probe', `malformed command entry`);
  return command;
}

/** What a snapshot's bytes hold. */
interface SnapshotImage {
  readonly values: [string, string][];
  readonly sessions: [number, number][];
}

/** The key-value state machine of one node. Volatile: rebuilt from a snapshot on restart. */
export class KvStateMachine {
  readonly #values = new Map<string, string>();
  /** Client id → the highest operation id applied for it. */
  readonly #sessions = new Map<number, number>();

  /** Applies `command` and returns what its client is told; null when skipped (see above). */
  apply(command: KvCommand): KvResult | null {
    const { key, call, clientId, opId } = command;
    if (opId <= (this.#sessions.get(clientId) ?? 0)) return null;
    this.#sessions.set(clientId, opId);
    const current = this.#values.get(key) ?? null;
    switch (call.kind) {
      case 'get':
        return { kind: 'get', value: current };
      case 'put':
        this.#values.set(key, call.value);
        return { kind: 'put' };
      case 'delete':
        this.#values.delete(key);
        return { kind: 'delete' };
      case 'cas': {
        const ok = current === call.expected;
        if (ok) this.#values.set(key, call.value);
        return { kind: 'cas', ok };
      }
      default:
        return unreachable(call, 'unknown kv call');
    }
  }

  /** The current value of `key`, for reads served by ReadIndex or lease. */
  get(key: string): string | null {
    return this.#values.get(key) ?? null;
  }

  /** The whole state as snapshot bytes, sorted so equal states give equal bytes. */
  snapshotData(): Uint8Array {
    const image: SnapshotImage = { values: this.#sortedPairs(), sessions: this.#sortedSessions() };
    return encoder.encode(JSON.stringify(image));
  }

  /** A state machine holding what `data` (from `snapshotData`, or empty) describes. */
  static restore(data: Uint8Array): KvStateMachine {
    const machine = new KvStateMachine();
    if (data.length === 0) return machine;
    const image = JSON.parse(decoder.decode(data)) as SnapshotImage;
    assert(Array.isArray(image.values) && Array.isArray(image.sessions), 'malformed snapshot data');
    for (const [key, value] of image.values) machine.#values.set(key, value);
    for (const [clientId, opId] of image.sessions) machine.#sessions.set(clientId, opId);
    return machine;
  }

  /** A hash of the whole state; equal states hash equal. Cheap: a handful of keys and clients. */
  stateHash(): number {
    let hash = hashString('kv');
    for (const [key, value] of this.#sortedPairs())
      hash = hashString(`\u0000${key}\u0001${value}`, hash);
    for (const [clientId, opId] of this.#sortedSessions())
      hash = hashString(`\u0002${clientId}\u0003${opId}`, hash);
    return hash;
  }

  #sortedSessions(): [number, number][] {
    return [...this.#sessions.entries()].sort(([left], [right]) => left - right);
  }

  #sortedPairs(): [string, string][] {
    return [...this.#values.entries()].sort(([left], [right]) =>
      left < right ? -1 : left > right ? 1 : 0,
    );
  }
}
