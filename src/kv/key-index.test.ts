import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { AssertionFailure } from '../base/index.js';
import { utf8, utf8Text } from './bytes.js';
import { KeyIndex, KeyIndexTree } from './key-index.js';
import { MemoryBackend } from './memory-backend.js';
import { compareRevisions, decodeRevision, encodeRevision } from './revision.js';

const at = (main: number, sub = 0) => ({ main, sub });

describe('KeyIndex', () => {
  // put@2, put@3, delete@4, put@6.1 → [{2, 3, 4 ✝}, {6.1}]
  function sample(): KeyIndex {
    const index = new KeyIndex(utf8('k'));
    index.put(at(2));
    index.put(at(3));
    index.tombstone(at(4));
    index.put(at(6, 1));
    return index;
  }

  it('answers the revision holding the value at each store revision', () => {
    const index = sample();
    expect([1, 2, 3, 4, 5, 6, 7].map((main) => index.revisionAt(main)))
      .toEqual([undefined, at(2), at(3), undefined, undefined, at(6, 1), at(6, 1)]);
    expect(index.isLive()).toBe(true);
  });

  it('compacts to the latest value at R, dropping a tombstone with its generation', () => {
    const index = sample();
    expect(index.compact(1)).toEqual([]);
    expect(index.compact(3)).toEqual([at(2)]);
    expect(index.revisionAt(3)).toEqual(at(3));
    expect(index.compact(5)).toEqual([at(3), at(4)]);
    expect(index.revisions()).toEqual([at(6, 1)]);
    const dead = new KeyIndex(utf8('d'));
    dead.put(at(2));
    dead.tombstone(at(3));
    expect(dead.compact(3)).toEqual([at(2), at(3)]);
    expect(dead.isEmpty()).toBe(true);
  });

  it('asserts on out-of-order revisions and on a tombstone of a dead key', () => {
    const index = sample();
    expect(() => index.put(at(6, 0))).toThrow(AssertionFailure);
    const fresh = new KeyIndex(utf8('x'));
    expect(() => fresh.tombstone(at(2))).toThrow(AssertionFailure);
  });
});

describe('KeyIndexTree', () => {
  it('ranges with etcd range_end rules, in key order', () => {
    const tree = new KeyIndexTree();
    for (const key of ['b', 'a', 'c', 'ab']) tree.getOrCreate(utf8(key)).put(at(2));
    const keys = (key: string, end: Uint8Array): string[] =>
      tree.range({ key: utf8(key), rangeEnd: end }).map((index) => utf8Text(index.key));
    expect(keys('a', new Uint8Array(0))).toEqual(['a']);
    expect(keys('a', utf8('b'))).toEqual(['a', 'ab']);
    expect(keys('ab', new Uint8Array([0]))).toEqual(['ab', 'b', 'c']);
    expect(keys('c', utf8('a'))).toEqual([]);
    expect(() => tree.remove(utf8('a'))).toThrow(AssertionFailure);
  });
});

describe('revision encoding and the memory backend', () => {
  it('orders encoded revisions as revisions', () => {
    const revision = fc.record({ main: fc.integer({ min: 1, max: 2 ** 40 }), sub: fc.nat(1000) });
    fc.assert(fc.property(revision, revision, (a, b) => {
      expect(decodeRevision(encodeRevision(a))).toEqual(a);
      const backend = new MemoryBackend();
      backend.commit([{ bucket: 'key', key: encodeRevision(a), value: utf8('a') },
        { bucket: 'key', key: encodeRevision(b), value: utf8('b') }]);
      const scanned = [...backend.scan('key', { start: new Uint8Array(0) })]
        .map((entry) => decodeRevision(entry.key));
      const expected = compareRevisions(a, b) === 0 ? [a] : [a, b].sort(compareRevisions);
      expect(scanned).toEqual(expected);
    }));
  });

  it('scans half-open ranges and applies a batch in order', () => {
    const backend = new MemoryBackend();
    backend.commit([
      { bucket: 'meta', key: utf8('b'), value: utf8('1') },
      { bucket: 'meta', key: utf8('a'), value: utf8('1') },
      { bucket: 'meta', key: utf8('c'), value: utf8('1') },
      { bucket: 'meta', key: utf8('b'), value: utf8('2') },
      { bucket: 'meta', key: utf8('c') },
    ]);
    const scan = (start: string, end?: string) => [...backend.scan('meta', {
      start: utf8(start), ...(end === undefined ? {} : { end: utf8(end) }),
    })].map((entry) => `${utf8Text(entry.key)}=${utf8Text(entry.value)}`);
    expect(scan('')).toEqual(['a=1', 'b=2']);
    expect(scan('a', 'b')).toEqual(['a=1']);
    expect(backend.get('key', utf8('a'))).toBeUndefined();
  });
});
