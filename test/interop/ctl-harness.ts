/**
 * The harness of the `synod ctl` interop tests: an in-process Synod member wired as a real one
 * (auth interceptor included), `synod ctl` run in process, etcdctl 3.4 run against the same member,
 * and the small helpers the test files share.
 */

import { execFile, spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { pino } from 'pino';
import { expect } from 'vitest';
import { ctlMain } from '../../src/apps/ctl/index.js';
import { createGrpcServer } from '../../src/server/api/grpc-server.js';
import { MemberAuthSource, authInterceptor } from '../../src/server/auth/auth-interceptor.js';
import { parseServerFlags } from '../../src/server/flags.js';
import { loadEtcdProto } from '../../src/server/grpc/proto.js';
import { startServer, type RunningServer } from '../../src/server/server.js';
import { etcdServices } from '../../src/server/services.js';

const etcdctlPath = 'etcdctl';

/** What one run printed and returned. */
export interface Outcome {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

export interface RunOptions {
  readonly stdin?: string;
  readonly env?: Record<string, string>;
  readonly signal?: AbortSignal;
  readonly onStarted?: () => void;
  readonly onStdout?: (stdout: string) => void;
  /** Replaces the test member as `--endpoints`; null passes no `--endpoints` at all. */
  readonly endpoints?: string | null;
}

/** The member every test talks to, set up by `startCtlMember`. */
export const member = { server: null as RunningServer | null, endpoint: '', scratch: '' };

/** A successful run that printed `stdout` and nothing on stderr. */
export const printed = (stdout: string): Outcome => ({ code: 0, stdout, stderr: '' });

/** Runs `synod ctl` in process. */
export async function ctl(args: readonly string[], options: RunOptions = {}): Promise<Outcome> {
  let stdout = '';
  let stderr = '';
  const endpoints = options.endpoints === undefined ? ['--endpoints', member.endpoint]
    : options.endpoints === null ? [] : ['--endpoints', options.endpoints];
  const code = await ctlMain([...endpoints, ...args], {
    stdout: {
      write: (text: string) => {
        stdout += text;
        options.onStdout?.(stdout);
      },
    },
    stderr: { write: (text: string) => (stderr += text) },
    readStdin: async () => options.stdin ?? '',
    env: options.env ?? {},
    interrupt: options.signal ?? new AbortController().signal,
    ...(options.onStarted === undefined ? {} : { onStarted: options.onStarted }),
  });
  return { code, stdout, stderr };
}

/** Runs `synod ctl` and parses its `-w json` output. */
export async function ctlJson<Shape>(
  args: readonly string[], options: RunOptions = {},
): Promise<Shape> {
  const { stdout } = await ctl([...args, '-w', 'json'], options);
  return JSON.parse(stdout) as Shape;
}

/** Runs etcdctl 3.4 against the same member; stderr keeps only its `Error:` lines. */
export function etcdctl(args: readonly string[], stdin = ''): Promise<Outcome> {
  return new Promise((resolve, reject) => {
    const child = spawn(etcdctlPath, [`--endpoints=${member.endpoint}`, ...args], {
      env: { PATH: process.env['PATH'] ?? '', ETCDCTL_API: '3' },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      const errors = stderr.split('\n').filter((line) => line.startsWith('Error:'));
      resolve({ code: code ?? -1, stdout, stderr: errors.map((line) => `${line}\n`).join('') });
    });
    child.stdin.end(stdin);
  });
}

/** Expects `synod ctl` and etcdctl to print the same bytes and exit alike for each command. */
export async function expectSameAsEtcdctl(commands: readonly (readonly string[])[]): Promise<void> {
  for (const args of commands) expect(await ctl(args), args.join(' ')).toEqual(await etcdctl(args));
}

/** The current revision, from a Range header. */
export async function currentRevision(): Promise<number> {
  const range = await ctlJson<{ header: { revision: number } }>(['get', 'revision-probe']);
  return range.header.revision;
}

/** Adds `delta` to the numbers of `fields`: the same write's JSON made `delta` revisions later. */
export function shiftRevisions(json: string, delta: number, fields: readonly string[]): string {
  return json.replace(new RegExp(`"(${fields.join('|')})":(\\d+)`, 'g'),
    (_, field: string, n: string) => `"${field}":${Number(n) + delta}`);
}

export const base64 = (text: string): string => Buffer.from(text).toString('base64');

/** A promise and the function that resolves it, for `onStarted`. */
export function signal(): { readonly fired: Promise<void>; readonly fire: () => void } {
  let fire!: () => void;
  const fired = new Promise<void>((resolve) => (fire = resolve));
  return { fired, fire };
}

/** Starts the in-process member the tests share (call from beforeAll). */
export async function startCtlMember(): Promise<void> {
  const scratch = await mkdtemp(join(tmpdir(), 'synod-ctl-test-'));
  member.scratch = scratch;
  const proto = loadEtcdProto();
  const config = parseServerFlags([
    '--data-dir', join(scratch, 'data'), '--listen-client-urls', 'http://127.0.0.1:0',
  ], {});
  // Wired as src/apps/synod.ts wires a member: the auth interceptor checks every call.
  const authSource = new MemberAuthSource();
  const server = await startServer({
    config, logger: pino({ level: 'silent' }),
    grpc: createGrpcServer({ proto, interceptors: [authInterceptor({ source: authSource })] }),
    registerServices: etcdServices(proto, { authSource }), synodVersion: '0.0.0-test',
  });
  await new Promise<void>((resolve) => {
    if (server.node.isLeader) return resolve();
    const unsubscribe = server.node.onSoftState(() => {
      if (!server.node.isLeader) return;
      unsubscribe();
      resolve();
    });
  });
  member.server = server;
  member.endpoint = `127.0.0.1:${server.clientPort}`;
}

/** Stops the member and removes its directory (call from afterAll). */
export async function stopCtlMember(): Promise<void> {
  await member.server?.close();
  await rm(member.scratch, { recursive: true, force: true });
}

/** A self-signed certificate and its key from openssl, or null where openssl is missing. */
export async function selfSignedPair(): Promise<{ cert: string; key: string } | null> {
  const cert = join(member.scratch, 'client.pem');
  const key = join(member.scratch, 'client-key.pem');
  try {
    await promisify(execFile)('openssl', [
      'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
      '-days', '1', '-subj', '/CN=synod-ctl-test', '-keyout', key, '-out', cert,
    ]);
  } catch {
    return null;
  }
  expect((await readFile(cert, 'utf8')).startsWith('-----BEGIN CERTIFICATE-----')).toBe(true);
  return { cert, key };
}
