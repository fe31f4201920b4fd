/**
 * The lease workload: each client, over and over, grants a lease, puts a key with it, renews it
 * for a while over a LeaseKeepAlive stream, then stops renewing — the client "dies" — and moves
 * on without revoking. A monitor reads the prefix (linearizable Range) in a loop and records which
 * keys exist. After the last client dies the monitor keeps reading long enough to see every key
 * go, so `checkLease` can judge both bounds.
 */

import { setMaxListeners } from 'node:events';
import { assert } from '../../../base/index.js';
import type { EtcdProto } from '../../../server/grpc/proto.js';
import type {
  LeaseHistory, LeaseRecord, LeaseRenewalRecord, LeaseSample,
} from '../checkers/lease-checker.js';
import { leaseLateGraceMsDefault } from '../checkers/lease-checker.js';
import {
  connectEtcd, deadlineAfter, keepAliveLoop, listenersMax, pause, prefixRangeEnd, unary, outcomeOfError,
  type EtcdClients, type EtcdEndpoint,
} from './lease-etcd-client.js';

/** Options of `runLeaseWorkload`. */
export interface LeaseWorkloadOptions {
  readonly proto: EtcdProto;
  readonly endpoints: readonly EtcdEndpoint[];
  /** Ms since the run started; every recorded time comes from it. */
  readonly nowMs: () => number;
  /** How long clients start new leases. */
  readonly durationMs: number;
  /** Keys are `${prefix}${client}-${n}`; nothing else may write under it. */
  readonly prefix: string;
  readonly clients: number;
  /** The TTL each grant asks for. Default 3 (the server may raise it to its minimum). */
  readonly ttlSeconds?: number;
  /** How long a client renews before it dies. Default 2 × TTL. */
  readonly holdMs?: number;
  /** Keep-alive period. Default TTL / 3, as etcd's clientv3. */
  readonly keepAliveIntervalMs?: number;
  /** Pause between monitor reads. Default 50 ms. */
  readonly sampleIntervalMs?: number;
  /** How long the monitor reads after the last death. Default TTL + `leaseLateGraceMsDefault`. */
  readonly observeAfterMs?: number;
  /** Deadline of each unary request. Default 2000 ms. */
  readonly requestTimeoutMs?: number;
  /** Aborting ends the clients early (the monitor still observes the expiries). */
  readonly signal?: AbortSignal;
}

interface Settings {
  readonly proto: EtcdProto;
  readonly endpoints: readonly EtcdEndpoint[];
  readonly nowMs: () => number;
  readonly prefix: string;
  readonly ttlSeconds: number;
  readonly holdMs: number;
  readonly keepAliveIntervalMs: number;
  readonly requestTimeoutMs: number;
}

/** Runs the workload and returns what it recorded. */
export async function runLeaseWorkload(options: LeaseWorkloadOptions): Promise<LeaseHistory> {
  assert(options.endpoints.length > 0 && options.clients > 0, 'endpoints and clients');
  const ttlSeconds = options.ttlSeconds ?? 3;
  const settings: Settings = {
    proto: options.proto, endpoints: options.endpoints, nowMs: options.nowMs,
    prefix: options.prefix, ttlSeconds, holdMs: options.holdMs ?? 2 * ttlSeconds * 1000,
    keepAliveIntervalMs: options.keepAliveIntervalMs ?? Math.ceil((ttlSeconds * 1000) / 3),
    requestTimeoutMs: options.requestTimeoutMs ?? 2000,
  };
  const stopMonitor = new AbortController();
  setMaxListeners(listenersMax, stopMonitor.signal);
  const monitor = monitorLoop(settings, options.sampleIntervalMs ?? 50, stopMonitor.signal);
  const clientsDone = deadlineAfter(options.durationMs, options.signal);
  const leases: LeaseRecord[] = [];
  const grantsFailed = await Promise.all(Array.from({ length: options.clients },
    (_, clientId) => clientLoop(settings, clientId, leases, clientsDone.signal)));
  clientsDone.clear();
  const observeAfterMs = options.observeAfterMs ?? ttlSeconds * 1000 + leaseLateGraceMsDefault;
  await pause(observeAfterMs, new AbortController().signal);
  stopMonitor.abort();
  const { samples, samplesFailed } = await monitor;
  return {
    prefix: options.prefix, leases, samples, samplesFailed,
    grantsFailed: grantsFailed.reduce((sum, failed) => sum + failed, 0),
  };
}

