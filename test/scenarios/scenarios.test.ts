import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runScript } from './script.js';

const testdata = join(import.meta.dirname, 'testdata');

describe('raft scenarios (test/scenarios/testdata; REWRITE=1 regenerates transcripts)', () => {
  for (const file of readdirSync(testdata).filter((f) => f.endsWith('.txt')).sort()) {
    it(file, () => {
      const path = join(testdata, file);
      const expected = readFileSync(path, 'utf8');
      const actual = runScript(expected);
      if (process.env.REWRITE === '1') writeFileSync(path, actual);
      else expect(actual).toBe(expected);
    });
  }
});
