/**
 * The peer network of a real-process cluster: one protocol-agnostic TCP proxy per member, which the
 * other members dial instead of the member's peer listener. Because every byte between members
 * passes through it, the harness can cut links one way or both, partition the cluster, add latency
 * with jitter, reset connections and heal — for Synod and for etcd alike, since it never parses the
 * bytes (etcd's rafthttp carries traffic both ways on a connection, whichever member dialed).
 *
 * Which member dialed a connection is found from the kernel, not from the bytes: the proxy looks up
 * the owner of the dialing socket in /proc (see socket-owner.ts), so this works on Linux only.
 * Connections no member owns (a test client, a tool) are `unknown` and no fault but `resetAll`
 * touches them.
 *
 * Decisions:
 * - A cut stalls, it never drops: the proxy stops forwarding the direction, reads on until the
 *   direction's bounded queue is full, then pauses the socket so TCP back-pressure holds the rest.
 * - New connections between cut members are accepted and stalled, not refused. A real partition
 *   (Jepsen's iptables DROP) makes a dialer wait rather than see a reset. etcd's rafthttp times out
 *   a stalled read (5 s) and redials; Synod's peer link keeps its connection and drops frames once
 *   its queue is full, and Synod's listener drops a connection whose hello does not arrive in time.
 *   `connectionsMax` bounds what piles up.
 * - A connection whose dialer or listener hangs up (FIN) on a cut direction is reset at once: heal
 *   would reset it anyway, and without this each timed-out redial during a long partition would
 *   leave a connection behind until `connectionsMax` turned stalls into refusals.
 * - `heal` resets (RST) every connection a cut ever held, whether or not bytes were waiting: after
 *   a partition the endpoints have given up on those requests, and a burst of stale traffic on a
 *   resumed stream is not what a healed network delivers. Other connections keep flowing.
 * - Only links between two identified members see faults; the first bytes of every connection wait
 *   (a few milliseconds) for identification so none slip past a cut.
 * - A one-way cut is one-way per TCP direction. Request/response protocols over it degrade further
 *   (a request gets through, its response does not): etcd's HTTP streams lose more than the cut
 *   direction; Synod's one-way Raft frames lose only it (forwarded requests' answers excepted).
 */

