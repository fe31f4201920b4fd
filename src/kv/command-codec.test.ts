import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { SynodError } from '../base/index.js';
import { toHex, utf8 } from './bytes.js';
import { decodeCommand, encodeCommand, type Command } from './command.js';
import { commandFormatBinary } from './command-codec.js';
import type {
  Compare, DeleteRangeRequest, PutRequest, RangeRequest, RequestOp, TxnRequest,
} from './types.js';

const seed = 20_240_611;

const bytes = fc.uint8Array({ maxLength: 12 });
const safeInteger = fc.oneof(
  fc.integer({ min: -300, max: 300 }),
  fc.integer({ min: Number.MIN_SAFE_INTEGER, max: Number.MAX_SAFE_INTEGER }),
  fc.constantFrom(0, Number.MAX_SAFE_INTEGER, Number.MIN_SAFE_INTEGER, 63, 64, -64, 127, 128),
);
const int64 = fc.oneof(fc.constant(0n), fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }));
const uint64 = fc.oneof(fc.constant(0n), fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }));

/** Records whose optional fields are sometimes absent (missing, not `undefined`). */
const putRequest: fc.Arbitrary<PutRequest> = fc.record(
  {
    key: bytes, value: bytes, lease: int64, prevKv: fc.boolean(), ignoreValue: fc.boolean(),
    ignoreLease: fc.boolean(),
  },
  { requiredKeys: ['key'] },
);
const deleteRangeRequest: fc.Arbitrary<DeleteRangeRequest> = fc.record(
  { key: bytes, rangeEnd: bytes, prevKv: fc.boolean() },
  { requiredKeys: ['key'] },
);
const rangeRequest: fc.Arbitrary<RangeRequest> = fc.record(
  {
    key: bytes, rangeEnd: bytes, limit: safeInteger, revision: safeInteger,
    sortOrder: fc.constantFrom('NONE', 'ASCEND', 'DESCEND'),
    sortTarget: fc.constantFrom('KEY', 'VERSION', 'CREATE', 'MOD', 'VALUE'),
    keysOnly: fc.boolean(), countOnly: fc.boolean(), minModRevision: safeInteger,
    maxModRevision: safeInteger, minCreateRevision: safeInteger, maxCreateRevision: safeInteger,
  },
  { requiredKeys: ['key'] },
);
const compareBase = fc.record(
  { key: bytes, rangeEnd: bytes, result: fc.constantFrom('EQUAL', 'GREATER', 'LESS', 'NOT_EQUAL') },
  { requiredKeys: ['key', 'result'] },
);
const compareTarget = fc.oneof(
  fc.record({ target: fc.constant('VERSION' as const), version: safeInteger }),
  fc.record({ target: fc.constant('CREATE' as const), createRevision: safeInteger }),
  fc.record({ target: fc.constant('MOD' as const), modRevision: safeInteger }),
  fc.record({ target: fc.constant('VALUE' as const), value: bytes }),
  fc.record({ target: fc.constant('LEASE' as const), lease: int64 }),
);
const compare: fc.Arbitrary<Compare> = fc.tuple(compareBase, compareTarget)
  .map(([base, target]) => ({ ...base, ...target }));

const { txnRequest } = fc.letrec<{ txnRequest: TxnRequest; requestOp: RequestOp }>((tie) => ({
  txnRequest: fc.record(
    {
      compare: fc.array(compare, { maxLength: 3 }),
      success: fc.array(tie('requestOp'), { maxLength: 3 }),
      failure: fc.array(tie('requestOp'), { maxLength: 3 }),
    },
    { requiredKeys: [] },
  ),
  requestOp: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    fc.record({ requestRange: rangeRequest }),
    fc.record({ requestPut: putRequest }),
    fc.record({ requestDeleteRange: deleteRangeRequest }),
    fc.record({ requestTxn: tie('txnRequest') }),
  ),
}));

