import { describe, expect, it } from 'vitest';
import { collectMarks } from '../base/index.js';
import { utf8, utf8Text } from './bytes.js';
import { MvccStore } from './mvcc-store.js';
import type { Compare, RequestOp, TxnRequest } from './types.js';
import { expectCode } from '../../test/support/error-codes.js';


type WithoutKey<T> = T extends unknown ? Omit<T, 'key'> : never;

const putOp = (key: string, value = key): RequestOp =>
  ({ requestPut: { key: utf8(key), value: utf8(value) } });
const getOp = (key: string): RequestOp => ({ requestRange: { key: utf8(key) } });
const deleteOp = (key: string, rangeEnd?: string): RequestOp => ({
  requestDeleteRange: {
    key: utf8(key), ...(rangeEnd === undefined ? {} : { rangeEnd: utf8(rangeEnd) }),
  },
});
const txnOp = (request: TxnRequest): RequestOp => ({ requestTxn: request });

describe('txn compares', () => {
  it('a missing key compares as zeros, except VALUE which always fails', () => {
    const store = MvccStore.open();
    const holds = (comparison: Compare): boolean =>
      store.txn({ compare: [comparison] }).response.succeeded;
    const key = utf8('missing');
    expect(holds({ key, target: 'VERSION', version: 0, result: 'EQUAL' })).toBe(true);
    expect(holds({ key, target: 'CREATE', createRevision: 0, result: 'EQUAL' })).toBe(true);
    expect(holds({ key, target: 'MOD', modRevision: 1, result: 'LESS' })).toBe(true);
    expect(holds({ key, target: 'LEASE', lease: 0n, result: 'EQUAL' })).toBe(true);
    expect(holds({ key, target: 'VALUE', value: new Uint8Array(0), result: 'EQUAL' })).toBe(false);
    expect(holds({ key, target: 'VALUE', value: utf8('x'), result: 'NOT_EQUAL' })).toBe(false);
  });

  it('compares every target and result on a present key', () => {
    const store = MvccStore.open();
    store.put({ key: utf8('k'), value: utf8('m') }); // 2
    store.put({ key: utf8('k'), value: utf8('m') }); // 3
    const holds = (comparison: WithoutKey<Compare>): boolean =>
      store.txn({ compare: [{ key: utf8('k'), ...comparison } as Compare] }).response.succeeded;
    expect(holds({ target: 'VERSION', version: 2, result: 'EQUAL' })).toBe(true);
    expect(holds({ target: 'CREATE', createRevision: 2, result: 'EQUAL' })).toBe(true);
    expect(holds({ target: 'MOD', modRevision: 2, result: 'GREATER' })).toBe(true);
    expect(holds({ target: 'MOD', modRevision: 3, result: 'NOT_EQUAL' })).toBe(false);
    expect(holds({ target: 'VALUE', value: utf8('n'), result: 'LESS' })).toBe(true);
    expect(holds({ target: 'VALUE', value: utf8('m'), result: 'EQUAL' })).toBe(true);
    expect(holds({ target: 'LEASE', lease: 0n, result: 'EQUAL' })).toBe(true);
  });

  it('with range_end, every key in the span must match', () => {
    const store = MvccStore.open();
    store.put({ key: utf8('a1'), value: utf8('x') });
    store.put({ key: utf8('a2'), value: utf8('x') });
    const compare = (value: string): Compare => ({
      key: utf8('a'), rangeEnd: utf8('b'), target: 'VALUE', value: utf8(value), result: 'EQUAL',
    });
    expect(store.txn({ compare: [compare('x')] }).response.succeeded).toBe(true);
    store.put({ key: utf8('a2'), value: utf8('y') });
    expect(store.txn({ compare: [compare('x')] }).response.succeeded).toBe(false);
  });
});

