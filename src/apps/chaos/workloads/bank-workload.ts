/**
 * The bank workload: `accountCount` accounts, keys under one prefix holding integer balances that
 * sum to `total`. Clients move random amounts between two accounts with a Txn that compares both
 * accounts' mod_revision as read and then puts both new balances, and read every account with one
 * Range over the prefix (one revision, so a consistent snapshot). Any read whose balances do not
 * sum to `total`, or show a negative balance, proves a lost, torn or duplicated transfer.
 */

import { setTimeout as delay } from 'node:timers/promises';
import { assert, SeededRandom, type Random } from '../../../base/index.js';
import { checkBank, type BankFinalRead } from '../checkers/bank-checker.js';
import type { Performed } from './history-recorder.js';
import {
  deadlineIn, isServiceError, prefixEnd, retryUntilSuccess, type CallContext, type ClientRun,
  type KvClient, type Workload,
} from './workload.js';

/** Options of `bankWorkload`. */
export interface BankWorkloadOptions {
  /** Accounts are `${keyPrefix}${index}`; nothing else may live under the prefix. */
  readonly keyPrefix?: string;
  readonly accountCount?: number;
  /** The sum of all balances, spread evenly at setup. */
  readonly total?: number;
  /** Largest amount one transfer moves. */
  readonly transferAmountMax?: number;
  readonly seed?: number;
  /** Pause after a failed or unknown operation, so a client facing a fault does not spin. */
  readonly failureBackoffMs?: number;
  /** Deadline of the unrecorded read a transfer starts with. */
  readonly readTimeoutMs?: number;
}

const defaults = Object.freeze({
  keyPrefix: 'chaos/bank/',
  accountCount: 5,
  total: 100,
  transferAmountMax: 5,
  seed: 1,
  failureBackoffMs: 20,
  readTimeoutMs: 1_000,
});

/** A bank operation: a transfer, or a read of every account. */
export type BankCall =
  | {
      readonly kind: 'transfer';
      readonly from: string;
      readonly to: string;
      readonly amount: number;
    }
  | { readonly kind: 'read' };

/** A transfer's answer (`succeeded` false: a compare failed, nothing moved), or balances read. */
export type BankResult =
  | { readonly kind: 'transfer'; readonly succeeded: boolean }
  | { readonly kind: 'read'; readonly balances: Readonly<Record<string, number>> };

/** The bank's shape, as its checker needs it. */
export interface BankShape {
  readonly accounts: readonly string[];
  readonly total: number;
}

/** Creates the bank workload. */
export function bankWorkload(options: BankWorkloadOptions = {}): Workload<BankFinalRead> {
  const config = Object.freeze({ ...defaults, ...options });
  assert(Number.isSafeInteger(config.accountCount) && config.accountCount >= 2, 'accountCount');
  assert(Number.isSafeInteger(config.total) && config.total >= 0, 'total');
  assert(Number.isSafeInteger(config.transferAmountMax) && config.transferAmountMax > 0, 'amount');
  const accounts = Array.from({ length: config.accountCount }, (_, i) => `${config.keyPrefix}${i}`);
  const shape: BankShape = Object.freeze({ accounts, total: config.total });
  const rangeEnd = prefixEnd(config.keyPrefix);
  return {
    kind: 'bank',
    async setup(clients) {
      await retryUntilSuccess(clients, (client, context) =>
        client.kv.deleteRange({ key: config.keyPrefix, rangeEnd }, context));
      const puts = initialBalances(shape)
        .map(([key, balance]) => ({ key, value: String(balance) }));
      // Atomic and repeatable: no transfer runs before setup returns.
      await retryUntilSuccess(clients, (client, context) =>
        client.kv.txn({ compare: [], puts }, context));
    },
    startClient: (run) => runBankClient(run, { ...config, accounts, rangeEnd }),
    async final(clients) {
      const balances = await retryUntilSuccess(clients, (client, context) =>
        readBalances(client.kv, { key: config.keyPrefix, rangeEnd }, context));
      return { balances };
    },
    check: (history, finalRead) => checkBank(history, finalRead, shape),
  };
}

/** `total` spread as evenly as integers allow; the first accounts take the remainder. */
export function initialBalances(shape: BankShape): [string, number][] {
  const count = shape.accounts.length;
  const share = Math.floor(shape.total / count);
  const remainder = shape.total - share * count;
  return shape.accounts.map((key, index) => [key, share + (index < remainder ? 1 : 0)]);
}