const alarmType = fc.constantFrom('NOSPACE' as const, 'CORRUPT' as const);
const command: fc.Arbitrary<Command> = fc.oneof(
  fc.record({ type: fc.constant('put' as const), request: putRequest }),
  fc.record({ type: fc.constant('deleteRange' as const), request: deleteRangeRequest }),
  fc.record({ type: fc.constant('txn' as const), request: txnRequest }),
  fc.record({ type: fc.constant('compact' as const), revision: safeInteger }),
  fc.record({ type: fc.constant('leaseGrant' as const), id: int64, ttlSeconds: safeInteger }),
  fc.record({ type: fc.constant('leaseRevoke' as const), id: int64 }),
  fc.record({
    type: fc.constant('alarm' as const),
    action: fc.constantFrom('activate' as const, 'deactivate' as const),
    member: fc.record({ memberId: uint64, alarm: alarmType }),
  }),
// fc.record builds null-prototype objects; the server builds plain ones (toStrictEqual checks).
).map((value) => structuredClone(value));

/** The JSON encoder of earlier members, kept as the reference for the logs they wrote. */
function encodeCommandJson(value: Command): Uint8Array {
  const text = JSON.stringify(value, (_key, field: unknown) => {
    if (field instanceof Uint8Array) return { $b: toHex(field) };
    if (typeof field === 'bigint') return { $n: field.toString() };
    return field;
  });
  return utf8(text);
}

function corruptCode(decode: () => unknown): string {
  try {
    decode();
    return 'decoded';
  } catch (error) {
    if (error instanceof SynodError) return error.code;
    throw error;
  }
}

const decodedOrCorrupt = ['decoded', 'SYNOD_STORAGE_CORRUPT'];

/** A frozen entry as the JSON encoder wrote it, and the command it holds. */
const jsonFixture = '{"type":"txn","request":{"compare":[{"key":{"$b":"6b"},"target":"LEASE",'
  + '"lease":{"$n":"-3"},"result":"EQUAL"},{"key":{"$b":"6b32"},"rangeEnd":{"$b":"00"},'
  + '"result":"GREATER","target":"MOD","modRevision":7}],"success":[{"requestPut":{"key":'
  + '{"$b":"00ff07"},"value":{"$b":"76"},"lease":{"$n":"4611686018427387904"},"prevKv":false}}],'
  + '"failure":[{"requestTxn":{"success":[{"requestRange":{"key":{"$b":"78"},"limit":3,'
  + '"keysOnly":true}}],"failure":[{"requestDeleteRange":{"key":{"$b":"61"},"rangeEnd":'
  + '{"$b":""},"prevKv":true}}]}}]}}';
const jsonFixtureCommand: Command = {
  type: 'txn',
  request: {
    compare: [
      { key: utf8('k'), target: 'LEASE', lease: -3n, result: 'EQUAL' },
      {
        key: utf8('k2'), rangeEnd: new Uint8Array([0]), result: 'GREATER', target: 'MOD',
        modRevision: 7,
      },
    ],
    success: [{
      requestPut: {
        key: new Uint8Array([0, 255, 7]), value: utf8('v'), lease: 2n ** 62n, prevKv: false,
      },
    }],
    failure: [{
      requestTxn: {
        success: [{ requestRange: { key: utf8('x'), limit: 3, keysOnly: true } }],
        failure: [{
          requestDeleteRange: { key: utf8('a'), rangeEnd: new Uint8Array(0), prevKv: true },
        }],
      },
    }],
  },
};

