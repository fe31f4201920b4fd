/**
 * Granted leases and the keys attached to each. The state machine stores only each lease's
 * granted TTL: when a lease expires is the server's decision (the leader proposes a revoke), so
 * nothing here reads a clock. Attachments are derived state: a key is attached to the lease in its
 * live value, and restore rebuilds them from the key-value records.
 */

import { assert } from '../base/index.js';
import { compareBytes, toHex } from './bytes.js';

/** Lease TTL bounds, after etcd: the minimum is ceil(1.5 × election timeout); a fixed maximum. */
export interface LeaseLimits {
  /** Grants below this TTL are raised to it. Default 2 s (etcd's with a 1 s election timeout). */
  readonly ttlSecondsMin: number;
  /** Grants above this TTL fail with SYNOD_LEASE_TTL_TOO_LARGE. etcd's 9,000,000,000 s. */
  readonly ttlSecondsMax: number;
}

/** etcd's defaults. */
export const defaultLeaseLimits: LeaseLimits = Object.freeze({
  ttlSecondsMin: 2,
  ttlSecondsMax: 9_000_000_000,
});

/** One granted lease. */
export interface Lease {
  readonly id: bigint;
  /** The TTL granted, after raising to the minimum. */
  readonly ttlSeconds: number;
}

interface LeaseEntry extends Lease {
  /** Attached keys by their hex spelling, for set semantics over byte strings. */
  readonly keys: Map<string, Uint8Array>;
}

/** The set of granted leases, each with its attached keys. */
export class LeaseTable {
  readonly #leases = new Map<bigint, LeaseEntry>();

  /** Number of granted leases. */
  get size(): number {
    return this.#leases.size;
  }

  /** True when lease `id` is granted. */
  has(id: bigint): boolean {
    return this.#leases.has(id);
  }

  /** The lease `id`, if granted. */
  get(id: bigint): Lease | undefined {
    const entry = this.#leases.get(id);
    return entry === undefined ? undefined : { id: entry.id, ttlSeconds: entry.ttlSeconds };
  }

  /** Adds a lease; the ID must be non-zero and not granted (the caller has checked). */
  grant(lease: Lease): void {
    assert(lease.id !== 0n, 'lease ID 0 means "none"');
    assert(!this.#leases.has(lease.id), 'grant of an existing lease');
    this.#leases.set(lease.id, { ...lease, keys: new Map() });
  }

  /** Removes lease `id`, which must have no attached keys left. */
  remove(id: bigint): void {
    const entry = this.#leases.get(id);
    assert(entry !== undefined, 'remove of an unknown lease');
    assert(entry.keys.size === 0, 'remove of a lease with attached keys');
    this.#leases.delete(id);
  }

  /** Attaches `key` to lease `id`, which must be granted. */
  attach(id: bigint, key: Uint8Array): void {
    const entry = this.#leases.get(id);
    assert(entry !== undefined, 'attach to an unknown lease');
    entry.keys.set(toHex(key), key);
  }

  /** Detaches `key` from lease `id`; the lease must exist and hold the key. */
  detach(id: bigint, key: Uint8Array): void {
    const entry = this.#leases.get(id);
    assert(entry !== undefined, 'detach from an unknown lease');
    const removed = entry.keys.delete(toHex(key));
    assert(removed, 'detach of a key that was not attached');
  }

  /** The keys attached to lease `id`, in ascending byte order. */
  keys(id: bigint): Uint8Array[] {
    const entry = this.#leases.get(id);
    assert(entry !== undefined, 'keys of an unknown lease');
    return [...entry.keys.values()].sort(compareBytes);
  }

  /** Every lease, by ascending ID. */
  list(): Lease[] {
    return [...this.#leases.values()]
      .map((entry) => ({ id: entry.id, ttlSeconds: entry.ttlSeconds }))
      .sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  }
}
