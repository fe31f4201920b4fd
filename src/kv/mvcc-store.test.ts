import { describe, expect, it } from 'vitest';
import { prefixEnd, utf8, utf8Text } from './bytes.js';
import { MvccStore } from './mvcc-store.js';
import { MemoryBackend } from './memory-backend.js';
import type { KeyValue, RangeResponse } from './types.js';
import { expectCode } from '../../test/support/error-codes.js';

const zero = new Uint8Array([0]);


function keys(kvs: readonly KeyValue[]): string[] {
  return kvs.map((kv) => utf8Text(kv.key));
}

function put(store: MvccStore, key: string, value = key): number {
  store.put({ key: utf8(key), value: utf8(value) });
  return store.currentRevision;
}

function rangeOf(store: MvccStore, request: { key: string; end?: string }): RangeResponse {
  const { key, end } = request;
  return store.range({ key: utf8(key), ...(end === undefined ? {} : { rangeEnd: utf8(end) }) });
}

describe('revisions', () => {
  it('starts at 1; the first write gets 2; each put bumps once, even with the same value', () => {
    const store = MvccStore.open();
    expect(store.currentRevision).toBe(1);
    expect(put(store, 'a', 'x')).toBe(2);
    expect(put(store, 'a', 'x')).toBe(3);
    const kv = rangeOf(store, { key: 'a' }).kvs[0]!;
    expect(kv).toMatchObject({ createRevision: 2, modRevision: 3, version: 2 });
  });

  it('a delete that matched nothing does not bump; a delete resets version', () => {
    const store = MvccStore.open();
    put(store, 'a');
    const missed = store.deleteRange({ key: utf8('zz') });
    expect(missed.response).toMatchObject({ deleted: 0, header: { revision: 2 } });
    expect(missed.events).toEqual([]);
    expect(store.currentRevision).toBe(2);
    const hit = store.deleteRange({ key: utf8('a'), prevKv: true });
    expect(hit.response.deleted).toBe(1);
    expect(keys(hit.response.prevKvs)).toEqual(['a']);
    expect(store.currentRevision).toBe(3);
    expect(hit.events).toHaveLength(1);
    expect(hit.events[0]).toMatchObject({ type: 'DELETE', kv: { modRevision: 3, version: 0 } });
    put(store, 'a', 'again');
    expect(rangeOf(store, { key: 'a' }).kvs[0]).toMatchObject({ createRevision: 4, version: 1 });
  });

  it('a delete range removes every key at one main revision', () => {
    const store = MvccStore.open();
    for (const key of ['a', 'b', 'c']) put(store, key);
    const { response, events } = store.deleteRange({ key: utf8('a'), rangeEnd: utf8('c') });
    expect(response.deleted).toBe(2);
    expect(store.currentRevision).toBe(5);
    expect(events.map((event) => event.kv.modRevision)).toEqual([5, 5]);
  });

  it('put events carry the new kv and the previous one; prev_kv only when asked', () => {
    const store = MvccStore.open();
    const first = store.put({ key: utf8('k'), value: utf8('1'), prevKv: true });
    expect(first.response.prevKv).toBeUndefined();
    expect(first.events[0]?.prevKv).toBeUndefined();
    const second = store.put({ key: utf8('k'), value: utf8('2'), prevKv: true });
    expect(utf8Text(second.response.prevKv!.value)).toBe('1');
    expect(second.events[0])
      .toMatchObject({ type: 'PUT', kv: { version: 2 }, prevKv: { version: 1 } });
    expect(store.put({ key: utf8('k'), value: utf8('3') }).response.prevKv).toBeUndefined();
  });
});

