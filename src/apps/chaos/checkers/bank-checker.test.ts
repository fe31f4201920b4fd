import { describe, expect, it } from 'vitest';
import type { HistoryEntry, OutcomeKind } from '../types.js';
import type { BankCall, BankResult, BankShape } from '../workloads/bank-workload.js';
import { initialBalances } from '../workloads/bank-workload.js';
import { checkBank } from './bank-checker.js';

const shape: BankShape = { accounts: ['acct/0', 'acct/1', 'acct/2'], total: 30 };

function entry(call: BankCall, outcome: OutcomeKind, result?: BankResult): HistoryEntry {
  const base = {
    workload: 'bank' as const, clientId: 1, member: 'n1', call,
    invokedAtMs: 10, completedAtMs: 20, outcome,
  };
  return result === undefined ? base : { ...base, result };
}

function read(balances: Record<string, number>): HistoryEntry {
  return entry({ kind: 'read' }, 'ok', { kind: 'read', balances });
}

const transfer: BankCall = { kind: 'transfer', from: 'acct/0', to: 'acct/1', amount: 3 };

describe('checkBank', () => {
  it('spreads the total evenly at setup', () => {
    expect(initialBalances({ accounts: ['x', 'y', 'z'], total: 11 }))
      .toEqual([['x', 4], ['y', 4], ['z', 3]]);
  });

  it('passes reads that each sum to the total', () => {
    const history = [
      read({ 'acct/0': 10, 'acct/1': 10, 'acct/2': 10 }),
      entry(transfer, 'ok', { kind: 'transfer', succeeded: true }),
      entry(transfer, 'failed', { kind: 'transfer', succeeded: false }),
      entry(transfer, 'unknown'),
      read({ 'acct/0': 7, 'acct/1': 13, 'acct/2': 10 }),
      // A failed read is ignored.
      entry({ kind: 'read' }, 'failed'),
    ];
    const finalRead = { balances: { 'acct/0': 4, 'acct/1': 16, 'acct/2': 10 } };
    const verdict = checkBank(history, finalRead, shape);
    expect(verdict.violations).toEqual([]);
    expect(verdict.stats).toMatchObject({ readsChecked: 2, transfersSucceeded: 1, unknown: 1 });
  });

  it('catches a wrong sum, a negative balance, a missing account and a bad final read', () => {
    const history = [
      read({ 'acct/0': 7, 'acct/1': 10, 'acct/2': 10 }),
      read({ 'acct/0': -3, 'acct/1': 23, 'acct/2': 10 }),
      read({ 'acct/0': 15, 'acct/1': 15 }),
    ];
    const finalRead = { balances: { 'acct/0': 10, 'acct/1': 10, 'acct/2': 11 } };
    const verdict = checkBank(history, finalRead, shape);
    expect(verdict.valid).toBe(false);
    expect(verdict.stats['readsInvalid']).toBe(3);
    expect(verdict.violations).toHaveLength(4);
    expect(verdict.violations[0]).toContain('balances sum to 27, expected 30');
    expect(verdict.violations[1]).toContain('negative: acct/0=-3');
    expect(verdict.violations[2]).toContain('accounts missing: acct/2');
    expect(verdict.violations[3]).toContain('final read: balances sum to 31');
  });
});
