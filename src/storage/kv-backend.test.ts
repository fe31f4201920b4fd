import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { open as openLmdb } from 'lmdb';
import { afterEach, describe, expect, expectTypeOf, it } from 'vitest';
import { isSynodError } from '../base/index.js';
import type { Backend, BackendWrite, BucketName } from '../kv/backend.js';
import { bucketNames } from '../kv/backend.js';
import { utf8 } from '../kv/bytes.js';
import type { Command } from '../kv/command.js';
import { MemoryBackend } from '../kv/memory-backend.js';
import { KvStateMachine } from '../kv/state-machine.js';
import {
  kvBucketNames, LmdbKvBackend, type KvBackendWrite, type KvBucketName,
} from './kv-backend.js';

const directories: string[] = [];
const backends: LmdbKvBackend[] = [];

afterEach(async () => {
  for (const backend of backends.splice(0)) await backend.close().catch(() => undefined);
  for (const path of directories.splice(0)) rmSync(path, { recursive: true, force: true });
});

function temporaryDirectory(): string {
  const directory = mkdtempSync(join(tmpdir(), 'synod-kv-'));
  directories.push(directory);
  return directory;
}

function openBackend(path: string): LmdbKvBackend {
  const backend = LmdbKvBackend.open({ path });
  backends.push(backend);
  return backend;
}

async function reopen(backend: LmdbKvBackend, path: string): Promise<LmdbKvBackend> {
  await backend.close();
  return openBackend(path);
}

function codeOf(body: () => unknown): string | undefined {
  try {
    body();
  } catch (error) {
    if (isSynodError(error)) return `${error.code}: ${error.message}`;
    throw error;
  }
  return undefined;
}

const hex = (bytes: Uint8Array | undefined): string | undefined =>
  bytes === undefined ? undefined : Buffer.from(bytes).toString('hex');

function scanned(backend: Backend, bucket: BucketName, start: Uint8Array, end?: Uint8Array) {
  const bounds = end === undefined ? { start } : { start, end };
  return [...backend.scan(bucket, bounds)].map((entry) => [hex(entry.key), hex(entry.value)]);
}

describe('type-level: LmdbKvBackend is a kv Backend', () => {
  it('is assignable structurally, and the local types match src/kv', () => {
    expectTypeOf<LmdbKvBackend>().toExtend<Backend>();
    expectTypeOf<KvBucketName>().toEqualTypeOf<BucketName>();
    expectTypeOf<KvBackendWrite>().toEqualTypeOf<BackendWrite>();
    expect(kvBucketNames).toEqual(bucketNames);
  });
});

// Small alphabets, so random keys collide, share prefixes and straddle scan bounds; 0x00 and 0xff
// probe the unsigned order. Keys are non-empty: LMDB cannot store an empty key, and MVCC keys never
// are.
const byte = fc.constantFrom(0x00, 0x01, 0x61, 0x7f, 0x80, 0xff);
const key = fc.array(byte, { minLength: 1, maxLength: 3 }).map((bytes) => Uint8Array.from(bytes));
const bucket = fc.constantFrom<BucketName>(...bucketNames);
const write: fc.Arbitrary<BackendWrite> = fc.record({
  bucket,
  key,
  value: fc.option(fc.uint8Array({ maxLength: 6 }), { nil: undefined }),
}).map(({ value, ...rest }) => (value === undefined ? rest : { ...rest, value }));

type InnerStep =
  | { readonly type: 'commit'; readonly writes: BackendWrite[] }
  | { readonly type: 'get'; readonly bucket: BucketName; readonly key: Uint8Array }
  | { readonly type: 'scan'; readonly bucket: BucketName; readonly start: Uint8Array;
      readonly end: Uint8Array | undefined };

type Step =
  | InnerStep
  | { readonly type: 'batch'; readonly steps: InnerStep[] }
  | { readonly type: 'reopen' };

const commitStep = fc.record({ type: fc.constant('commit' as const),
  writes: fc.array(write, { maxLength: 6 }) });
const getStep = fc.record({ type: fc.constant('get' as const), bucket, key });
const scanStep = fc.record({ type: fc.constant('scan' as const), bucket,
  start: fc.oneof(key, fc.constant(new Uint8Array(0))),
  end: fc.option(key, { nil: undefined }) });

