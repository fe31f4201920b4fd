import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  checkLinearizable,
  kvModel,
  prefixAt,
  renderFailure,
  type KvCall,
  type KvResult,
  type Operation,
} from './index.js';
import {
  bruteForceLinearizable, cas, del, expectFailed, get, operation, put,
} from './linearizability-test-kit.js';
import { blindWriteSuffixes } from './shrink.js';

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