describe('txn ops', () => {
  it('runs the chosen branch; later ops see earlier writes; one revision for all', () => {
    const store = MvccStore.open();
    store.put({ key: utf8('x'), value: utf8('x') });
    const compare: Compare = { key: utf8('k'), target: 'VERSION', version: 0, result: 'EQUAL' };
    const { response, events } = store.txn({
      compare: [compare],
      success: [putOp('k', 'v'), getOp('k'), putOp('j'), deleteOp('x', 'y')],
      failure: [getOp('k')],
    });
    expect(response.succeeded).toBe(true);
    expect(store.currentRevision).toBe(3);
    expect(response.header.revision).toBe(3);
    const read = response.responses[1]!;
    const headers = response.responses.map((op) => Object.values(op)[0].header.revision);
    expect(headers).toEqual([3, 3, 3, 3]);
    const readOnlyFirst = store.txn({ success: [getOp('k'), putOp('k2')] }).response;
    expect(readOnlyFirst.responses.map((op) => Object.values(op)[0].header.revision))
      .toEqual([3, 4]);
    expect(readOnlyFirst.header.revision).toBe(4);
    expect('responseRange' in read && utf8Text(read.responseRange.kvs[0]!.value)).toBe('v');
    expect(events.map((event) => event.type)).toEqual(['PUT', 'PUT', 'DELETE']);
    expect(events.every((event) => event.kv.modRevision === 3)).toBe(true);
    expect(events.map((event) => event.kv.key.length)).toEqual([1, 1, 1]);
    const again = store.txn({ compare: [compare], success: [putOp('k')], failure: [getOp('k')] });
    expect(again.response.succeeded).toBe(false);
    expect(store.currentRevision).toBe(4);
  });

  it('a read-only txn and a txn whose delete matched nothing do not bump the revision', () => {
    const store = MvccStore.open();
    store.txn({ success: [getOp('a')] });
    store.txn({ success: [deleteOp('a')] });
    expect(store.currentRevision).toBe(1);
  });

  it('runs nested txns, their compares judged at the start of the outer txn', () => {
    const store = MvccStore.open();
    const unset: Compare = { key: utf8('k'), target: 'VERSION', version: 0, result: 'EQUAL' };
    const { response } = store.txn({
      success: [
        putOp('k'),
        txnOp({ compare: [unset], success: [putOp('yes')], failure: [putOp('no')] }),
      ],
    });
    const nested = response.responses[1]!;
    expect('responseTxn' in nested && nested.responseTxn.succeeded).toBe(true);
    expect(store.range({ key: utf8('yes') }).count).toBe(1);
  });

  it('fails whole when a chosen put meets an expected error', () => {
    const store = MvccStore.open();
    expectCode(() => store.txn({
      success: [putOp('a'), { requestPut: { key: utf8('b'), ignoreValue: true } }],
    }), 'SYNOD_KEY_NOT_FOUND');
    const leased: RequestOp = { requestPut: { key: utf8('b'), lease: 5n } };
    expectCode(() => store.txn({ success: [putOp('a'), leased] }),
      'SYNOD_LEASE_NOT_FOUND');
    const future: RequestOp = { requestRange: { key: utf8('a'), revision: 9 } };
    expectCode(() => store.txn({ success: [putOp('a'), future] }),
      'SYNOD_FUTURE_REVISION');
    expect(store.currentRevision).toBe(1);
    expect(store.range({ key: utf8('a') }).count).toBe(0);
  });
});

describe('txn reads', () => {
  it('reads at a past revision inside a txn; a compacted one fails the whole txn', () => {
    const store = MvccStore.open();
    store.put({ key: utf8('k'), value: utf8('old') }); // 2
    store.put({ key: utf8('k'), value: utf8('new') }); // 3
    const { response } = store.txn({
      success: [putOp('other'), { requestRange: { key: utf8('k'), revision: 2 } }],
    });
    const read = response.responses[1]!;
    expect('responseRange' in read && utf8Text(read.responseRange.kvs[0]!.value)).toBe('old');
    store.compact(3);
    expectCode(() => store.txn({
      success: [putOp('other'), { requestRange: { key: utf8('k'), revision: 2 } }],
    }), 'SYNOD_COMPACTED');
    expect(store.currentRevision).toBe(4);
  });
});

