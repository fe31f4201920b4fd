/**
 * LeaderLatch (Curator's): a candidate that campaigns in the background through an Election
 * (election.ts) and campaigns again after each term, until it is closed or its session is lost.
 * Listeners learn of each change of state from `leader` and `notleader` events, and `close` once
 * it stops; `whenLeader()` waits for a term.
 *
 * A failed campaign (the cluster unreachable, a deadline) is retried after a delay that doubles
 * from `latchRetryDelayFirstMs` to `latchRetryDelayMaxMs`; `failures` reports them. A lost
 * session is final: its lease and key are gone, so the latch closes with the LeaseLostError.
 */

import { isSynodError } from '../../base/index.js';
import { LeaseLostError } from '../errors.js';
import type { Bytes } from '../kv-types.js';
import { Election, type Leadership } from './election.js';
import type { Session } from './session.js';
import { waitScope } from './wait.js';

/** A LeaderLatch waits this long after a failed campaign, doubling up to the cap below. */
const latchRetryDelayFirstMs = 100;
const latchRetryDelayMaxMs = 5000;

/** Options of `LeaderLatch.start`. */
export interface LeaderLatchOptions {
  /** The value the latch campaigns with (what `leader()` and observers see); default empty. */
  readonly value?: Bytes;
}

function untilAborted(signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    signal.addEventListener('abort', () => resolve(), { once: true });
  });
}

function delay(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
    function done(): void {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
  });
}

/**
 * A background candidate for one election. Dispatches `leader` when it gains a term,
 * `notleader` when the term ends, and `close` once it stops. Session loss ends the term and
 * closes the latch: start a new latch on a new session. `close()` (or dispose) resigns.
 */
export class LeaderLatch extends EventTarget implements AsyncDisposable {
  readonly election: Election;
  readonly #value: Bytes;
  readonly #stop = new AbortController();
  readonly #running: Promise<void>;
  #leadership: Leadership | null = null;
  #failures = 0;
  #lastFailure: unknown = null;

  private constructor(session: Session, name: string, options: LeaderLatchOptions) {
    super();
    this.election = new Election(session, name);
    this.#value = options.value ?? '';
    this.#running = this.#run();
  }

  /** Starts campaigning for `name` through `session`. */
  static start(session: Session, name: string, options: LeaderLatchOptions = {}): LeaderLatch {
    return new LeaderLatch(session, name, options);
  }

  /** Whether the latch holds a term now. */
  get isLeader(): boolean {
    return this.#leadership !== null;
  }

  /** The term held now, or null; its `lost` aborts when the term ends involuntarily. */
  get leadership(): Leadership | null {
    return this.#leadership;
  }

  /** Whether the latch has stopped (closed, or its session lost); `closeReason` says why. */
  get closed(): boolean {
    return this.#stop.signal.aborted;
  }

  /** Why the latch stopped: a LeaseLostError on session loss, an AbortError after `close()`. */
  get closeReason(): unknown {
    return this.#stop.signal.reason;
  }

  /** Failed campaign attempts since the last term began, and the last failure (retried). */
  get failures(): { readonly count: number; readonly last: unknown } {
    return { count: this.#failures, last: this.#lastFailure };
  }

  /** Resolves with the term once the latch leads; rejects if it closes or `signal` aborts first. */
  whenLeader(options: { readonly signal?: AbortSignal } = {}): Promise<Leadership> {
    if (this.#leadership !== null) return Promise.resolve(this.#leadership);
    if (this.closed) return Promise.reject(this.closeReason);
    return new Promise((resolve, reject) => {
      const finish = (settle: () => void): void => {
        this.removeEventListener('leader', onLeader);
        this.removeEventListener('close', onClose);
        options.signal?.removeEventListener('abort', onAbort);
        settle();
      };
      const onLeader = (): void => finish(() => resolve(this.#leadership!));
      const onClose = (): void => finish(() => reject(this.closeReason));
      const onAbort = (): void => finish(() => reject(options.signal?.reason));
      if (options.signal?.aborted === true) return onAbort();
      this.addEventListener('leader', onLeader);
      this.addEventListener('close', onClose);
      options.signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  /** Stops campaigning and resigns a term it holds; resolves once the latch has stopped. */
  async close(): Promise<void> {
    this.#stop.abort();
    await this.#running;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  async #run(): Promise<void> {
    const session = this.election.session;
    const stop = this.#stop.signal;
    const onSessionLost = (): void => this.#stop.abort(session.lost.reason);
    session.lost.addEventListener('abort', onSessionLost, { once: true });
    if (session.lost.aborted) onSessionLost();
    try {
      while (!stop.aborted) {
        const leadership = await this.#campaignOnce(stop);
        if (leadership !== null) await this.#lead(leadership, stop);
      }
    } finally {
      session.lost.removeEventListener('abort', onSessionLost);
      this.dispatchEvent(new Event('close'));
    }
  }

  /** One campaign; null when it failed (after the back-off) or the latch stopped. */
  async #campaignOnce(stop: AbortSignal): Promise<Leadership | null> {
    try {
      const leadership = await this.election.campaign(this.#value, { signal: stop });
      this.#failures = 0;
      return leadership;
    } catch (error) {
      if (stop.aborted) return null;
      if (isSynodError(error, 'SYNOD_LEASE_LOST')) {
        // The session was closed or orphaned without its keep-alive reporting a loss: final.
        this.#stop.abort(error);
        return null;
      }
      if (isSynodError(error, 'SYNOD_LEASE_NOT_FOUND')) {
        // The lease is gone on the server though the keep-alive has not noticed yet: final.
        const { leaseId } = this.election.session;
        this.#stop.abort(new LeaseLostError(leaseId, 'the session lease no longer exists'));
        return null;
      }
      this.#failures++;
      this.#lastFailure = error;
      const doublings = Math.min(this.#failures - 1, 8);
      const delayMs = Math.min(latchRetryDelayMaxMs, latchRetryDelayFirstMs * 2 ** doublings);
      await delay(delayMs, stop);
      return null;
    }
  }

  /** Holds the term until it is lost or the latch stops; resigns in the second case. */
  async #lead(leadership: Leadership, stop: AbortSignal): Promise<void> {
    this.#leadership = leadership;
    this.dispatchEvent(new Event('leader'));
    const scope = waitScope({ name: this.election.name, signals: [leadership.lost, stop] });
    await untilAborted(scope.signal);
    scope.dispose();
    this.#leadership = null;
    this.dispatchEvent(new Event('notleader'));
    if (leadership.held) await leadership.resign().catch(() => undefined);
  }
}
