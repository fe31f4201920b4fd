/**
 * The memo of Lowe's improvement to Wing & Gong's search ("Testing for linearizability", 2017, §4):
 * two search configurations with the same set of linearized operations and equal model states
 * have the same future, so the second is never explored. A configuration is a bitset over the
 * operations plus a model state; bitsets live back to back in one growing arena so a million
 * entries cost a few words each rather than a typed-array object each.
 */

import { assert } from '../base/index.js';

/** Memory the memo may use, so a pathological history slows the search instead of exhausting memory. */
export const memoBytesMax = 256 * 1024 * 1024;

/** Bytes charged per entry on top of its bitset words: state reference, chain link, map slot. */
const entryOverheadBytes = 48;

/** A 32-bit mix of `value` (the murmur3 finalizer), used for Zobrist keys and hash combining. */
export function mix32(value: number): number {
  let hash = value | 0;
  hash = Math.imul(hash ^ (hash >>> 16), 0x85ebca6b);
  hash = Math.imul(hash ^ (hash >>> 13), 0xc2b2ae35);
  return (hash ^ (hash >>> 16)) | 0;
}

/**
 * A set of (linearized-operations bitset, model state) configurations. When full it stops
 * recording, which keeps the search correct (the memo only prunes) but slower.
 */
export class MemoCache<State> {
  readonly #wordCount: number;
  readonly #entriesMax: number;
  readonly #stateHash: (state: State) => number;
  readonly #stateEqual: (left: State, right: State) => boolean;
  /** Entry `e`'s bitset is `#arena[e * #wordCount, (e + 1) * #wordCount)`. */
  #arena: Uint32Array;
  readonly #states: State[] = [];
  /** The next entry in the same hash bucket, or -1. */
  readonly #chainNext: number[] = [];
  /** Hash → the first entry of its bucket. */
  readonly #bucketHeads = new Map<number, number>();

  /** `wordCount` is the length of every bitset passed in. */
  constructor(options: {
    readonly wordCount: number;
    readonly stateHash: (state: State) => number;
    readonly stateEqual: (left: State, right: State) => boolean;
  }) {
    assert(Number.isInteger(options.wordCount) && options.wordCount >= 1, 'bad bitset word count');
    this.#wordCount = options.wordCount;
    this.#entriesMax = Math.floor(memoBytesMax / (options.wordCount * 4 + entryOverheadBytes));
    this.#stateHash = options.stateHash;
    this.#stateEqual = options.stateEqual;
    this.#arena = new Uint32Array(options.wordCount * 1024);
    assert(this.#entriesMax >= 1024, 'memo bound too small for this history');
  }

  /** How many configurations are recorded. */
  get size(): number {
    return this.#states.length;
  }

  /**
   * Records the configuration unless it is already present. Returns false when it was present (the
   * search must not explore it again), true otherwise. `bitsHash` is a hash of `bits` only.
   */
  insertIfAbsent(bits: Uint32Array, bitsHash: number, state: State): boolean {
    assert(bits.length === this.#wordCount, 'bitset length changed');
    const hash = (bitsHash ^ mix32(this.#stateHash(state))) | 0;
    const head = this.#bucketHeads.get(hash);
    for (let entry = head ?? -1; entry !== -1; entry = this.#chainNext[entry]!) {
      if (this.#bitsEqual(entry, bits) && this.#stateEqual(this.#states[entry]!, state)) return false;
    }
    if (this.#states.length >= this.#entriesMax) return true;
    const entry = this.#states.length;
    this.#reserve(entry + 1);
    this.#arena.set(bits, entry * this.#wordCount);
    this.#states.push(state);
    this.#chainNext.push(head ?? -1);
    this.#bucketHeads.set(hash, entry);
    assert(this.#chainNext.length === this.#states.length);
    return true;
  }

  #bitsEqual(entry: number, bits: Uint32Array): boolean {
    const base = entry * this.#wordCount;
    for (let word = 0; word < this.#wordCount; word++) {
      if (this.#arena[base + word] !== bits[word]) return false;
    }
    return true;
  }

  #reserve(entries: number): void {
    const wordsNeeded = entries * this.#wordCount;
    if (wordsNeeded <= this.#arena.length) return;
    const grown = new Uint32Array(Math.max(wordsNeeded, this.#arena.length * 2));
    grown.set(this.#arena);
    this.#arena = grown;
  }
}
