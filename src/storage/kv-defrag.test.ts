import { cpSync, existsSync, mkdtempSync, renameSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { utf8 } from '../kv/bytes.js';
import { LmdbKvBackend } from './kv-backend.js';
import { dataFileBytes } from './kv-defrag.js';

const directories: string[] = [];
const backends: LmdbKvBackend[] = [];

afterEach(async () => {
  for (const backend of backends.splice(0)) await backend.close().catch(() => undefined);
  for (const path of directories.splice(0)) rmSync(path, { recursive: true, force: true });
});

function environmentPath(): string {
  const directory = mkdtempSync(join(tmpdir(), 'synod-defrag-'));
  directories.push(directory);
  return join(directory, 'kv');
}

function openBackend(path: string): LmdbKvBackend {
  const backend = LmdbKvBackend.open({ path });
  backends.push(backend);
  return backend;
}

const key = (index: number) => utf8(`k${String(index).padStart(6, '0')}`);
const value = new Uint8Array(400).fill(7);

/** 20,000 keys written, all but the last 500 deleted: a file far bigger than its data. */
function fragmented(backend: LmdbKvBackend): void {
  for (let from = 0; from < 20_000; from += 1_000) {
    backend.commit(Array.from({ length: 1_000 }, (_, i) => ({ bucket: 'key' as const, key: key(from + i), value })));
  }
  for (let from = 0; from < 19_500; from += 1_000) {
    const count = Math.min(1_000, 19_500 - from);
    backend.commit(Array.from({ length: count }, (_, i) => ({ bucket: 'key' as const, key: key(from + i) })));
  }
}

function liveKeys(backend: LmdbKvBackend): number {
  return [...backend.scan('key', { start: new Uint8Array(0) })].length;
}

describe('LmdbKvBackend.defragment', () => {
  it('shrinks the file to its live pages, keeps every entry, and keeps serving and committing', async () => {
    const path = environmentPath();
    const backend = openBackend(path);
    fragmented(backend);
    const report = await backend.defragment();
    expect(report.bytesBefore).toBeGreaterThan(8_000_000);
    expect(report.bytesAfter).toBeLessThan(report.bytesBefore / 10);
    expect(report.bytesAfter).toBe(dataFileBytes(path));
    expect(liveKeys(backend)).toBe(500);
    expect(backend.get('key', key(19_999))).toEqual(value);
    backend.commit([{ bucket: 'key', key: key(1), value }]);
    expect(backend.get('key', key(1))).toEqual(value);
    expect(existsSync(`${path}-defrag`) || existsSync(`${path}-old`)).toBe(false);
    await backend.close();
    const reopened = openBackend(path);
    expect(liveKeys(reopened)).toBe(501);
  });

  it('after a crash mid-way, the next open finds one whole environment', async () => {
    const path = environmentPath();
    const backend = openBackend(path);
    fragmented(backend);
    await backend.defragment();
    await backend.close();
    // A crash between the two renames: <path> gone, its compacted copy beside it.
    renameSync(path, `${path}-defrag`);
    expect(liveKeys(openBackend(path))).toBe(500);
    await backends.pop()!.close();
    // A crash while the copy was being written: the original stands, the partial copy goes.
    cpSync(path, `${path}-defrag`, { recursive: true });
    rmSync(join(`${path}-defrag`, 'data.mdb'));
    cpSync(path, `${path}-old`, { recursive: true });
    expect(liveKeys(openBackend(path))).toBe(500);
    expect(existsSync(`${path}-defrag`) || existsSync(`${path}-old`)).toBe(false);
  });
});
