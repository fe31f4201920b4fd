import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isSynodError } from '../base/index.js';
import {
  checkLinearizable,
  kvModel,
  prefixAt,
  renderFailure,
  renderHistory,
  searchLinearization,
  type CheckFailed,
  type CheckResult,
  type KvCall,
  type KvResult,
  type Model,
  type Operation,
} from './index.js';
import { blindWriteSuffixes } from './shrink.js';

// ---- History builders: `end` null means the client never heard back. -------------------------

function operation(
  clientId: number,
  key: string,
  call: KvCall,
  times: readonly [number, number | null],
  result: KvResult,
): Operation {
  const [invokedAt, respondedAt] = times;
  const response = respondedAt === null ? null : { respondedAt, result };
  return { clientId, key, call, invokedAt, response };
}

// Histories read best as compact data, hence the positional arguments: client, key, what, then
// the invocation and response times.
type End = number | null;
const put = (client: number, key: string, value: string, start: number, end: End) =>
  operation(client, key, { kind: 'put', value }, [start, end], { kind: 'put' });
const get = (client: number, key: string, value: string | null, start: number, end: End) =>
  operation(client, key, { kind: 'get' }, [start, end], { kind: 'get', value });
const del = (client: number, key: string, start: number, end: End) =>
  operation(client, key, { kind: 'delete' }, [start, end], { kind: 'delete' });
const cas = (
  client: number,
  key: string,
  swap: { expected: string | null; value: string; ok: boolean },
  start: number,
  end: End,
) => {
  const call: KvCall = { kind: 'cas', expected: swap.expected, value: swap.value };
  return operation(client, key, call, [start, end], { kind: 'cas', ok: swap.ok });
};

function expectFailed(result: CheckResult): CheckFailed {
  if (result.ok !== false) throw new Error(`expected a failure, got ${JSON.stringify(result)}`);
  return result;
}

// ---- A brute-force reference: every order consistent with real time over the whole map of keys,
// remembering only the dead ends (no partitioning, linked lists, or reductions).

function bruteForceLinearizable(history: readonly Operation[]): boolean {
  const live = history.filter((op) => op.response !== null || op.call.kind !== 'get');
  const answered = live.filter((op) => op.response !== null).length;
  const taken = new Array<boolean>(live.length).fill(false);
  const deadEnds = new Set<string>();
  const explore = (store: ReadonlyMap<string, string>, takenAnswered: number): boolean => {
    if (takenAnswered === answered) return true;
    const configuration = JSON.stringify([taken, [...store].sort()]);
    if (deadEnds.has(configuration)) return false;
    deadEnds.add(configuration);
    for (let index = 0; index < live.length; index++) {
      if (taken[index]) continue;
      const candidate = live[index]!;
      // Some untaken operation responded strictly before this one was invoked: it must go first.
      const mustWait = live.some(
        (other, otherIndex) =>
          !taken[otherIndex] &&
          other.response !== null &&
          other.response.respondedAt < candidate.invokedAt,
      );
      if (mustWait) continue;
      const current = store.get(candidate.key) ?? null;
      const step = kvModel.step(current, candidate.call, candidate.response?.result ?? null);
      if (!step.ok) continue;
      const next = new Map(store);
      if (step.nextState === null) next.delete(candidate.key);
      else next.set(candidate.key, step.nextState);
      taken[index] = true;
      const found = explore(next, takenAnswered + (candidate.response === null ? 0 : 1));
      taken[index] = false;
      if (found) return true;
    }
    return false;
  };
  return explore(new Map(), 0);
}

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

// ---- Properties. -----------------------------------------------------------------------------

const keys = ['a', 'b', 'c'];
const values = ['v0', 'v1', 'v2', 'v3'];

/** One step of a sequential execution, with how far its interval is widened around its point. */
const stepArbitrary = fc.record({
  key: fc.constantFrom(...keys),
  kind: fc.constantFrom('get', 'get', 'put', 'cas', 'delete'),
  expected: fc.option(fc.constantFrom(...values), { nil: null }),
  value: fc.constantFrom(...values),
  clientId: fc.integer({ min: 0, max: 9 }),
  before: fc.nat({ max: 45 }),
  after: fc.nat({ max: 45 }),
  unanswered: fc.boolean(),
});

type Step = typeof stepArbitrary extends fc.Arbitrary<infer T> ? T : never;

/** Spacing of the linearization points; widening reaches over several neighbours. */
const pointSpacing = 10;

