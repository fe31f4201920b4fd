/**
 * `SynodClient`: the typed etcd v3 client. It speaks the etcd v3 gRPC API, so it works against
 * Synod and real etcd alike. See docs/client.md for the guide; transport.ts for failover, retries
 * and auth; watch.ts and lease.ts for the streams.
 *
 * ```ts
 * await using client = new SynodClient({ endpoints: ['127.0.0.1:2379'] });
 * await client.put('greeting', 'hello');
 * const kv = await client.get('greeting');   // KeyValue | null
 * ```
 */

import { deleteRequestOf, deleteResultOf, headerOf, putRequestOf, putResultOf, rangeRequestOf, rangeResultOf,
  type Bytes, type DeleteOptions, type DeleteResult, type KeyValue, type PutOptions, type PutResult,
  type RangeOptions, type RangeResult, type ResponseHeader, type WireHeader } from './kv-types.js';
import { invalidArgument } from './errors.js';
import { LeaseApi } from './lease.js';
import { resolveClientOptions, type ClientOptions, type ResolvedClientOptions } from './options.js';
import { Transport, type CallOptions } from './transport.js';
import { TxnBuilder } from './txn.js';
import { WatchManager, type WatchOptions, type Watcher } from './watch.js';

/** One member of the cluster, as MemberList reports it. */
export interface Member {
  readonly id: bigint;
  readonly name: string;
  readonly peerUrls: readonly string[];
  readonly clientUrls: readonly string[];
  readonly isLearner: boolean;
}

/** Maintenance.Status of one endpoint. */
export interface EndpointStatus {
  readonly header: ResponseHeader;
  readonly version: string;
  readonly dbSize: bigint;
  /** The member ID of the leader this endpoint knows; 0n when none. */
  readonly leader: bigint;
  readonly raftIndex: bigint;
  readonly raftTerm: bigint;
  readonly errors: readonly string[];
}

/** A client of one cluster. Close it (or `await using`) to release its connections. */
export class SynodClient implements AsyncDisposable {
  readonly options: ResolvedClientOptions;
  /** Grant, revoke, keep alive leases. */
  readonly lease: LeaseApi;
  readonly #transport: Transport;
  readonly #watches: WatchManager;

  constructor(options: ClientOptions) {
    this.options = resolveClientOptions(options);
    this.#transport = new Transport(this.options);
    this.lease = new LeaseApi(this.#transport);
    this.#watches = new WatchManager(this.#transport);
  }

  /** The latest version of `key`, or null when it does not exist. */
  async get(key: Bytes, options: Omit<RangeOptions, 'prefix' | 'end' | 'fromKey'> & CallOptions = {}): Promise<KeyValue | null> {
    const result = await this.range(key, { ...options, limit: 1 });
    return result.kvs[0] ?? null;
  }

  /** A Range: one key, a prefix, or `[key, end)`; see RangeOptions. */
  async range(key: Bytes, options: RangeOptions & CallOptions = {}): Promise<RangeResult> {
    const wire = await this.#transport.unary<Parameters<typeof rangeResultOf>[0]>(
      { service: 'KV', method: 'Range', request: rangeRequestOf(key, options), idempotent: true }, options,
    );
    return rangeResultOf(wire);
  }

  /** Every key under `prefix`, sorted by key. */
  async getPrefix(prefix: Bytes, options: Omit<RangeOptions, 'prefix' | 'end' | 'fromKey'> & CallOptions = {}): Promise<readonly KeyValue[]> {
    return (await this.range(prefix, { ...options, prefix: true })).kvs;
  }

  /** Writes `value` at `key`. A write: never resent once its outcome is unknown. */
  async put(key: Bytes, value: Bytes, options: PutOptions & CallOptions = {}): Promise<PutResult> {
    const wire = await this.#transport.unary<Parameters<typeof putResultOf>[0]>(
      { service: 'KV', method: 'Put', request: putRequestOf(key, value, options), idempotent: false }, options,
    );
    return putResultOf(wire);
  }

  /** Deletes one key, a prefix, or `[key, end)`. */
  async delete(key: Bytes, options: DeleteOptions & CallOptions = {}): Promise<DeleteResult> {
    const wire = await this.#transport.unary<Parameters<typeof deleteResultOf>[0]>(
      { service: 'KV', method: 'DeleteRange', request: deleteRequestOf(key, options), idempotent: false }, options,
    );
    return deleteResultOf(wire);
  }

  /** Starts a transaction; see txn.ts. */
  txn(): TxnBuilder {
    return new TxnBuilder(this.#transport);
  }

  /** Compacts the history up to `revision`; `physical` waits until the space is reclaimed. */
  async compact(revision: bigint, options: CallOptions & { physical?: boolean } = {}): Promise<ResponseHeader> {
    if (revision <= 0n) throw invalidArgument('compact revision must be positive');
    const wire = await this.#transport.unary<{ header: WireHeader }>(
      { service: 'KV', method: 'Compact', request: { revision: revision.toString(), physical: options.physical === true }, idempotent: true },
      options,
    );
    return headerOf(wire.header);
  }

  /** Watches `key` (or a range); resolves once the server created the watch. See watch.ts. */
  watch(key: Bytes, options?: WatchOptions): Promise<Watcher> {
    return this.#watches.watch(key, options);
  }

  /** The cluster's members. */
  async members(options?: CallOptions): Promise<readonly Member[]> {
    const wire = await this.#transport.unary<{ members: { ID: string; name: string; peerURLs: string[]; clientURLs: string[]; isLearner: boolean }[] }>(
      { service: 'Cluster', method: 'MemberList', request: { linearizable: true }, idempotent: true }, options,
    );
    return wire.members.map((each) => ({
      id: BigInt(each.ID), name: each.name, peerUrls: each.peerURLs, clientUrls: each.clientURLs, isLearner: each.isLearner,
    }));
  }

  /** Maintenance.Status of the endpoint the call lands on. */
  async status(options?: CallOptions): Promise<EndpointStatus> {
    const wire = await this.#transport.unary<{ header: WireHeader; version: string; dbSize: string; leader: string; raftIndex: string; raftTerm: string; errors: string[] }>(
      { service: 'Maintenance', method: 'Status', request: {}, idempotent: true }, options,
    );
    return {
      header: headerOf(wire.header), version: wire.version, dbSize: BigInt(wire.dbSize), leader: BigInt(wire.leader),
      raftIndex: BigInt(wire.raftIndex), raftTerm: BigInt(wire.raftTerm), errors: wire.errors,
    };
  }

  /** Ends every watcher and keep-alive and closes the connections. */
  close(): void {
    this.#watches.close();
    this.lease.close();
    this.#transport.close();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    this.close();
  }
}
