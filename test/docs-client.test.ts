/**
 * Runs every TypeScript example in docs/client.md, as written, against a fresh Synod member: the
 * guide's examples are programs that must keep working, not prose. `synod/client` is pointed at
 * the source tree; each block runs as its own process (node --import tsx) with SYNOD_ENDPOINT set.
 */

import { execFile, spawn } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
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

  it('type-checks every example under the project\'s strict settings', async () => {
    // Inside the repository (git-ignored), so the project's tsconfig and node_modules apply.
    const checkDirectory = join(repositoryRoot, '.docs-examples');
    await rm(checkDirectory, { recursive: true, force: true });
    await mkdir(checkDirectory, { recursive: true });
    try {
      const files: string[] = [];
      for (const [index, block] of blocks.entries()) {
        const file = join(checkDirectory, `example-${index + 1}.mts`);
        await writeFile(file, `${block.replaceAll(`from 'synod/client'`, `from '../src/client/index.js'`)}\nexport {};\n`);
        files.push(file);
      }
      const config = { extends: '../tsconfig.json', compilerOptions: { noEmit: true, rootDir: '..' }, include: files };
      await writeFile(join(checkDirectory, 'tsconfig.json'), JSON.stringify(config));
      const tsc = join(repositoryRoot, 'node_modules/typescript/bin/tsc');
      const output = await new Promise<string>((resolve) => {
        execFile(process.execPath, [tsc, '-p', join(checkDirectory, 'tsconfig.json')], (_error, stdout, stderr) => resolve(stdout + stderr));
      });
      expect(output).toBe('');
    } finally {
      await rm(checkDirectory, { recursive: true, force: true });
    }
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
