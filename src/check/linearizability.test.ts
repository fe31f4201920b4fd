import { describe, expect, it } from 'vitest';
import { isSynodError } from '../base/index.js';
import {
  checkLinearizable,
  renderFailure,
  renderHistory,
  searchLinearization,
  type Model,
  type Operation,
} from './index.js';
import {
  bruteForceLinearizable, cas, del, expectFailed, get, operation, put,
} from './linearizability-test-kit.js';

// ---- Known histories. ------------------------------------------------------------------------

describe('linearizable histories pass', () => {
  const cases: Record<string, Operation[]> = {
    'empty history': [],
    'sequential put, get, delete, get': [
      put(1, 'k', 'a', 0, 1),
      get(2, 'k', 'a', 2, 3),
      del(1, 'k', 4, 5),
      get(2, 'k', null, 6, 7),
    ],
    'read of an absent key': [get(1, 'k', null, 0, 1)],
    'concurrent writes read in either order': [
      put(1, 'k', 'a', 0, 10),
      put(2, 'k', 'b', 1, 11),
      get(3, 'k', 'b', 12, 13),
      get(4, 'k', 'b', 14, 15),
    ],
    'a read overlapping a write sees the old or the new value': [
      put(1, 'k', 'a', 0, 1),
      put(2, 'k', 'b', 2, 10),
      get(3, 'k', 'a', 3, 4),
      get(4, 'k', 'b', 5, 6),
      get(5, 'k', 'b', 11, 12),
    ],
    'equal times count as concurrent': [put(1, 'k', 'a', 0, 5), get(2, 'k', null, 5, 6)],
    'cas chain': [
      cas(1, 'k', { expected: null, value: 'a', ok: true }, 0, 1),
      cas(2, 'k', { expected: null, value: 'b', ok: false }, 2, 3),
      cas(2, 'k', { expected: 'a', value: 'b', ok: true }, 4, 5),
      get(3, 'k', 'b', 6, 7),
    ],
    'two concurrent cas from the same value: one wins': [
      put(1, 'k', 'a', 0, 1),
      cas(2, 'k', { expected: 'a', value: 'b', ok: true }, 2, 10),
      cas(3, 'k', { expected: 'a', value: 'c', ok: false }, 3, 9),
      get(4, 'k', 'b', 11, 12),
    ],
    'an unanswered put that took effect, late': [
      put(1, 'k', 'a', 0, null),
      get(2, 'k', null, 5, 6),
      get(2, 'k', 'a', 100, 101),
    ],
    'an unanswered put that never took effect': [
      put(1, 'k', 'a', 0, null),
      put(2, 'k', 'b', 1, 2),
      get(3, 'k', 'b', 3, 4),
      get(3, 'k', 'b', 1000, 1001),
    ],
    'an unanswered cas that took effect': [
      put(1, 'k', 'a', 0, 1),
      cas(2, 'k', { expected: 'a', value: 'b', ok: false }, 2, null),
      get(3, 'k', 'b', 10, 11),
    ],
    'an unanswered read carries no information': [
      put(1, 'k', 'a', 0, 1),
      get(2, 'k', 'zzz', 2, null),
    ],
    'independent keys': [
      put(1, 'x', 'a', 0, 10),
      put(2, 'y', 'b', 0, 10),
      get(3, 'x', 'a', 11, 12),
      get(3, 'y', 'b', 13, 14),
    ],
  };
  for (const [name, history] of Object.entries(cases)) {
    it(name, () => {
      expect(checkLinearizable(history)).toEqual({ ok: true });
      expect(bruteForceLinearizable(history)).toBe(true);
    });
  }
});

