/**
 * Session: a lease kept alive for as long as the process holds it, as etcd's
 * `concurrency.Session` and Curator's connection state. Locks, elections and the other recipes
 * attach their keys to a session's lease, so a crashed process's keys vanish one TTL later.
 *
 * `lost` aborts (with a LeaseLostError) when the keep-alive can no longer vouch for the lease —
 * the server said it expired or was revoked, or a full TTL passed without an answered renewal.
 * Everything that depends on the session must stop then: a lock held through it may already be
 * granted to someone else. A lost session is never revived; start a new one.
 *
 * ```ts
 * await using session = await Session.create(client, { ttlSeconds: 10 });
 * session.lost.addEventListener('abort', () => stopWork());
 * ```
 */

import { LeaseLostError, invalidArgument } from '../errors.js';
import type { SynodClient } from '../client.js';
import type { LeaseKeepAlive } from '../lease.js';
import type { CallOptions } from '../transport.js';

/** Options of `Session.create`. */
export interface SessionOptions extends CallOptions {
  /** The lease's TTL in seconds; default 60 (etcd's concurrency default). */
  readonly ttlSeconds?: number;
  /** Keep an existing lease alive instead of granting one. */
  readonly leaseId?: bigint;
}

/** A kept-alive lease; close it (or dispose) to revoke the lease and delete its keys. */
export class Session implements AsyncDisposable {
  readonly client: SynodClient;
  readonly #keepAlive: LeaseKeepAlive;
  #closed = false;

  private constructor(client: SynodClient, keepAlive: LeaseKeepAlive) {
    this.client = client;
    this.#keepAlive = keepAlive;
  }

  /** Grants a lease (or adopts `leaseId`) and starts keeping it alive. */
  static async create(client: SynodClient, options: SessionOptions = {}): Promise<Session> {
    const ttlSeconds = options.ttlSeconds ?? 60;
    if (!Number.isSafeInteger(ttlSeconds) || ttlSeconds <= 0) throw invalidArgument('session TTL must be a positive whole number of seconds');
    const keepAlive = options.leaseId === undefined
      ? await client.lease.grantKeptAlive(ttlSeconds, options)
      : await client.lease.keepAlive(options.leaseId);
    return new Session(client, keepAlive);
  }

  /** The session's lease ID. */
  get leaseId(): bigint {
    return this.#keepAlive.id;
  }

  /** Aborts with a LeaseLostError when the session is gone (see the module comment). */
  get lost(): AbortSignal {
    return this.#keepAlive.lost;
  }

  /** Throws the LeaseLostError if the session is lost or closed. */
  throwIfLost(): void {
    if (this.#keepAlive.lost.aborted) throw this.#keepAlive.lost.reason as LeaseLostError;
    if (this.#closed) throw new LeaseLostError(this.leaseId, 'the session was closed');
  }

  /** Stops keeping the lease alive and revokes it (its keys are deleted); safe to repeat. */
  async close(options?: CallOptions): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    const wasLost = this.#keepAlive.lost.aborted;
    this.#keepAlive.close();
    if (wasLost) return;
    try {
      await this.client.lease.revoke(this.leaseId, options);
    } catch (error) {
      // Already gone is what closing wants; anything else leaves the lease to expire by its TTL.
      if ((error as { code?: string }).code !== 'SYNOD_LEASE_NOT_FOUND') throw error;
    }
  }

  /** Stops the keep-alive without revoking: the lease expires after its TTL (tests, handover). */
  orphan(): void {
    this.#closed = true;
    this.#keepAlive.close();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}
