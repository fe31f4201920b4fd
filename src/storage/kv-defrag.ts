/**
 * The files of a defragmentation of the MVCC backend (LmdbKvBackend.defragment). LMDB reuses the
 * pages it frees but never gives them back to the file system, so after many deletes and
 * compactions the file keeps its high-water size; `mdb_env_copy2` with MDB_CP_COMPACT writes a
 * copy holding only live pages. The copy goes to a sibling directory and then takes the
 * environment's place:
 *
 *   1. write the compacted copy into `<path>-defrag/` and fsync it;
 *   2. (the backend opens the copy and switches to it, then closes the original);
 *   3. rename `<path>` to `<path>-old`, `<path>-defrag` to `<path>`, fsync the parent; remove
 *      `<path>-old`.
 *
 * A crash at any point leaves one complete environment that `recoverInterruptedDefrag` puts back
 * at `<path>` before the next open: the original until step 3 starts (nothing commits during a
 * defragmentation, so it is current), the copy once `<path>` was renamed away.
 */

import { closeSync, existsSync, fsyncSync, openSync, renameSync, rmSync, statSync } from 'node:fs';
import { mkdir, open, rename, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { RootDatabase } from 'lmdb';

/** What a defragmentation did to the file. */
export interface KvDefragReport {
  /** `data.mdb` before and after, bytes. */
  readonly bytesBefore: number;
  readonly bytesAfter: number;
}

// No dot in these names: lmdb-js takes a path with an extension for a file, not a directory.
function copyPathOf(path: string): string {
  return `${path}-defrag`;
}

function oldPathOf(path: string): string {
  return `${path}-old`;
}

/** The size of the environment's data file (0 if absent). */
export function dataFileBytes(path: string): number {
  const file = join(path, 'data.mdb');
  return existsSync(file) ? statSync(file).size : 0;
}

/** Before an open: finishes or undoes a defragmentation a crash interrupted (module comment). */
export function recoverInterruptedDefrag(path: string): void {
  const copy = copyPathOf(path);
  const old = oldPathOf(path);
  if (!existsSync(path)) {
    // Step 3 began: <path> was renamed away, so the copy is complete (or, if it too was moved,
    // the rename of the original is all there is to undo).
    if (existsSync(copy)) renameSync(copy, path);
    else if (existsSync(old)) renameSync(old, path);
    syncDirectory(dirname(path));
  }
  rmSync(copy, { recursive: true, force: true });
  rmSync(old, { recursive: true, force: true });
}

// Steps 1 and 3 run while the member serves reads: every file operation in them is asynchronous
// (the thread pool), so an fsync or the removal of a large file never holds the event loop.

/** Step 1: the compacted copy of `root` in `<path>-defrag/`, on disk; returns its directory. */
export async function writeCompactCopy(root: RootDatabase, path: string): Promise<string> {
  const copy = copyPathOf(path);
  await rm(copy, { recursive: true, force: true });
  await mkdir(copy);
  await root.backup(copy, true);
  await syncPath(join(copy, 'data.mdb'));
  await syncPath(copy);
  return copy;
}

/** Step 3: the copy takes the environment's place. */
export async function replaceWithCopy(path: string): Promise<void> {
  const old = oldPathOf(path);
  await rm(old, { recursive: true, force: true });
  await rename(path, old);
  await rename(copyPathOf(path), path);
  await syncPath(dirname(path));
  await rm(old, { recursive: true, force: true });
}

async function syncPath(path: string): Promise<void> {
  const handle = await open(path, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

function syncFile(file: string): void {
  const descriptor = openSync(file, 'r');
  try {
    fsyncSync(descriptor);
  } finally {
    closeSync(descriptor);
  }
}

function syncDirectory(path: string): void {
  syncFile(path);
}
