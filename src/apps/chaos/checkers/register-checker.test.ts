import { describe, expect, it } from 'vitest';
import type { KvCall, KvResult } from '../../../check/index.js';
import type { HistoryEntry, OutcomeKind } from '../types.js';
import { checkRegister } from './register-checker.js';

type Entry = HistoryEntry<KvCall & { readonly key: string }, KvResult>;

/** `at` is [invoked, completed] in ms; `result` is omitted for failed and unknown operations. */
function op(
  clientId: number,
  at: readonly [number, number],
  call: KvCall & { key: string },
  outcome: OutcomeKind,
  result?: KvResult,
): Entry {
  const base = {
    workload: 'register' as const, clientId, member: 'n1', call,
    invokedAtMs: at[0], completedAtMs: at[1], outcome,
  };
  return result === undefined ? { ...base, error: 'DEADLINE_EXCEEDED' } : { ...base, result };
}

describe('checkRegister', () => {
  it('passes a linearizable history with an unknown write and a missed cas', () => {
    const history = [
      op(1, [0, 10], { key: 'a', kind: 'put', value: '1' }, 'ok', { kind: 'put' }),
      op(2, [5, 1000], { key: 'a', kind: 'put', value: '2' }, 'unknown'),
      op(3, [20, 30], { key: 'a', kind: 'get' }, 'ok', { kind: 'get', value: '1' }),
      op(3, [40, 50], { key: 'a', kind: 'get' }, 'ok', { kind: 'get', value: '2' }),
      op(1, [60, 70], { key: 'a', kind: 'cas', expected: '1', value: '3' }, 'ok',
        { kind: 'cas', ok: false }),
      op(1, [80, 90], { key: 'b', kind: 'cas', expected: null, value: 'x' }, 'ok',
        { kind: 'cas', ok: true }),
      // A failed get changed nothing and is ignored, whatever it would have read.
      op(2, [95, 96], { key: 'b', kind: 'get' }, 'failed'),
    ];
    const verdict = checkRegister(history, { values: { a: '2', b: 'x' } });
    expect(verdict.violations).toEqual([]);
    expect(verdict).toMatchObject({ valid: true, checker: 'register' });
    expect(verdict.stats).toMatchObject({ ok: 5, failed: 1, unknown: 1, keys: 2 });
  });

  it('catches a stale read and names the key with a rendered counterexample', () => {
    const history = [
      op(1, [0, 10], { key: 'a', kind: 'put', value: '1' }, 'ok', { kind: 'put' }),
      op(2, [20, 30], { key: 'a', kind: 'put', value: '2' }, 'ok', { kind: 'put' }),
      // Invoked after put("2") was acknowledged, yet it reads the older value.
      op(3, [40, 50], { key: 'a', kind: 'get' }, 'ok', { kind: 'get', value: '1' }),
      op(3, [40, 50], { key: 'b', kind: 'put', value: 'fine' }, 'ok', { kind: 'put' }),
    ];
    const verdict = checkRegister(history, null);
    expect(verdict.valid).toBe(false);
    expect(verdict.violations).toHaveLength(1);
    expect(verdict.violations[0]).toContain('key "a" is not linearizable');
    expect(verdict.violations[0]).toContain('get() → "1"');
  });

  it('catches an acknowledged write lost by the final read', () => {
    const history = [
      op(1, [0, 10], { key: 'a', kind: 'put', value: '1' }, 'ok', { kind: 'put' }),
    ];
    const verdict = checkRegister(history, { values: { a: null } });
    expect(verdict.valid).toBe(false);
    expect(verdict.violations[0]).toContain('key "a"');
  });

  it('ignores other workloads', () => {
    const other = op(1, [0, 1], { key: 'a', kind: 'get' }, 'ok', { kind: 'get', value: 'x' });
    expect(checkRegister([{ ...other, workload: 'bank' }], null).valid).toBe(true);
  });
});
