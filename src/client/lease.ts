/**
 * Leases: grant, revoke, time-to-live, list, and keep-alive with loss notification.
 *
 * A keep-alive renews its lease every third of the TTL over a LeaseKeepAlive stream, reopening the
 * stream on another endpoint when it breaks. It decides loss conservatively, on the client's own
 * monotonic clock: the lease is lost when the server answers a renewal with TTL 0 (expired or
 * revoked), or once a full TTL has passed since the send time of the last renewal that was
 * answered — the server may have expired it by then, and anything the lease guards (a lock, an
 * election) must stop. Loss is final: a lost keep-alive never comes back, as the lease's keys are
 * gone or about to be.
 */

import type { ClientDuplexStream } from '@grpc/grpc-js';
import { SynodError } from '../base/index.js';
import { LeaseLostError, invalidArgument } from './errors.js';
import { headerOf, type ResponseHeader, type WireHeader } from './kv-types.js';
import type { CallOptions, Transport } from './transport.js';

/** A granted lease. */
export interface LeaseGrant {
  readonly header: ResponseHeader;
  readonly id: bigint;
  /** The TTL the server granted, in seconds (it may raise a small one to its minimum). */
  readonly ttlSeconds: number;
}

/** A lease's remaining life. */
export interface LeaseTimeToLive {
  readonly header: ResponseHeader;
  readonly id: bigint;
  /** Seconds left; -1 when the lease does not exist (expired or revoked). */
  readonly ttlSeconds: number;
  readonly grantedTtlSeconds: number;
  /** The keys attached, when asked for. */
  readonly keys: readonly Buffer[];
}

/** The longest TTL a client may ask for (etcd's MaxLeaseTTL, 9 000 000 000 s). */
export const leaseTtlSecondsMax = 9_000_000_000;

interface WireKeepAliveResponse {
  readonly header: WireHeader;
  readonly ID: string;
  readonly TTL: string;
}

/** Keeps one lease alive until closed or lost. */
export class LeaseKeepAlive implements AsyncDisposable {
  readonly id: bigint;
  readonly #transport: Transport;
  readonly #lost = new AbortController();
  #ttlSeconds: number;
  #validUntilMs: number;
  #stream: ClientDuplexStream<object, WireKeepAliveResponse> | null = null;
  #sentAtMs: number[] = [];
  #renewTimer: NodeJS.Timeout | null = null;
  #expiryTimer: NodeJS.Timeout | null = null;
  #closed = false;
  readonly #onClosed: () => void;

  /** @internal Use `client.lease.keepAlive`. `grantedAtMs` is when the grant was requested. */
  constructor(
    transport: Transport, grant: { id: bigint; ttlSeconds: number; grantedAtMs: number }, onClosed: () => void,
  ) {
    this.id = grant.id;
    this.#transport = transport;
    this.#onClosed = onClosed;
    this.#ttlSeconds = grant.ttlSeconds;
    this.#validUntilMs = grant.grantedAtMs + grant.ttlSeconds * 1000;
    this.#armExpiry();
    void this.#openStream();
  }

  /** Aborts with a LeaseLostError once the lease may be gone (see the module comment). */
  get lost(): AbortSignal {
    return this.#lost.signal;
  }

  /** The TTL the last renewal granted, in seconds. */
  get ttlSeconds(): number {
    return this.#ttlSeconds;
  }

