/**
 * The machinery of the differential etcdctl interop test: start real etcd or Synod from the same
 * etcd command line, run etcdctl 3.4 against either once (`runEtcdctl`) or as a long-running child
 * (`spawnEtcdctl`: watch, lock, elect) whose output a test waits on. Every wait is bounded and ends
 * on a real condition (a pattern in the output, a process exit), never on elapsed time alone.
 */

import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';

const synodCli = join(import.meta.dirname, '../../src/apps/synod.ts');

/** How long a single etcdctl invocation may run before it is killed. */
const commandTimeoutMs = 20_000;
/** How long `waitForOutput` and `stop` wait for their condition by default. */
export const outputWaitTimeoutMs = 15_000;

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => resolve(typeof address === 'object' && address !== null ? address.port : 0));
    });
  });
}

/** One server under test: real etcd or Synod, a single member on loopback. */
export interface Target {
  readonly name: 'etcd' | 'synod';
  readonly child: ChildProcess;
  readonly clientPort: number;
  readonly dataDir: string;
}

/** Starts `name` with etcd's flags; resolves once its log says it serves clients. */
export async function startTarget(name: Target['name']): Promise<Target> {
  const dataDir = await mkdtemp(join(tmpdir(), `interop-${name}-`));
  const clientPort = await freePort();
  const peerPort = await freePort();
  const flags = [
    '--name', 'interop',
    '--data-dir', dataDir,
    '--listen-client-urls', `http://127.0.0.1:${clientPort}`,
    '--advertise-client-urls', `http://127.0.0.1:${clientPort}`,
    '--listen-peer-urls', `http://127.0.0.1:${peerPort}`,
    '--initial-advertise-peer-urls', `http://127.0.0.1:${peerPort}`,
    '--initial-cluster', `interop=http://127.0.0.1:${peerPort}`,
  ];
  const stdio: ['ignore', 'ignore', 'pipe'] = ['ignore', 'ignore', 'pipe'];
  const child =
    name === 'etcd'
      ? spawn('etcd', flags, { stdio })
      : spawn(process.execPath, ['--import', 'tsx', synodCli, 'server', ...flags], { stdio });
  const readyLine = name === 'etcd' ? /ready to serve client requests/ : /serving etcd v3 clients/;
  await new Promise<void>((resolve, reject) => {
    createInterface({ input: child.stderr! }).on('line', (line) => {
      if (readyLine.test(line)) resolve();
    });
    child.once('exit', (code) => reject(new Error(`${name} exited with ${code} before serving`)));
    child.once('error', (error) => reject(new Error(`${name} could not start: ${error.message}`)));
  });
  return { name, child, clientPort, dataDir };
}

/** Stops the server and removes its data directory. */
export async function stopTarget(target: Target): Promise<void> {
  if (target.child.exitCode === null && target.child.signalCode === null) {
    await new Promise((resolve) => {
      target.child.once('exit', resolve);
      target.child.kill('SIGTERM');
    });
  }
  await rm(target.dataDir, { recursive: true, force: true });
}

function etcdctlArgs(target: Target, args: readonly string[]): string[] {
  return [`--endpoints=127.0.0.1:${target.clientPort}`, '--command-timeout=5s', ...args];
}

const etcdctlEnv = { ...process.env, ETCDCTL_API: '3' };

/** The outcome of one etcdctl run: exit code 0 is success. */
export interface EtcdctlResult {
  readonly exitCode: number;
  readonly stdout: string;
  readonly stderr: string;
}

/**
 * Runs etcdctl to completion (killed after `timeoutMs`, exit code -1). Rejects only when etcdctl
 * cannot be started at all: both targets would otherwise fail alike and their transcripts match.
 */
