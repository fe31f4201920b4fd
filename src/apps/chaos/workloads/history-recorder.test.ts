import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Metadata, status as GrpcStatus, type Server, type ServiceError } from '@grpc/grpc-js';
import { afterEach, describe, expect, it } from 'vitest';
import { bindInsecure, createGrpcServer, shutdownServer } from '../../../server/api/grpc-server.js';
import { loadEtcdProto } from '../../../server/grpc/proto.js';
import type { HistoryEntry } from '../types.js';
import {
  HistoryFullError, HistoryRecorder, JsonLinesHistoryFile, MemoryHistorySink, classifyError,
  readHistoryFile, type Effect,
} from './history-recorder.js';
import { createKvClient } from './workload.js';

const proto = loadEtcdProto();

function serviceError(code: GrpcStatus, details: string): ServiceError {
  const fields = { code, details, metadata: new Metadata() };
  return Object.assign(new Error(`${code} ${details}`), fields);
}

describe('classifyError', () => {
  const table: readonly [GrpcStatus, string, Effect, 'failed' | 'unknown'][] = [
    [GrpcStatus.DEADLINE_EXCEEDED, 'Deadline exceeded', 'write', 'unknown'],
    [GrpcStatus.DEADLINE_EXCEEDED, 'Deadline exceeded', 'read', 'failed'],
    [GrpcStatus.CANCELLED, 'Cancelled on client', 'write', 'unknown'],
    [GrpcStatus.UNAVAILABLE, 'etcdserver: request timed out', 'write', 'unknown'],
    [GrpcStatus.UNAVAILABLE, 'etcdserver: leader changed', 'write', 'unknown'],
    [GrpcStatus.UNAVAILABLE, 'etcdserver: server stopped', 'write', 'unknown'],
    [GrpcStatus.UNAVAILABLE, 'Connection dropped', 'write', 'unknown'],
    [GrpcStatus.UNAVAILABLE, 'etcdserver: no leader', 'write', 'failed'],
    [GrpcStatus.UNAVAILABLE, 'No connection established. Last error: x', 'write', 'failed'],
    [GrpcStatus.RESOURCE_EXHAUSTED, 'etcdserver: too many requests', 'write', 'failed'],
    [GrpcStatus.RESOURCE_EXHAUSTED, 'etcdserver: mvcc: database space exceeded', 'write', 'failed'],
    [GrpcStatus.INVALID_ARGUMENT, 'etcdserver: duplicate key given in txn', 'write', 'failed'],
    [GrpcStatus.OUT_OF_RANGE, 'etcdserver: mvcc: required revision has been', 'read', 'failed'],
    [GrpcStatus.INTERNAL, 'internal error', 'write', 'unknown'],
    [GrpcStatus.UNKNOWN, 'something new', 'write', 'unknown'],
  ];
  it.each(table)('status %s %j on a %s is %s', (code, details, effect, expected) => {
    expect(classifyError({ code, details }, effect)).toBe(expected);
  });
});