interface ClientConfig {
  readonly accounts: readonly string[];
  readonly keyPrefix: string;
  readonly rangeEnd: string;
  readonly transferAmountMax: number;
  readonly seed: number;
  readonly failureBackoffMs: number;
  readonly readTimeoutMs: number;
}

async function runBankClient(run: ClientRun, config: ClientConfig): Promise<void> {
  const random = new SeededRandom(config.seed * 7919 + run.clientId);
  const base = { workload: 'bank' as const, clientId: run.clientId, member: run.client.member };
  const range = { key: config.keyPrefix, rangeEnd: config.rangeEnd };
  while (!run.signal.aborted) {
    let outcome: 'ok' | 'failed' | 'unknown' | 'skipped';
    if (random.chance(0.5)) {
      const entry = await run.recorder.perform<BankCall, BankResult>(
        { ...base, call: { kind: 'read' }, effect: 'read' },
        async (context) => {
          const balances = await readBalances(run.client.kv, range, context);
          return { outcome: 'ok', result: { kind: 'read', balances } };
        },
      );
      outcome = entry.outcome;
    } else {
      outcome = await transfer(run, config, random);
    }
    if (outcome !== 'ok') await delay(config.failureBackoffMs);
  }
}

/**
 * Reads both accounts (unrecorded: it changes nothing), then records the Txn that moves the
 * amount if neither account changed since. Skips when the read fails or `from` cannot pay.
 */
async function transfer(
  run: ClientRun,
  config: ClientConfig,
  random: Random,
): Promise<'ok' | 'failed' | 'unknown' | 'skipped'> {
  const fromIndex = random.int(config.accounts.length);
  const toIndex = (fromIndex + 1 + random.int(config.accounts.length - 1)) % config.accounts.length;
  const from = config.accounts[fromIndex]!;
  const to = config.accounts[toIndex]!;
  const amount = 1 + random.int(config.transferAmountMax);
  assert(from !== to, 'a transfer moves money between two accounts');
  let snapshot;
  try {
    snapshot = await run.client.kv.range({ key: config.keyPrefix, rangeEnd: config.rangeEnd },
      deadlineIn(config.readTimeoutMs));
  } catch (error) {
    if (!isServiceError(error)) throw error;
    return 'skipped';
  }
  const fromKv = snapshot.kvs.find((kv) => kv.key === from);
  const toKv = snapshot.kvs.find((kv) => kv.key === to);
  if (fromKv === undefined || toKv === undefined) return 'skipped';
  const fromBalance = parseBalance(fromKv.value);
  if (fromBalance < amount) return 'skipped';
  const request = {
    compare: [
      { key: from, target: 'mod' as const, modRevision: fromKv.modRevision },
      { key: to, target: 'mod' as const, modRevision: toKv.modRevision },
    ],
    puts: [
      { key: from, value: String(fromBalance - amount) },
      { key: to, value: String(parseBalance(toKv.value) + amount) },
    ],
  };
  const entry = await run.recorder.perform<BankCall, BankResult>(
    {
      workload: 'bank', clientId: run.clientId, member: run.client.member,
      call: { kind: 'transfer', from, to, amount }, effect: 'write',
    },
    async (context): Promise<Performed<BankResult>> => {
      const succeeded = await run.client.kv.txn(request, context);
      const result = { kind: 'transfer' as const, succeeded };
      return succeeded
        ? { outcome: 'ok', result }
        : { outcome: 'failed', result, error: 'compare failed' };
    },
  );
  return entry.outcome;
}

/** One Range over the accounts: every balance at one revision. */
async function readBalances(
  kv: KvClient,
  range: { readonly key: string; readonly rangeEnd: string },
  context: CallContext,
): Promise<Record<string, number>> {
  const snapshot = await kv.range(range, context);
  const balances: Record<string, number> = {};
  for (const kv of snapshot.kvs) balances[kv.key] = parseBalance(kv.value);
  return balances;
}

/** A balance as stored; NaN for a value that is not an integer (the checker reports it). */
function parseBalance(text: string): number {
  return /^-?\d+$/.test(text) ? Number(text) : Number.NaN;
}
