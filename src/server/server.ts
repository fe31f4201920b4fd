/**
 * A Synod member: the stores under `--data-dir`, the Raft driver, the peer transport on
 * `--listen-peer-urls` (when the cluster has other members), the client ports serving the etcd v3
 * gRPC API and, on the same ports as etcd's cmux does, /health, /version and /metrics over
 * HTTP/1.1 (client-port/), and the same HTTP endpoints on `--listen-metrics-urls`. https:// client
 * and peer URLs serve TLS from the certificate flags, reloaded when the files change (tls/).
 * `startServer` returns once the ports listen; `close` shuts down in the reverse order, waiting
 * for the in-flight Ready to be persisted.
 */

import { randomInt } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { Server as GrpcServer } from '@grpc/grpc-js';
import type { Server as HttpServer } from 'node:http';
import type { Logger } from 'pino';
import { Histogram, SeededRandom, SynodError } from '../base/index.js';
import { KvStateMachine, WatchHub } from '../kv/index.js';
import { LmdbKvBackend, RaftLogStore, type KvDefragReport } from '../storage/index.js';
import { mvccBackendBytes } from './api/db-size.js';
import { shutdownServer } from './api/grpc-server.js';
import { diskBucketBoundsSeconds, listenClientUrl, MemberMetrics } from './client-port/index.js';
import type { ServerConfig } from './flags.js';
import { createHttpEndpoints, etcdVersionReported } from './http-endpoints.js';
import { clusterLayoutOf, peerAddressOf, type ClusterLayout } from './cluster-layout.js';
import { AutoCompactor } from './compactor.js';
import {
  identityOf, readStoredIdentity, writeStoredIdentity, type MemberIdentity, type StoredIdentity,
} from './member-identity.js';
import { MemberChanges, runtimeMemberId } from './api/member-changes.js';
import { bootstrapEntries, MembershipKeeper, urlText } from './membership.js';
import { awaitInvitation } from './peer/invitation.js';
import { RaftNode, intervalTickScheduler } from './node/raft-node.js';
import { PeerTransport, type PeerAddress, type PeerTls } from './peer/peer-transport.js';
import type { ServerPlantedBug } from './planted-bugs.js';
import {
  LeaseKeeper, leaseLeaderOverPeers, serveForwardedLeaseRequests, serveLeaseRequestsToPeers,
  type LeaseLeaderClient,
} from './lease/index.js';
import { CertificateReloader, type TlsFiles } from './tls/index.js';
import { openTokenProvider, type TokenProvider } from './auth/token-provider.js';

/**
 * Replaces the MVCC backend's contents with a Raft snapshot's. Clearing and restoring are two
 * transactions: a crash between them leaves an empty backend whose applied index (0) is behind
 * the stored snapshot, so the next start installs the snapshot again.
 */
function restoreInto(backend: LmdbKvBackend, data: Uint8Array, config: ServerConfig): KvStateMachine {
  backend.clear();
  return KvStateMachine.restore(data, { backend, txnOpsMax: config.maxTxnOps });
}

/**
 * This member's ids: those recorded by an earlier start; on a first start, derived from the
 * bootstrap flags (a new cluster) or given by the cluster's invitation (joining one, which waits
 * here until the leader dials in after `member add`). Recorded before anything else is written.
 */
async function storedIdentityOf(
  config: ServerConfig, layout: ClusterLayout, peer: { logger: Logger; tls: PeerTls | null },
): Promise<StoredIdentity> {
  const { logger } = peer;
  const stored = readStoredIdentity(config.dataDir);
  if (stored !== null) return stored;
  let identity: StoredIdentity;
  if (config.initialClusterState === 'existing') {
    const { host, port, tls: secure } = peerAddressOf(config.listenPeerUrls[0]!);
    const invitation = await awaitInvitation({ host, port, logger, secure, tls: peer.tls });
    const peerUrls = config.initialAdvertisePeerUrls.map(urlText);
    identity = {
      clusterId: invitation.clusterId, raftId: invitation.memberId,
      memberId: runtimeMemberId({ peerUrls, clusterId: invitation.clusterId, raftId: invitation.memberId }),
      ...(invitation.fromPeerUrl === undefined ? {} : {
        inviter: { raftId: invitation.from, peerUrl: invitation.fromPeerUrl },
      }),
    };
    logger.info({ memberId: identity.memberId.toString(16), raftId: identity.raftId }, 'joined: the cluster named this member');
  } else {
    identity = { ...identityOf(config), raftId: layout.self.raftId };
  }
  writeStoredIdentity(config.dataDir, identity);
  return identity;
}

