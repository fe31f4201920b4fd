/**
 * A throwaway PostgreSQL server for interop tests: `initdb` into a temp directory, then `postgres`
 * on a free port, listening on 127.0.0.1 only with trust authentication, fsync on. PostgreSQL
 * refuses to run as root, so when the tests run as root the server runs as the `postgres` OS user
 * (spawned with its uid and gid). The binaries come from $SYNOD_POSTGRES_BIN, by default
 * /usr/lib/postgresql/15/bin.
 */

import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { chown, mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';

const binDirectory = process.env.SYNOD_POSTGRES_BIN ?? '/usr/lib/postgresql/15/bin';
/** How long a start may take before the harness gives up, and how often it probes meanwhile. */
const startDeadlineMs = 60_000;
const probeIntervalMs = 50;
const stopDeadlineMs = 30_000;

/** A running server and its controls. */
export interface PostgresServer {
  readonly port: number;
  /** `postgresql://postgres@127.0.0.1:<port>/postgres`. */
  readonly connectionString: string;
  /** Stops the server and removes its directory. */
  stop(): Promise<void>;
  /**
   * Stops and starts the server on the same directory and port. `'fast'` shuts down cleanly;
   * `'immediate'` is a crash (no checkpoint), so the restart replays the WAL. `whileDown` runs
   * after the server stopped and before it starts again (e.g. waiting for a lease to run out).
   */
  restart(options?: {
    readonly shutdown?: 'fast' | 'immediate';
    readonly whileDown?: () => Promise<unknown>;
  }): Promise<void>;
}

/** The user a child must run as: `postgres` when we are root, else ourselves. */
async function serverUser(): Promise<{ uid: number; gid: number } | null> {
  if (process.getuid?.() !== 0) return null;
  const passwd = await readFile('/etc/passwd', 'utf8');
  const entries = passwd.split('\n').map((line) => line.split(':'));
  const entry = entries.find((fields) => fields[0] === 'postgres');
  if (entry === undefined) throw new Error('running as root needs a postgres OS user');
  return { uid: Number(entry[2]), gid: Number(entry[3]) };
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (address === null || typeof address !== 'object') throw new Error('no port');
  return address.port;
}

/** Resolves once a connection can run a query; rejects if the server exits or stays down. */
async function waitUntilReady(
  connectionString: string, child: ChildProcess, log: () => string,
): Promise<void> {
  const startMs = performance.now();
  let exited = false;
  child.once('exit', () => (exited = true));
  for (;;) {
    if (exited) throw new Error(`postgres exited while starting:\n${log()}`);
    const client = new pg.Client({ connectionString, connectionTimeoutMillis: 1_000 });
    client.on('error', () => undefined);
    try {
      await client.connect();
      await client.query('SELECT 1');
      return;
    } catch {
      // Refused or "the database system is starting up": probe again.
    } finally {
      await client.end().catch(() => undefined);
    }
    if (performance.now() - startMs > startDeadlineMs) {
      throw new Error(`postgres did not start:\n${log()}`);
    }
    await new Promise((resolve) => setTimeout(resolve, probeIntervalMs));
  }
}

/** Initializes and starts a server; call `stop()` when done. */
export async function startPostgres(): Promise<PostgresServer> {
  const user = await serverUser();
  const root = await mkdtemp(join(tmpdir(), 'synod-postgres-'));
  const dataDirectory = join(root, 'data');
  const socketDirectory = join(root, 'socket');
  await mkdir(socketDirectory);
  if (user !== null) {
    await chown(root, user.uid, user.gid);
    await chown(socketDirectory, user.uid, user.gid);
  }
  const asUser = user === null ? {} : { uid: user.uid, gid: user.gid };
  const env = { ...process.env, LC_ALL: 'C', HOME: root };
  await promisify(execFile)(join(binDirectory, 'initdb'), [
    '-D', dataDirectory, '-U', 'postgres', '-A', 'trust', '-E', 'UTF8', '--no-sync',
  ], { ...asUser, env });
  const port = await freePort();
  const connectionString = `postgresql://postgres@127.0.0.1:${port}/postgres`;
  let child: ChildProcess | null = null;
  let stderr: string[] = [];

  const start = async (): Promise<void> => {
    stderr = [];
    child = spawn(join(binDirectory, 'postgres'), [
      '-D', dataDirectory, '-p', String(port), '-k', socketDirectory,
      '-c', 'listen_addresses=127.0.0.1', '-c', 'fsync=on',
    ], { ...asUser, env, stdio: ['ignore', 'ignore', 'pipe'] });
    child.stderr?.on('data', (chunk: Buffer) => stderr.push(chunk.toString()));
    await waitUntilReady(connectionString, child, () => stderr.join(''));
  };

  const shutdown = async (mode: 'fast' | 'immediate'): Promise<void> => {
    const running = child;
    child = null;
    if (running === null || running.exitCode !== null) return;
    const exited = new Promise<void>((resolve) => running.once('exit', () => resolve()));
    // postgres: SIGINT is a fast shutdown, SIGQUIT an immediate one (recovery on restart).
    running.kill(mode === 'fast' ? 'SIGINT' : 'SIGQUIT');
    const timer = setTimeout(() => running.kill('SIGKILL'), stopDeadlineMs);
    await exited;
    clearTimeout(timer);
  };

  await start();
  return {
    port,
    connectionString,
    async stop() {
      await shutdown('fast');
      await rm(root, { recursive: true, force: true });
    },
    async restart(options = {}) {
      await shutdown(options.shutdown ?? 'fast');
      try {
        await options.whileDown?.();
      } finally {
        await start();
      }
    },
  };
}