describe('non-linearizable histories are caught', () => {
  const cases: Record<string, Operation[]> = {
    'stale read after a completed write': [
      put(1, 'k', 'a', 0, 1),
      put(1, 'k', 'b', 2, 3),
      get(2, 'k', 'a', 4, 5),
    ],
    'a read of a value never written': [put(1, 'k', 'a', 0, 1), get(2, 'k', 'ghost', 2, 3)],
    'a read of a value before its write was invoked': [
      get(2, 'k', 'a', 0, 1),
      put(1, 'k', 'a', 2, null),
    ],
    'two cas from the same expected value both succeed': [
      put(1, 'k', 'a', 0, 1),
      cas(2, 'k', { expected: 'a', value: 'b', ok: true }, 2, 10),
      cas(3, 'k', { expected: 'a', value: 'c', ok: true }, 3, 9),
    ],
    'reads go back in time': [
      put(1, 'k', 'a', 0, 1),
      put(2, 'k', 'b', 2, 20),
      get(3, 'k', 'b', 3, 4),
      get(4, 'k', 'a', 5, 6),
    ],
    'lost update: two increments succeed, one is lost': [
      put(1, 'k', '0', 0, 1),
      cas(2, 'k', { expected: '0', value: '1', ok: true }, 2, 10),
      cas(3, 'k', { expected: '1', value: '2', ok: true }, 2, 10),
      get(1, 'k', '1', 11, 12),
    ],
    'a read after a delete sees the old value': [
      put(1, 'k', 'a', 0, 1),
      del(1, 'k', 2, 3),
      get(2, 'k', 'a', 4, 5),
    ],
  };
  for (const [name, history] of Object.entries(cases)) {
    it(name, () => {
      const failure = expectFailed(checkLinearizable(history));
      expect(failure.key).toBe('k');
      expect(bruteForceLinearizable(history)).toBe(false);
      expect(bruteForceLinearizable(failure.counterexample)).toBe(false);
    });
  }

  it('names the failing key and explains the failure', () => {
    const history = [
      put(1, 'fine', 'x', 0, 1),
      put(1, 'k', 'a', 0, 1),
      put(1, 'k', 'b', 2, 3),
      get(2, 'k', 'a', 4, 5),
      get(2, 'fine', 'x', 4, 5),
    ];
    const failure = expectFailed(checkLinearizable(history));
    expect(failure.key).toBe('k');
    expect(failure.operations).toHaveLength(3);
    expect(failure.counterexample).toEqual([history[2], history[3]]);
    expect(failure.startAt).toBe(2);
    expect(failure.reason).toBe(
      'no linearization of these 2 operations on key "k": at best 1 take effect, ' +
        'in the order #0, leaving the key "b"; then #1 get() → "a" must take effect but cannot',
    );
    const text = renderFailure(failure);
    expect(text).toContain('key "k" is not linearizable');
    expect(text).toContain('#1  client 2  [4, 5]  get() → "a"');
  });

  it('shrinks a long history to the few operations that matter', () => {
    const history: Operation[] = [];
    for (let round = 0; round < 200; round++) {
      const time = round * 10;
      history.push(put(1, 'k', `v${round}`, time, time + 3));
      history.push(get(2, 'k', `v${round}`, time + 4, time + 5));
      history.push(get(3, 'k', round === 150 ? 'v3' : `v${round}`, time + 4, time + 6));
    }
    const failure = expectFailed(checkLinearizable(history));
    expect(failure.operations).toHaveLength(600);
    expect(failure.counterexample).toEqual([history[450], history[452]]);
    expect(renderFailure(failure)).toBe(
      [
        'key "k" is not linearizable: no linearization of these 2 operations on key "k": ' +
          'at best 1 take effect, in the order #0, leaving the key "v150"; ' +
          'then #1 get() → "v3" must take effect but cannot',
        'counterexample, 2 of the key\'s 600 operations (from time 1500, ' +
          'where a write overwrote all that finished before; up to time 1506, ' +
          'operations still running then shown without response):',
        '#0  client 1  [1500, 1503]  put("v150")   |==  |',
        '#1  client 3  [1504, 1506]  get() → "v3"  |  ==|',
      ].join('\n'),
    );
  });

  it('keeps unanswered writes from before the start, as they may take effect later', () => {
    const history = [
      put(1, 'k', 'late', 0, null),
      put(2, 'k', 'x', 1, 2),
      put(2, 'k', 'a', 5, 6),
      get(3, 'k', 'late', 7, 8),
      get(3, 'k', 'a', 9, 10),
    ];
    const failure = expectFailed(checkLinearizable(history));
    expect(failure.counterexample).toEqual([history[0], history[2], history[3], history[4]]);
    expect(failure.startAt).toBe(5);
    expect(bruteForceLinearizable(failure.counterexample)).toBe(false);
  });
});

