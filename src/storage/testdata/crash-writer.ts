/**
 * The child process of the kill -9 test: appends entries to the store at `argv[2]` with up to
 * `inflightMax` persists in flight (so group commit merges them) and prints `acked <lastIndex>`
 * after each persist resolves, in order. It writes until killed or `entriesMax` is reached.
 * Entry data is a pure function of its index, so the parent can check what it reads back.
 */
import { RaftLogStore } from '../raft-log-store.js';
import type { Entry } from '../../raft/types.js';

const inflightMax = 4;
const entriesMax = 200_000;

/** The data the writer stores at `index`. */
export function crashEntryData(index: number): Uint8Array {
  const data = new Uint8Array(64);
  for (let i = 0; i < data.length; i++) data[i] = (index * 31 + i) & 0xff;
  return data;
}

async function main(path: string): Promise<void> {
  const store = await RaftLogStore.open({ path });
  let next = store.lastIndex() + 1;
  const inflight: Promise<number>[] = [];
  while (next <= entriesMax) {
    const count = 1 + (next % 7);
    const entries: Entry[] = [];
    for (let index = next; index < next + count; index++) {
      entries.push({ term: 1, index, type: 'normal', data: crashEntryData(index) });
    }
    const last = next + count - 1;
    // Commit lags the acked log, as a follower's would: the store may truncate only above it.
    const hardState = { term: 1, vote: 1, commit: Math.max(0, next - 1 - 16) };
    inflight.push(store.persist({ snapshot: null, entries, hardState }).then(() => last));
    next = last + 1;
    if (inflight.length >= inflightMax) process.stdout.write(`acked ${await inflight.shift()!}\n`);
  }
  for (const pending of inflight) process.stdout.write(`acked ${await pending}\n`);
  await store.close();
}

if (process.argv[2] !== undefined) await main(process.argv[2]);
