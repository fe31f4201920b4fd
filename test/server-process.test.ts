/**
 * The `synod server` process as a user runs it: started from etcd's flags, used by the npm etcd3
 * client, restarted on the same data directory, and stopped with SIGTERM; TLS flags it cannot
 * serve refused at start.
 */

import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { Etcd3 } from 'etcd3';
import { afterEach, describe, expect, it } from 'vitest';

const cli = join(import.meta.dirname, '../src/apps/synod.ts');

interface Started {
  readonly child: ChildProcess;
  readonly clientPort: number;
}

/** Starts the CLI and resolves with the bound client port once it logs that it serves. */
function startSynod(dataDir: string): Promise<Started> {
  const child = spawn(process.execPath, ['--import', 'tsx', cli, 'server', '--data-dir', dataDir, '--listen-client-urls', 'http://127.0.0.1:0'], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  return new Promise((resolve, reject) => {
    const lines = createInterface({ input: child.stderr! });
    lines.on('line', (line) => {
      const entry = JSON.parse(line) as { clientPort?: number };
      if (entry.clientPort !== undefined) resolve({ child, clientPort: entry.clientPort });
    });
    child.once('exit', (code) => reject(new Error(`synod exited with ${code} before serving`)));
  });
}

function stop(child: ChildProcess): Promise<number | null> {
  return new Promise((resolve) => {
    child.once('exit', (code) => resolve(code));
    child.kill('SIGTERM');
  });
}

describe('synod server (process)', () => {
  const cleanup: Array<() => Promise<unknown>> = [];
  afterEach(async () => {
    for (const step of cleanup.splice(0).reverse()) await step();
  });

  it('serves etcd3 clients, keeps data across a restart, and exits 0 on SIGTERM', async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'synod-server-'));
    cleanup.push(() => rm(dataDir, { recursive: true, force: true }));

    const first = await startSynod(dataDir);
    cleanup.push(async () => first.child.exitCode === null && stop(first.child));
    const client = new Etcd3({ hosts: `127.0.0.1:${first.clientPort}` });
    await client.put('greeting').value('hello');
    await client.put('app/a').value('1');
    await client.put('app/b').value('2');
    expect(await client.get('greeting').string()).toBe('hello');
    expect(await client.getAll().prefix('app/').keys()).toEqual(['app/a', 'app/b']);
    client.close();
    expect(await stop(first.child)).toBe(0);

    const second = await startSynod(dataDir);
    cleanup.push(async () => second.child.exitCode === null && stop(second.child));
    const again = new Etcd3({ hosts: `127.0.0.1:${second.clientPort}` });
    expect(await again.get('greeting').string()).toBe('hello');
    await again.delete().key('greeting');
    expect(await again.get('greeting').string()).toBeNull();
    again.close();
    expect(await stop(second.child)).toBe(0);
  });

  it('refuses TLS flags it cannot serve with one clear line and exit 2', async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'synod-server-'));
    cleanup.push(() => rm(dataDir, { recursive: true, force: true }));
    const garbage = join(dataDir, 'garbage.pem');
    await writeFile(garbage, 'not a certificate\n');
    const refusal = async (flags: string[]): Promise<{ code: number | null; stderr: string }> => {
      const child = spawn(process.execPath, ['--import', 'tsx', cli, 'server', '--data-dir', dataDir, ...flags], {
        stdio: ['ignore', 'ignore', 'pipe'],
      });
      let stderr = '';
      child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
      const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
      return { code, stderr };
    };
    // An https:// URL without a certificate is refused rather than served without TLS.
    expect(await refusal(['--listen-client-urls', 'https://127.0.0.1:0'])).toEqual({
      code: 2,
      stderr: 'synod: TLS key/cert (--cert-file, --key-file) must be provided for client url https://127.0.0.1:0/ with HTTPS scheme\n',
    });
    // A certificate file that holds no certificate is named with its flag.
    expect(await refusal([
      '--listen-client-urls', 'https://127.0.0.1:0', '--cert-file', garbage, '--key-file', garbage,
    ])).toEqual({ code: 2, stderr: `synod: --cert-file ${garbage}: no PEM certificate in the file\n` });
  });
});
