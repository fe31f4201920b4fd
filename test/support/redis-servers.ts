/**
 * Real `redis-server` processes on loopback for the Redis lock tests. Each server runs without
 * persistence (`--save '' --appendonly no`), so a restart on the same port comes back empty —
 * the failure the Redis and Redlock unsafety demonstrations need. A start is complete when the
 * server logs "Ready to accept connections"; nothing waits a fixed time.
 */

import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';

/** The binary to run: `$REDIS_SERVER`, else `redis-server` on the PATH. */
const redisServerBinary = process.env['REDIS_SERVER'] ?? 'redis-server';
/** How long one start may take before it counts as failed. */
const startTimeoutMs = 10_000;
/** Output lines kept for the error message of a failed start. */
const outputLinesMax = 50;
/** Fresh ports tried when the first one was taken between probing and binding. */
const startAttemptsMax = 3;

/** One redis-server process, restartable on its port. */
export interface RedisServer {
  readonly port: number;
  /** `redis://127.0.0.1:<port>`. */
  readonly url: string;
  /** True while the process runs. */
  readonly running: boolean;
  /** SIGKILL, resolved once the process has exited; everything it held in memory is gone. */
  kill(): Promise<void>;
  /** Starts the server again on the same port (killing it first if it runs), empty. */
  restart(): Promise<void>;
  /** Kills the server for good and removes its directory. */
  stop(): Promise<void>;
}

/** A port the OS just handed out; free again once the probe closes. */
async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (address === null || typeof address !== 'object') throw new Error('no free port');
  return address.port;
}

/** Spawns redis-server and resolves once it accepts connections; rejects if it exits first. */
async function spawnReady(port: number, dir: string): Promise<ChildProcess> {
  const child = spawn(redisServerBinary, [
    '--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir,
  ], { stdio: ['ignore', 'pipe', 'pipe'] });
  const output: string[] = [];
  const remember = (line: string): void => {
    output.push(line);
    if (output.length > outputLinesMax) output.shift();
  };
  createInterface({ input: child.stderr! }).on('line', remember);
  await new Promise<void>((resolve, reject) => {
    const fail = (reason: string): void => {
      clearTimeout(timer);
      child.kill('SIGKILL');
      reject(new Error(`redis-server on port ${port} ${reason}:\n${output.join('\n')}`));
    };
    const timer = setTimeout(() => fail(`not ready after ${startTimeoutMs} ms`), startTimeoutMs);
    child.once('error', (error) => fail(`failed to spawn (${error.message})`));
    child.once('exit', (code, signal) => fail(`exited with ${code ?? signal} before it was ready`));
    createInterface({ input: child.stdout! }).on('line', (line) => {
      remember(line);
      if (!line.includes('Ready to accept connections')) return;
      clearTimeout(timer);
      child.removeAllListeners('exit');
      child.removeAllListeners('error');
      resolve();
    });
  });
  return child;
}

class RedisServerProcess implements RedisServer {
  readonly port: number;
  readonly url: string;
  readonly #dir: string;
  #child: ChildProcess | null;

  constructor(port: number, dir: string, child: ChildProcess) {
    this.port = port;
    this.url = `redis://127.0.0.1:${port}`;
    this.#dir = dir;
    this.#child = child;
  }

  get running(): boolean {
    return this.#child !== null;
  }

  async kill(): Promise<void> {
    const child = this.#child;
    if (child === null) return;
    this.#child = null;
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill('SIGKILL');
    await exited;
  }

  async restart(): Promise<void> {
    await this.kill();
    this.#child = await spawnReady(this.port, this.#dir);
  }

  async stop(): Promise<void> {
    await this.kill();
    await rm(this.#dir, { recursive: true, force: true });
  }
}

/** Starts one empty redis-server on a free loopback port. */
export async function startRedisServer(): Promise<RedisServer> {
  const dir = await mkdtemp(join(tmpdir(), 'synod-redis-'));
  let lastError: unknown;
  for (let attempt = 0; attempt < startAttemptsMax; attempt++) {
    const port = await freePort();
    try {
      return new RedisServerProcess(port, dir, await spawnReady(port, dir));
    } catch (error) {
      lastError = error; // Most likely the port was taken after the probe: try another.
    }
  }
  await rm(dir, { recursive: true, force: true });
  throw lastError;
}

/** Starts `count` independent servers (for Redlock). */
export async function startRedisServers(count: number): Promise<RedisServer[]> {
  return Promise.all(Array.from({ length: count }, () => startRedisServer()));
}