const step: fc.Arbitrary<Step> = fc.oneof(
  { weight: 4, arbitrary: commitStep },
  { weight: 2, arbitrary: getStep },
  { weight: 2, arbitrary: scanStep },
  { weight: 2, arbitrary: fc.record({ type: fc.constant('batch' as const),
    steps: fc.array(fc.oneof(commitStep, getStep, scanStep), { maxLength: 8 }) }) },
  { weight: 1, arbitrary: fc.constant({ type: 'reopen' as const }) },
);

/** Runs `current` on both backends and compares what it reads. */
function runInnerStep(current: InnerStep, lmdb: Backend, memory: Backend): void {
  if (current.type === 'commit') {
    lmdb.commit(current.writes);
    memory.commit(current.writes);
  } else if (current.type === 'get') {
    expect(hex(lmdb.get(current.bucket, current.key)))
      .toBe(hex(memory.get(current.bucket, current.key)));
  } else {
    const { bucket: name, start, end } = current;
    expect(scanned(lmdb, name, start, end)).toEqual(scanned(memory, name, start, end));
  }
}

describe('LmdbKvBackend against MemoryBackend', () => {
  it('agrees on random commit/get/scan/batch sequences, across reopen', async () => {
    await fc.assert(fc.asyncProperty(fc.array(step, { maxLength: 40 }), async (steps) => {
      const path = temporaryDirectory();
      let lmdb = openBackend(path);
      const memory = new MemoryBackend();
      for (const current of steps) {
        if (current.type === 'reopen') {
          lmdb = await reopen(lmdb, path);
        } else if (current.type === 'batch') {
          const backend = lmdb;
          backend.batch(() => {
            for (const inner of current.steps) runInnerStep(inner, backend, memory);
          });
        } else {
          runInnerStep(current, lmdb, memory);
        }
      }
      for (const name of bucketNames) {
        const all = new Uint8Array(0);
        expect(scanned(lmdb, name, all)).toEqual(scanned(memory, name, all));
      }
      await lmdb.close();
      rmSync(path, { recursive: true, force: true });
    }), { numRuns: 60 });
  });
});

const all = { key: new Uint8Array([0]), rangeEnd: new Uint8Array([0]) };

const commands: Command[] = [
  { type: 'leaseGrant', id: 0n, ttlSeconds: 30 },
  { type: 'put', request: { key: utf8('a'), value: utf8('1'), lease: 1n } },
  { type: 'put', request: { key: utf8('b'), value: utf8('1') } },
  { type: 'put', request: { key: utf8('b'), value: utf8('2') } },
  {
    type: 'txn',
    request: {
      compare: [{ key: utf8('b'), target: 'VALUE', value: utf8('2'), result: 'EQUAL' }],
      success: [
        { requestPut: { key: utf8('c'), value: utf8('3') } },
        { requestDeleteRange: { key: utf8('a') } },
      ],
      failure: [{ requestPut: { key: utf8('failed'), value: utf8('x') } }],
    },
  },
  { type: 'txn', request: {} }, // writes nothing; its index is still recorded
  { type: 'compact', revision: 4 },
  { type: 'compact', revision: 2 }, // SYNOD_COMPACTED: an outcome, index recorded
  { type: 'put', request: { key: utf8('d'), value: utf8('4') } },
];