/** The peers the transport starts with, before the member table is applied. */
function initialPeersOf(config: ServerConfig, layout: ClusterLayout, stored: StoredIdentity): Map<number, PeerAddress> {
  if (config.initialClusterState === 'existing') {
    const inviter = stored.inviter;
    return inviter === undefined ? new Map() : new Map([[inviter.raftId, peerAddressOf(new URL(inviter.peerUrl))]]);
  }
  return new Map(layout.members
    .filter((member) => member !== layout.self)
    .map((member) => [member.raftId, peerAddressOf(member.peerUrls[0]!)]));
}

/** Refuses the URLs Synod does not serve, rather than serving them other than as asked. */
function refuseUnservedUrls(config: ServerConfig): void {
  const urls = [...config.listenClientUrls, ...config.listenMetricsUrls, ...config.listenPeerUrls];
  for (const url of urls) {
    if (url.protocol === 'unix:' || url.protocol === 'unixs:') {
      throw new SynodError('SYNOD_INVALID_CONFIG', `${url.href}: unix socket URLs are not served`);
    }
  }
  for (const url of config.listenMetricsUrls) {
    if (url.protocol === 'https:') {
      // Serving it without TLS would silently downgrade what the operator asked for.
      throw new SynodError(
        'SYNOD_INVALID_CONFIG',
        `--listen-metrics-urls ${url.href}: https:// metrics URLs are not served yet`,
      );
    }
  }
}

/** Each side's certificate reloader, or null without certificate flags. */
interface MemberTls {
  readonly client: CertificateReloader | null;
  readonly peer: CertificateReloader | null;
}

/**
 * Reads and validates the certificate flags' files (a bad one is SYNOD_INVALID_CONFIG, naming the
 * flag and the file) and starts following their changes.
 */
async function openTls(
  config: ServerConfig, logger: Logger, checkIntervalMs: number | undefined,
): Promise<MemberTls> {
  const open = async (
    files: TlsFiles | null, urls: readonly URL[],
  ): Promise<CertificateReloader | null> => {
    if (files === null) return null;
    if (!urls.some((url) => url.protocol === 'https:')) {
      const side = files.flagPrefix === '' ? 'client' : 'peer';
      logger.warn(`--${files.flagPrefix}cert-file is set but no ${side} URL is https://; it is not used`);
    }
    const reloader = await CertificateReloader.open({
      files, logger, ...(checkIntervalMs === undefined ? {} : { checkIntervalMs }),
    });
    reloader.start();
    return reloader;
  };
  const client = await open(config.clientTls, config.listenClientUrls);
  try {
    const peerUrls = [
      ...config.listenPeerUrls, ...config.initialCluster.flatMap((member) => member.peerUrls),
    ];
    return { client, peer: await open(config.peerTls, peerUrls) };
  } catch (error) {
    client?.stop();
    throw error;
  }
}

/** What registers the gRPC services on the server, given the running member. */
export type ServiceRegistrar = (grpc: GrpcServer, member: RunningMember) => void;

/** The parts of a running member the API layer uses. */
export interface RunningMember {
  readonly config: ServerConfig;
  readonly identity: MemberIdentity;
  readonly node: RaftNode;
  /** Every member's ids and addresses, from `--initial-cluster`. */
  readonly layout: ClusterLayout;
  /** Messages and forwarded requests to the other members. */
  readonly transport: PeerTransport;
  /** Lease deadlines and expiry while this member leads. */
  readonly leaseKeeper: LeaseKeeper;
  /** Lease requests only the leader answers, forwarded to it. */
  readonly leaseLeader: LeaseLeaderClient;
  /** A deliberate bug for chaos tests (planted-bugs.ts), or null — always null in production. */
  readonly plantedBug: ServerPlantedBug | null;
  /** The replicated member table as this member applied it, and what follows it. */
  readonly membership: MembershipKeeper;
  /** MemberAdd, MemberRemove, MemberUpdate, MemberPromote through the leader. */
  readonly memberChanges: MemberChanges;
  /** Issues and checks auth tokens, per `--auth-token`. */
  readonly tokens: TokenProvider;
  /** Maintenance.Defragment: the MVCC backend rewritten compactly while applies are held. */
  readonly defragment: () => Promise<KvDefragReport>;
}

