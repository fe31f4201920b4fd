/**
 * ReentrantMutex: a Mutex the same holder may take again while it holds it (Curator's
 * InterProcessMutex). Node has no threads to own a lock, so the owner is this object: nested
 * `acquire` calls on it while held return at once and count; the lock is released on the server
 * when every nested grant has been released. The fencing token and `lost` signal are the outer
 * grant's. Use one ReentrantMutex per logical holder (a request, a job), never shared between
 * holders that must exclude each other.
 */

import type { AcquireOptions, HeldLock } from '../locks/lock.js';
import { Mutex } from './mutex.js';
import type { Session } from './session.js';

/** A nested grant: releasing it lowers the hold count. */
class NestedGrant implements HeldLock {
  readonly #outer: HeldLock;
  readonly #onRelease: () => Promise<void>;
  #released = false;

  constructor(outer: HeldLock, onRelease: () => Promise<void>) {
    this.#outer = outer;
    this.#onRelease = onRelease;
  }

  get name(): string {
    return this.#outer.name;
  }

  get fencingToken(): bigint | null {
    return this.#outer.fencingToken;
  }

  get lost(): AbortSignal {
    return this.#outer.lost;
  }

  async release(): Promise<void> {
    if (this.#released) return;
    this.#released = true;
    await this.#onRelease();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.release();
  }
}

/** A Mutex its holder may nest. */
export class ReentrantMutex {
  readonly #mutex: Mutex;
  #outer: HeldLock | null = null;
  #holds = 0;

  constructor(session: Session, name: string) {
    this.#mutex = new Mutex(session, name);
  }

  /** How many grants of this holder are outstanding (0 when not held). */
  get holdCount(): number {
    return this.#holds;
  }

  /** Takes the lock, or nests when this holder has it and it is not lost. */
  async acquire(options?: AcquireOptions): Promise<HeldLock> {
    if (this.#outer === null || this.#outer.lost.aborted) {
      this.#outer = await this.#mutex.acquire(options);
      this.#holds = 0;
    }
    return this.#nest(this.#outer);
  }

  /** Like `acquire` but never waits: null when another holder has the lock. */
  async tryAcquire(): Promise<HeldLock | null> {
    if (this.#outer === null || this.#outer.lost.aborted) {
      const outer = await this.#mutex.tryAcquire();
      if (outer === null) return null;
      this.#outer = outer;
      this.#holds = 0;
    }
    return this.#nest(this.#outer);
  }

  #nest(outer: HeldLock): HeldLock {
    this.#holds++;
    return new NestedGrant(outer, async () => {
      if (this.#outer !== outer) return;
      this.#holds--;
      if (this.#holds > 0) return;
      this.#outer = null;
      await outer.release();
    });
  }
}
