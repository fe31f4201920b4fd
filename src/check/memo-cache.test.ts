import { describe, expect, it } from 'vitest';
import { MemoCache, mix32, type MemoCacheOptions } from './memo-cache.js';

const stringHash = (state: string) => mix32(state.length * 31 + (state.charCodeAt(0) || 0));
const stringEqual = (left: string, right: string) => left === right;
const bits = (...words: number[]) => new Uint32Array(words);
const none = bits();

function memo(overrides: Partial<MemoCacheOptions<string>> = {}): MemoCache<string> {
  return new MemoCache<string>({
    answeredWordCount: 2,
    unansweredWordCount: 0,
    stateHash: stringHash,
    stateEqual: stringEqual,
    ...overrides,
  });
}

describe('MemoCache', () => {
  it('tells visited configurations from new ones by answered bits and state', () => {
    const cache = memo();
    expect(cache.visit(bits(1, 0), 7, none, 'a')).toBe(true);
    expect(cache.visit(bits(1, 0), 7, none, 'a')).toBe(false);
    expect(cache.visit(bits(1, 0), 7, none, 'b')).toBe(true);
    expect(cache.visit(bits(1, 1), 7, none, 'a')).toBe(true);
    expect(cache.size).toBe(3);
  });

  it('skips a configuration with more unanswered operations linearized, not fewer', () => {
    const cache = memo({ answeredWordCount: 1, unansweredWordCount: 2 });
    expect(cache.visit(bits(3), 3, bits(0b0101, 0), 'a')).toBe(true);
    expect(cache.visit(bits(3), 3, bits(0b0111, 0), 'a')).toBe(false);
    expect(cache.visit(bits(3), 3, bits(0b0101, 0x8000_0000), 'a')).toBe(false);
    expect(cache.visit(bits(3), 3, bits(0b0001, 0), 'a')).toBe(true);
    expect(cache.visit(bits(3), 3, bits(0b0110, 0), 'a')).toBe(true);
    expect(cache.visit(bits(3), 3, bits(0b0111, 0), 'b')).toBe(true);
    expect(cache.visit(bits(7), 7, bits(0b0111, 0), 'a')).toBe(true);
  });

  it('survives hash collisions and growth', () => {
    const cache = memo({ answeredWordCount: 1, stateHash: () => 0 });
    for (let index = 0; index < 5000; index++) {
      expect(cache.visit(bits(index), 0, none, 's')).toBe(true);
    }
    for (let index = 0; index < 5000; index += 499) {
      expect(cache.visit(bits(index), 0, none, 's')).toBe(false);
    }
    expect(cache.size).toBe(5000);
  });

  it('stops recording when full but still recognizes what it holds', () => {
    const cache = memo({ answeredWordCount: 1, bytesMax: 2 * (4 + 48) });
    expect(cache.visit(bits(1), 1, none, 'a')).toBe(true);
    expect(cache.visit(bits(2), 2, none, 'a')).toBe(true);
    expect(cache.visit(bits(3), 3, none, 'a')).toBe(true);
    expect(cache.visit(bits(3), 3, none, 'a')).toBe(true);
    expect(cache.visit(bits(1), 1, none, 'a')).toBe(false);
    expect(cache.size).toBe(2);
  });
});
