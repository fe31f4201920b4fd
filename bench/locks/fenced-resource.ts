/**
 * The resource the lock safety runs protect: a store that lock holders write to from inside their
 * critical sections. It fences as Kleppmann describes: a write carrying a token lower than the
 * highest it has accepted is refused; a write with no token (Redis, Redlock) is always accepted,
 * because the resource has nothing to check. It records every accepted write, in arrival order.
 *
 * Mutual exclusion held on the resource iff the accepted writes of different holders never
 * interleave: each holder's accepted writes span an interval [first, last] of arrival order, and
 * no two holders' intervals overlap. A stale holder whose late writes were refused does not count
 * against the lock — that is exactly what fencing is for.
 */

/** One write as a holder sends it. */
export interface ResourceWrite {
  /** Which grant wrote: one id per critical section. */
  readonly holder: string;
  /** The grant's fencing token; null when the backend has none. */
  readonly token: bigint | null;
}

/** The verdict over the accepted writes. */
export interface ExclusionVerdict {
  readonly held: boolean;
  /** Two holders whose accepted writes interleaved, when not held. */
  readonly witness: readonly [string, string] | null;
  readonly accepted: number;
  readonly refused: number;
}

/** A fencing store; pure apart from its own log. */
export class FencedResource {
  #highestToken: bigint | null = null;
  readonly #accepted: string[] = [];
  #refused = 0;

  /** Accepts the write unless its token is below the highest accepted; returns whether accepted. */
  write(write: ResourceWrite): boolean {
    if (write.token !== null && this.#highestToken !== null && write.token < this.#highestToken) {
      this.#refused++;
      return false;
    }
    if (write.token !== null && (this.#highestToken === null || write.token > this.#highestToken)) {
      this.#highestToken = write.token;
    }
    this.#accepted.push(write.holder);
    return true;
  }

  /** Whether the accepted writes of different holders never interleaved (see the module comment). */
  verdict(): ExclusionVerdict {
    const spans = new Map<string, { first: number; last: number }>();
    this.#accepted.forEach((holder, index) => {
      const span = spans.get(holder);
      if (span === undefined) spans.set(holder, { first: index, last: index });
      else span.last = index;
    });
    const ordered = [...spans.entries()].sort((a, b) => a[1].first - b[1].first);
    for (let i = 1; i < ordered.length; i++) {
      const [previous, previousSpan] = ordered[i - 1]!;
      const [current, currentSpan] = ordered[i]!;
      // Spans sorted by start: any overlap shows between neighbours once each span is widened to
      // the furthest end seen so far.
      if (currentSpan.first < previousSpan.last) {
        return { held: false, witness: [previous, current], accepted: this.#accepted.length, refused: this.#refused };
      }
      if (previousSpan.last > currentSpan.last) currentSpan.last = previousSpan.last;
    }
    return { held: true, witness: null, accepted: this.#accepted.length, refused: this.#refused };
  }
}
