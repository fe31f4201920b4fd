// Several processes draw ids of one tag from one Synod at once; the parent collects every id and
// checks that none repeats and that each process's ids increase.
import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startInProcessSynod, type ClientTarget } from '../client/targets.js';

const processes = 4;
const idsPerProcess = 100_000;
const child = fileURLToPath(new URL('./segment-child.ts', import.meta.url));

let target: ClientTarget;
beforeAll(async () => {
  target = await startInProcessSynod();
});
afterAll(async () => {
  await target?.stop();
});

/** Runs one child to completion and resolves to the ids it drew, in its order. */
function drawIn(index: number): Promise<bigint[]> {
  return new Promise((resolve, reject) => {
    const ids: bigint[] = [];
    let done = false;
    const worker = fork(child, [target.endpoint, 'processes', String(idsPerProcess)], {
      execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    worker.on('message', (message: { ids?: string[]; done?: boolean }) => {
      for (const id of message.ids ?? []) ids.push(BigInt(id));
      if (message.done === true) done = true;
    });
    worker.on('error', reject);
    worker.on('close', (code) => {
      if (code === 0 && done) resolve(ids);
      else reject(new Error(`child ${index} exited with ${code} (done: ${done})`));
    });
  });
}

it('never repeats an id across processes sharing a tag', async () => {
  const drawn = await Promise.all(Array.from({ length: processes }, (_, index) => drawIn(index)));
  for (const ids of drawn) {
    expect(ids).toHaveLength(idsPerProcess);
    for (let i = 1; i < ids.length; i++) expect(ids[i]! > ids[i - 1]!).toBe(true);
  }
  expect(new Set(drawn.flat()).size).toBe(processes * idsPerProcess);
}, 120_000);