describe('bounds and options', () => {
  const concurrent = Array.from({ length: 12 }, (_, client) =>
    put(client, 'k', `v${client}`, 0, 100),
  );
  concurrent.push(get(99, 'k', 'missing', 101, 102));

  it('an exhausted budget answers unknown, never ok', () => {
    const history = [put(1, 'k', 'a', 0, 1), get(2, 'k', 'a', 2, 3)];
    expect(checkLinearizable(history, { stepsMax: 1 })).toEqual({
      ok: 'unknown',
      key: 'k',
      reason: 'search budget exhausted',
      stepsMax: 1,
    });
    expect(checkLinearizable(concurrent, { stepsMax: 1000 }).ok).toBe('unknown');
    expect(checkLinearizable(concurrent).ok).toBe(false);
  });

  it('a failure on one key outranks an unknown on another', () => {
    const history = [...concurrent.map((op) => ({ ...op, key: 'a' })), get(1, 'z', 'ghost', 0, 1)];
    const result = checkLinearizable(history, { stepsMax: 100 });
    expect(result.ok).toBe(false);
  });

  it('shrinking can be switched off', () => {
    const history = [put(1, 'k', 'a', 0, 1), put(1, 'k', 'b', 2, 3), get(2, 'k', 'a', 4, 5)];
    const failure = expectFailed(checkLinearizable(history, { shrinkStepsMax: 0 }));
    expect(failure.counterexample).toEqual(history);
    expect(failure.cutAt).toBeNull();
  });

  it('rejects invalid options with a coded error', () => {
    expect(() => checkLinearizable([], { stepsMax: 0 })).toThrow(
      expect.toSatisfy((error: unknown) => isSynodError(error, 'SYNOD_INVALID_CONFIG')),
    );
    expect(() => checkLinearizable([], { shrinkStepsMax: -1 })).toThrow(/shrinkStepsMax/);
  });

  it('asserts on malformed histories', () => {
    expect(() => checkLinearizable([put(1, 'k', 'a', 5, 4)])).toThrow(/precedes invocation/);
    const mismatched = operation(1, 'k', { kind: 'get' }, [0, 1], { kind: 'put' });
    expect(() => checkLinearizable([mismatched])).toThrow(/answers a get call/);
  });
});

describe('rendering', () => {
  it('renders one line per operation with a timeline', () => {
    const history = [
      put(1, 'k', 'a', 10, 20),
      put(2, 'k', 'b', 15, null),
      get(3, 'k', 'a', 25, 30),
    ];
    const text = renderHistory(history);
    expect(text.split('\n')).toEqual([
      '#0  client 1  [10, 20]  put("a")      |===  |',
      '#1  client 2  [15, …)   put("b") → ?  | ====|…',
      '#2  client 3  [25, 30]  get() → "a"   |   ==|',
    ]);
    expect(renderHistory([])).toBe('(no operations)');
  });
});

describe('the search is model-agnostic', () => {
  type CounterCall = { kind: 'increment' } | { kind: 'read' };
  const counter: Model<number, CounterCall, number | null> = {
    init: () => 0,
    step: (state, call, result) =>
      call.kind === 'increment'
        ? { ok: true, nextState: state + 1 }
        : { ok: result === null || result === state, nextState: state },
    isReadOnly: (call) => call.kind === 'read',
    isBlindWrite: () => false,
    callKey: (call) => call.kind,
    hash: (state) => state,
    equal: (left, right) => left === right,
    describeState: String,
    describeOperation: (call, result) => `${call.kind} → ${String(result)}`,
  };
  const timed = (call: CounterCall, start: number, end: number, result: number | null) => ({
    call,
    invokedAt: start,
    response: { respondedAt: end, result },
  });

  it('checks a counter', () => {
    const good = [timed({ kind: 'increment' }, 0, 5, null), timed({ kind: 'read' }, 1, 2, 1)];
    expect(searchLinearization(counter, good, { stepsMax: 100 }).kind).toBe('linearizable');
    const bad = [timed({ kind: 'increment' }, 0, 1, null), timed({ kind: 'read' }, 2, 3, 0)];
    const outcome = searchLinearization(counter, bad, { stepsMax: 100 });
    expect(outcome).toMatchObject({
      kind: 'not-linearizable',
      deepest: { order: [0], blocked: 1 },
    });
  });
});