function connectTo(settings: Settings, index: number): EtcdClients {
  const endpoint = settings.endpoints[index % settings.endpoints.length];
  assert(endpoint !== undefined, 'endpoint exists');
  return connectEtcd(settings.proto, endpoint);
}

/** One client's leases in sequence until `signal`; returns how many grants failed. */
async function clientLoop(
  settings: Settings,
  clientId: number,
  leases: LeaseRecord[],
  signal: AbortSignal,
): Promise<number> {
  let grantsFailed = 0;
  for (let sequence = 0; !signal.aborted; sequence += 1) {
    const clients = connectTo(settings, clientId + sequence);
    try {
      const lease = await oneLease(settings, clients, { clientId, sequence });
      if (lease === null) {
        grantsFailed += 1;
        await pause(100, signal);
      } else {
        leases.push(lease);
      }
    } finally {
      clients.close();
    }
  }
  return grantsFailed;
}

/** Grants, attaches, renews for `holdMs`, dies. Null when the grant did not succeed. */
async function oneLease(
  settings: Settings,
  clients: EtcdClients,
  identity: { clientId: number; sequence: number },
): Promise<LeaseRecord | null> {
  const { nowMs } = settings;
  const grantInvokedAtMs = nowMs();
  let granted: { ID: string; TTL: string };
  try {
    granted = await unary(clients.lease, 'LeaseGrant',
      { TTL: String(settings.ttlSeconds), ID: '0' }, settings.requestTimeoutMs);
  } catch {
    return null;
  }
  const grant: LeaseRenewalRecord = { invokedAtMs: grantInvokedAtMs, completedAtMs: nowMs(),
    outcome: 'ok', ttlSeconds: Number(granted.TTL) };
  const key = `${settings.prefix}${identity.clientId}-${identity.sequence}`;
  const attachInvokedAtMs = nowMs();
  let attachOutcome: LeaseRecord['attach']['outcome'] = 'ok';
  try {
    await unary(clients.kv, 'Put', { key: Buffer.from(key), value: Buffer.from(granted.ID),
      lease: granted.ID }, settings.requestTimeoutMs);
  } catch (error) {
    attachOutcome = outcomeOfError(error);
  }
  const attach = { invokedAtMs: attachInvokedAtMs, completedAtMs: nowMs(), outcome: attachOutcome };
  const keepAlives: LeaseRenewalRecord[] = [];
  const die = deadlineAfter(settings.holdMs);
  while (!die.signal.aborted) {
    const ended = await keepAliveLoop({ clients, leaseId: granted.ID,
      intervalMs: settings.keepAliveIntervalMs, nowMs, signal: die.signal,
      onRecord: (record) => keepAlives.push(record) });
    if (ended === 'expired') break;
    if (ended === 'stream-failed') await pause(100, die.signal);
  }
  die.clear();
  return { clientId: identity.clientId, member: clients.member, leaseId: granted.ID, key, grant,
    attach, keepAlives, diedAtMs: nowMs() };
}

/** Reads the prefix until `stop`; every successful read is a sample. */
async function monitorLoop(
  settings: Settings,
  intervalMs: number,
  stop: AbortSignal,
): Promise<{ samples: LeaseSample[]; samplesFailed: number }> {
  const samples: LeaseSample[] = [];
  let samplesFailed = 0;
  const key = Buffer.from(settings.prefix);
  const request = { key, range_end: prefixRangeEnd(key), keys_only: true };
  let clients = connectTo(settings, 0);
  for (let attempt = 0; !stop.aborted;) {
    const invokedAtMs = settings.nowMs();
    try {
      const response = await unary<{ kvs: { key: Buffer }[] }>(clients.kv, 'Range', request,
        settings.requestTimeoutMs);
      samples.push({ member: clients.member, invokedAtMs, completedAtMs: settings.nowMs(),
        keys: response.kvs.map((kv) => kv.key.toString()) });
    } catch {
      samplesFailed += 1;
      clients.close();
      attempt += 1;
      clients = connectTo(settings, attempt);
    }
    await pause(intervalMs, stop);
  }
  clients.close();
  return { samples, samplesFailed };
}