describe('the MVCC store on LmdbKvBackend', () => {
  it('applies commands like the memory backend and reopens with the same state', async () => {
    const path = temporaryDirectory();
    const backend = openBackend(path);
    const machine = KvStateMachine.open({ backend });
    const reference = KvStateMachine.open({ backend: new MemoryBackend() });
    commands.forEach((command, offset) => {
      const raftIndex = 10 + offset;
      expect(machine.apply(command, { raftIndex }))
        .toEqual(reference.apply(command, { raftIndex }));
    });
    expect(machine.appliedIndex).toBe(10 + commands.length - 1);
    expect(machine.store.compactRevision).toBe(4);

    const reopened = KvStateMachine.open({ backend: await reopen(backend, path) });
    expect(reopened.appliedIndex).toBe(machine.appliedIndex);
    expect(reopened.store.currentRevision).toBe(reference.store.currentRevision);
    expect(reopened.store.compactRevision).toBe(4);
    for (const revision of [0, 4, 5, 6]) {
      expect(reopened.store.range({ ...all, revision }))
        .toEqual(reference.store.range({ ...all, revision }));
    }
    expect(codeOf(() => reopened.store.range({ ...all, revision: 3 })))
      .toMatch(/^SYNOD_COMPACTED/);
    expect(reopened.serialize()).toEqual(reference.serialize());
  });

  it('applies a batch of commands like one by one; a crash keeps a prefix of whole batches',
    async () => {
      const path = temporaryDirectory();
      const backend = openBackend(path);
      const machine = KvStateMachine.open({ backend });
      const reference = KvStateMachine.open({ backend: new MemoryBackend() });
      const results = machine.batch(() => commands.map((command, offset) =>
        machine.apply(command, { raftIndex: 10 + offset })));
      expect(results).toEqual(commands.map((command, offset) =>
        reference.apply(command, { raftIndex: 10 + offset })));
      const durable = reference.serialize();
      expect(machine.serialize()).toEqual(durable);
      const put = { type: 'put' as const, request: { key: utf8('e'), value: utf8('5') } };
      expect(() => machine.batch(() => {
        machine.apply(put, { raftIndex: 50 });
        throw new Error('crash before the batch commits');
      })).toThrow();
      const reopened = KvStateMachine.open({ backend: await reopen(backend, path) });
      expect(reopened.appliedIndex).toBe(10 + commands.length - 1);
      expect(reopened.serialize()).toEqual(durable);
    });

  it('clear() empties every bucket, so a Raft snapshot restores into it', async () => {
    const path = temporaryDirectory();
    const backend = openBackend(path);
    const machine = KvStateMachine.open({ backend });
    const reference = KvStateMachine.open({ backend: new MemoryBackend() });
    commands.forEach((command, offset) => {
      machine.apply(command, { raftIndex: 10 + offset });
      reference.apply(command, { raftIndex: 10 + offset });
    });
    const snapshot = reference.serialize();
    machine.apply({ type: 'put', request: { key: utf8('later'), value: utf8('x') } }, { raftIndex: 99 });
    backend.clear();
    for (const bucket of bucketNames) expect([...backend.scan(bucket, { start: new Uint8Array(0) })]).toEqual([]);
    const restored = KvStateMachine.restore(snapshot, { backend });
    expect(restored.appliedIndex).toBe(reference.appliedIndex);
    const reopened = KvStateMachine.open({ backend: await reopen(backend, path) });
    expect(reopened.serialize()).toEqual(snapshot);
  });
});

describe('batch', () => {
  it('stores a batch whole, or none of it when its body throws', async () => {
    const path = temporaryDirectory();
    let backend = openBackend(path);
    backend.commit([{ bucket: 'key', key: utf8('k'), value: utf8('before') }]);
    const result = backend.batch(() => {
      backend.commit([{ bucket: 'key', key: utf8('k'), value: utf8('first') }]);
      backend.batch(() => backend.commit([{ bucket: 'key', key: utf8('j'), value: utf8('2') }]));
      return hex(backend.get('key', utf8('k')));
    });
    expect(result).toBe(hex(utf8('first')));
    const failed = new Error('body failed');
    expect(() => backend.batch(() => {
      backend.commit([{ bucket: 'key', key: utf8('k'), value: utf8('lost') }]);
      backend.commit([{ bucket: 'key', key: utf8('j') }]);
      throw failed;
    })).toThrow(failed);
    backend = await reopen(backend, path);
    expect(scanned(backend, 'key', new Uint8Array(0)))
      .toEqual([[hex(utf8('j')), hex(utf8('2'))], [hex(utf8('k')), hex(utf8('first'))]]);
  });
});

