/**
 * A second process contending for a SQL lock, driven over IPC by the lock tests (forked with
 * `node --import tsx`). Arguments: backend (`sqlite` or `postgres`), database path or connection
 * string, lock name, mode, TTL in milliseconds. Messages in: `acquire`, `release`, `exit`.
 * Messages out: `{ type: 'ready' }`, `{ type: 'held', token }` (token as a decimal string),
 * `{ type: 'released' }`, `{ type: 'error', message }`.
 */

import type { HeldLock, LockBackend } from '../../src/client/locks/lock.js';
import {
  PostgresLockBackend, type PostgresLockMode,
} from '../../src/client/locks/postgres-lock.js';
import { SqliteLockBackend, type SqliteLockMode } from '../../src/client/locks/sqlite-lock.js';

const argv = process.argv.slice(2);
const [kind, target, name, mode, ttl] = argv;
if (argv.length !== 5 || kind === undefined || target === undefined || name === undefined ||
  mode === undefined || ttl === undefined) {
  throw new Error('usage: lock-contender <sqlite|postgres> <path|url> <name> <mode> <ttlMs>');
}

const common = { ttlMs: Number(ttl), retryDelayMs: 5 };
const backend: LockBackend = kind === 'sqlite'
  ? await SqliteLockBackend.open({ ...common, path: target, mode: mode as SqliteLockMode })
  : await PostgresLockBackend.connect({
    ...common,
    connectionString: target,
    mode: mode as PostgresLockMode,
    // The interop test's table for this mode: backends sharing a table share a mode.
    table: `locks_${mode.replace('-', '_')}`,
  });
let held: HeldLock | null = null;

function send(message: object): void {
  process.send?.(message);
}

process.on('message', (message: unknown) => {
  void (async () => {
    try {
      if (message === 'acquire') {
        held = await backend.acquire(name);
        send({ type: 'held', token: String(held.fencingToken) });
      } else if (message === 'release') {
        await held?.release();
        held = null;
        send({ type: 'released' });
      } else if (message === 'exit') {
        await backend.close();
        process.disconnect();
      }
    } catch (error) {
      send({ type: 'error', message: String(error) });
    }
  })();
});
send({ type: 'ready' });