export function runEtcdctl(
  target: Target,
  args: readonly string[],
  options: { input?: string; timeoutMs?: number } = {},
): Promise<EtcdctlResult> {
  return new Promise((resolve, reject) => {
    const child = execFile(
      'etcdctl',
      etcdctlArgs(target, args),
      { env: etcdctlEnv, timeout: options.timeoutMs ?? commandTimeoutMs, maxBuffer: 16 << 20 },
      (error, stdout, stderr) => {
        if (typeof error?.code === 'string') {
          reject(new Error(`etcdctl could not run (${error.code}): install Debian's etcd-client`));
          return;
        }
        resolve({ exitCode: error === null ? 0 : (error.code ?? -1), stdout, stderr });
      },
    );
    if (options.input !== undefined) child.stdin!.end(options.input);
  });
}

/** Runs etcdctl; resolves with stdout, or "ERROR: <first stderr Error: line>" when it fails. */
export async function etcdctl(target: Target, args: readonly string[], input?: string): Promise<string> {
  const { exitCode, stdout, stderr } = await runEtcdctl(target, args, input === undefined ? {} : { input });
  if (exitCode === 0) return stdout.trim();
  return `ERROR: ${stderr.split('\n').find((line) => line.startsWith('Error:')) ?? stderr.trim()}`;
}

/** A long-running etcdctl (watch, lock, elect) whose stdout a test waits on. */
export interface EtcdctlProcess {
  /** Everything written to stdout so far. */
  readonly stdout: () => string;
  /**
   * Resolves with stdout once `pattern` matches it; rejects with the output so far if the process
   * exits first or `timeoutMs` passes.
   */
  waitForOutput(pattern: RegExp, timeoutMs?: number): Promise<string>;
  /** Sends `signal` and resolves once the process has exited, with its exit code or signal. */
  stop(signal: 'SIGINT' | 'SIGKILL'): Promise<number | NodeJS.Signals>;
}

const running = new Set<ChildProcess>();

/** Spawns etcdctl without waiting for it; `killAllEtcdctl` reaps whatever a failed test left. */
export function spawnEtcdctl(target: Target, args: readonly string[]): EtcdctlProcess {
  const child = spawn('etcdctl', etcdctlArgs(target, args), { env: etcdctlEnv, stdio: ['ignore', 'pipe', 'pipe'] });
  running.add(child);
  let stdout = '';
  let stderr = '';
  let exit: number | NodeJS.Signals | undefined;
  let closed = false;
  child.once('close', () => (closed = true));
  const exited = new Promise<number | NodeJS.Signals>((resolve) => {
    child.once('exit', (code, signal) => {
      running.delete(child);
      exit = code ?? signal ?? -1;
      resolve(exit);
    });
  });
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const describe = () => `etcdctl ${args.join(' ')}: stdout ${JSON.stringify(stdout)}, stderr ${JSON.stringify(stderr)}`;

  function waitForOutput(pattern: RegExp, timeoutMs = outputWaitTimeoutMs): Promise<string> {
    return new Promise((resolve, reject) => {
      const check = () => {
        if (!pattern.test(stdout)) return false;
        cleanup();
        resolve(stdout);
        return true;
      };
      const onExit = () => {
        // Output that arrived with the exit still counts.
        if (!check()) {
          cleanup();
          reject(new Error(`exited (${String(exit)}) before printing ${pattern}; ${describe()}`));
        }
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(new Error(`no ${pattern} within ${timeoutMs} ms; ${describe()}`));
      }, timeoutMs);
      const cleanup = () => {
        clearTimeout(timer);
        child.stdout!.off('data', check);
        child.off('close', onExit);
      };
      if (check()) return;
      if (closed) return onExit();
      child.stdout!.on('data', check);
      child.once('close', onExit);
    });
  }

  async function stop(signal: 'SIGINT' | 'SIGKILL'): Promise<number | NodeJS.Signals> {
    if (exit !== undefined) return exit;
    child.kill(signal);
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`did not exit on ${signal}; ${describe()}`)), outputWaitTimeoutMs);
    });
    try {
      return await Promise.race([exited, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  return { stdout: () => stdout, waitForOutput, stop };
}

/** Kills every etcdctl child still running (after a failed wait); resolves once all have exited. */
export async function killAllEtcdctl(): Promise<void> {
  await Promise.all(
    [...running].map(
      (child) =>
        new Promise((resolve) => {
          child.once('exit', resolve);
          child.kill('SIGKILL');
        }),
    ),
  );
}
