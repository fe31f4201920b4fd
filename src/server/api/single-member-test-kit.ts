/**
 * Test kit for the API services: a single-member RaftNode on a temp directory, already leader,
 * with a manual ticker. `cleanups` collects what the caller's afterEach must run, in reverse.
 */

import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { assert, SeededRandom } from '../../base/index.js';
import { KvStateMachine } from '../../kv/index.js';
import { RaftLogStore } from '../../storage/index.js';
import { RaftNode } from '../node/raft-node.js';

/** Opens a single voter, campaigns, and resolves once it leads. */
export async function startLeader(prefix: string, cleanups: (() => Promise<void>)[]): Promise<RaftNode> {
  const directory = await mkdtemp(join(tmpdir(), prefix));
  cleanups.push(() => rm(directory, { recursive: true, force: true }));
  const store = await RaftLogStore.open({ path: directory, bootstrapConfState: { voters: [1], learners: [] } });
  const node = new RaftNode({
    id: 1, store, stateMachine: KvStateMachine.open(), transport: { send: () => {} },
    random: new SeededRandom(7), tickIntervalMs: 100, electionTicks: 10, ticker: 'manual',
  });
  cleanups.push(async () => {
    await node.stop();
    await store.close();
  });
  node.start();
  node.campaign();
  await node.idle();
  assert(node.isLeader, 'a single voter leads after campaigning');
  return node;
}
