/**
 * The watchdog of a lock that expires unless renewed (Redis, Redlock, SQL lock rows), as Redisson
 * keeps its locks: while the holder lives, the lock's expiry is pushed forward every
 * `renewIntervalMs` (a third of the TTL by default), so a long critical section keeps its lock and
 * a crashed holder's lock still expires one TTL after its last renewal.
 *
 * Loss is decided conservatively, from the holder's own clock: the lock counts as lost as soon as
 * a renewal is refused (someone else holds it now), or once `ttlMs` has passed since the start of
 * the last renewal that succeeded — a renewal that is merely slow does not stretch the holder's
 * belief past what the backend promised. The `lost` signal then aborts with the reason.
 */

import { assert } from '../../base/index.js';

/** One renewal attempt: true if the backend extended this holder's lock, false if it is not ours. */
export type Renew = () => Promise<boolean>;

/** How the watchdog paces itself. */
export interface RenewalWatchdogOptions {
  /** How long one grant or renewal keeps the lock, in milliseconds. */
  readonly ttlMs: number;
  /** Time between renewals; default `ttlMs / 3`. Must be below `ttlMs`. */
  readonly renewIntervalMs?: number;
  /** Extends the lock; rejections count as failed attempts, retried until the TTL runs out. */
  readonly renew: Renew;
  /** Milliseconds on a monotonic clock; `performance.now` by default. */
  readonly now?: () => number;
}

/** Renews a held lock until stopped or lost. */
export class RenewalWatchdog {
  readonly #options: Required<RenewalWatchdogOptions>;
  readonly #lost = new AbortController();
  #validUntilMs: number;
  #timer: NodeJS.Timeout | null = null;
  #expiryTimer: NodeJS.Timeout | null = null;
  #stopped = false;

  /** Starts renewing a lock granted at `grantedAtMs` (taken before the grant was requested). */
  constructor(options: RenewalWatchdogOptions, grantedAtMs: number) {
    const now = options.now ?? (() => performance.now());
    const renewIntervalMs = options.renewIntervalMs ?? Math.max(1, Math.floor(options.ttlMs / 3));
    assert(options.ttlMs > 0, 'watchdog: ttlMs must be positive');
    assert(renewIntervalMs > 0 && renewIntervalMs < options.ttlMs, 'watchdog: renew interval must be inside the TTL');
    this.#options = { ...options, renewIntervalMs, now };
    this.#validUntilMs = grantedAtMs + options.ttlMs;
    this.#armExpiry();
    this.#schedule();
  }

  /** Aborts (with an Error saying why) once the lock may no longer be held. */
  get lost(): AbortSignal {
    return this.#lost.signal;
  }

  /** Stops renewing (the holder is releasing); the lost signal does not fire afterwards. */
  stop(): void {
    this.#stopped = true;
    this.#clearTimers();
  }

  /** Declares the lock lost now, e.g. when the backend connection closed. */
  markLost(reason: string): void {
    if (this.#stopped || this.#lost.signal.aborted) return;
    this.#clearTimers();
    this.#lost.abort(new Error(reason));
  }

  #clearTimers(): void {
    if (this.#timer !== null) clearTimeout(this.#timer);
    if (this.#expiryTimer !== null) clearTimeout(this.#expiryTimer);
    this.#timer = null;
    this.#expiryTimer = null;
  }

  #armExpiry(): void {
    if (this.#expiryTimer !== null) clearTimeout(this.#expiryTimer);
    const remainingMs = Math.max(0, this.#validUntilMs - this.#options.now());
    this.#expiryTimer = setTimeout(() => this.markLost('the lock TTL passed without a successful renewal'), remainingMs);
    this.#expiryTimer.unref();
  }

  #schedule(): void {
    if (this.#stopped || this.#lost.signal.aborted) return;
    this.#timer = setTimeout(() => void this.#renewOnce(), this.#options.renewIntervalMs);
    this.#timer.unref();
  }

  async #renewOnce(): Promise<void> {
    const startedMs = this.#options.now();
    let extended: boolean;
    try {
      extended = await this.#options.renew();
    } catch {
      // A failed attempt is retried at the next interval while the TTL still covers us.
      this.#schedule();
      return;
    }
    if (this.#stopped || this.#lost.signal.aborted) return;
    if (!extended) {
      this.markLost('a renewal found the lock held by someone else or gone');
      return;
    }
    this.#validUntilMs = Math.max(this.#validUntilMs, startedMs + this.#options.ttlMs);
    this.#armExpiry();
    this.#schedule();
  }
}
