import { describe, expect, it } from 'vitest';
import { AssertionFailure } from '../../../base/index.js';
import { LinkTable } from './link-table.js';

describe('LinkTable', () => {
  it('cuts one direction only', () => {
    const links = new LinkTable(['a', 'b', 'c']);
    links.cut('a', 'b');
    expect(links.isCut('a', 'b')).toBe(true);
    expect(links.isCut('b', 'a')).toBe(false);
    expect(links.isCut('a', 'c')).toBe(false);
    expect(links.describe()).toEqual(['a→b']);
  });

  it('partitions both ways between groups and leaves unlisted members alone', () => {
    const links = new LinkTable(['a', 'b', 'c', 'd', 'e']);
    links.partition([['a'], ['b', 'c'], ['d']]);
    expect(links.describe()).toEqual(
      ['a→b', 'a→c', 'a→d', 'b→a', 'b→d', 'c→a', 'c→d', 'd→a', 'd→b', 'd→c'].sort(),
    );
    expect(links.isCut('b', 'c')).toBe(false);
    expect(links.isCut('e', 'a')).toBe(false);
  });

  it('clears every cut', () => {
    const links = new LinkTable(['a', 'b']);
    links.partition([['a'], ['b']]);
    expect(links.empty).toBe(false);
    links.clear();
    expect(links.empty).toBe(true);
    expect(links.isCut('a', 'b')).toBe(false);
  });

  it('rejects misuse as bugs', () => {
    const links = new LinkTable(['a', 'b']);
    expect(() => links.cut('a', 'a')).toThrow(AssertionFailure);
    expect(() => links.cut('a', 'z')).toThrow(AssertionFailure);
    expect(() => links.partition([['a'], ['a', 'b']])).toThrow(AssertionFailure);
    expect(() => new LinkTable(['a', 'a'])).toThrow(AssertionFailure);
  });
});
