// The Snowflake bit layout: its defaults, its validation, and the codec checked against a naive
// reference (fields written out as binary digits and concatenated) over random layouts.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  SnowflakeDecimalCursor, SnowflakeLayout, snowflakeEpochMsDefault, snowflakeLayoutDefault,
  type SnowflakeLayoutOptions, type SnowflakeParts,
} from './snowflake-layout.js';
import { codeOf } from '../../../test/support/error-codes.js';

/** The reference encoder: each field as zero-padded binary digits, concatenated, parsed. */
function naiveEncode(layout: SnowflakeLayout, parts: SnowflakeParts): bigint {
  const tick = (parts.timestampMs - layout.epochMs) / layout.timestampUnitMs;
  const binary = (value: number, bits: number): string =>
    bits === 0 ? '' : value.toString(2).padStart(bits, '0');
  const digits = binary(tick, layout.timestampBits)
    + binary(parts.datacenterId, layout.datacenterBits)
    + binary(parts.workerId, layout.workerBits)
    + binary(parts.sequence, layout.sequenceBits);
  return BigInt(`0b${digits}`);
}

/** Layouts whose timestamp range is always safe: at most 41 bits of at most 100 ms units. */
const layoutOptions: fc.Arbitrary<SnowflakeLayoutOptions> = fc.record({
  timestampBits: fc.integer({ min: 1, max: 41 }),
  datacenterBits: fc.integer({ min: 0, max: 10 }),
  workerBits: fc.integer({ min: 0, max: 10 }),
  sequenceBits: fc.integer({ min: 0, max: 22 }),
  epochMs: fc.integer({ min: 0, max: 2_000_000_000_000 }),
  timestampUnitMs: fc.integer({ min: 1, max: 100 }),
}).filter((options) =>
  options.timestampBits + options.datacenterBits + options.workerBits + options.sequenceBits <= 63);

/** Parts valid for `layout`, with the timestamp at the start of its unit. */
function partsOf(layout: SnowflakeLayout): fc.Arbitrary<SnowflakeParts> {
  return fc.record({
    timestampMs: fc.integer({ min: 0, max: layout.timestampTicksMax })
      .map((tick) => layout.tickStartMs(tick)),
    datacenterId: fc.integer({ min: 0, max: layout.datacenterIdMax }),
    workerId: fc.integer({ min: 0, max: layout.workerIdMax }),
    sequence: fc.integer({ min: 0, max: layout.sequenceMax }),
  });
}

const layoutAndParts = layoutOptions.chain((options) => {
  const layout = new SnowflakeLayout(options);
  return fc.tuple(fc.constant(layout), partsOf(layout), partsOf(layout));
});

