/**
 * A Synod member: the stores under `--data-dir`, the Raft driver, the client port serving the etcd
 * v3 gRPC API, and the HTTP endpoints on `--listen-metrics-urls`. `startServer` returns once the
 * ports listen; `close` shuts down in the reverse order, waiting for the in-flight Ready to be
 * persisted.
 *
 * etcd also answers /health and /version on the client port itself (its cmux); Synod does not yet
 * (grpc-js owns the client port's HTTP/2 listener), so probes use the metrics URL, as kubeadm's do.
 */

import { randomInt } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { Server as GrpcServer } from '@grpc/grpc-js';
import type { Server as HttpServer } from 'node:http';
import type { Logger } from 'pino';
import { SeededRandom, SynodError } from '../base/index.js';
import { KvStateMachine, WatchHub } from '../kv/index.js';
import { LmdbKvBackend, RaftLogStore } from '../storage/index.js';
import { bindInsecure, shutdownServer } from './api/grpc-server.js';
import type { ServerConfig } from './flags.js';
import { createHttpEndpoints } from './http-endpoints.js';
import { identityOf, type MemberIdentity } from './member-identity.js';
import { RaftNode, intervalTickScheduler } from './node/raft-node.js';

/** What registers the gRPC services on the server, given the running member. */
export type ServiceRegistrar = (grpc: GrpcServer, member: RunningMember) => void;

/** The parts of a running member the API layer uses. */
export interface RunningMember {
  readonly config: ServerConfig;
  readonly identity: MemberIdentity;
  readonly node: RaftNode;
}

/** A started server. */
export interface RunningServer extends RunningMember {
  /** The port bound for the first client URL (useful with port 0 in tests). */
  readonly clientPort: number;
  close(): Promise<void>;
}

/** Opens the stores, starts Raft and listens on every client URL. */
export async function startServer(options: {
  config: ServerConfig;
  logger: Logger;
  grpc: GrpcServer;
  registerServices: ServiceRegistrar;
  synodVersion: string;
}): Promise<RunningServer> {
  const { config, logger } = options;
  if (config.initialCluster.length > 1) {
    throw new SynodError(
      'SYNOD_INVALID_CONFIG',
      'a multi-member --initial-cluster needs the peer transport, which this build does not have yet; start a single member',
    );
  }
  for (const url of [...config.listenClientUrls, ...config.listenMetricsUrls]) {
    if (url.protocol !== 'http:') {
      // Serving an https:// URL without TLS would silently downgrade what the operator asked for.
      throw new SynodError('SYNOD_INVALID_CONFIG', `${url.href}: only http:// URLs are served until TLS support lands`);
    }
  }
  const identity = identityOf(config);
  await mkdir(config.dataDir, { recursive: true });
  const store = await RaftLogStore.open({ path: join(config.dataDir, 'raft'), bootstrapConfState: { voters: [1], learners: [] } });
  if (store.openReport.truncatedFrom !== null) {
    logger.warn({ truncatedFrom: store.openReport.truncatedFrom }, 'raft log: corrupt tail truncated');
  }
  const backend = LmdbKvBackend.open({ path: join(config.dataDir, 'kv') });
  const stateMachine = KvStateMachine.open({ backend, txnOpsMax: config.maxTxnOps });
  const node = new RaftNode({
    id: 1,
    store,
    stateMachine,
    watchHub: new WatchHub(stateMachine.store),
    transport: { send: () => undefined }, // A single member has no peers to send to.
    random: new SeededRandom(randomInt(0x7fffffff)),
    tickIntervalMs: config.heartbeatIntervalMs,
    electionTicks: Math.round(config.electionTimeoutMs / config.heartbeatIntervalMs),
    ticker: intervalTickScheduler,
  });
  node.start();
  node.campaign(); // A single voter wins at once; no need to wait out an election timeout.
  const member: RunningMember = { config, identity, node };
  options.registerServices(options.grpc, member);
  const clientPorts: number[] = [];
  for (const url of config.listenClientUrls) {
    clientPorts.push(await bindInsecure(options.grpc, `${url.hostname}:${url.port || 2379}`));
  }
  const clientPort = clientPorts[0]!;
  const httpServers: HttpServer[] = [];
  for (const url of config.listenMetricsUrls) {
    const http = createHttpEndpoints(node, options.synodVersion);
    await new Promise<void>((resolve, reject) => {
      http.once('error', reject);
      http.listen(Number(url.port || 80), url.hostname, () => resolve());
    });
    httpServers.push(http);
  }
  logger.info(
    { name: config.name, dataDir: config.dataDir, clientPort, clientPorts, memberId: identity.memberId.toString(16) },
    'serving client requests',
  );
  return {
    ...member,
    clientPort,
    close: async () => {
      for (const http of httpServers) http.closeAllConnections();
      await Promise.all(httpServers.map((http) => new Promise<void>((resolve) => http.close(() => resolve()))));
      await shutdownServer(options.grpc);
      await node.stop();
      await store.close();
      backend.close();
    },
  };
}