describe('range', () => {
  const store = MvccStore.open();
  for (const key of ['a', 'ab', 'abc', 'b', 'c\xff']) put(store, key, `v-${key}`);

  it('reads a single key, a half-open range, "\\0" ends and prefixes', () => {
    expect(keys(rangeOf(store, { key: 'ab' }).kvs)).toEqual(['ab']);
    expect(keys(rangeOf(store, { key: 'ab', end: 'b' }).kvs)).toEqual(['ab', 'abc']);
    expect(keys(store.range({ key: utf8('b'), rangeEnd: zero }).kvs)).toEqual(['b', 'c\xff']);
    expect(store.range({ key: zero, rangeEnd: zero }).count).toBe(5);
    expect(keys(store.range({ key: utf8('a'), rangeEnd: prefixEnd(utf8('a')) }).kvs))
      .toEqual(['a', 'ab', 'abc']);
    expect(rangeOf(store, { key: 'b', end: 'a' }).kvs).toEqual([]);
  });

  it('computes prefix ends as clientv3 does', () => {
    expect([...prefixEnd(new Uint8Array([1, 2]))]).toEqual([1, 3]);
    expect([...prefixEnd(new Uint8Array([1, 0xff, 0xff]))]).toEqual([2]);
    expect([...prefixEnd(new Uint8Array([0xff]))]).toEqual([0]);
    expect([...prefixEnd(new Uint8Array([]))]).toEqual([0]);
  });

  it('rejects an empty key', () => {
    expectCode(() => store.range({ key: new Uint8Array(0) }), 'SYNOD_EMPTY_KEY');
    expectCode(() => store.put({ key: new Uint8Array(0) }), 'SYNOD_EMPTY_KEY');
    expectCode(() => store.deleteRange({ key: new Uint8Array(0) }), 'SYNOD_EMPTY_KEY');
  });

  it('counts before the limit and says whether more matched', () => {
    const limited = store.range({ key: zero, rangeEnd: zero, limit: 2 });
    expect(limited).toMatchObject({ count: 5, more: true });
    expect(keys(limited.kvs)).toEqual(['a', 'ab']);
    expect(store.range({ key: zero, rangeEnd: zero, limit: 5 }).more).toBe(false);
    const countOnly = store.range({ key: zero, rangeEnd: zero, countOnly: true });
    expect(countOnly).toMatchObject({ count: 5, kvs: [], more: false });
    const keysOnly = store.range({ key: utf8('a'), keysOnly: true });
    expect(keysOnly.kvs[0]!.value).toHaveLength(0);
  });

  it('sorts by every target; a non-KEY target with NONE is ascending', () => {
    const all = { key: zero, rangeEnd: zero };
    expect(keys(store.range({ ...all, sortOrder: 'DESCEND' }).kvs))
      .toEqual(['c\xff', 'b', 'abc', 'ab', 'a']);
    expect(keys(store.range({ ...all, sortTarget: 'MOD' }).kvs))
      .toEqual(['a', 'ab', 'abc', 'b', 'c\xff']);
    expect(keys(store.range({ ...all, sortTarget: 'CREATE', sortOrder: 'DESCEND', limit: 2 }).kvs))
      .toEqual(['c\xff', 'b']);
    expect(keys(store.range({ ...all, sortTarget: 'VALUE', sortOrder: 'DESCEND' }).kvs)[0])
      .toBe('c\xff');
    expect(keys(store.range({ ...all, sortTarget: 'VERSION' }).kvs)).toHaveLength(5);
  });

  it('filters by mod and create revision after counting', () => {
    const all = { key: zero, rangeEnd: zero };
    const filtered = store.range({ ...all, minModRevision: 3, maxModRevision: 4 });
    expect(keys(filtered.kvs)).toEqual(['ab', 'abc']);
    expect(filtered.count).toBe(5);
    expect(keys(store.range({ ...all, minCreateRevision: 5 }).kvs)).toEqual(['b', 'c\xff']);
    expect(keys(store.range({ ...all, maxCreateRevision: 2 }).kvs)).toEqual(['a']);
    const limited = store.range({ ...all, minCreateRevision: 3, limit: 2 });
    expect(limited.more).toBe(true);
  });

  it('reads at a past revision; header is the current revision', () => {
    const history = MvccStore.open();
    put(history, 'k', 'one');
    put(history, 'k', 'two');
    history.deleteRange({ key: utf8('k') });
    const past = history.range({ key: utf8('k'), revision: 2 });
    expect(utf8Text(past.kvs[0]!.value)).toBe('one');
    expect(past.header.revision).toBe(4);
    expect(history.range({ key: utf8('k'), revision: 4 }).kvs).toEqual([]);
    expect(history.range({ key: utf8('k'), revision: 1 }).kvs).toEqual([]);
    expectCode(() => history.range({ key: utf8('k'), revision: 5 }), 'SYNOD_FUTURE_REVISION');
  });
});