/**
 * Runs `steps` against a real in-memory map, one at a time at points 10, 20, …, and records each as
 * an operation whose interval contains its point. With `widen` off, intervals are disjoint and all
 * answered.
 */
function executeSequentially(steps: readonly Step[], options: { widen: boolean }): Operation[] {
  const store = new Map<string, string>();
  return steps.map((step, index) => {
    const point = (index + 1) * pointSpacing;
    const [start, end] = options.widen
      ? [point - step.before, point + step.after]
      : [point, point + 1];
    const current = store.get(step.key) ?? null;
    let call: KvCall;
    let result: KvResult;
    if (step.kind === 'get') {
      [call, result] = [{ kind: 'get' }, { kind: 'get', value: current }];
    } else if (step.kind === 'put') {
      store.set(step.key, step.value);
      [call, result] = [{ kind: 'put', value: step.value }, { kind: 'put' }];
    } else if (step.kind === 'delete') {
      store.delete(step.key);
      [call, result] = [{ kind: 'delete' }, { kind: 'delete' }];
    } else {
      const ok = current === step.expected;
      if (ok) store.set(step.key, step.value);
      call = { kind: 'cas', expected: step.expected, value: step.value };
      result = { kind: 'cas', ok };
    }
    const unanswered = options.widen && step.unanswered && step.kind !== 'get';
    return operation(step.clientId, step.key, call, [start, unanswered ? null : end], result);
  });
}

/** `history` with the result of operation `index` replaced. */
function withResult(history: readonly Operation[], index: number, result: KvResult): Operation[] {
  const original = history[index]!;
  const respondedAt = original.response!.respondedAt;
  const changed = [...history];
  changed[index] = { ...original, response: { respondedAt, result } };
  return changed;
}

/** Indices of the answered operations of the given kinds. */
function answeredOf(history: readonly Operation[], kinds: readonly KvCall['kind'][]): number[] {
  return history.flatMap((op, index) =>
    op.response !== null && kinds.includes(op.call.kind) ? [index] : [],
  );
}

/** Any result of the same kind as `result`, but different. */
function corrupt(result: KvResult, choice: number): KvResult {
  if (result.kind === 'cas') return { kind: 'cas', ok: !result.ok };
  if (result.kind !== 'get') throw new Error(`cannot corrupt a ${result.kind} result`);
  const others = [null, ...values].filter((value) => value !== result.value);
  return { kind: 'get', value: others[choice % others.length]! };
}

/** Small random histories with random results, over few times so that ties are common. */
function smallHistoryArbitrary(options: { keys: readonly string[] }): fc.Arbitrary<Operation[]> {
  const randomOperation = fc
    .record({
      kind: fc.constantFrom('get', 'put', 'cas', 'delete'),
      key: fc.constantFrom(...options.keys),
      value: fc.constantFrom('x', 'y'),
      readValue: fc.option(fc.constantFrom('x', 'y'), { nil: null }),
      ok: fc.boolean(),
      start: fc.nat({ max: 12 }),
      length: fc.nat({ max: 4 }),
      unanswered: fc.boolean(),
    })
    .map((spec) => {
      const end = spec.unanswered ? null : spec.start + spec.length;
      if (spec.kind === 'get') return get(0, spec.key, spec.readValue, spec.start, end);
      if (spec.kind === 'put') return put(0, spec.key, spec.value, spec.start, end);
      if (spec.kind === 'delete') return del(0, spec.key, spec.start, end);
      const swap = { expected: spec.readValue, value: spec.value, ok: spec.ok };
      return cas(0, spec.key, swap, spec.start, end);
    });
  return fc.array(randomOperation, { maxLength: 7 });
}