describe('txn checks', () => {
  it('limits each list to 128 ops by default; nested txns share the budget', () => {
    const store = MvccStore.open();
    const gets = (count: number): RequestOp[] =>
      Array.from({ length: count }, (_, index) => getOp(`k${index}`));
    store.txn({ success: gets(128) });
    expectCode(() => store.txn({ success: gets(129) }), 'SYNOD_TOO_MANY_OPS');
    expectCode(() => store.txn({ failure: gets(129) }), 'SYNOD_TOO_MANY_OPS');
    const compares = Array.from({ length: 129 }, (): Compare =>
      ({ key: utf8('k'), target: 'VERSION', version: 0, result: 'EQUAL' }));
    expectCode(() => store.txn({ compare: compares }), 'SYNOD_TOO_MANY_OPS');
    // 100 gets and the nested txn make 101 ops, leaving the nested txn a budget of 27.
    expectCode(() => store.txn({ success: [...gets(100), txnOp({ success: gets(28) })] }),
      'SYNOD_TOO_MANY_OPS');
    store.txn({ success: [...gets(100), txnOp({ success: gets(27) })] });
    const small = MvccStore.open({ txnOpsMax: 2 });
    expectCode(() => small.txn({ success: gets(3) }), 'SYNOD_TOO_MANY_OPS');
  });

  it('rejects empty keys anywhere in a txn', () => {
    const store = MvccStore.open();
    const empty = new Uint8Array(0);
    const compare: Compare = { key: empty, target: 'VERSION', version: 0, result: 'EQUAL' };
    expectCode(() => store.txn({ compare: [compare] }),
      'SYNOD_EMPTY_KEY');
    const emptyRange: RequestOp = { requestRange: { key: empty } };
    expectCode(() => store.txn({ failure: [txnOp({ success: [emptyRange] })] }),
      'SYNOD_EMPTY_KEY');
    const valued: RequestOp = {
      requestPut: { key: utf8('a'), value: utf8('x'), ignoreValue: true },
    };
    expectCode(() => store.txn({ success: [valued] }),
      'SYNOD_VALUE_PROVIDED');
  });

  it('rejects duplicate writes at any depth; then and else may reuse a key', () => {
    const store = MvccStore.open();
    const duplicate = (request: TxnRequest): void =>
      expectCode(() => store.txn(request), 'SYNOD_DUPLICATE_KEY');
    duplicate({ success: [putOp('a'), putOp('a')] });
    duplicate({ failure: [putOp('a'), putOp('a')] });
    duplicate({ success: [deleteOp('a', 'c'), putOp('b')] });
    duplicate({ success: [putOp('b'), deleteOp('a', 'c')] });
    duplicate({ success: [putOp('a'), txnOp({ success: [putOp('a')] })] });
    duplicate({ success: [txnOp({ success: [deleteOp('a')] }), putOp('a')] });
    duplicate({ success: [txnOp({ success: [putOp('a')] }), txnOp({ failure: [putOp('a')] })] });
    store.txn({ success: [putOp('a')], failure: [putOp('a')] });
    store.txn({ success: [txnOp({ success: [putOp('a')], failure: [putOp('a')] })] });
    store.txn({ success: [deleteOp('a'), deleteOp('a', 'b'), putOp('b')] });
    expect(store.currentRevision).toBe(4);
  });

  it('like etcd, does not see a put under a delete whose range_end is "\\0"', () => {
    const store = MvccStore.open();
    const marks = collectMarks(() => store.txn({ success: [putOp('z'), deleteOp('a', '\0')] }));
    expect(marks.get('txn check: unbounded delete ignored for duplicates')).toBe(1);
    expect(store.range({ key: utf8('z') }).count).toBe(0);
  });
});
