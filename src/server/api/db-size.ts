/**
 * The on-disk size of the MVCC backend for Maintenance.Status's dbSize. The LMDB environment lives
 * at `<data-dir>/kv` (server.ts); lmdb-js opens it either as a directory holding `data.mdb` or as a
 * file beside its `-lock` file, so both layouts are measured. Lock files are not data and are not
 * counted. A path that does not exist yet measures 0.
 */

import type { Stats } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';

/** Bytes of the LMDB files at `path` (a data file or an environment directory). */
export async function lmdbFilesBytes(path: string): Promise<number> {
  const info = await statIfPresent(path);
  if (info === undefined) return 0;
  if (info.isFile()) return info.size;
  let total = 0;
  // A defragmentation renames the directory for an instant: a name gone meanwhile counts 0.
  for (const name of await readdir(path).catch(absentAs([]))) {
    if (name.endsWith('lock.mdb') || name.endsWith('-lock')) continue;
    const file = await statIfPresent(join(path, name));
    if (file?.isFile() === true) total += file.size;
  }
  return total;
}

function statIfPresent(path: string): Promise<Stats | undefined> {
  return stat(path).catch(absentAs(undefined));
}

function absentAs<T>(fallback: T): (error: unknown) => T {
  return (error: unknown) => {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return fallback;
    throw error;
  };
}

/** `lmdbFilesBytes` of the MVCC backend under `dataDir`, as server.ts lays it out. */
export function mvccBackendBytes(dataDir: string): Promise<number> {
  return lmdbFilesBytes(join(dataDir, 'kv'));
}

/** How stale a size the quota check may use (see `cachedMeasure`). */
export const quotaSizeMaxAgeMs = 250;

/**
 * `measure`, remembered for `maxAgeMs`: the quota check runs before every write, and measuring
 * the files each time (stat and readdir) cost ~9% of a member's CPU under write load. A size up
 * to `maxAgeMs` old lets writes overshoot the quota by at most that long's worth of writes, as
 * etcd's own check, which reads a size its backend updates asynchronously, also may.
 */
export function cachedMeasure(measure: () => Promise<number>, maxAgeMs: number): () => Promise<number> {
  let last: { value: Promise<number>; atMs: number } | null = null;
  return () => {
    const nowMs = performance.now();
    if (last === null || nowMs - last.atMs > maxAgeMs) {
      const value = measure();
      last = { value, atMs: nowMs };
      // A failed measurement is not remembered.
      value.catch(() => {
        if (last?.value === value) last = null;
      });
    }
    return last.value;
  };
}
