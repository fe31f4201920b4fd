/**
 * Runs every TypeScript example in docs/client.md, as written, against a fresh Synod member: the
 * guide's examples are programs that must keep working, not prose. `synod/client` is pointed at
 * the source tree; each block runs as its own process (node --import tsx) with SYNOD_ENDPOINT set.
 */

import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startInProcessSynod, type ClientTarget } from './client/targets.js';

const repositoryRoot = join(import.meta.dirname, '..');
const guide = await readFile(join(repositoryRoot, 'docs/client.md'), 'utf8');
const blocks = [...guide.matchAll(/```ts\n([\s\S]*?)```/g)].map((match) => match[1]!);
const clientEntry = join(repositoryRoot, 'src/client/index.ts');

function run(file: string, endpoint: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', file], {
      cwd: repositoryRoot, env: { ...process.env, SYNOD_ENDPOINT: endpoint }, stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk) => (stdout += chunk));
    child.stderr.on('data', (chunk) => (stderr += chunk));
    child.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

describe('docs/client.md examples', () => {
  let target: ClientTarget;
  let directory: string;
  beforeAll(async () => {
    target = await startInProcessSynod();
    directory = await mkdtemp(join(tmpdir(), 'synod-docs-'));
  });
  afterAll(async () => {
    await target?.stop();
    await rm(directory, { recursive: true, force: true });
  });

  it('has examples to run', () => {
    expect(blocks.length).toBeGreaterThanOrEqual(6);
  });

  it.each(blocks.map((block, index) => [index + 1, block] as const))('example %i runs and prints', async (index, block) => {
    const source = block.replaceAll(`from 'synod/client'`, `from ${JSON.stringify(clientEntry)}`);
    const file = join(directory, `example-${index}.mts`);
    await writeFile(file, `${source}\nexport {};\n`);
    const { code, stdout, stderr } = await run(file, target.endpoint);
    expect(stderr).toBe('');
    expect(code).toBe(0);
    expect(stdout.trim()).not.toBe('');
  });
});