describe('the unsynced marker of commitSync none', () => {
  const markerOf = (path: string): string => join(path, 'unsynced.boot-id');
  const written = { bucket: 'key' as const, key: utf8('k'), value: utf8('v') };

  function openAt(path: string, bootId: string): LmdbKvBackend {
    const backend = LmdbKvBackend.open({ path, commitSync: 'none', bootId });
    backends.push(backend);
    return backend;
  }

  it('is kept by a process crash on the same boot, and discards the store after a reboot',
    async () => {
      const path = temporaryDirectory();
      const first = openAt(path, 'boot-1');
      first.commit([written]);
      expect(readFileSync(markerOf(path), 'utf8')).toBe('boot-1');
      await first.close();
      expect(existsSync(markerOf(path))).toBe(false);

      writeFileSync(markerOf(path), 'boot-1'); // as a killed process leaves it
      const sameBoot = openAt(path, 'boot-1');
      expect(sameBoot.openReport.discardedUnsynced).toBe(false);
      expect(hex(sameBoot.get('key', utf8('k')))).toBe(hex(utf8('v')));
      await sameBoot.close();

      writeFileSync(markerOf(path), 'boot-1'); // then the OS went down
      const nextBoot = openAt(path, 'boot-2');
      expect(nextBoot.openReport.discardedUnsynced).toBe(true);
      expect(nextBoot.get('key', utf8('k'))).toBeUndefined();
      expect(KvStateMachine.open({ backend: nextBoot }).appliedIndex).toBe(0);
    });

  it('is honoured by every policy and written only by none; an unknown boot never matches',
    async () => {
      const path = temporaryDirectory();
      const synced = LmdbKvBackend.open({ path, commitSync: 'data', bootId: 'boot-1' });
      synced.commit([written]);
      expect(existsSync(markerOf(path))).toBe(false);
      await synced.close();
      writeFileSync(markerOf(path), '');
      const unknownBoot = openAt(path, '');
      expect(unknownBoot.openReport.discardedUnsynced).toBe(true);
    });
});

describe('checksums', () => {
  it('a flipped stored byte makes get and scan throw SYNOD_STORAGE_CORRUPT naming it', async () => {
    const path = temporaryDirectory();
    const backend = openBackend(path);
    backend.commit([
      { bucket: 'lease', key: utf8('ok'), value: utf8('fine') },
      { bucket: 'lease', key: utf8('k1'), value: utf8('value') },
    ]);
    await backend.close();

    const root = openLmdb({ path });
    const database = root.openDB<Buffer, Buffer>({ name: 'kv/lease', encoding: 'binary',
      keyEncoding: 'binary' });
    const stored = Buffer.from(database.get(Buffer.from('k1'))!);
    stored[stored.length - 1]! ^= 0x01;
    database.putSync(Buffer.from('k1'), stored);
    await root.close();

    const damaged = openBackend(path);
    expect(hex(damaged.get('lease', utf8('ok')))).toBe(hex(utf8('fine')));
    const message = 'SYNOD_STORAGE_CORRUPT: storage record kv/lease/6b31: checksum mismatch';
    expect(codeOf(() => damaged.get('lease', utf8('k1')))).toBe(message);
    expect(codeOf(() => [...damaged.scan('lease', { start: new Uint8Array(0) })])).toBe(message);
  });
});

describe('ownership', () => {
  it('returns plain Uint8Arrays that stay valid after later commits', () => {
    const backend = openBackend(temporaryDirectory());
    backend.commit([{ bucket: 'key', key: utf8('k'), value: utf8('old') }]);
    const value = backend.get('key', utf8('k'))!;
    const [entry] = backend.scan('key', { start: utf8('k') });
    backend.commit([{ bucket: 'key', key: utf8('k'), value: utf8('new') }]);
    for (const bytes of [value, entry!.key, entry!.value]) {
      expect(Object.getPrototypeOf(bytes)).toBe(Uint8Array.prototype);
    }
    expect([hex(value), hex(entry!.value)]).toEqual([hex(utf8('old')), hex(utf8('old'))]);
    expect(hex(backend.get('key', utf8('k')))).toBe(hex(utf8('new')));
  });
});

describe('close', () => {
  it('makes every later call throw SYNOD_STORAGE_CLOSED; closing twice is fine', async () => {
    const backend = openBackend(temporaryDirectory());
    backend.commit([{ bucket: 'meta', key: utf8('m'), value: utf8('1') }]);
    await backend.flush();
    await backend.close();
    await backend.close();
    const closed = /^SYNOD_STORAGE_CLOSED/;
    expect(codeOf(() => backend.get('meta', utf8('m')))).toMatch(closed);
    expect(codeOf(() => backend.scan('meta', { start: utf8('') }))).toMatch(closed);
    expect(codeOf(() => backend.commit([]))).toMatch(closed);
    expect(codeOf(() => backend.flush())).toMatch(closed);
  });
});