describe('properties', () => {
  it('widened sequential executions, with phantom unanswered writes, are linearizable', () => {
    const phantom = fc.record({
      key: fc.constantFrom(...keys),
      value: fc.constantFrom(...values),
      at: fc.nat({ max: 1300 }),
    });
    const steps = fc.array(stepArbitrary, { maxLength: 120 });
    const phantoms = fc.array(phantom, { maxLength: 5 });
    fc.assert(
      fc.property(steps, phantoms, (stepList, phantomList) => {
        const history = executeSequentially(stepList, { widen: true });
        for (const { key, value, at } of phantomList) history.push(put(42, key, value, at, null));
        const result = checkLinearizable(history);
        expect(result, result.ok === false ? renderFailure(result) : '').toEqual({ ok: true });
      }),
      { numRuns: 300 },
    );
  });

  it('a read of a value never written is caught, and kept in the counterexample', () => {
    const steps = fc.array(stepArbitrary, { minLength: 1, maxLength: 120 });
    fc.assert(
      fc.property(steps, fc.nat(), (stepList, pick) => {
        const executed = executeSequentially(stepList, { widen: true });
        const reads = answeredOf(executed, ['get']);
        fc.pre(reads.length > 0);
        const target = reads[pick % reads.length]!;
        const history = withResult(executed, target, { kind: 'get', value: 'never-written' });
        const failure = expectFailed(checkLinearizable(history));
        expect(failure.key).toBe(history[target]!.key);
        expect(failure.counterexample).toContain(history[target]);
      }),
      { numRuns: 200 },
    );
  });

  it('any corrupted result in a sequential history is caught', () => {
    const steps = fc.array(stepArbitrary, { minLength: 1, maxLength: 80 });
    fc.assert(
      fc.property(steps, fc.nat(), fc.nat(), (stepList, pick, choice) => {
        const executed = executeSequentially(stepList, { widen: false });
        const observing = answeredOf(executed, ['get', 'cas']);
        fc.pre(observing.length > 0);
        const target = observing[pick % observing.length]!;
        const corrupted = corrupt(executed[target]!.response!.result, choice);
        const history = withResult(executed, target, corrupted);
        const failure = expectFailed(checkLinearizable(history));
        expect(failure.counterexample).toContain(history[target]);
      }),
      { numRuns: 300 },
    );
  });

  it('agrees with the brute-force reference on small random histories', () => {
    fc.assert(
      fc.property(smallHistoryArbitrary({ keys: ['k', 'j'] }), (history) => {
        const result = checkLinearizable(history);
        expect(result.ok).toBe(bruteForceLinearizable(history));
        if (result.ok === false) expect(bruteForceLinearizable(result.counterexample)).toBe(false);
      }),
      { numRuns: 3000 },
    );
  });

  it('agrees with the brute-force reference on concurrent executions, some corrupted', () => {
    const steps = fc.array(stepArbitrary, { minLength: 1, maxLength: 16 });
    const corruption = fc.option(fc.record({ pick: fc.nat(), choice: fc.nat() }), { nil: null });
    fc.assert(
      fc.property(steps, corruption, (stepList, corrupted) => {
        let history = executeSequentially(stepList, { widen: true });
        const observing = answeredOf(history, ['get', 'cas']);
        if (corrupted !== null && observing.length > 0) {
          const target = observing[corrupted.pick % observing.length]!;
          const result = corrupt(history[target]!.response!.result, corrupted.choice);
          history = withResult(history, target, result);
        }
        const result = checkLinearizable(history);
        expect(result.ok).toBe(bruteForceLinearizable(history));
        if (result.ok === false) expect(bruteForceLinearizable(result.counterexample)).toBe(false);
      }),
      { numRuns: 1000 },
    );
  });
});

describe('shrinking keeps witnesses sound', () => {
  const linearizableHistory = smallHistoryArbitrary({ keys: ['k'] })
    .map((history) => [...history].sort((left, right) => left.invokedAt - right.invokedAt))
    .filter(bruteForceLinearizable);

  it('every cut of a linearizable history is linearizable', () => {
    fc.assert(
      fc.property(linearizableHistory, fc.nat({ max: 18 }), (history, cutAt) => {
        expect(bruteForceLinearizable(prefixAt(history, cutAt))).toBe(true);
      }),
      { numRuns: 500 },
    );
  });

  it('every suffix from an isolated blind write of a linearizable history is linearizable', () => {
    fc.assert(
      fc.property(linearizableHistory, (history) => {
        for (const suffix of blindWriteSuffixes(kvModel, history)) {
          expect(bruteForceLinearizable(suffix.operations)).toBe(true);
        }
      }),
      { numRuns: 1000 },
    );
  });

  it('removing a read-only operation from a linearizable history keeps it linearizable', () => {
    fc.assert(
      fc.property(linearizableHistory, fc.nat(), (history, pick) => {
        const reads = history.filter((op) =>
          kvModel.isReadOnly(op.call, op.response?.result ?? null),
        );
        fc.pre(reads.length > 0);
        const removed = reads[pick % reads.length];
        expect(bruteForceLinearizable(history.filter((op) => op !== removed))).toBe(true);
      }),
      { numRuns: 500 },
    );
  });
});
