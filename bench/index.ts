/**
 * `npm run bench -- <suite> [--json]`: runs a benchmark suite. With --json the last line printed is
 * exactly one JSON object with the suite's results.
 */

import { runDefragBench } from './defrag.js';
import { runIdsBench } from './ids.js';
import { runKvBench } from './kv.js';
import { runLocksBench } from './locks.js';
import { runRaftBench } from './raft.js';

const suites: Record<string, (options: { json: boolean; args: string[] }) => Promise<void> | void> = {
  raft: runRaftBench,
  kv: runKvBench,
  defrag: runDefragBench,
  locks: runLocksBench,
  ids: runIdsBench,
};

const [suite, ...rest] = process.argv.slice(2);
const run = suite === undefined ? undefined : suites[suite];
if (run === undefined) {
  console.error(`usage: npm run bench -- <${Object.keys(suites).join('|')}> [--json]`);
  process.exit(2);
}
await run({ json: rest.includes('--json'), args: rest });