describe('HistoryRecorder', () => {
  const cleanups: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  function recorder(sink: MemoryHistorySink, operationTimeoutMs = 1_000) {
    let clockMs = 100;
    const now = () => (clockMs += 5);
    return new HistoryRecorder({ sink, runStartedAtMs: 100, now, operationTimeoutMs });
  }
  const request = { workload: 'set' as const, clientId: 3, member: 'n1', call: { kind: 'add' } };

  it('times each operation from the run start and keeps ok, failed and unknown apart', async () => {
    const sink = new MemoryHistorySink({ entriesMax: 10 });
    const history = recorder(sink);
    const ok = async () => ({ outcome: 'ok' as const, result: 1 });
    await history.perform({ ...request, effect: 'write' }, ok);
    await history.perform({ ...request, effect: 'write' }, async () => ({
      outcome: 'failed', result: 2, error: 'compare failed',
    }));
    await history.perform({ ...request, effect: 'write' }, async () => {
      throw serviceError(GrpcStatus.UNAVAILABLE, 'etcdserver: request timed out');
    });
    await history.perform({ ...request, effect: 'read' }, async () => {
      throw serviceError(GrpcStatus.UNAVAILABLE, 'etcdserver: request timed out');
    });
    expect(sink.entries.map((entry) => [entry.outcome, entry.invokedAtMs, entry.completedAtMs]))
      .toEqual([['ok', 5, 10], ['failed', 15, 20], ['unknown', 25, 30], ['failed', 35, 40]]);
    expect(sink.entries[1]).toMatchObject({ result: 2, error: 'compare failed' });
    expect(sink.entries[2]).toMatchObject({ error: 'UNAVAILABLE: etcdserver: request timed out' });
    expect(history.counts).toEqual({ ok: 1, failed: 2, unknown: 1 });
  });

  it('lets a bug through instead of recording it', async () => {
    const history = recorder(new MemoryHistorySink({ entriesMax: 10 }));
    await expect(history.perform({ ...request, effect: 'write' }, async () => {
      throw new TypeError('a bug');
    })).rejects.toThrow('a bug');
  });

  it('bounds the in-memory sink', async () => {
    const history = recorder(new MemoryHistorySink({ entriesMax: 1 }));
    const ok = async () => ({ outcome: 'ok' as const, result: null });
    await history.perform({ ...request, effect: 'read' }, ok);
    await expect(history.perform({ ...request, effect: 'read' }, ok))
      .rejects.toThrow(HistoryFullError);
  });

  it('records a write to a member that never answers as unknown, a read as failed', async () => {
    const server: Server = createGrpcServer({ proto });
    // Handlers that never call back: every call runs into its deadline.
    server.addService(proto.services.KV, { Range: () => {}, Put: () => {} });
    const port = await bindInsecure(server, '127.0.0.1:0');
    cleanups.push(() => shutdownServer(server));
    const kv = createKvClient({ address: `127.0.0.1:${port}`, proto });
    cleanups.push(async () => kv.close());
    const sink = new MemoryHistorySink({ entriesMax: 10 });
    const history = new HistoryRecorder({ sink, runStartedAtMs: 0, operationTimeoutMs: 50 });
    await history.perform({ ...request, effect: 'write' }, async (context) => {
      await kv.put({ key: 'k', value: 'v' }, context);
      return { outcome: 'ok', result: null };
    });
    await history.perform({ ...request, effect: 'read' }, async (context) => {
      await kv.range({ key: 'k' }, context);
      return { outcome: 'ok', result: null };
    });
    expect(sink.entries.map((entry) => entry.outcome)).toEqual(['unknown', 'failed']);
    expect(sink.entries[0]!.error).toMatch(/^DEADLINE_EXCEEDED/);
  });

  it('records a write that could not connect as failed: it was never sent', async () => {
    const server = createGrpcServer({ proto });
    const port = await bindInsecure(server, '127.0.0.1:0');
    await shutdownServer(server);
    const kv = createKvClient({ address: `127.0.0.1:${port}`, proto });
    cleanups.push(async () => kv.close());
    const sink = new MemoryHistorySink({ entriesMax: 10 });
    const history = new HistoryRecorder({ sink, runStartedAtMs: 0, operationTimeoutMs: 1_000 });
    await history.perform({ ...request, effect: 'write' }, async (context) => {
      await kv.put({ key: 'k', value: 'v' }, context);
      return { outcome: 'ok', result: null };
    });
    expect(sink.entries[0]).toMatchObject({ outcome: 'failed' });
    expect(sink.entries[0]!.error).toMatch(/^UNAVAILABLE: No connection established/);
  });
});

describe('JsonLinesHistoryFile', () => {
  it('streams entries to disk and reads them back, one workload at a time', async () => {
    const directory = await mkdtemp(join(tmpdir(), 'synod-chaos-history-'));
    try {
      const path = join(directory, 'history.jsonl');
      const file = await JsonLinesHistoryFile.open(path);
      const entries: HistoryEntry[] = [];
      for (let index = 0; index < 1_000; index++) {
        const entry: HistoryEntry = {
          workload: index % 2 === 0 ? 'set' : 'bank', clientId: index % 7, member: 'n1',
          call: { kind: 'add', element: `e${index}` },
          invokedAtMs: index, completedAtMs: index + 0.5,
          outcome: 'ok', result: { kind: 'add' },
        };
        entries.push(entry);
        await file.write(entry);
      }
      await file.close();
      const back: HistoryEntry[] = [];
      for await (const entry of readHistoryFile(path, 'set')) back.push(entry);
      expect(back).toEqual(entries.filter((entry) => entry.workload === 'set'));
    } finally {
      await rm(directory, { recursive: true, force: true });
    }
  });
});
