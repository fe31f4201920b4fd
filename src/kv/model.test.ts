// Optimized versus naive: random command sequences against a dumb reference model that keeps, per
// key, the full list of (revision, value | tombstone, lease). Every range at every revision not
// compacted must agree on keys, values, create/mod revisions, versions and leases; random queries
// with limits and sorting must agree too; leases revoke exactly the keys they hold.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { utf8, utf8Text } from './bytes.js';
import { decodeCommand, encodeCommand, type Command } from './command.js';
import { KvStateMachine } from './state-machine.js';
import type { Compare, KeyValue, RequestOp, SortOrder, SortTarget } from './types.js';

interface ModelKv {
  key: string;
  value: string;
  createRevision: number;
  modRevision: number;
  version: number;
  lease: number;
}

interface ModelEntry {
  revision: number;
  /** null for a tombstone. */
  value: string | null;
  lease: number;
}

class Model {
  readonly history = new Map<string, ModelEntry[]>();
  readonly leases = new Set<number>();
  current = 1;
  compacted = -1; // etcd: compacting at 0 is accepted once, before any other compaction.

  at(key: string, revision: number): ModelKv | undefined {
    const entries = (this.history.get(key) ?? []).filter((entry) => entry.revision <= revision);
    const last = entries.at(-1);
    if (last === undefined || last.value === null) return undefined;
    let start = entries.length - 1;
    while (start > 0 && entries[start - 1]!.value !== null) start--;
    const createRevision = entries[start]!.revision;
    return {
      key, value: last.value, createRevision, modRevision: last.revision,
      version: entries.length - start, lease: last.lease,
    };
  }

  rangeAt(revision: number, from = '', to: string | null = null): ModelKv[] {
    return [...this.history.keys()].sort()
      .filter((key) => key >= from && (to === null || key < to))
      .flatMap((key) => this.at(key, revision) ?? []);
  }

  write(key: string, value: string | null, revision: number, lease = 0): void {
    const entries = this.history.get(key) ?? [];
    entries.push({ revision, value, lease });
    this.history.set(key, entries);
  }
}

const keyArbitrary = fc.constantFrom('a', 'ab', 'abc', 'b', 'ba', 'c', 'd');
const valueArbitrary = fc.constantFrom('', 'x', 'y', 'zz');
const leaseArbitrary = fc.integer({ min: 1, max: 2 });

type Step =
  | { kind: 'put'; key: string; value: string; lease: number }
  | { kind: 'grant'; id: number }
  | { kind: 'revoke'; id: number }
  | { kind: 'delete'; key: string; end: string | null }
  | { kind: 'txn'; compareKey: string; version: number; success: string[]; failure: string[];
      deleteFirst: boolean }
  | { kind: 'compact'; back: number };

const stepArbitrary: fc.Arbitrary<Step> = fc.oneof(
  { weight: 4, arbitrary: fc.record({
    kind: fc.constant('put' as const), key: keyArbitrary, value: valueArbitrary,
    lease: fc.constantFrom(0, 0, 1, 2),
  }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('grant' as const), id: leaseArbitrary }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('revoke' as const), id: leaseArbitrary }) },
  { weight: 2, arbitrary: fc.record({
    kind: fc.constant('delete' as const), key: keyArbitrary,
    end: fc.option(fc.constantFrom('abc', 'b', 'c', 'e', '\0'), { nil: null }),
  }) },
  { weight: 2, arbitrary: fc.record({
    kind: fc.constant('txn' as const), compareKey: keyArbitrary,
    version: fc.integer({ min: 0, max: 2 }),
    success: fc.uniqueArray(keyArbitrary, { maxLength: 3 }),
    failure: fc.uniqueArray(keyArbitrary, { maxLength: 3 }), deleteFirst: fc.boolean(),
  }) },
  { weight: 1, arbitrary: fc.record({
    kind: fc.constant('compact' as const), back: fc.integer({ min: -1, max: 4 }),
  }) },
);

/** Ops: the first key deleted if `deleteFirst`, the others put. Keys are unique, so valid. */
function branch(keys: string[], deleteFirst: boolean, value: string): RequestOp[] {
  return keys.map((key, index) => (deleteFirst && index === 0
    ? { requestDeleteRange: { key: utf8(key) } }
    : { requestPut: { key: utf8(key), value: utf8(value) } }));
}

function toCommand(step: Step, model: Model): Command {
  switch (step.kind) {
    case 'put': return {
      type: 'put',
      request: { key: utf8(step.key), value: utf8(step.value), lease: BigInt(step.lease) },
    };
    case 'grant': return { type: 'leaseGrant', id: BigInt(step.id), ttlSeconds: 10 };
    case 'revoke': return { type: 'leaseRevoke', id: BigInt(step.id) };
    case 'delete': return {
      type: 'deleteRange',
      request: { key: utf8(step.key), ...(step.end === null ? {} : { rangeEnd: utf8(step.end) }) },
    };
    case 'txn': {
      const compare: Compare = {
        key: utf8(step.compareKey), target: 'VERSION', version: step.version, result: 'EQUAL',
      };
      return { type: 'txn', request: {
        compare: [compare],
        success: branch(step.success, step.deleteFirst, 's'),
        failure: branch(step.failure, false, 'f'),
      } };
    }
    case 'compact': return { type: 'compact', revision: model.current - step.back };
  }
}

