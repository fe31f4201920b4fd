import { describe, expect, it } from 'vitest';
import { utf8, utf8Text } from './bytes.js';
import { MvccStore } from './mvcc-store.js';
import { expectCode } from '../../test/support/error-codes.js';


describe('leases', () => {
  it('grants with a chosen or a deterministic ID; raises the TTL to the minimum', () => {
    const store = MvccStore.open();
    expect(store.leaseGrant({ id: 2n, ttlSeconds: 60 })).toMatchObject({ id: 2n, ttlSeconds: 60 });
    expect(store.leaseGrant({ id: 0n, ttlSeconds: 1 })).toMatchObject({ id: 1n, ttlSeconds: 2 });
    expect(store.leaseGrant({ id: 0n, ttlSeconds: 5 }).id).toBe(3n);
    expect(store.leaseLeases().leases.map((lease) => lease.id)).toEqual([1n, 2n, 3n]);
    expect(store.currentRevision).toBe(1);
  });

  it('rejects an existing ID and a TTL above the maximum', () => {
    const store = MvccStore.open();
    store.leaseGrant({ id: 9n, ttlSeconds: 10 });
    expectCode(() => store.leaseGrant({ id: 9n, ttlSeconds: 10 }), 'SYNOD_LEASE_EXISTS');
    expectCode(() => store.leaseGrant({ id: 1n, ttlSeconds: 9_000_000_001 }),
      'SYNOD_LEASE_TTL_TOO_LARGE');
    store.leaseGrant({ id: 1n, ttlSeconds: 9_000_000_000 });
  });

  it('revoke deletes every attached key at one revision', () => {
    const store = MvccStore.open();
    store.leaseGrant({ id: 5n, ttlSeconds: 10 });
    for (const key of ['b', 'a', 'c']) store.put({ key: utf8(key), value: utf8('v'), lease: 5n });
    store.put({ key: utf8('free'), value: utf8('v') });
    expect(store.currentRevision).toBe(5);
    const { response, events } = store.leaseRevoke(5n);
    expect(response.header.revision).toBe(6);
    expect(events.map((event) => [event.type, utf8Text(event.kv.key), event.kv.modRevision]))
      .toEqual([['DELETE', 'a', 6], ['DELETE', 'b', 6], ['DELETE', 'c', 6]]);
    expect(store.range({ key: new Uint8Array([0]), rangeEnd: new Uint8Array([0]) }).count).toBe(1);
    expectCode(() => store.leaseRevoke(5n), 'SYNOD_LEASE_NOT_FOUND');
    expect(store.leaseTimeToLive({ id: 5n }).grantedTtlSeconds).toBe(-1);
  });

  it('revoke of a lease with no keys does not bump the revision', () => {
    const store = MvccStore.open();
    store.leaseGrant({ id: 5n, ttlSeconds: 10 });
    expect(store.leaseRevoke(5n).events).toEqual([]);
    expect(store.currentRevision).toBe(1);
  });

  it('detaches a key when it is overwritten with another lease or deleted', () => {
    const store = MvccStore.open();
    store.leaseGrant({ id: 1n, ttlSeconds: 10 });
    store.leaseGrant({ id: 2n, ttlSeconds: 10 });
    store.put({ key: utf8('a'), value: utf8('v'), lease: 1n });
    store.put({ key: utf8('b'), value: utf8('v'), lease: 1n });
    store.put({ key: utf8('c'), value: utf8('v'), lease: 1n });
    store.put({ key: utf8('a'), value: utf8('v'), lease: 2n });
    store.put({ key: utf8('c'), value: utf8('v') });
    store.deleteRange({ key: utf8('b') });
    const info = store.leaseTimeToLive({ id: 1n, keys: true });
    expect(info).toMatchObject({ id: 1n, grantedTtlSeconds: 10, keys: [] });
    expect(store.leaseTimeToLive({ id: 2n, keys: true }).keys.map(utf8Text)).toEqual(['a']);
    const before = store.currentRevision;
    store.leaseRevoke(1n);
    expect(store.currentRevision).toBe(before);
    expect(store.range({ key: utf8('c') }).count).toBe(1);
  });
});
