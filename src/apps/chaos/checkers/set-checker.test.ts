import { describe, expect, it } from 'vitest';
import type { HistoryEntry, OutcomeKind } from '../types.js';
import { checkSet } from './set-checker.js';

function add(element: string, outcome: OutcomeKind): HistoryEntry {
  const base = {
    workload: 'set' as const, clientId: 1, member: 'n1', call: { kind: 'add', element },
    invokedAtMs: 1, completedAtMs: 2, outcome,
  };
  return outcome === 'ok' ? { ...base, result: { kind: 'add' } } : { ...base, error: 'x' };
}

describe('checkSet', () => {
  const history = [add('a', 'ok'), add('b', 'ok'), add('c', 'unknown'), add('d', 'unknown'),
    add('e', 'failed')];

  it('passes when every acknowledged add is present; unknown adds may go either way', () => {
    const verdict = checkSet(history, { elements: ['a', 'b', 'c'] });
    expect(verdict.violations).toEqual([]);
    expect(verdict).toMatchObject({ valid: true, lostWrites: 0 });
    expect(verdict.stats).toMatchObject({ ok: 2, unknown: 2, unknownPresent: 1, unknownAbsent: 1 });
  });

  it('counts a lost acknowledged add', () => {
    const verdict = checkSet(history, { elements: ['a', 'd'] });
    expect(verdict).toMatchObject({ valid: false, lostWrites: 1 });
    expect(verdict.violations).toEqual(['acknowledged adds missing: 1 ("b")']);
  });

  it('catches an element never added and one whose add definitely failed', () => {
    const verdict = checkSet(history, { elements: ['a', 'b', 'e', 'zz'] });
    expect(verdict.valid).toBe(false);
    expect(verdict.lostWrites).toBe(0);
    expect(verdict.violations).toEqual([
      'present but never added: 1 ("zz")',
      'present although the add definitely failed: 1 ("e")',
    ]);
  });
});