/** A started server. */
export interface RunningServer extends RunningMember {
  /** The port bound for the first client URL (useful with port 0 in tests). */
  readonly clientPort: number;
  /** Resolves when the cluster removed this member; the caller shuts it down. */
  readonly removed: Promise<void>;
  close(): Promise<void>;
}

/** Opens the stores, starts Raft and listens on every client URL. */
export async function startServer(options: {
  config: ServerConfig;
  logger: Logger;
  grpc: GrpcServer;
  registerServices: ServiceRegistrar;
  synodVersion: string;
  /** From `plantedBugFromEnv`; chaos tests only. */
  plantedBug?: ServerPlantedBug | null;
  /** How often the certificate files are checked for a change (default 5 s; tests shorten it). */
  certificateCheckIntervalMs?: number;
}): Promise<RunningServer> {
  const { config, logger } = options;
  const layout = clusterLayoutOf(config);
  refuseUnservedUrls(config);
  // Before anything is written: a bad key file stops the start with the option and file named.
  const tokens = openTokenProvider(config.authToken);
  if (tokens.kind === 'jwt' && !tokens.canIssue) {
    logger.warn('--auth-token: no priv-key, so this member checks JWT tokens but cannot issue them');
  }
  const tls = await openTls(config, logger, options.certificateCheckIntervalMs);
  const stopTls = (): void => {
    tls.client?.stop();
    tls.peer?.stop();
  };
  const peerTls: PeerTls | null = tls.peer === null ? null : {
    source: tls.peer, clientCertAuth: tls.peer.files.clientCertAuth,
  };
  await mkdir(config.dataDir, { recursive: true });
  const stored = await storedIdentityOf(config, layout, { logger, tls: peerTls });
  const identity: MemberIdentity = { memberId: stored.memberId, clusterId: stored.clusterId };
  const store = await RaftLogStore.open({
    path: join(config.dataDir, 'raft'),
    // A joining member starts empty and learns the membership from the leader's log.
    bootstrapEntries: config.initialClusterState === 'new' ? bootstrapEntries(layout) : [],
  });
  if (store.openReport.truncatedFrom !== null) {
    logger.warn({ truncatedFrom: store.openReport.truncatedFrom }, 'raft log: corrupt tail truncated');
  }
  const backend = LmdbKvBackend.open({ path: join(config.dataDir, 'kv') });
  if (backend.openReport.discardedUnsynced) {
    logger.warn('kv backend: written without fsync before an OS restart, discarded; rebuilding from the raft log');
  }
  const stateMachine = KvStateMachine.open({ backend, txnOpsMax: config.maxTxnOps });
  let node: RaftNode | null = null;
  const transport = new PeerTransport({
    selfId: stored.raftId,
    clusterId: identity.clusterId,
    // Until the member table is applied (the keeper takes over then), a new cluster's members
    // are those of --initial-cluster; a joining member knows only the member that invited it.
    peers: initialPeersOf(config, layout, stored),
    selfPeerUrl: urlText(config.initialAdvertisePeerUrls[0]!),
    onMessages: (messages) => {
      for (const message of messages) node?.receive(message);
    },
    onUnreachable: (peer) => node?.reportUnreachable(peer),
    onSnapshotStatus: (peer, outcome) => node?.reportSnapshot(peer, outcome),
    logger,
    tls: peerTls,
  });
  const peerPorts: number[] = [];
  if (layout.members.length > 1 || config.listenPeerUrlsGiven || config.initialClusterState === 'existing') {
    for (const url of config.listenPeerUrls) {
      const { host, port, tls: secure } = peerAddressOf(url);
      peerPorts.push(await transport.listen(host, port, { secure }));
    }
  }
  const watchHub = new WatchHub(stateMachine.store);
  const disk = { walFsync: new Histogram(diskBucketBoundsSeconds), backendCommit: new Histogram(diskBucketBoundsSeconds) };
  node = new RaftNode({
    id: stored.raftId,
    store,
    stateMachine,
    watchHub,
    timings: {
      persisted: (seconds) => disk.walFsync.observe(seconds),
      applied: (seconds) => disk.backendCommit.observe(seconds),
    },
    transport,
    random: new SeededRandom(randomInt(0x7fffffff)),
    tickIntervalMs: config.heartbeatIntervalMs,
    electionTicks: Math.round(config.electionTimeoutMs / config.heartbeatIntervalMs),
    ticker: intervalTickScheduler,
    restoreStateMachine: (data) => restoreInto(backend, data, config),
    snapshotCount: config.snapshotCount,
    snapshotCatchUpEntries: config.snapshotCatchUpEntries,
    flushStateMachine: () => backend.flush(),
  });
  node.start();
  let onRemoved: () => void = () => undefined;
  const removed = new Promise<void>((resolve) => {
    onRemoved = resolve;
  });
  const membership = new MembershipKeeper({
    node, transport, selfRaftId: stored.raftId, name: config.name,
    clientUrls: config.advertiseClientUrls, logger, onRemoved,
  });
  membership.start();
  const memberChanges = new MemberChanges({ node, transport, clusterId: identity.clusterId });
  const plantedBug = options.plantedBug ?? null;
  if (plantedBug !== null) logger.warn({ plantedBug }, 'PLANTED BUG ON: this member breaks its guarantees on purpose (chaos tests only)');
  const leaseKeeper = new LeaseKeeper({
    node, electionTimeoutMs: config.electionTimeoutMs, neverExpire: plantedBug === 'lease-never-expires',
  });
  leaseKeeper.start();
  const compactor = new AutoCompactor({
    node,
    autoCompaction: config.autoCompaction,
    onCompacted: (revision) => logger.info({ revision }, 'auto-compaction'),
  });
  compactor.start();
  serveLeaseRequestsToPeers(transport, serveForwardedLeaseRequests(leaseKeeper));
  const leaderNode = node;
  const leaseLeader = leaseLeaderOverPeers({ transport, leaderId: () => leaderNode.leaderId });
  const defragmentingNode = node;
  const defragment = async (): Promise<KvDefragReport> => {
    const startedMs = performance.now();
    const report = await defragmentingNode.withAppliesHeld(() => backend.defragment());
    const appliesHeldMs = Math.round(performance.now() - startedMs);
    logger.info({ ...report, appliesHeldMs }, 'defragmented the kv backend');
    return report;
  };
  const member: RunningMember = {
    config, identity, node, layout, transport, leaseKeeper, leaseLeader, plantedBug, membership,
    memberChanges, tokens, defragment,
  };
  options.registerServices(options.grpc, member);
  // gRPC and HTTP/1.1 share each client port (etcd's cmux); /metrics is also on the metrics URLs.
  const endpoints = {
    health: node,
    synodVersion: options.synodVersion,
    maxRequestBytes: config.maxRequestBytes,
    metrics: new MemberMetrics({
      node, memberId: identity.memberId, etcdVersion: etcdVersionReported.etcdserver,
      dbSizeBytes: () => mvccBackendBytes(config.dataDir),
      proposalsPending: () => node.pendingProposals,
      disk,
      watches: watchHub,
    }),
  };
  const listeners: { close(): Promise<void> }[] = [];
  const clientPorts: number[] = [];
  const clientTls = tls.client === null ? null : {
    source: tls.client, clientCertAuth: tls.client.files.clientCertAuth,
  };
  for (const url of config.listenClientUrls) {
    const port = await listenClientUrl({ url, grpc: options.grpc, endpoints, tls: clientTls });
    listeners.push(port);
    clientPorts.push(port.port);
  }
  const clientPort = clientPorts[0]!;
  const httpServers: HttpServer[] = [];
  for (const url of config.listenMetricsUrls) {
    const http = createHttpEndpoints(endpoints);
    await new Promise<void>((resolve, reject) => {
      http.once('error', reject);
      http.listen(Number(url.port || 80), url.hostname, () => resolve());
    });
    httpServers.push(http);
  }
  logger.info(
    {
      name: config.name, dataDir: config.dataDir, clientPort, clientPorts, peerPorts,
      memberId: identity.memberId.toString(16), raftId: layout.self.raftId,
      members: layout.members.length,
    },
    'serving client requests',
  );
  return {
    ...member,
    clientPort,
    removed,
    close: async () => {
      stopTls();
      membership.stop();
      await Promise.all(listeners.map((listener) => listener.close()));
      for (const http of httpServers) http.closeAllConnections();
      await Promise.all(httpServers.map((http) => new Promise<void>((resolve) => http.close(() => resolve()))));
      await shutdownServer(options.grpc);
      compactor.stop();
      leaseKeeper.stop();
      await transport.close();
      await node.stop();
      await store.close();
      // Awaited: the backend's final flush removes its unclean-shutdown marker.
      await backend.close();
    },
  };
}
