/**
 * The etcd v3 services a member serves on its client port, wired to the running member: KV,
 * Watch, Lease, Cluster, Maintenance, and the Lock and Election recipes. One place, so the
 * command line and tests serve exactly the same API.
 */

import type { Server as GrpcServer } from '@grpc/grpc-js';
import { createAuthService } from './api/auth-service.js';
import { createClusterService } from './api/cluster-service.js';
import { cachedMeasure, mvccBackendBytes, quotaSizeMaxAgeMs } from './api/db-size.js';
import { createKvService } from './api/kv-service.js';
import { createLeaseService } from './api/lease-service.js';
import { createMaintenanceService } from './api/maintenance-service.js';
import { createNodeQuota } from './api/quota.js';
import { createWatchService } from './api/watch-service.js';
import { createElectionService } from './api/election-service.js';
import { createLockService } from './api/lock-service.js';
import { KeyWaiters } from './api/waiting-keys.js';
import type { EtcdProto } from './grpc/proto.js';
import type { MemberAuthSource } from './auth/auth-interceptor.js';
import type { RunningMember } from './server.js';

/** Options of `etcdServices`. */
export interface EtcdServicesOptions {
  /** The auth interceptor's view of the member (see createGrpcServer's `interceptors`). */
  readonly authSource?: MemberAuthSource;
}

/** Returns the registrar `startServer` calls with the running member. */
export function etcdServices(proto: EtcdProto, options: EtcdServicesOptions = {}): (grpc: GrpcServer, member: RunningMember) => void {
  return (grpc, member) => {
    const { config, node, tokens } = member;
    options.authSource?.attach({ node, ...member.identity, tokens });
    const ids = { clusterId: member.identity.clusterId, memberId: member.identity.memberId };
    const dbSizeBytes = () => mvccBackendBytes(config.dataDir);
    const quota = createNodeQuota({
      node, memberId: ids.memberId, quotaBackendBytes: config.quotaBackendBytes,
      dbSizeBytes: cachedMeasure(dbSizeBytes, quotaSizeMaxAgeMs),
    });
    grpc.addService(proto.services.KV, createKvService({
      node, definition: proto.services.KV, ...ids, quota,
      maxRequestBytes: config.maxRequestBytes, txnOpsMax: config.maxTxnOps,
      plantedBug: member.plantedBug,
    }));
    grpc.addService(proto.services.Watch, createWatchService({ node, ...ids }));
    grpc.addService(proto.services.Lease, createLeaseService({
      node, keeper: member.leaseKeeper, forwardToLeader: member.leaseLeader, quota, ...ids,
    }));
    grpc.addService(proto.services.Cluster, createClusterService({
      node, ...ids, members: () => member.membership.members(),
      change: (request) => member.memberChanges.change(request),
    }));
    // One waiter registry for both recipes: its bound covers Lock, Campaign and Observe together.
    const recipe = { node, waiters: new KeyWaiters({ node }), ...ids };
    grpc.addService(proto.services.Lock, createLockService(recipe));
    grpc.addService(proto.services.Election, createElectionService(recipe));
    grpc.addService(proto.services.Auth, createAuthService({ node, ...ids, tokens }));
    grpc.addService(proto.services.Maintenance, createMaintenanceService({
      node, ...ids, dbSizeBytes, defragment: member.defragment,
      raftIdOf: (memberId) => member.membership.members().find((m) => m.memberId === memberId)?.raftId,
      memberIdOf: (raftId) => member.membership.members().find((m) => m.raftId === raftId)?.memberId,
    }));
  };
}