describe('command encoding', () => {
  it('round-trips every command exactly, absent fields staying absent', () => {
    fc.assert(fc.property(command, (value) => {
      const data = encodeCommand(value);
      expect(data[0]).toBe(commandFormatBinary);
      expect(decodeCommand(data)).toStrictEqual(value);
    }), { seed, numRuns: 2000 });
  });

  it('decodes the entries the JSON encoder wrote to the same command', () => {
    expect(decodeCommand(utf8(jsonFixture))).toStrictEqual(jsonFixtureCommand);
    expect(decodeCommand(encodeCommand(jsonFixtureCommand))).toStrictEqual(jsonFixtureCommand);
    fc.assert(fc.property(command, (value) => {
      expect(decodeCommand(encodeCommandJson(value))).toEqual(decodeCommand(encodeCommand(value)));
    }), { seed, numRuns: 500 });
  });

  it('keeps undefined, false and zero apart', () => {
    const variants: PutRequest[] = [
      { key: utf8('k') },
      { key: utf8('k'), value: new Uint8Array(0), lease: 0n, prevKv: false, ignoreValue: false },
      { key: utf8('k'), lease: -1n, prevKv: true, ignoreLease: true },
    ];
    for (const request of variants) {
      const value: Command = { type: 'put', request };
      expect(decodeCommand(encodeCommand(value))).toStrictEqual(value);
    }
  });

  it('writes the header in front of the command in the same buffer', () => {
    const prefix = new Uint8Array([9, 8, 7]);
    const value: Command = { type: 'compact', revision: 5 };
    const data = encodeCommand(value, { prefix });
    expect([...data.subarray(0, 3)]).toEqual([9, 8, 7]);
    expect(decodeCommand(data.subarray(3))).toStrictEqual(value);
  });

  it('refuses every truncation of an entry as SYNOD_STORAGE_CORRUPT', () => {
    fc.assert(fc.property(command, (value) => {
      const data = encodeCommand(value);
      for (let length = 0; length < data.length; length++) {
        const truncated = data.subarray(0, length);
        expect(corruptCode(() => decodeCommand(truncated))).toBe('SYNOD_STORAGE_CORRUPT');
      }
      const longer = new Uint8Array(data.length + 1);
      longer.set(data);
      expect(corruptCode(() => decodeCommand(longer))).toBe('SYNOD_STORAGE_CORRUPT');
    }), { seed, numRuns: 300 });
  });

  it('decodes a garbled entry to a command or SYNOD_STORAGE_CORRUPT, never anything else', () => {
    const flip = fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 }));
    const garbled = fc.tuple(command, fc.array(flip, { minLength: 1, maxLength: 4 }));
    fc.assert(fc.property(garbled, ([value, flips]) => {
      const data = encodeCommand(value);
      for (const [index, byte] of flips) data[index % data.length] = byte;
      expect(decodedOrCorrupt).toContain(corruptCode(() => decodeCommand(data)));
    }), { seed, numRuns: 3000 });
    const noise = fc.uint8Array({ minLength: 1, maxLength: 64 }).map((data) => {
      data[0] = commandFormatBinary;
      return data;
    });
    fc.assert(fc.property(noise, (data) => {
      expect(decodedOrCorrupt).toContain(corruptCode(() => decodeCommand(data)));
    }), { seed, numRuns: 3000 });
  });

  it('refuses an empty entry, an unknown format and nesting deeper than the stack', () => {
    expect(corruptCode(() => decodeCommand(new Uint8Array(0)))).toBe('SYNOD_STORAGE_CORRUPT');
    expect(corruptCode(() => decodeCommand(new Uint8Array([2, 1])))).toBe('SYNOD_STORAGE_CORRUPT');
    const unknownType = utf8('{"type":"nope"}');
    expect(corruptCode(() => decodeCommand(unknownType))).toBe('SYNOD_STORAGE_CORRUPT');
    expect(corruptCode(() => decodeCommand(utf8('{')))).toBe('SYNOD_STORAGE_CORRUPT');
    // A txn whose success branch holds one txn, a million times over (3 bytes a level), the
    // innermost with an empty success branch: well formed, but deeper than the stack.
    const levels = 1_000_000;
    const data = new Uint8Array(3 + levels * 3 + 1);
    data.set([commandFormatBinary, 3, 0b010]);
    for (let level = 0; level < levels; level++) data.set([1, 4, 0b010], 3 + level * 3);
    expect(corruptCode(() => decodeCommand(data))).toBe('SYNOD_STORAGE_CORRUPT');
  });
});
