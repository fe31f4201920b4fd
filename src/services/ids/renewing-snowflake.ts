/**
 * A Snowflake generator for a long-running process (the ID service): it holds a leased worker id
 * and, when that lease is lost (a partition longer than the TTL, a paused process), leases a new
 * one instead of failing for good. Between the loss and the new lease, calls fail fast with
 * SYNOD_ID_WORKER_LEASE_LOST (the service answers 503), never with an id: the lost worker id may
 * already belong to someone else. Ids increase within each lease, not across a change of worker
 * id (a new worker id's ids may sort below the old one's within the same millisecond).
 */

import { SynodError, isSynodError } from '../../base/index.js';
import { idBatchMax, type IdGenerator } from './id-generator.js';
import { leaseSnowflakeGenerator, type LeasedSnowflakeOptions } from './leased-snowflake.js';
import type { SnowflakeGenerator } from './snowflake.js';
import { backoffDelayMs, newJitter } from './segment-store.js';

/** Pauses between failed attempts to lease a new worker id. */
const leaseRetryBounds = { firstMs: 100, maxMs: 5_000 } as const;

function leaseLost(): SynodError {
  return new SynodError('SYNOD_ID_WORKER_LEASE_LOST',
    'snowflake: the worker id lease was lost; a new one is being leased');
}

/** Snowflake ids from whichever worker id this process holds now. */
export class RenewingSnowflakeGenerator implements IdGenerator<bigint> {
  readonly kind = 'snowflake' as const;
  readonly #options: LeasedSnowflakeOptions;
  readonly #random = newJitter();
  #current: SnowflakeGenerator | null;
  #closed = false;
  #retryTimer: NodeJS.Timeout | null = null;
  #failures = 0;
  /** Worker ids leased since start, the first included. */
  leases = 1;

  private constructor(options: LeasedSnowflakeOptions, first: SnowflakeGenerator) {
    this.#options = options;
    this.#current = first;
    this.#watch(first);
  }

  /** Leases the first worker id; rejects as leaseSnowflakeGenerator does if none can be had. */
  static async start(options: LeasedSnowflakeOptions): Promise<RenewingSnowflakeGenerator> {
    return new RenewingSnowflakeGenerator(options, await leaseSnowflakeGenerator(options));
  }

  /** The generator of the current lease, or null while a new one is being leased. */
  get current(): SnowflakeGenerator | null {
    return this.#current;
  }

  next(): bigint | Promise<bigint> {
    return this.#live().next();
  }

  nextString(): string | Promise<string> {
    return this.#live().nextString();
  }

  async nextBatch(count: number): Promise<bigint[]> {
    if (!Number.isSafeInteger(count) || count < 1 || count > idBatchMax) {
      throw new SynodError('SYNOD_INVALID_ARGUMENT', `a batch is 1..${idBatchMax} ids`);
    }
    return this.#live().nextBatch(count);
  }

  async close(): Promise<void> {
    this.#closed = true;
    if (this.#retryTimer !== null) clearTimeout(this.#retryTimer);
    const current = this.#current;
    this.#current = null;
    await current?.close();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  #live(): SnowflakeGenerator {
    if (this.#closed) throw new SynodError('SYNOD_ID_GENERATOR_CLOSED', 'snowflake: closed');
    const current = this.#current;
    if (current === null) throw leaseLost();
    return current;
  }

  /** On loss of `generator`'s lease: drop it and lease anew. */
  #watch(generator: SnowflakeGenerator): void {
    generator.lost.addEventListener('abort', () => {
      if (this.#current !== generator) return;
      this.#current = null;
      void generator.close().catch(() => undefined);
      this.#leaseAgain();
    }, { once: true });
  }

  #leaseAgain(): void {
    if (this.#closed) return;
    leaseSnowflakeGenerator(this.#options).then((generator) => {
      if (this.#closed) {
        void generator.close();
        return;
      }
      this.#failures = 0;
      this.leases += 1;
      this.#current = generator;
      this.#watch(generator);
    }, (error: unknown) => {
      if (!isSynodError(error)) throw error;
      this.#failures += 1;
      const delayMs = backoffDelayMs(this.#failures - 1, leaseRetryBounds, this.#random);
      this.#retryTimer = setTimeout(() => {
        this.#retryTimer = null;
        this.#leaseAgain();
      }, delayMs);
      this.#retryTimer.unref();
    });
  }
}
