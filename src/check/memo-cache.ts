/**
 * The memo of Lowe's improvement to Wing & Gong's search ("Testing for linearizability", 2017):
 * two search configurations with the same linearized operations and equal model states have the
 * same future, so the second is never explored.
 *
 * Unanswered operations get a weaker rule that keeps them from multiplying the search by two each:
 * a configuration that has linearized fewer of them, with the same answered operations and state,
 * can do everything the other can (it may simply never linearize the rest). So a configuration is
 * skipped when one with the same answered set and state and a subset of its unanswered set was
 * visited. Bitsets live back to back in one growing arena, so a million entries cost a few words
 * each rather than a typed-array object each.
 */

import { assert } from '../base/index.js';

/** Memory the memo may use: a pathological history slows the search rather than exhaust memory. */
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

/** The shape of the bitsets a memo holds. */
export interface MemoCacheOptions<State> {
  /** Words in every bitset over answered operations. At least 1. */
  readonly answeredWordCount: number;
  /** Words in every bitset over unanswered operations. May be 0. */
  readonly unansweredWordCount: number;
  readonly stateHash: (state: State) => number;
  readonly stateEqual: (left: State, right: State) => boolean;
  /** Defaults to `memoBytesMax`. */
  readonly bytesMax?: number;
}

/**
 * The visited search configurations. When full it stops recording, which keeps the search correct
 * (the memo only prunes) but slower.
 */
export class MemoCache<State> {
  readonly #answeredWordCount: number;
  readonly #entryWordCount: number;
  readonly #entriesMax: number;
  readonly #stateHash: (state: State) => number;
  readonly #stateEqual: (left: State, right: State) => boolean;
  /** Entry `e` is `#arena[e * #entryWordCount, …)`: its answered bits, then its unanswered bits. */
  #arena: Uint32Array;
  readonly #states: State[] = [];
  /** The next entry in the same hash bucket, or -1. */
  readonly #chainNext: number[] = [];
  /** Hash of (answered bits, state) → the first entry of its bucket. */
  readonly #bucketHeads = new Map<number, number>();
  #comparisons = 0;

  constructor(options: MemoCacheOptions<State>) {
    const { answeredWordCount, unansweredWordCount } = options;
    assert(Number.isInteger(answeredWordCount) && answeredWordCount >= 1, 'bad word count');
    assert(Number.isInteger(unansweredWordCount) && unansweredWordCount >= 0, 'bad word count');
    this.#answeredWordCount = answeredWordCount;
    this.#entryWordCount = answeredWordCount + unansweredWordCount;
    const entryBytes = this.#entryWordCount * 4 + entryOverheadBytes;
    this.#entriesMax = Math.floor((options.bytesMax ?? memoBytesMax) / entryBytes);
    this.#stateHash = options.stateHash;
    this.#stateEqual = options.stateEqual;
    this.#arena = new Uint32Array(this.#entryWordCount * Math.min(1024, this.#entriesMax));
    assert(this.#entriesMax >= 1, 'memo bound too small for one entry');
  }

  /** How many configurations are recorded. */
  get size(): number {
    return this.#states.length;
  }

  /** How many recorded configurations `visit` has compared against so far: its cost. */
  get comparisons(): number {
    return this.#comparisons;
  }

  /**
   * Records a configuration the search is about to explore. Returns false when a visited one covers
   * it (same answered bits and state, unanswered bits a subset), so the search must skip it; true
   * otherwise. `answeredHash` is a hash of `answered` alone.
   */
  visit(
    answered: Uint32Array,
    answeredHash: number,
    unanswered: Uint32Array,
    state: State,
  ): boolean {
    assert(answered.length === this.#answeredWordCount, 'answered bitset length changed');
    assert(answered.length + unanswered.length === this.#entryWordCount, 'bitset length changed');
    const hash = (answeredHash ^ mix32(this.#stateHash(state))) | 0;
    const head = this.#bucketHeads.get(hash);
    for (let entry = head ?? -1; entry !== -1; entry = this.#chainNext[entry]!) {
      this.#comparisons++;
      if (!this.#stateEqual(this.#states[entry]!, state)) continue;
      if (this.#covers(entry, answered, unanswered)) return false;
    }
    if (this.#states.length >= this.#entriesMax) return true;
    const entry = this.#states.length;
    this.#reserve(entry + 1);
    const base = entry * this.#entryWordCount;
    this.#arena.set(answered, base);
    this.#arena.set(unanswered, base + answered.length);
    this.#states.push(state);
    this.#chainNext.push(head ?? -1);
    this.#bucketHeads.set(hash, entry);
    assert(this.#chainNext.length === this.#states.length);
    return true;
  }

  #covers(entry: number, answered: Uint32Array, unanswered: Uint32Array): boolean {
    const base = entry * this.#entryWordCount;
    for (let word = 0; word < answered.length; word++) {
      if (this.#arena[base + word] !== answered[word]) return false;
    }
    const unansweredBase = base + answered.length;
    for (let word = 0; word < unanswered.length; word++) {
      const stored = this.#arena[unansweredBase + word]!;
      if ((stored & unanswered[word]!) >>> 0 !== stored) return false;
    }
    return true;
  }

  #reserve(entries: number): void {
    const wordsNeeded = entries * this.#entryWordCount;
    if (wordsNeeded <= this.#arena.length) return;
    const grown = new Uint32Array(Math.max(wordsNeeded, this.#arena.length * 2));
    grown.set(this.#arena);
    this.#arena = grown;
  }
}
