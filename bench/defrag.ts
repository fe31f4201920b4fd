/**
 * `npm run bench -- defrag [--keys N] [--json]`: what a defragmentation costs the clients of a
 * member, Synod beside etcd in the same run with the same raw gRPC client. Each target is one
 * fresh member, filled with `--keys` 1 KiB values (default 20,000) that are then deleted and
 * compacted away, leaving 1,000 keys; while one client reads a kept key (serializable Range) and
 * another writes (Put) back to back, a third calls Maintenance.Defragment. Reported per target:
 * the defragmentation's duration, the file before and after, and the longest read and write
 * latency while it ran (the pause each kind of client saw), with the reads and writes completed
 * meanwhile. Builds dist/ first (Synod runs from it).
 */

import { execFileSync } from 'node:child_process';
import { parseArgs } from 'node:util';
import { credentials, type Client } from '@grpc/grpc-js';
import { loadEtcdProto, type EtcdProto } from '../src/server/grpc/proto.js';
import { ChannelPool, unaryCall, type GrpcMethod } from './kv-grpc.js';
import { etcdAvailable, startTarget, stopTarget, type TargetKind } from './kv-targets.js';

const keptKeys = 1_000;
const valueBytes = 1024;
const putsPerTxn = 100;
const requestDeadlineMs = 30_000;
/** Load before and after the defragmentation, so the clients are warm when it starts. */
const settleMs = 500;

interface DefragResult {
  readonly target: TargetKind;
  readonly keys: number;
  readonly defragMs: number;
  readonly dbBytesBefore: number;
  readonly dbBytesAfter: number;
  /** The longest read and write in flight at any time during the defragmentation, ms. */
  readonly readMaxMs: number;
  readonly writeMaxMs: number;
  readonly readsDuring: number;
  readonly writesDuring: number;
}

const encoder = new TextEncoder();

/** A client loop that records each request's [start, end] until stopped. */
function loop(call: () => Promise<unknown>): { spans: [number, number][]; stop: () => Promise<void> } {
  const spans: [number, number][] = [];
  let running = true;
  const done = (async () => {
    while (running) {
      const startedMs = performance.now();
      await call();
      spans.push([startedMs, performance.now()]);
    }
  })();
  return { spans, stop: async () => { running = false; await done; } };
}

/** The longest request overlapping [from, to] (counting an unfinished one up to `to`), and how many ended inside. */
function during(spans: readonly [number, number][], from: number, to: number): { maxMs: number; completed: number } {
  let maxMs = 0;
  let completed = 0;
  for (const [start, end] of spans) {
    if (end < from || start > to) continue;
    maxMs = Math.max(maxMs, end - start);
    if (end <= to) completed += 1;
  }
  return { maxMs, completed };
}

async function measure(proto: EtcdProto, target: TargetKind, keys: number): Promise<DefragResult | string> {
  const started = await startTarget({ kind: target, members: 1, proto, cpuProfileDirectory: null });
  if (!('leader' in started)) return `${target}: ${started.reason}`;
  const pool = new ChannelPool({ proto, clientUrl: started.leader.clientUrl, channels: 2 });
  const services = proto.packageObject.etcdserverpb as Record<string, unknown>;
  const maintenance: Client = new (services.Maintenance as GrpcMethod)(
    started.leader.clientUrl.replace('http://', ''), credentials.createInsecure());
  try {
    const value = new Uint8Array(valueBytes).fill(0x61);
    for (let from = 0; from < keys; from += putsPerTxn) {
      const success = Array.from({ length: Math.min(putsPerTxn, keys - from) }, (_, i) => ({
        request_put: { key: encoder.encode(`frag/${from + i}`), value },
      }));
      await unaryCall(pool.kvFor(0), 'Txn', { success }, requestDeadlineMs);
    }
    for (let i = 0; i < keptKeys; i++) {
      await unaryCall(pool.kvFor(0), 'Put', { key: encoder.encode(`keep/${i}`), value }, requestDeadlineMs);
    }
    await unaryCall(pool.kvFor(0), 'DeleteRange',
      { key: encoder.encode('frag/'), range_end: encoder.encode('frag0') }, requestDeadlineMs);
    const status = await unaryCall<{ header: { revision: string }; dbSize: string }>(
      maintenance, 'Status', {}, requestDeadlineMs);
    await unaryCall(pool.kvFor(0), 'Compact',
      { revision: status.header.revision, physical: true }, requestDeadlineMs);
    const before = await unaryCall<{ dbSize: string }>(maintenance, 'Status', {}, requestDeadlineMs);

    let writes = 0;
    const reader = loop(() => unaryCall(pool.kvFor(0), 'Range',
      { key: encoder.encode('keep/1'), serializable: true }, requestDeadlineMs));
    const writer = loop(() => unaryCall(pool.kvFor(1), 'Put',
      { key: encoder.encode(`write/${writes++ % 100}`), value }, requestDeadlineMs));
    await new Promise((resolve) => setTimeout(resolve, settleMs));
    const defragStartedMs = performance.now();
    await unaryCall(maintenance, 'Defragment', {}, requestDeadlineMs);
    const defragEndedMs = performance.now();
    await new Promise((resolve) => setTimeout(resolve, settleMs));
    await Promise.all([reader.stop(), writer.stop()]);
    const after = await unaryCall<{ dbSize: string }>(maintenance, 'Status', {}, requestDeadlineMs);
    const reads = during(reader.spans, defragStartedMs, defragEndedMs);
    const written = during(writer.spans, defragStartedMs, defragEndedMs);
    return {
      target, keys, defragMs: defragEndedMs - defragStartedMs,
      dbBytesBefore: Number(before.dbSize), dbBytesAfter: Number(after.dbSize),
      readMaxMs: reads.maxMs, writeMaxMs: written.maxMs,
      readsDuring: reads.completed, writesDuring: written.completed,
    };
  } finally {
    maintenance.close();
    pool.close();
    await stopTarget(started);
  }
}

function describe(result: DefragResult): string {
  const mb = (bytes: number) => (bytes / 1e6).toFixed(1);
  return `${result.target}: defragment ${result.defragMs.toFixed(0)} ms, ` +
    `db ${mb(result.dbBytesBefore)} → ${mb(result.dbBytesAfter)} MB; longest read ` +
    `${result.readMaxMs.toFixed(1)} ms (${result.readsDuring} reads meanwhile), longest write ` +
    `${result.writeMaxMs.toFixed(1)} ms (${result.writesDuring} writes meanwhile)`;
}

export async function runDefragBench(options: { json: boolean; args: string[] }): Promise<void> {
  const { values } = parseArgs({
    args: options.args, options: { json: { type: 'boolean' }, keys: { type: 'string' } },
  });
  const keys = Number(values.keys ?? 20_000);
  if (!Number.isInteger(keys) || keys < 1 || keys > 1_000_000) {
    console.error('--keys takes a whole number from 1 to 1,000,000');
    process.exit(2);
  }
  execFileSync('npm', ['run', 'build', '--silent'], { stdio: 'inherit' });
  const proto = loadEtcdProto();
  const targets: TargetKind[] = etcdAvailable() ? ['synod', 'etcd'] : ['synod'];
  const results: DefragResult[] = [];
  const failures: string[] = [];
  for (const target of targets) {
    const outcome = await measure(proto, target, keys);
    if (typeof outcome === 'string') failures.push(outcome);
    else {
      results.push(outcome);
      console.error(describe(outcome));
    }
  }
  if (options.json) console.log(JSON.stringify({ results, failures }));
  else for (const failure of failures) console.error(`failed: ${failure}`);
}
