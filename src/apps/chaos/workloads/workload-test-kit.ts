/**
 * Test kit for the workloads: a single Synod member (src/server/api/single-member-test-kit.ts)
 * serving etcdserverpb.KV on 127.0.0.1, and a miniature runner that drives one workload against
 * it without faults and returns the history, the final read and the verdict.
 */

import type { Server } from '@grpc/grpc-js';
import { bindInsecure, createGrpcServer, shutdownServer } from '../../../server/api/grpc-server.js';
import { createKvService } from '../../../server/api/kv-service.js';
import { startLeader } from '../../../server/api/single-member-test-kit.js';
import { loadEtcdProto } from '../../../server/grpc/proto.js';
import type { CheckVerdict, HistoryEntry } from '../types.js';
import { HistoryRecorder, MemoryHistorySink } from './history-recorder.js';
import { createKvClient, type Workload, type WorkloadClient } from './workload.js';

const proto = loadEtcdProto();

/** Starts a member, returns a client to it; `cleanups` gets what afterEach runs, reversed. */
export async function startMember(cleanups: (() => Promise<void>)[]): Promise<WorkloadClient> {
  const node = await startLeader('synod-chaos-workload-', cleanups);
  const server: Server = createGrpcServer({ proto });
  server.addService(proto.services.KV, createKvService({
    node, definition: proto.services.KV, clusterId: 0xc4a05n, memberId: 1n,
  }));
  const port = await bindInsecure(server, '127.0.0.1:0');
  cleanups.push(() => shutdownServer(server));
  const address = `127.0.0.1:${port}`;
  const kv = createKvClient({ address, proto });
  cleanups.push(async () => kv.close());
  return { member: 'member-1', address, kv };
}

/** How long and how hard `runWorkload` drives a workload. */
export interface RunOptions {
  readonly clientCount: number;
  /** The run ends after this long… */
  readonly durationMs: number;
  /** …or once this many operations were recorded, whichever comes first. */
  readonly entriesTarget: number;
}

/** What one run produced. */
export interface RunOutcome<FinalRead> {
  readonly history: readonly HistoryEntry[];
  readonly finalRead: FinalRead;
  readonly verdict: CheckVerdict;
}

/** setup, concurrent clients until the run ends, final read, check. */
export async function runWorkload<FinalRead>(
  workload: Workload<FinalRead>,
  client: WorkloadClient,
  options: RunOptions,
): Promise<RunOutcome<FinalRead>> {
  const stop = new AbortController();
  const sink = new MemoryHistorySink({
    entriesMax: options.entriesTarget + options.clientCount,
    onEntry: () => {
      if (sink.entries.length >= options.entriesTarget) stop.abort();
    },
  });
  const recorder = new HistoryRecorder({ sink, runStartedAtMs: performance.now() });
  await workload.setup([client]);
  const timer = setTimeout(() => stop.abort(), options.durationMs);
  try {
    const clients = Array.from({ length: options.clientCount }, (_, clientId) =>
      workload.startClient({ clientId, client, recorder, signal: stop.signal }));
    await Promise.all(clients);
  } finally {
    clearTimeout(timer);
  }
  await recorder.close();
  const finalRead = await workload.final([client]);
  return { history: sink.entries, finalRead, verdict: workload.check(sink.entries, finalRead) };
}
