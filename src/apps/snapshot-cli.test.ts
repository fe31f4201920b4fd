import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { sampleState, snapshotFileOf } from '../server/snapshot-test-kit.js';
import { formatStatus, humanizeBytes, snapshotMain } from './snapshot-cli.js';

/** Runs `synod snapshot …argv` and captures what it prints. */
async function run(...argv: string[]): Promise<{ code: number; out: string[]; err: string[] }> {
  const out: string[] = [];
  const err: string[] = [];
  const output = { out: (line: string) => out.push(line), err: (line: string) => err.push(line) };
  const code = await snapshotMain(argv, output);
  return { code, out, err };
}

describe('synod snapshot', () => {
  let root: string;
  let good: string;
  const payload = sampleState().serialize();
  const file = snapshotFileOf(payload);
  const hash = crc32(payload);

  beforeEach(async () => {
    root = await mkdtemp(join(tmpdir(), 'synod-snapshot-cli-'));
    good = join(root, 'good.db');
    await writeFile(good, file);
  });
  afterEach(async () => {
    await rm(root, { recursive: true, force: true });
  });

  it('status prints etcdctl\'s simple line by default, its JSON or table on request', async () => {
    const json = await run('status', good, '-w', 'json');
    expect(json.code).toBe(0);
    const parsed = JSON.parse(json.out[0]!) as Record<string, number>;
    expect(Object.keys(parsed)).toEqual(['hash', 'revision', 'totalKey', 'totalSize']);
    expect(parsed).toMatchObject({ hash, revision: 6, totalSize: file.length });
    expect(parsed.totalKey).toBeGreaterThan(6);
    const status = { hash, revision: 6, totalKey: parsed.totalKey!, totalSize: file.length };
    const simple = `${hash.toString(16)}, 6, ${parsed.totalKey}, ${humanizeBytes(file.length)}`;
    expect(await run('status', good)).toEqual({ code: 0, out: [simple], err: [] });
    expect(await run('status', '--write-out=table', good))
      .toEqual({ code: 0, out: formatStatus(status, 'table'), err: [] });
  });

  it('draws the table as etcdctl does', () => {
    const status = { hash: 0xfe01cf57, revision: 10, totalKey: 7, totalSize: 2_101_248 };
    expect(formatStatus(status, 'table')).toEqual([
      '+----------+----------+------------+------------+',
      '|   HASH   | REVISION | TOTAL KEYS | TOTAL SIZE |',
      '+----------+----------+------------+------------+',
      '| fe01cf57 |       10 |          7 |     2.1 MB |',
      '+----------+----------+------------+------------+',
    ]);
  });

  it('prints sizes as go-humanize does', () => {
    const sizes = [0, 9, 544, 20_480, 21_500, 20_600, 999_999, 2_101_248, 3 * 1024 ** 3];
    expect(sizes.map(humanizeBytes))
      .toEqual(['0 B', '9 B', '544 B', '20 kB', '22 kB', '21 kB', '1000 kB', '2.1 MB', '3.2 GB']);
  });

  it('status of a corrupt, truncated or missing file exits 1 with one line', async () => {
    const corrupt = Buffer.from(file);
    corrupt[100]! ^= 1;
    await writeFile(join(root, 'corrupt.db'), corrupt);
    await writeFile(join(root, 'short.db'), file.subarray(0, 300));
    expect(await run('status', join(root, 'corrupt.db'))).toEqual({
      code: 1, out: [], err: ['synod snapshot status: snapshot file: SHA-256 mismatch'],
    });
    expect(await run('status', join(root, 'short.db'))).toEqual({
      code: 1, out: [],
      err: ['synod snapshot status: snapshot file: not whole 512-byte pages plus a hash'],
    });
    const missing = await run('status', join(root, 'missing.db'));
    expect(missing.code).toBe(1);
    expect(missing.err).toHaveLength(1);
    expect(missing.err[0]).toMatch(/^synod snapshot status: ENOENT: no such file or directory/);
  });

  it('bad usage exits 2 with the usage text', async () => {
    const misuses = [
      [], ['save', good], ['status'], ['status', good, good], ['status', good, '-w', 'yaml'],
      ['restore', good, '--wal-dir', root],
    ];
    for (const argv of misuses) {
      const result = await run(...argv);
      expect(result.code, argv.join(' ')).toBe(2);
      expect(result.err.join('\n')).toMatch(/usage: synod snapshot status/);
    }
    const badCluster = await run(
      'restore', good, '--name', 'x', '--initial-cluster', 'y=http://127.0.0.1:1',
    );
    expect(badCluster.code).toBe(2);
    expect(badCluster.err[0]).toMatch(/couldn't find local name "x"/);
  });

  it('restore builds the data directory, and refuses one that is not empty', async () => {
    const dataDir = join(root, 'n1.etcd');
    const flags = [
      '--name', 'n1', '--initial-cluster', 'n1=http://127.0.0.1:2380',
      '--initial-cluster-token', 't',
      '--initial-advertise-peer-urls', 'http://127.0.0.1:2380', '--data-dir', dataDir,
    ];
    const restored = await run('restore', good, ...flags);
    expect(restored.code).toBe(0);
    expect(restored.out).toHaveLength(1);
    expect(restored.out[0]).toMatch(new RegExp(
      `^restored snapshot ${good} into ${dataDir}: member [0-9a-f]+ of cluster [0-9a-f]+ ` +
      '\\(1 member\\), revision 6, raft index 9$',
    ));
    await mkdir(join(root, 'other'));
    expect(await run('restore', good, ...flags)).toEqual({
      code: 1, out: [],
      err: [`synod snapshot restore: data-dir "${dataDir}" not empty or could not be read`],
    });
  });
});
