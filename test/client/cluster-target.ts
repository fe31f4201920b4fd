/**
 * A three-member cluster of Synod or real etcd as processes, for the SDK's failover tests and the
 * lock safety runs: the chaos harness's cluster (etcd's flags, its timing) behind its peer
 * proxies, so a leader can be killed, paused or cut off while clients keep going.
 */

import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ChaosCluster } from '../../src/apps/chaos/cluster/chaos-cluster.js';
import { PeerNetwork } from '../../src/apps/chaos/network/peer-network.js';
import { SeededRandom } from '../../src/base/index.js';
import { SynodClient } from '../../src/client/client.js';
import type { ClientOptions } from '../../src/client/options.js';

/** A running three-member cluster. */
export interface ClusterTarget {
  readonly name: 'synod' | 'etcd';
  readonly cluster: ChaosCluster;
  readonly endpoints: readonly string[];
  /** A client of every member. */
  client(options?: Partial<ClientOptions>): SynodClient;
  /** Every endpoint, the current leader's first: a pinned client then talks to the leader. */
  endpointsLeaderFirst(): Promise<string[]>;
  /**
   * SIGKILLs the agreed leader and resolves once the others agree on a new one; the killed member
   * is then restarted in the background, so the next kill still leaves a quorum. Returns both names.
   */
  killLeader(): Promise<{ killed: string; leader: string }>;
  stop(): Promise<void>;
}

/** Leader agreement may take a few election timeouts after a start or a kill. */
const leaderWaitMs = 30_000;

/** Starts `name` with three members on loopback; resolves once they agree on a leader. */
export async function startClusterTarget(name: 'synod' | 'etcd', seed = 7): Promise<ClusterTarget> {
  const root = await mkdtemp(join(tmpdir(), `synod-cluster-target-${name}-`));
  const cluster = await ChaosCluster.create({
    target: name, nodes: 3, dataRoot: join(root, 'data'), logRoot: join(root, 'logs'),
    timing: { heartbeatIntervalMs: 100, electionTimeoutMs: 1000 },
  });
  const network = await PeerNetwork.start(
    cluster.members.map((member) => ({ ...member, pid: () => cluster.pidOf(member.name) })),
    { random: new SeededRandom(seed) },
  );
  const endpoints = cluster.members.map((member) => member.clientUrl);
  try {
    cluster.startAll();
    await cluster.waitForLeader(leaderWaitMs);
  } catch (error) {
    await cluster.killAll();
    await network.close();
    throw error;
  }
  return {
    name,
    cluster,
    endpoints,
    client: (options = {}) => new SynodClient({ endpoints, ...options }),
    async endpointsLeaderFirst() {
      const leader = await cluster.waitForLeader(leaderWaitMs);
      const first = cluster.members.find((member) => member.name === leader)!.clientUrl;
      return [first, ...endpoints.filter((endpoint) => endpoint !== first)];
    },
    async killLeader() {
      const killed = await cluster.waitForLeader(leaderWaitMs);
      await cluster.kill(killed);
      const leader = await cluster.waitForLeader(leaderWaitMs);
      cluster.restart(killed);
      return { killed, leader };
    },
    async stop() {
      await cluster.killAll();
      await network.close();
      await rm(root, { recursive: true, force: true });
    },
  };
}
