import { describe, expect, it } from 'vitest';
import { SeededRandom, isSynodError } from '../base/index.js';
import { validateConfig, raftDefaults } from './config.js';
import { MemoryStorage } from './storage.js';

const base = { id: 1, storage: new MemoryStorage(), random: new SeededRandom(1) };

function rejection(input: Parameters<typeof validateConfig>[0]): string {
  try {
    validateConfig(input);
  } catch (error) {
    if (isSynodError(error, 'SYNOD_INVALID_CONFIG')) return error.message;
    throw error;
  }
  return 'accepted';
}

describe('validateConfig', () => {
  it('fills defaults and freezes the result', () => {
    const config = validateConfig(base);
    expect(config.electionTicks).toBe(raftDefaults.electionTicks);
    expect(config.preVote).toBe(true);
    expect(Object.isFrozen(config)).toBe(true);
  });

  it('names the first invalid field', () => {
    expect(rejection({ ...base, id: 0 })).toMatch(/id must be a positive integer/);
    expect(rejection({ ...base, electionTicks: 2, heartbeatTicks: 2 })).toMatch(/electionTicks must be greater/);
    expect(rejection({ ...base, inflightMessagesMax: 0 })).toMatch(/inflightMessagesMax/);
    expect(rejection({ ...base, leaseClockDriftBound: 0.7 })).toMatch(/leaseClockDriftBound/);
    expect(rejection({ ...base, readOnlyOption: 'lease-based', checkQuorum: false })).toMatch(/lease-based reads need checkQuorum/);
  });
});