describe('put', () => {
  it('ignore_value and ignore_lease keep the current value or lease, and need the key', () => {
    const store = MvccStore.open();
    expectCode(() => store.put({ key: utf8('k'), ignoreValue: true }), 'SYNOD_KEY_NOT_FOUND');
    expectCode(() => store.put({ key: utf8('k'), ignoreLease: true }), 'SYNOD_KEY_NOT_FOUND');
    expect(store.currentRevision).toBe(1);
    store.leaseGrant({ id: 7n, ttlSeconds: 10 });
    store.put({ key: utf8('k'), value: utf8('v'), lease: 7n });
    store.put({ key: utf8('k'), ignoreValue: true, ignoreLease: true });
    expect(store.range({ key: utf8('k') }).kvs[0])
      .toMatchObject({ value: utf8('v'), lease: 7n, version: 2 });
    store.put({ key: utf8('k'), value: utf8('w'), ignoreLease: true });
    expect(store.range({ key: utf8('k') }).kvs[0]).toMatchObject({ value: utf8('w'), lease: 7n });
  });

  it('rejects a value with ignore_value, a lease with ignore_lease, an unknown lease', () => {
    const store = MvccStore.open();
    put(store, 'k');
    expectCode(() => store.put({ key: utf8('k'), value: utf8('x'), ignoreValue: true }),
      'SYNOD_VALUE_PROVIDED');
    expectCode(() => store.put({ key: utf8('k'), lease: 1n, ignoreLease: true }),
      'SYNOD_LEASE_PROVIDED');
    expectCode(() => store.put({ key: utf8('k'), lease: 99n }), 'SYNOD_LEASE_NOT_FOUND');
    expect(store.currentRevision).toBe(2);
  });

  it('copies the caller\'s buffers', () => {
    const store = MvccStore.open();
    const key = utf8('k');
    const value = utf8('v');
    store.put({ key, value });
    key[0] = 0x7a;
    value[0] = 0x7a;
    expect(utf8Text(store.range({ key: utf8('k') }).kvs[0]!.value)).toBe('v');
  });
});

describe('compaction', () => {
  function history(): MvccStore {
    const store = MvccStore.open();
    put(store, 'a', 'a1'); // 2
    put(store, 'b', 'b1'); // 3
    put(store, 'a', 'a2'); // 4
    store.deleteRange({ key: utf8('b') }); // 5
    put(store, 'c', 'c1'); // 6
    return store;
  }

  it('rejects at or below the compaction point and above the current revision', () => {
    const store = history();
    expectCode(() => store.compact(7), 'SYNOD_FUTURE_REVISION');
    store.compact(4);
    expectCode(() => store.compact(4), 'SYNOD_COMPACTED');
    expectCode(() => store.compact(3), 'SYNOD_COMPACTED');
    expect(store.compact(6).header.revision).toBe(6);
  });

  it('accepts a first compaction at revision 0 once, as etcd does, and keeps it across reopen', () => {
    const backend = new MemoryBackend();
    const store = MvccStore.open({ backend });
    expect(store.compact(0).header.revision).toBe(1);
    expectCode(() => store.compact(0), 'SYNOD_COMPACTED');
    expectCode(() => MvccStore.open({ backend }).compact(0), 'SYNOD_COMPACTED');
    expect(MvccStore.open({ backend }).compactRevision).toBe(0);
    expect(MvccStore.open().compact(1).header.revision).toBe(1);
  });

  it('keeps the value of every key at the compaction revision and after', () => {
    const store = history();
    store.compact(5);
    expect(store.compactRevision).toBe(5);
    expectCode(() => store.range({ key: utf8('a'), revision: 4 }), 'SYNOD_COMPACTED');
    const atFive = store.range({ key: zero, rangeEnd: zero, revision: 5 });
    expect(keys(atFive.kvs)).toEqual(['a']);
    expect(utf8Text(atFive.kvs[0]!.value)).toBe('a2');
    expect(keys(store.range({ key: zero, rangeEnd: zero }).kvs)).toEqual(['a', 'c']);
    put(store, 'a', 'a3');
    expect(store.range({ key: utf8('a') }).kvs[0]).toMatchObject({ createRevision: 2, version: 3 });
  });

  it('frees superseded revisions in the backend', () => {
    const store = history();
    const before = [...store.backend.scan('key', { start: new Uint8Array(0) })].length;
    store.compact(6);
    const after = [...store.backend.scan('key', { start: new Uint8Array(0) })].length;
    expect(before).toBe(5);
    expect(after).toBe(2); // a@4, c@6
  });
});
