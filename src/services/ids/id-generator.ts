/**
 * One interface over every ID generator of `synod/ids`, so an application (and the ID service
 * and benchmark) can swap Snowflake, segments, the ring buffer, UUIDs, a ticket database or Redis
 * INCR without touching the code that asks for IDs.
 *
 * `next()` answers synchronously whenever the generator has an ID at hand (Snowflake within the
 * current millisecond's sequence, a segment with IDs left, a filled ring buffer) and returns a
 * promise only when it must wait (a segment fetch, the next millisecond after a sequence overflow
 * that lasts longer than a spin, a network round trip). A promise per ID would cost more than the
 * ID itself at millions per second; callers `await` the result either way, which is free for a
 * plain value.
 */

/** Which generator made an ID; the names the service and the benchmark report. */
export type IdGeneratorKind =
  | 'snowflake' | 'segment' | 'ringbuffer' | 'uuidv4' | 'uuidv7' | 'ticket' | 'redis';

/** A source of unique IDs of type `Id` (bigint for numeric generators, string for UUIDs). */
export interface IdGenerator<Id = bigint> extends AsyncDisposable {
  readonly kind: IdGeneratorKind;
  /** One new ID: unique across every generator sharing the same coordination (see each kind). */
  next(): Id | Promise<Id>;
  /** `count` new IDs, in the order `next()` would have given them. */
  nextBatch(count: number): Promise<Id[]>;
  /** Stops background work (prefetch, leases) and releases what the generator holds. */
  close(): Promise<void>;
}

/** A batch larger than this is refused: one call should not pin a generator for long. */
export const idBatchMax = 100_000;
