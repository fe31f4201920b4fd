import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { SynodError, errorCodes, isSynodError } from './index.js';

const docs = readFileSync(join(import.meta.dirname, '../../docs/errors.md'), 'utf8');

describe('error registry', () => {
  it('documents every code in docs/errors.md, and documents nothing else', () => {
    const documented = [...docs.matchAll(/^\| `(SYNOD_[A-Z_]+)` \|/gm)].map((match) => match[1]);
    expect(documented.sort()).toEqual(Object.keys(errorCodes).sort());
  });

  it('carries the code and a default message', () => {
    const error = new SynodError('SYNOD_NO_LEADER');
    expect(error.code).toBe('SYNOD_NO_LEADER');
    expect(error.message).toBe(errorCodes.SYNOD_NO_LEADER);
    expect(isSynodError(error, 'SYNOD_NO_LEADER')).toBe(true);
    expect(isSynodError(error, 'SYNOD_PROPOSAL_DROPPED')).toBe(false);
    expect(isSynodError(new Error('x'))).toBe(false);
  });
});