import { createServer, connect, type Server, type Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import { assert, SeededRandom, type Random } from '../../../base/index.js';
import { LinkTable } from './link-table.js';
import { ProxiedConnection, type IdentifiedDialer } from './proxied-connection.js';
import { findSocketOwner, type OwnerCandidate } from './socket-owner.js';

/** A member of the cluster as the network sees it. */
export interface NetworkMember {
  readonly name: string;
  /** Where the member's peer listener really is, on 127.0.0.1. */
  readonly peerListenPort: number;
  /** Where its proxy listens, on 127.0.0.1: the port the other members are told to dial. */
  readonly peerProxyPort: number;
  /** The member's current pid, or null while it is down. */
  pid(): number | null;
}

/** Latency added to every chunk on a member-to-member link, per direction. */
export interface LatencyOptions {
  /** Mean delay in milliseconds. */
  readonly meanMs: number;
  /** Each chunk's delay is uniform in [meanMs − jitterMs, meanMs + jitterMs]; jitterMs ≤ meanMs. */
  readonly jitterMs: number;
}

/** Bounds and randomness; every field has a default. */
export interface PeerNetworkOptions {
  /** Draws latency jitter; seed it to replay a run. Default: seed 1. */
  readonly random?: Random;
  /** Open proxied connections across all proxies; further dials are reset at once. */
  readonly connectionsMax?: number;
  /** Bytes one direction of a connection queues before pausing its source. */
  readonly directionQueueBytesMax?: number;
  /** Chunks one direction of a connection queues before pausing its source. */
  readonly directionQueueChunksMax?: number;
}

/** Counters for logs and tests. */
export interface PeerNetworkStats {
  /** Proxied connections open now. */
  readonly connections: number;
  /** Bytes written to a destination since the network started, all connections. */
  readonly bytesForwarded: number;
  /** Bytes the proxies hold now on cut directions (the kernel may hold more behind them). */
  readonly bytesStalled: number;
}

/** Default bounds. Memory held is at most connectionsMax × 2 × directionQueueBytesMax. */
export const peerNetworkDefaults = Object.freeze({
  connectionsMax: 1024,
  directionQueueBytesMax: 256 * 1024,
  directionQueueChunksMax: 1024,
  randomSeed: 1,
});

/** Latency above this is a harness bug, not a fault worth simulating. */
export const latencyMsMax = 60_000;

/** Held memory above this across all connections is a configuration mistake. */
const heldBytesMax = 1024 * 1024 * 1024;

type ResolvedOptions = Required<PeerNetworkOptions>;

/** The proxies of one cluster and the faults applied to them. */
export class PeerNetwork {
  readonly #members: ReadonlyMap<string, NetworkMember>;
  readonly #options: ResolvedOptions;
  readonly #links: LinkTable;
  readonly #servers: Server[] = [];
  readonly #connections = new Set<ProxiedConnection>();
  #latency: LatencyOptions | null = null;
  #bytesForwarded = 0;
  #closed = false;

  private constructor(members: readonly NetworkMember[], options: ResolvedOptions) {
    this.#members = new Map(members.map((member) => [member.name, member]));
    this.#options = options;
    this.#links = new LinkTable(members.map((member) => member.name));
  }

  /** Starts one proxy per member on 127.0.0.1:peerProxyPort, forwarding to peerListenPort. */
  static async start(
    members: readonly NetworkMember[],
    options: PeerNetworkOptions = {},
  ): Promise<PeerNetwork> {
    validateMembers(members);
    const network = new PeerNetwork(members, resolveOptions(options));
    try {
      for (const member of members) await network.#listen(member);
    } catch (error) {
      await network.close();
      throw error; // EADDRINUSE and the like: the caller's ports, the caller's condition.
    }
    return network;
  }

  /** Stops bytes from `from` to `to` on every connection between them, whichever side dialed. */
  cut(from: string, to: string): void {
    assert(!this.#closed, 'the network is closed');
    this.#links.cut(from, to);
    this.#applyRules();
  }

  /** Cuts both ways between every pair of members in different groups (adding to other cuts). */
  partition(groups: readonly (readonly string[])[]): void {
    assert(!this.#closed, 'the network is closed');
    this.#links.partition(groups);
    this.#applyRules();
  }

  /** Delays each chunk on member links per direction, keeping order; null removes latency. */
  setLatency(options: LatencyOptions | null): void {
    assert(!this.#closed, 'the network is closed');
    if (options !== null) validateLatency(options);
    this.#latency = options === null ? null : Object.freeze({ ...options });
  }

  /** Resets (RST) every proxied connection now, unknown dialers included; peers redial. */
  resetAll(): void {
    for (const connection of [...this.#connections]) connection.reset();
    assert(this.#connections.size === 0, 'a reset connection stayed open');
  }

  /**
   * Undoes cuts, partitions and latency. Connections a cut held are reset; the rest keep flowing,
   * and chunks already delayed are delivered at their drawn time.
   */
  heal(): void {
    this.#links.clear();
    this.#latency = null;
    for (const connection of [...this.#connections]) {
      if (connection.touchedByCut) connection.reset();
    }
    this.#applyRules();
  }

  /** The current counters. */
  stats(): PeerNetworkStats {
    let bytesStalled = 0;
    for (const connection of this.#connections) bytesStalled += connection.stalledBytes;
    return {
      connections: this.#connections.size,
      bytesForwarded: this.#bytesForwarded,
      bytesStalled,
    };
  }

  /** The cut links as `from→to`, sorted: the detail of a fault record. */
  describeCuts(): string[] {
    return this.#links.describe();
  }

  /** Each open connection as `dialer→target` (`?` unknown, `…` identifying), sorted. */
  describeConnections(): string[] {
    return [...this.#connections].map((connection) => connection.describe()).sort();
  }

  /** Stops the proxies and resets every connection. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    const closing = this.#servers.map(
      (server) => new Promise<void>((resolve) => server.close(() => resolve())),
    );
    this.resetAll();
    await Promise.all(closing);
  }

  async #listen(member: NetworkMember): Promise<void> {
    const server = createServer({ allowHalfOpen: true }, (client) =>
      this.#onConnection(member, client),
    );
    this.#servers.push(server);
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ host: '127.0.0.1', port: member.peerProxyPort }, () => {
        server.off('error', reject);
        // A failed accept (EMFILE) loses that one dial, which the member retries; the run goes on.
        server.on('error', () => {});
        resolve();
      });
    });
  }

  #onConnection(target: NetworkMember, client: Socket): void {
    client.on('error', () => {}); // Until the connection owns it, an early reset is not a crash.
    if (this.#ignoreConnection(client)) {
      client.resetAndDestroy();
      return;
    }
    const dialerPort = client.remotePort!;
    const upstream = connect({
      host: '127.0.0.1',
      port: target.peerListenPort,
      allowHalfOpen: true,
    });
    const connection = new ProxiedConnection({
      target: target.name,
      client,
      upstream,
      bounds: {
        queueBytesMax: this.#options.directionQueueBytesMax,
        queueChunksMax: this.#options.directionQueueChunksMax,
      },
      nowMs: () => performance.now(),
      drawDelayMs: () => this.#drawDelayMs(),
      onForwarded: (bytes) => {
        this.#bytesForwarded += bytes;
      },
      onClosed: (closed) => this.#connections.delete(closed),
    });
    this.#connections.add(connection);
    assert(this.#connections.size <= this.#options.connectionsMax, 'connections over their bound');
    void this.#identify(connection, { localPort: dialerPort, remotePort: target.peerProxyPort });
  }

  /** True when the connection must be refused: the network is closing or at its bound. */
  #ignoreConnection(client: Socket): boolean {
    if (this.#closed) return true;
    if (this.#connections.size >= this.#options.connectionsMax) return true;
    return client.remotePort === undefined; // Already gone before it was accepted.
  }

  async #identify(
    connection: ProxiedConnection,
    ports: { localPort: number; remotePort: number },
  ): Promise<void> {
    const candidates: OwnerCandidate[] = [];
    for (const member of this.#members.values()) {
      const pid = member.pid();
      if (pid !== null) candidates.push({ name: member.name, pid });
    }
    // Reading /proc fails only if /proc is missing; then every dialer is unknown and passes.
    const owner = await findSocketOwner(ports, candidates).catch(() => null);
    const dialer: IdentifiedDialer =
      owner === null ? { kind: 'unknown' } : { kind: 'member', name: owner };
    connection.identify(dialer, this.#links);
  }

  #applyRules(): void {
    for (const connection of this.#connections) connection.applyRules(this.#links);
  }

  #drawDelayMs(): number {
    const latency = this.#latency;
    if (latency === null) return 0;
    const lowestMs = latency.meanMs - latency.jitterMs;
    const delayMs = lowestMs + this.#options.random.float() * 2 * latency.jitterMs;
    const highestMs = latency.meanMs + latency.jitterMs;
    assert(delayMs >= lowestMs && delayMs <= highestMs, 'delay out of range');
    return delayMs;
  }
}

function validateMembers(members: readonly NetworkMember[]): void {
  assert(members.length > 0, 'a peer network needs at least one member');
  const ports = new Set<number>();
  for (const member of members) {
    for (const port of [member.peerListenPort, member.peerProxyPort]) {
      assert(Number.isInteger(port) && port > 0 && port <= 0xffff, `invalid port ${port}`);
      assert(!ports.has(port), `port ${port} used twice`);
      ports.add(port);
    }
  }
  // Unique, non-empty names are asserted by the LinkTable built from them.
}

function validateLatency(latency: LatencyOptions): void {
  const { meanMs, jitterMs } = latency;
  assert(Number.isFinite(meanMs) && meanMs >= 0, `invalid meanMs ${meanMs}`);
  assert(meanMs + jitterMs <= latencyMsMax, `latency above latencyMsMax: ${meanMs}±${jitterMs}`);
  assert(Number.isFinite(jitterMs) && jitterMs >= 0, `invalid jitterMs ${jitterMs}`);
  assert(jitterMs <= meanMs, 'jitterMs must not exceed meanMs: a delay cannot be negative');
}

function resolveOptions(options: PeerNetworkOptions): ResolvedOptions {
  const resolved: ResolvedOptions = Object.freeze({
    random: options.random ?? new SeededRandom(peerNetworkDefaults.randomSeed),
    connectionsMax: options.connectionsMax ?? peerNetworkDefaults.connectionsMax,
    directionQueueBytesMax:
      options.directionQueueBytesMax ?? peerNetworkDefaults.directionQueueBytesMax,
    directionQueueChunksMax:
      options.directionQueueChunksMax ?? peerNetworkDefaults.directionQueueChunksMax,
  });
  assert(
    Number.isInteger(resolved.connectionsMax) && resolved.connectionsMax > 0,
    'connectionsMax must be a positive integer',
  );
  assert(resolved.directionQueueBytesMax > 0, 'directionQueueBytesMax must be positive');
  assert(resolved.directionQueueChunksMax > 0, 'directionQueueChunksMax must be positive');
  assert(
    resolved.connectionsMax * 2 * resolved.directionQueueBytesMax <= heldBytesMax,
    'connectionsMax × 2 × directionQueueBytesMax exceeds heldBytesMax',
  );
  return resolved;
}
