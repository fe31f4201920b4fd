/**
 * The default lock backend: the Mutex recipe on Synod (or real etcd), behind `LockBackend`.
 *
 * One backend holds one Session, so every lock it grants lives on one lease and all of them are
 * lost together when the session is. etcd's Mutex names its key after the session's lease, so two
 * callers in one process on the same name would share a key and both believe they hold the lock;
 * the backend therefore lines same-name callers up locally (FIFO) and lets one at a time contend
 * in the cluster. Callers in other processes are ordered by the cluster as usual.
 */

import type { SynodClient } from '../client.js';
import { Mutex } from '../recipes/mutex.js';
import { Session } from '../recipes/session.js';
import { waitScope } from '../recipes/wait.js';
import type { AcquireOptions, HeldLock, LockBackend } from './lock.js';

/** Options of `EtcdLockBackend.create`. */
export interface EtcdLockBackendOptions {
  /** 'synod' or 'etcd': only how benchmarks and logs name the backend. */
  readonly kind?: 'synod' | 'etcd';
  /** Session TTL in seconds: how long a crashed holder keeps the lock; default 10. */
  readonly ttlSeconds?: number;
  /** Prepended to every lock name; default `'/synod/locks/'`. */
  readonly keyPrefix?: string;
}

/** FIFO of local callers per name: each waits for the one before it to finish. */
class LocalTurns {
  readonly #tails = new Map<string, Promise<void>>();

  /** Resolves when it is this caller's turn; the returned function ends the turn. */
  async take(name: string, signal: AbortSignal): Promise<() => void> {
    const previous = this.#tails.get(name) ?? Promise.resolve();
    let finish!: () => void;
    const mine = new Promise<void>((resolve) => (finish = resolve));
    const tail = previous.then(() => mine);
    this.#tails.set(name, tail);
    const end = (): void => {
      finish();
      if (this.#tails.get(name) === tail) this.#tails.delete(name);
    };
    try {
      await abortable(previous, signal);
    } catch (error) {
      // Our turn still passes down the line once the one before us ends.
      end();
      throw error;
    }
    return end;
  }

  /** The turn if no local caller has or awaits one for `name`, else null; never waits. */
  tryTake(name: string): (() => void) | null {
    if (this.#tails.has(name)) return null;
    let finish!: () => void;
    const tail = new Promise<void>((resolve) => (finish = resolve));
    this.#tails.set(name, tail);
    return () => {
      finish();
      if (this.#tails.get(name) === tail) this.#tails.delete(name);
    };
  }
}

function abortable(promise: Promise<void>, signal: AbortSignal): Promise<void> {
  signal.throwIfAborted();
  return new Promise<void>((resolve, reject) => {
    const onAbort = (): void => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    });
  });
}

/** Locks as etcd Mutexes on one session. */
export class EtcdLockBackend implements LockBackend {
  readonly kind: 'synod' | 'etcd';
  readonly #prefix: string;
  readonly #ttlSeconds: number;
  readonly #turns = new LocalTurns();
  readonly #held = new Set<HeldLock>();
  #session: Session;
  #replacing: Promise<Session> | null = null;

  private constructor(kind: 'synod' | 'etcd', session: Session, options: { prefix: string; ttlSeconds: number }) {
    this.kind = kind;
    this.#session = session;
    this.#prefix = options.prefix;
    this.#ttlSeconds = options.ttlSeconds;
  }

  /** Opens a session on `client` for the backend's locks. */
  static async create(client: SynodClient, options: EtcdLockBackendOptions = {}): Promise<EtcdLockBackend> {
    const ttlSeconds = options.ttlSeconds ?? 10;
    const session = await Session.create(client, { ttlSeconds });
    return new EtcdLockBackend(options.kind ?? 'synod', session, { prefix: options.keyPrefix ?? '/synod/locks/', ttlSeconds });
  }

  /** The session locks are taken on now. */
  get session(): Session {
    return this.#session;
  }

  /**
   * The current session, or a new one once it is lost: the grants on the lost session have
   * already lost their locks (their `lost` fired); later acquisitions need a live lease.
   */
  async #liveSession(): Promise<Session> {
    if (!this.#session.lost.aborted) return this.#session;
    this.#replacing ??= Session.create(this.#session.client, { ttlSeconds: this.#ttlSeconds }).then(
      (session) => {
        this.#session = session;
        this.#replacing = null;
        return session;
      },
      (error: unknown) => {
        this.#replacing = null;
        throw error;
      },
    );
    return this.#replacing;
  }

  async acquire(name: string, options: AcquireOptions = {}): Promise<HeldLock> {
    const scope = waitScope({ name, signals: [options.signal], timeoutMs: options.timeoutMs });
    try {
      const endTurn = await this.#turns.take(name, scope.signal);
      try {
        const held = await new Mutex(await this.#liveSession(), this.#prefix + name).acquire({ signal: scope.signal });
        return this.#track(name, held, endTurn);
      } catch (error) {
        endTurn();
        throw error;
      }
    } finally {
      scope.dispose();
    }
  }

  async tryAcquire(name: string): Promise<HeldLock | null> {
    // Someone in this process holds or awaits it: then it is not free.
    const endTurn = this.#turns.tryTake(name);
    if (endTurn === null) return null;
    try {
      const held = await new Mutex(await this.#liveSession(), this.#prefix + name).tryAcquire();
      if (held === null) {
        endTurn();
        return null;
      }
      return this.#track(name, held, endTurn);
    } catch (error) {
      endTurn();
      throw error;
    }
  }

  /** Releases every lock it holds and revokes the session. */
  async close(): Promise<void> {
    await Promise.allSettled([...this.#held].map((held) => held.release()));
    await this.#session.close();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  /** Wraps a grant so releasing it also lets the next local caller in. */
  #track(name: string, held: HeldLock, endTurn: () => void): HeldLock {
    let released = false;
    const release = async (): Promise<void> => {
      if (released) return;
      released = true;
      this.#held.delete(tracked);
      try {
        await held.release();
      } finally {
        endTurn();
      }
    };
    const tracked: HeldLock = {
      name,
      fencingToken: held.fencingToken,
      lost: held.lost,
      release,
      [Symbol.asyncDispose]: release,
    };
    this.#held.add(tracked);
    return tracked;
  }
}