/** Applies `step` to the model; returns whether it should succeed. */
function applyModel(step: Step, model: Model): boolean {
  const next = model.current + 1;
  const writes: Array<[string, string | null, number?]> = [];
  switch (step.kind) {
    case 'put':
      if (step.lease !== 0 && !model.leases.has(step.lease)) return false;
      writes.push([step.key, step.value, step.lease]);
      break;
    case 'grant':
      if (model.leases.has(step.id)) return false;
      model.leases.add(step.id);
      return true;
    case 'revoke':
      if (!model.leases.delete(step.id)) return false;
      for (const kv of model.rangeAt(model.current)) {
        if (kv.lease === step.id) writes.push([kv.key, null]);
      }
      break;
    case 'delete': {
      const to = step.end === null ? null : step.end === '\0' ? null : step.end;
      const victims = step.end === null ? (model.at(step.key, model.current) ? [step.key] : [])
        : model.rangeAt(model.current, step.key, to).map((kv) => kv.key);
      for (const key of victims) writes.push([key, null]);
      break;
    }
    case 'txn': {
      const version = model.at(step.compareKey, model.current)?.version ?? 0;
      const succeeded = version === step.version;
      const keys = succeeded ? step.success : step.failure;
      keys.forEach((key, index) => {
        const isDelete = succeeded && step.deleteFirst && index === 0;
        if (!isDelete) writes.push([key, succeeded ? 's' : 'f']);
        else if (model.at(key, model.current) !== undefined) writes.push([key, null]);
      });
      break;
    }
    case 'compact': {
      const revision = model.current - step.back;
      if (revision <= model.compacted || revision > model.current) return false;
      model.compacted = revision;
      return true;
    }
  }
  for (const [key, value, lease] of writes) model.write(key, value, next, lease);
  if (writes.length > 0) model.current = next;
  return true;
}

function toModelKv(kv: KeyValue): ModelKv {
  return {
    key: utf8Text(kv.key), value: utf8Text(kv.value), createRevision: kv.createRevision,
    modRevision: kv.modRevision, version: kv.version, lease: Number(kv.lease),
  };
}

interface Query {
  from: string;
  to: string | null;
  limit: number;
  sortOrder: SortOrder;
  sortTarget: SortTarget;
  back: number;
}

const queryArbitrary: fc.Arbitrary<Query> = fc.record({
  from: keyArbitrary, to: fc.option(fc.constantFrom('b', 'c', 'e'), { nil: null }),
  limit: fc.nat(3),
  sortOrder: fc.constantFrom('NONE', 'ASCEND', 'DESCEND'),
  sortTarget: fc.constantFrom('KEY', 'VERSION', 'CREATE', 'MOD', 'VALUE'), back: fc.nat(3),
});

const modelOrder: Record<SortTarget, (a: ModelKv, b: ModelKv) => number> = {
  KEY: (a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0),
  VERSION: (a, b) => a.version - b.version,
  CREATE: (a, b) => a.createRevision - b.createRevision,
  MOD: (a, b) => a.modRevision - b.modRevision,
  VALUE: (a, b) => (a.value < b.value ? -1 : a.value > b.value ? 1 : 0),
};

/** A range with limit and sort, answered by the model the way etcd's applier does it. */
function checkQuery(machine: KvStateMachine, model: Model, query: Query): void {
  const revision = Math.max(model.current - query.back, model.compacted, 1);
  const inSpan = model.rangeAt(revision, query.from, query.to);
  const { limit, sortOrder, sortTarget } = query;
  let expected = limit > 0 && sortOrder === 'NONE' ? inSpan.slice(0, limit + 1) : inSpan;
  const order = sortOrder === 'NONE' && sortTarget !== 'KEY' ? 'ASCEND' : sortOrder;
  const sign = order === 'DESCEND' ? -1 : 1;
  if (order !== 'NONE') {
    expected = [...expected].sort((a, b) => sign * modelOrder[sortTarget](a, b));
  }
  const response = machine.store.range({
    key: utf8(query.from), rangeEnd: query.to === null ? new Uint8Array([0]) : utf8(query.to),
    limit: query.limit, sortOrder: query.sortOrder, sortTarget: query.sortTarget, revision,
  });
  expect(response.count).toBe(inSpan.length);
  expect(response.more).toBe(query.limit > 0 && expected.length > query.limit);
  expect(response.kvs.map(toModelKv))
    .toEqual(query.limit > 0 ? expected.slice(0, query.limit) : expected);
}

function checkAgainstModel(machine: KvStateMachine, model: Model): void {
  expect(machine.store.currentRevision).toBe(model.current);
  const all = { key: new Uint8Array([0]), rangeEnd: new Uint8Array([0]) };
  for (let revision = Math.max(model.compacted, 1); revision <= model.current; revision++) {
    const kvs = machine.store.range({ ...all, revision }).kvs.map(toModelKv);
    expect(kvs, `at revision ${revision}`).toEqual(model.rangeAt(revision));
  }
  if (model.compacted > 1) {
    expect(() => machine.store.range({ ...all, revision: model.compacted - 1 }))
      .toThrow(/compacted/);
  }
}

describe('MVCC store against a reference model', () => {
  it('agrees on every range at every revision not compacted', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(stepArbitrary, queryArbitrary), { maxLength: 40 }), (steps) => {
        const machine = KvStateMachine.open();
        const model = new Model();
        for (const [step, query] of steps) {
          const command = decodeCommand(encodeCommand(toCommand(step, model)));
          const expected = applyModel(step, model);
          expect(machine.apply(command).ok).toBe(expected);
          checkAgainstModel(machine, model);
          checkQuery(machine, model, query);
        }
        const restored = KvStateMachine.restore(machine.serialize());
        checkAgainstModel(restored, model);
      }),
      { numRuns: 300 },
    );
  });
});
