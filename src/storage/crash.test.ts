// kill -9 while persisting: every persist the child saw resolve must survive, intact.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { SeededRandom } from '../base/index.js';
import { RaftLogStore } from './raft-log-store.js';
import { crashEntryData } from './testdata/crash-writer.js';

const writerPath = fileURLToPath(new URL('./testdata/crash-writer.ts', import.meta.url));
const repositoryRoot = fileURLToPath(new URL('../..', import.meta.url));
const roundsMax = 3;

/** Runs the writer until it prints `acksTarget` acks, then SIGKILLs it; returns the last ack. */
async function writeAndKill(path: string, acksTarget: number): Promise<number> {
  const child = spawn(process.execPath, ['--import', 'tsx', writerPath, path], {
    cwd: repositoryRoot,
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const exited = new Promise<NodeJS.Signals | number | null>((resolve) => {
    child.on('exit', (code, signal) => resolve(signal ?? code));
  });
  let acks = 0;
  let lastAcked = 0;
  for await (const line of createInterface({ input: child.stdout })) {
    const match = /^acked (\d+)$/.exec(line);
    expect(match, `unexpected writer output: ${line}`).not.toBeNull();
    const acked = Number(match![1]);
    expect(acked).toBeGreaterThan(lastAcked);
    lastAcked = acked;
    acks++;
    if (acks === acksTarget) {
      child.kill('SIGKILL');
      break;
    }
  }
  const status = await exited;
  expect(status === 'SIGKILL' || status === 0).toBe(true);
  return lastAcked;
}

describe('RaftLogStore under kill -9', () => {
  it('keeps every acknowledged entry intact across SIGKILL', async () => {
    const seed = 7_2026;
    const random = new SeededRandom(seed);
    const path = mkdtempSync(join(tmpdir(), 'synod-log-crash-'));
    try {
      let acknowledged = 0;
      for (let round = 0; round < roundsMax; round++) {
        const lastAcked = await writeAndKill(path, 1 + random.int(300));
        expect(lastAcked, `seed ${seed} round ${round}`).toBeGreaterThan(acknowledged);
        acknowledged = lastAcked;
        const store = await RaftLogStore.open({ path });
        try {
          expect(store.openReport.truncatedFrom).toBe(null);
          expect(store.lastIndex()).toBeGreaterThanOrEqual(acknowledged);
          const entries = store.entries(1, acknowledged + 1, Infinity);
          expect(entries).toHaveLength(acknowledged);
          for (const entry of entries) expect(entry.data).toEqual(crashEntryData(entry.index));
        } finally {
          await store.close();
        }
      }
    } finally {
      rmSync(path, { recursive: true, force: true });
    }
  });
});
