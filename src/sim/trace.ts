/**
 * A run's trace: every event the simulator decides folds into one 32-bit FNV-1a hash, so two runs
 * of a seed can be compared in one number (the determinism test), and, when asked, a readable line
 * per event for replaying a failing seed with `--verbose`. The readable text is built lazily so a
 * normal run pays for hashing a few integers per event and nothing else.
 */

/** FNV-1a offset basis and prime (32-bit). */
const fnvOffsetBasis = 0x811c9dc5;
const fnvPrime = 0x01000193;

/** The event log of one run. */
export class Trace {
  #hash = fnvOffsetBasis;
  #step = 0;
  #eventCount = 0;
  readonly #lines: string[] | null;

  constructor(options: { readonly verbose: boolean }) {
    this.#lines = options.verbose ? [] : null;
  }

  /** The simulation step events are stamped with until the next call. */
  setStep(step: number): void {
    this.#step = step;
    this.#fold(step);
  }

  /**
   * Records one event: `kind` names it, `facts` are its integers (node ids, indexes, terms).
   * `describe` renders it for people and runs only in verbose mode.
   */
  event(kind: string, facts: readonly number[], describe?: () => string): void {
    this.#eventCount++;
    for (let i = 0; i < kind.length; i++) this.#fold(kind.charCodeAt(i));
    for (const fact of facts) this.#fold(fact);
    if (this.#lines !== null) {
      const text = describe === undefined ? `${kind} ${facts.join(' ')}` : describe();
      this.#lines.push(`[${String(this.#step).padStart(5)}] ${text}`);
    }
  }

  /** Whether readable lines are being kept (callers may skip building expensive detail). */
  get verbose(): boolean {
    return this.#lines !== null;
  }

  /** The hash of every event so far, as 8 hex digits. */
  get hash(): string {
    return (this.#hash >>> 0).toString(16).padStart(8, '0');
  }

  /** Events recorded so far. */
  get eventCount(): number {
    return this.#eventCount;
  }

  /** The readable lines (empty unless verbose). */
  lines(): readonly string[] {
    return this.#lines ?? [];
  }

  #fold(value: number): void {
    // Fold the low and high 32-bit halves so step numbers and large ids both count.
    this.#hash = Math.imul(this.#hash ^ (value | 0), fnvPrime);
    const high = Math.floor(value / 0x1_0000_0000);
    if (high !== 0) this.#hash = Math.imul(this.#hash ^ (high | 0), fnvPrime);
  }
}

/** FNV-1a of bytes, for entry fingerprints. */
export function hashBytes(bytes: Uint8Array, seed: number = fnvOffsetBasis): number {
  let hash = seed;
  for (let i = 0; i < bytes.length; i++) hash = Math.imul(hash ^ bytes[i]!, fnvPrime);
  return hash >>> 0;
}

/** FNV-1a of a string's UTF-16 code units. */
export function hashString(text: string, seed: number = fnvOffsetBasis): number {
  let hash = seed;
  for (let i = 0; i < text.length; i++) hash = Math.imul(hash ^ text.charCodeAt(i), fnvPrime);
  return hash >>> 0;
}