  /** Stops renewing (without revoking; the lease then expires after its TTL). */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#onClosed();
    this.#stopTimers();
    this.#stream?.end();
    this.#stream?.cancel();
    this.#stream = null;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    this.close();
  }

  /** @internal Marks the lease lost (also used by a revoke through this client). */
  markLost(reason: string): void {
    if (this.#closed || this.#lost.signal.aborted) return;
    this.#lost.abort(new LeaseLostError(this.id, reason));
    this.close();
    // close() sets #closed; the signal has already fired, which is what callers watch.
  }

  #stopTimers(): void {
    if (this.#renewTimer !== null) clearTimeout(this.#renewTimer);
    if (this.#expiryTimer !== null) clearTimeout(this.#expiryTimer);
    this.#renewTimer = null;
    this.#expiryTimer = null;
  }

  #armExpiry(): void {
    if (this.#expiryTimer !== null) clearTimeout(this.#expiryTimer);
    const remainingMs = Math.max(0, this.#validUntilMs - performance.now());
    this.#expiryTimer = setTimeout(() => this.markLost('not renewed within its TTL'), remainingMs);
    this.#expiryTimer.unref();
  }

  async #openStream(): Promise<void> {
    if (this.#closed) return;
    try {
      const { stream } = await this.#transport.bidiStream<object, WireKeepAliveResponse>('Lease', 'LeaseKeepAlive');
      if (this.#closed) {
        // Cancelling emits CANCELLED as an 'error': unheard, it would crash the process.
        stream.on('error', () => undefined);
        stream.cancel();
        return;
      }
      this.#stream = stream;
      this.#sentAtMs = [];
      stream.on('data', (response: WireKeepAliveResponse) => this.#onResponse(response));
      stream.on('error', () => this.#onBroken(stream));
      stream.on('end', () => this.#onBroken(stream));
      this.#renewNow();
    } catch {
      this.#retryOpen();
    }
  }

  #retryOpen(): void {
    if (this.#closed) return;
    const timer = setTimeout(() => void this.#openStream(), 100 + Math.random() * 400);
    timer.unref();
  }

  #onBroken(stream: ClientDuplexStream<object, WireKeepAliveResponse>): void {
    if (this.#stream !== stream) return;
    this.#stream = null;
    if (this.#renewTimer !== null) clearTimeout(this.#renewTimer);
    this.#renewTimer = null;
    this.#retryOpen();
  }

  #renewNow(): void {
    if (this.#closed || this.#stream === null) return;
    this.#sentAtMs.push(performance.now());
    // Answers arrive in order; a bounded list of send times matches each to its request.
    if (this.#sentAtMs.length > 16) this.#sentAtMs.shift();
    this.#stream.write({ ID: this.id.toString() });
    const intervalMs = Math.max(100, (this.#ttlSeconds * 1000) / 3);
    if (this.#renewTimer !== null) clearTimeout(this.#renewTimer);
    this.#renewTimer = setTimeout(() => this.#renewNow(), intervalMs);
    this.#renewTimer.unref();
  }

  #onResponse(response: WireKeepAliveResponse): void {
    const sentAtMs = this.#sentAtMs.shift() ?? performance.now();
    const ttlSeconds = Number(response.TTL);
    if (ttlSeconds <= 0) {
      this.markLost('expired or revoked (keep-alive answered TTL 0)');
      return;
    }
    this.#ttlSeconds = ttlSeconds;
    this.#validUntilMs = Math.max(this.#validUntilMs, sentAtMs + ttlSeconds * 1000);
    this.#armExpiry();
  }
}

/** The Lease API of a client. */
export class LeaseApi {
  readonly #transport: Transport;
  readonly #keepAlives = new Map<bigint, LeaseKeepAlive>();

  constructor(transport: Transport) {
    this.#transport = transport;
  }

  /** Grants a lease of `ttlSeconds`; `id` asks for a specific ID (0n or absent: the server picks). */
  async grant(ttlSeconds: number, options: CallOptions & { id?: bigint } = {}): Promise<LeaseGrant> {
    return (await this.#grant(ttlSeconds, options)).grant;
  }

  /** Grants a lease and keeps it alive; the keep-alive's `lost` says when it is gone. */
  async grantKeptAlive(ttlSeconds: number, options: CallOptions = {}): Promise<LeaseKeepAlive> {
    const { grant, grantedAtMs } = await this.#grant(ttlSeconds, options);
    return this.keepAlive(grant.id, { ttlSeconds: grant.ttlSeconds, grantedAtMs });
  }

  /**
   * Keeps an existing lease alive. Without `ttlSeconds` the lease's remaining TTL is asked first,
   * and a lease that does not exist is lost at once.
   */
  async keepAlive(id: bigint, known?: { ttlSeconds: number; grantedAtMs: number }): Promise<LeaseKeepAlive> {
    let grant = known;
    if (grant === undefined) {
      const askedAtMs = performance.now();
      const ttl = await this.timeToLive(id);
      if (ttl.ttlSeconds <= 0) throw new LeaseLostError(id, 'it does not exist');
      grant = { ttlSeconds: ttl.grantedTtlSeconds, grantedAtMs: askedAtMs - (ttl.grantedTtlSeconds - ttl.ttlSeconds) * 1000 };
    }
    const keepAlive = new LeaseKeepAlive(this.#transport, { id, ...grant }, () => {
      if (this.#keepAlives.get(id) === keepAlive) this.#keepAlives.delete(id);
    });
    this.#keepAlives.set(id, keepAlive);
    return keepAlive;
  }

  /** Revokes the lease, deleting its keys; a keep-alive of it through this client is lost. */
  async revoke(id: bigint, options?: CallOptions): Promise<ResponseHeader> {
    const wire = await this.#transport.unary<{ header: WireHeader }>(
      { service: 'Lease', method: 'LeaseRevoke', request: { ID: id.toString() }, idempotent: true }, options,
    );
    this.#keepAlives.get(id)?.markLost('revoked by this client');
    return headerOf(wire.header);
  }

  /** The lease's remaining TTL (-1 when it does not exist), and its keys if asked. */
  async timeToLive(id: bigint, options: CallOptions & { keys?: boolean } = {}): Promise<LeaseTimeToLive> {
    const wire = await this.#transport.unary<{ header: WireHeader; ID: string; TTL: string; grantedTTL: string; keys: Buffer[] }>(
      { service: 'Lease', method: 'LeaseTimeToLive', request: { ID: id.toString(), keys: options.keys === true }, idempotent: true },
      options,
    );
    return {
      header: headerOf(wire.header), id: BigInt(wire.ID), ttlSeconds: Number(wire.TTL),
      grantedTtlSeconds: Number(wire.grantedTTL), keys: wire.keys,
    };
  }

  /** Every lease's ID. */
  async list(options?: CallOptions): Promise<bigint[]> {
    const wire = await this.#transport.unary<{ leases: { ID: string }[] }>(
      { service: 'Lease', method: 'LeaseLeases', request: {}, idempotent: true }, options,
    );
    return wire.leases.map((each) => BigInt(each.ID));
  }

  /** Stops every keep-alive (the client is closing). */
  close(): void {
    for (const keepAlive of [...this.#keepAlives.values()]) keepAlive.close();
  }

  async #grant(ttlSeconds: number, options: CallOptions & { id?: bigint }): Promise<{ grant: LeaseGrant; grantedAtMs: number }> {
    if (!Number.isSafeInteger(ttlSeconds) || ttlSeconds <= 0 || ttlSeconds > leaseTtlSecondsMax) {
      throw invalidArgument(`lease TTL must be a whole number of seconds in 1..${leaseTtlSecondsMax}`);
    }
    const id = options.id ?? 0n;
    if (id < 0n) throw invalidArgument('lease ID must be non-negative');
    const grantedAtMs = performance.now();
    const wire = await this.#transport.unary<{ header: WireHeader; ID: string; TTL: string; error: string }>(
      // A grant with a server-picked ID is not idempotent (a resend grants a second lease), but the
      // transport resends only what provably did not reach the server.
      { service: 'Lease', method: 'LeaseGrant', request: { TTL: String(ttlSeconds), ID: id.toString() }, idempotent: false },
      options,
    );
    if (wire.error !== '') throw new SynodError('SYNOD_SERVER_ERROR', wire.error);
    return { grant: { header: headerOf(wire.header), id: BigInt(wire.ID), ttlSeconds: Number(wire.TTL) }, grantedAtMs };
  }
}
