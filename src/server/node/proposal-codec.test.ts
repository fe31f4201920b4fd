import { describe, expect, it } from 'vitest';
import { SeededRandom, SynodError } from '../../base/index.js';
import { utf8, type Command } from '../../kv/index.js';
import {
  decodeProposal, encodeProposal, proposalHeaderBytes, RequestIdGenerator,
} from './proposal-codec.js';


function errorCode(decode: () => unknown): string {
  try {
    decode();
    return 'decoded';
  } catch (error) {
    if (error instanceof SynodError) return error.code;
    throw error;
  }
}

describe('proposal codec', () => {
  const command: Command = {
    type: 'put', request: { key: utf8('k'), value: utf8('v'), lease: 0n },
  };

  it('round-trips the request id and the command', () => {
    const ids = new RequestIdGenerator({ memberId: 7, random: new SeededRandom(1) });
    const { header, requestId } = ids.next();
    const data = encodeProposal(header, command);
    expect([...data.subarray(0, proposalHeaderBytes)]).toEqual([...header]);
    expect(decodeProposal(data)).toStrictEqual({ requestId, command });
    expect(requestId).toMatch(/^7\.[0-9a-f]+\.[0-9a-f]+\.0\.1$/);
    expect(ids.next().requestId).toBe(requestId.replace(/1$/, '2'));
  });

  it('decodes a proposal that is a view into a larger buffer', () => {
    const ids = new RequestIdGenerator({ memberId: 1, random: new SeededRandom(2) });
    const { header, requestId } = ids.next();
    const data = encodeProposal(header, command);
    const larger = new Uint8Array(data.length + 10);
    larger.set(data, 5);
    const view = larger.subarray(5, 5 + data.length);
    expect(decodeProposal(view)).toStrictEqual({ requestId, command });
  });

  it('refuses a short or unversioned header and a truncated command', () => {
    const { header } = new RequestIdGenerator({ memberId: 1, random: new SeededRandom(2) }).next();
    const data = encodeProposal(header, command);
    for (let length = 0; length < data.length; length++) {
      const truncated = data.subarray(0, length);
      expect(errorCode(() => decodeProposal(truncated))).toBe('SYNOD_STORAGE_CORRUPT');
    }
    const unversioned = data.slice();
    unversioned[0] = 2;
    expect(errorCode(() => decodeProposal(unversioned))).toBe('SYNOD_STORAGE_CORRUPT');
  });
});
