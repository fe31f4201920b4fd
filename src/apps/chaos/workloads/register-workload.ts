/**
 * The register workload: a few keys at a time, each a linearizable register, with a fresh
 * generation of keys every `keyGenerationMs`. Clients get, put and
 * compare-and-set random keys with values unique in the run, so a read names the one write it saw.
 * A cas expects the value this client last observed on the key, so some succeed and some do not.
 */

import { setTimeout as delay } from 'node:timers/promises';
import { assert, SeededRandom, type Random } from '../../../base/index.js';
import type { KvCall, KvResult } from '../../../check/index.js';
import { checkRegister, type RegisterFinalRead } from '../checkers/register-checker.js';
import type { CheckVerdict, HistoryEntry } from '../types.js';
import type { Performed } from './history-recorder.js';
import {
  prefixEnd, retryUntilSuccess, type CallContext, type ClientRun, type KvClient, type Workload,
  type WorkloadClient,
} from './workload.js';

/** Options of `registerWorkload`. */
export interface RegisterWorkloadOptions {
  /** Keys are `${keyPrefix}${index}`; setup deletes everything under the prefix. */
  readonly keyPrefix?: string;
  /** How many registers. Few keys means more contention per key. */
  readonly keyCount?: number;
  /** Seed of each client's choices (mixed with its client id). */
  readonly seed?: number;
  /** Pause after a failed or unknown operation, so a client facing a fault does not spin. */
  readonly failureBackoffMs?: number;
  /**
   * How long the clients use one generation of keys before moving to fresh ones (Jepsen's
   * independent keys). The checker's search grows with the operations and unknowns on one key,
   * so minutes on the same key exhaust any step budget; a fresh generation keeps each key's
   * history short while the run goes on.
   */
  readonly keyGenerationMs?: number;
}

const defaults = Object.freeze({
  keyPrefix: 'chaos/register/',
  keyCount: 5,
  seed: 1,
  failureBackoffMs: 20,
  keyGenerationMs: 10_000,
});

/** A register operation as recorded: the checker's KV call, on one key. */
export type RegisterCall = KvCall & { readonly key: string };

/** Creates the register workload. */
export function registerWorkload(
  options: RegisterWorkloadOptions = {},
): Workload<RegisterFinalRead> {
  const config = Object.freeze({ ...defaults, ...options });
  assert(Number.isSafeInteger(config.keyCount) && config.keyCount > 0, 'keyCount');
  // Every key any client used, so the final read covers each generation.
  const usedKeys = new Set<string>();
  const startedAtMs = performance.now();
  const keyFor = (index: number): string => {
    const generation = Math.floor((performance.now() - startedAtMs) / config.keyGenerationMs);
    const key = `${config.keyPrefix}${generation}/${index}`;
    usedKeys.add(key);
    return key;
  };
  const rangeEnd = prefixEnd(config.keyPrefix);
  return {
    kind: 'register',
    async setup(clients) {
      // Every register starts absent, as the checker's model does.
      await retryUntilSuccess(clients, (client, context) =>
        client.kv.deleteRange({ key: config.keyPrefix, rangeEnd }, context));
    },
    startClient: (run) => runRegisterClient(run, { keyFor, ...config }),
    async final(clients) {
      const values: Record<string, string | null> = {};
      for (const key of usedKeys) {
        values[key] = await retryUntilSuccess(clients, (client, context) =>
          getValue(client, key, context));
      }
      return { values };
    },
    check: (history: readonly HistoryEntry[], finalRead: RegisterFinalRead): CheckVerdict =>
      checkRegister(history, finalRead),
  };
}

interface ClientConfig {
  /** The key of register `index` in the current generation. */
  readonly keyFor: (index: number) => string;
  readonly keyCount: number;
  readonly seed: number;
  readonly failureBackoffMs: number;
}

async function runRegisterClient(run: ClientRun, config: ClientConfig): Promise<void> {
  const random = new SeededRandom(config.seed * 7919 + run.clientId);
  // The value this client last saw on each key: what its next cas on the key expects.
  const lastSeen = new Map<string, string | null>();
  let sequence = 0;
  while (!run.signal.aborted) {
    const key = config.keyFor(random.int(config.keyCount));
    const call = chooseCall(random, `${run.clientId}-${sequence++}`, lastSeen.get(key) ?? null);
    const entry = await run.recorder.perform<RegisterCall, KvResult>(
      {
        workload: 'register', clientId: run.clientId, member: run.client.member,
        call: { ...call, key }, effect: call.kind === 'get' ? 'read' : 'write',
      },
      (context) => performCall(run.client.kv, { key, call }, context),
    );
    if (entry.outcome === 'ok') lastSeen.set(key, observed(call, entry.result!, lastSeen.get(key)));
    else await delay(config.failureBackoffMs);
  }
}

function chooseCall(random: Random, value: string, expected: string | null): KvCall {
  switch (random.int(3)) {
    case 0:
      return { kind: 'get' };
    case 1:
      return { kind: 'put', value };
    default:
      return { kind: 'cas', expected, value };
  }
}

/** What an ok operation tells the client about the key's value. */
function observed(
  call: KvCall,
  result: KvResult,
  previous: string | null | undefined,
): string | null {
  if (result.kind === 'get') return result.value;
  if (call.kind === 'put') return call.value;
  if (call.kind === 'cas' && result.kind === 'cas' && result.ok) return call.value;
  return previous ?? null;
}

async function performCall(
  kv: KvClient,
  operation: { readonly key: string; readonly call: KvCall },
  context: CallContext,
): Promise<Performed<KvResult>> {
  const { key, call } = operation;
  switch (call.kind) {
    case 'get': {
      const range = await kv.range({ key }, context);
      return { outcome: 'ok', result: { kind: 'get', value: range.kvs[0]?.value ?? null } };
    }
    case 'put':
      await kv.put({ key, value: call.value }, context);
      return { outcome: 'ok', result: { kind: 'put' } };
    case 'cas': {
      const compare = call.expected === null
        ? { key, target: 'create' as const, createRevision: 0 }
        : { key, target: 'value' as const, value: call.expected };
      const puts = [{ key, value: call.value }];
      const succeeded = await kv.txn({ compare: [compare], puts }, context);
      // A cas whose compare failed is an answered read, not a failure: the checker uses it.
      return { outcome: 'ok', result: { kind: 'cas', ok: succeeded } };
    }
    case 'delete':
      await kv.deleteRange({ key }, context);
      return { outcome: 'ok', result: { kind: 'delete' } };
  }
}

async function getValue(
  client: WorkloadClient,
  key: string,
  context: CallContext,
): Promise<string | null> {
  const range = await client.kv.range({ key }, context);
  return range.kvs[0]?.value ?? null;
}
