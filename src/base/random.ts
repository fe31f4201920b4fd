/**
 * Seeded randomness. Every random choice in Synod's cores and simulator comes from a `Random` so a
 * run replays from its seed. The generator is xoshiro128** seeded through splitmix32: fast, 32-bit
 * arithmetic only (no BigInt), and statistically sound for simulation.
 */

/** A source of pseudo-random numbers. Implementations must be deterministic given their seed. */
export interface Random {
  /** A uniformly distributed integer in [0, 2^32). */
  nextUint32(): number;
  /** A uniformly distributed integer in [0, bound). `bound` must be a positive integer ≤ 2^32. */
  int(bound: number): number;
  /** A float in [0, 1). */
  float(): number;
  /** True with probability `p` (0 ≤ p ≤ 1). */
  chance(p: number): boolean;
}

function splitmix32(state: number): [number, number] {
  const next = (state + 0x9e3779b9) | 0;
  let z = next;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
  z ^= z >>> 16;
  return [next, z >>> 0];
}

/** xoshiro128** with a 128-bit state expanded from a 32-bit seed. */
export class SeededRandom implements Random {
  #s0: number;
  #s1: number;
  #s2: number;
  #s3: number;

  /** `seed` is any integer; equal seeds give equal sequences. */
  constructor(seed: number) {
    let state = seed | 0;
    const words: number[] = [];
    for (let i = 0; i < 4; i++) {
      const [nextState, word] = splitmix32(state);
      state = nextState;
      words.push(word);
    }
    this.#s0 = words[0]!;
    this.#s1 = words[1]!;
    this.#s2 = words[2]!;
    this.#s3 = words[3]! | 1; // The all-zero state is the one forbidden state.
  }

  nextUint32(): number {
    const result = Math.imul(rotl(Math.imul(this.#s1, 5), 7), 9) >>> 0;
    const t = this.#s1 << 9;
    this.#s2 ^= this.#s0;
    this.#s3 ^= this.#s1;
    this.#s1 ^= this.#s2;
    this.#s0 ^= this.#s3;
    this.#s2 ^= t;
    this.#s3 = rotl(this.#s3, 11);
    return result;
  }

  int(bound: number): number {
    if (!(bound > 0 && bound <= 0x1_0000_0000 && Number.isInteger(bound))) {
      throw new RangeError(`Random.int bound must be an integer in (0, 2^32], got ${bound}`);
    }
    // Rejection sampling keeps the distribution exactly uniform.
    const limit = 0x1_0000_0000 - (0x1_0000_0000 % bound);
    for (;;) {
      const value = this.nextUint32();
      if (value < limit) return value % bound;
    }
  }

  float(): number {
    return this.nextUint32() / 0x1_0000_0000;
  }

  chance(p: number): boolean {
    return this.float() < p;
  }

  /** Derives an independent generator, so adding draws in one component does not shift another's. */
  fork(): SeededRandom {
    return new SeededRandom(this.nextUint32());
  }
}

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}