describe('SnowflakeLayout', () => {
  it("defaults to Twitter's 41/5/5/12 bits from 2020-01-01, lasting until 2089", () => {
    const layout = snowflakeLayoutDefault;
    expect([layout.timestampBits, layout.datacenterBits, layout.workerBits, layout.sequenceBits])
      .toEqual([41, 5, 5, 12]);
    expect(layout.epochMs).toBe(Date.UTC(2020, 0, 1));
    expect(snowflakeEpochMsDefault).toBe(1_577_836_800_000);
    expect(layout.totalBits).toBe(63);
    expect(layout.idsPerMsMax).toBe(4096);
    expect(layout.idLimit).toBe(2n ** 63n);
    expect(new Date(layout.lastTimestampMs).toISOString()).toBe('2089-09-06T15:47:35.551Z');
    expect(Object.isFrozen(layout)).toBe(true);
  });

  it('places each field where Twitter does', () => {
    const id = snowflakeLayoutDefault.encode({
      timestampMs: snowflakeEpochMsDefault + 1, datacenterId: 2, workerId: 3, sequence: 4,
    });
    expect(id).toBe((1n << 22n) | (2n << 17n) | (3n << 12n) | 4n);
    const last = snowflakeLayoutDefault.encode({
      timestampMs: snowflakeLayoutDefault.lastTimestampMs, datacenterId: 31, workerId: 31,
      sequence: 4095,
    });
    expect(last).toBe(2n ** 63n - 1n);
  });

  it('round-trips every field and agrees with the naive encoder, over random layouts', () => {
    fc.assert(fc.property(layoutAndParts, ([layout, parts]) => {
      const id = layout.encode(parts);
      expect(id).toBe(naiveEncode(layout, parts));
      expect(id >= 0n && id < layout.idLimit).toBe(true);
      expect(layout.decode(id)).toEqual(parts);
      expect(layout.decode(layout.toDecimalString(id))).toEqual(parts);
    }), { numRuns: 2_000 });
  });

  it('orders ids by timestamp, then datacenter, worker and sequence', () => {
    const key = (parts: SnowflakeParts): number[] =>
      [parts.timestampMs, parts.datacenterId, parts.workerId, parts.sequence];
    const compare = (a: number[], b: number[]): number => {
      const index = a.findIndex((value, at) => value !== b[at]);
      return index === -1 ? 0 : Math.sign(a[index]! - b[index]!);
    };
    fc.assert(fc.property(layoutAndParts, ([layout, a, b]) => {
      const idA = layout.encode(a);
      const idB = layout.encode(b);
      expect(Math.sign(Number(idA - idB))).toBe(compare(key(a), key(b)));
    }), { numRuns: 1_000 });
  });

  it('encodes a time inside a unit as that unit, and decodes the unit start', () => {
    const layout = new SnowflakeLayout({ epochMs: 1_000, timestampUnitMs: 10 });
    const id = layout.encode({ timestampMs: 1_025, datacenterId: 0, workerId: 0, sequence: 0 });
    expect(layout.decode(id).timestampMs).toBe(1_020);
    expect(layout.idsPerMsMax).toBe(409.6);
    expect(layout.tickOf(999.5)).toBe(-1);
  });

  it('refuses malformed layouts', () => {
    const cases: SnowflakeLayoutOptions[] = [
      { sequenceBits: 13 }, // 64 bits
      { timestampBits: 0 },
      { timestampBits: 54, datacenterBits: 0, workerBits: 0, sequenceBits: 0 },
      { timestampBits: 53, datacenterBits: 0, workerBits: 0, sequenceBits: 0 }, // unsafe range
      { timestampBits: 41, timestampUnitMs: 5_000 }, // unsafe range
      { workerBits: -1 },
      { datacenterBits: 32, timestampBits: 20, workerBits: 0, sequenceBits: 0 },
      { sequenceBits: 2.5 },
      { epochMs: -1 },
      { epochMs: 1.5 },
      { timestampUnitMs: 0 },
      { timestampUnitMs: Number.NaN },
    ];
    for (const options of cases) {
      expect(codeOf(() => new SnowflakeLayout(options)), JSON.stringify(options))
        .toBe('SYNOD_INVALID_ARGUMENT');
    }
    expect(codeOf(() => new SnowflakeLayout({ timestampBits: 39, timestampUnitMs: 10,
      datacenterBits: 0, workerBits: 16, sequenceBits: 8 }))).toBeUndefined(); // Sonyflake's shape
  });

  it('refuses out-of-range fields, and a time past the last unit as space exhausted', () => {
    const layout = snowflakeLayoutDefault;
    const valid: SnowflakeParts = {
      timestampMs: snowflakeEpochMsDefault, datacenterId: 0, workerId: 0, sequence: 0,
    };
    const invalid: Partial<SnowflakeParts>[] = [
      { datacenterId: 32 }, { workerId: -1 }, { sequence: 4096 }, { sequence: 0.5 },
      { timestampMs: snowflakeEpochMsDefault - 1 }, { timestampMs: Number.NaN },
      { workerId: Number.POSITIVE_INFINITY },
    ];
    for (const change of invalid) {
      expect(codeOf(() => layout.encode({ ...valid, ...change })), JSON.stringify(change))
        .toBe('SYNOD_INVALID_ARGUMENT');
    }
    expect(codeOf(() => layout.encode({ ...valid, timestampMs: layout.lastTimestampMs + 1 })))
      .toBe('SYNOD_ID_SPACE_EXHAUSTED');
    expect(codeOf(() => layout.encode({ ...valid, timestampMs: layout.lastTimestampMs })))
      .toBeUndefined();
  });

  it('parses decimal ids strictly', () => {
    const layout = snowflakeLayoutDefault;
    expect(layout.decode('0')).toEqual({
      timestampMs: snowflakeEpochMsDefault, datacenterId: 0, workerId: 0, sequence: 0,
    });
    expect(layout.decode('9223372036854775807').sequence).toBe(4095);
    const malformed = [
      '', '-1', '+1', '01', ' 1', '1 ', '1.0', '1e3', '0x10', '１', '9223372036854775808',
      '12345678901234567890', '1'.repeat(400),
    ];
    for (const text of malformed) {
      expect(codeOf(() => layout.decode(text)), text).toBe('SYNOD_INVALID_ARGUMENT');
    }
    for (const id of [-1n, 2n ** 63n]) {
      expect(codeOf(() => layout.decode(id))).toBe('SYNOD_INVALID_ARGUMENT');
      expect(codeOf(() => layout.toDecimalString(id))).toBe('SYNOD_INVALID_ARGUMENT');
    }
    expect(codeOf(() => layout.decode(5 as unknown as bigint))).toBe('SYNOD_INVALID_ARGUMENT');
    // A smaller layout refuses ids of more bits than it has.
    const small = new SnowflakeLayout({ timestampBits: 20, datacenterBits: 0, workerBits: 0 });
    expect(codeOf(() => small.decode(2n ** 32n))).toBe('SYNOD_INVALID_ARGUMENT');
    expect(layout.toDecimalString(123n)).toBe('123');
  });

  it('formats consecutive ids in decimal exactly as toString does', () => {
    const cursor = new SnowflakeDecimalCursor(); // one cursor across runs: its cache must follow
    const firstIds = fc.oneof(
      fc.bigInt({ min: 0n, max: 2_000n }),
      fc.bigInt({ min: 0n, max: 2n ** 63n - 2n ** 32n }),
    );
    const offsets = fc.array(fc.integer({ min: 0, max: 2 ** 31 }), { maxLength: 50 })
      .map((values) => values.sort((a, b) => a - b));
    fc.assert(fc.property(firstIds, offsets, (firstId, sorted) => {
      for (const offset of [0, 1, 999, 1_000, 4_095, ...sorted]) {
        expect(cursor.format(firstId, offset)).toBe((firstId + BigInt(offset)).toString());
      }
    }), { numRuns: 2_000 });
  });
});
