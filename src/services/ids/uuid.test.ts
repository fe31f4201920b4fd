// UUID generators: canonical lowercase text, version and variant bits, v7's strict order within a
// generator (over a million ids, a clock stepping back, a counter overflow) and its timestamp.
import { describe, expect, it } from 'vitest';
import { collectMarks, isSynodError } from '../../base/index.js';
import {
  UuidV4Generator, UuidV7Generator, uuidPattern, uuidRandomPoolBytes, uuidV7CounterMax,
  uuidV7Timestamp,
} from './uuid.js';

/** A clock the test sets by hand. */
class ManualClock {
  ms = 1_700_000_000_000;
  nowMs(): number {
    return this.ms;
  }
}

/** The version nibble and the variant's two top bits of a canonical UUID. */
function versionAndVariant(uuid: string): { version: number; variant: number } {
  return {
    version: Number.parseInt(uuid[14]!, 16),
    variant: Number.parseInt(uuid[19]!, 16) >> 2,
  };
}

/** The 12-bit rand_a field (v7's counter). */
function counterOf(uuid: string): number {
  return Number.parseInt(uuid.slice(15, 18), 16);
}

function expectStrictlyIncreasing(ids: readonly string[]): void {
  for (let index = 1; index < ids.length; index++) {
    if (!(ids[index - 1]! < ids[index]!)) {
      throw new Error(`ids ${index - 1} and ${index} out of order: ${ids[index - 1]} ` +
        `${ids[index]}`);
    }
  }
}

describe('UuidV4Generator', () => {
  it('gives lowercase canonical version 4, variant 0b10 UUIDs, all distinct', async () => {
    const generator = new UuidV4Generator();
    const ids = await generator.nextBatch(100_000);
    for (const id of ids.slice(0, 1_000)) {
      expect(id).toMatch(uuidPattern);
      expect(versionAndVariant(id)).toEqual({ version: 4, variant: 0b10 });
    }
    expect(new Set(ids).size).toBe(ids.length);
    expect(() => uuidV7Timestamp(ids[0]!)).toThrow(/version 7/);
  });

  it('refuses ids once closed', async () => {
    const generator = new UuidV4Generator();
    await generator.close();
    expect(() => generator.next()).toThrowError(expect.objectContaining({
      code: 'SYNOD_ID_GENERATOR_CLOSED',
    }));
  });
});

describe('UuidV7Generator', () => {
  it('gives lowercase canonical version 7, variant 0b10 UUIDs carrying the clock', () => {
    const clock = new ManualClock();
    const generator = new UuidV7Generator({ clock });
    const id = generator.next();
    expect(id).toMatch(uuidPattern);
    expect(versionAndVariant(id)).toEqual({ version: 7, variant: 0b10 });
    expect(uuidV7Timestamp(id)).toBe(clock.ms);
    expect(uuidV7Timestamp(id.toUpperCase())).toBe(clock.ms);
    // The counter is seeded below its top bit, leaving at least 2 048 increments of headroom.
    expect(counterOf(id)).toBeLessThan(0x800);
  });

  it('sorts a million ids in the order it generated them, with no repeat', async () => {
    const generator = new UuidV7Generator();
    const ids: string[] = [];
    for (let batch = 0; batch < 10; batch++) ids.push(...await generator.nextBatch(100_000));
    expectStrictlyIncreasing(ids);
    const sorted = [...ids].sort();
    expect(sorted.every((id, index) => id === ids[index])).toBe(true);
    expect(new Set(ids).size).toBe(ids.length);
    const idsPerRefill = uuidRandomPoolBytes / 8;
    expect(generator.stats.poolRefills).toBeGreaterThanOrEqual(ids.length / idsPerRefill);
    for (const id of [ids[0]!, ids[500_000]!, ids.at(-1)!]) {
      expect(versionAndVariant(id)).toEqual({ version: 7, variant: 0b10 });
    }
  });

  it('holds the last millisecond when the clock steps back, and keeps counting', () => {
    const clock = new ManualClock();
    const generator = new UuidV7Generator({ clock });
    const before = [generator.next(), generator.next()];
    const heldMs = clock.ms;
    clock.ms -= 5_000;
    let behind: string[] = [];
    const marks = collectMarks(() => {
      behind = [generator.next(), generator.next(), generator.next()];
    });
    expect(marks.get('uuidv7: clock behind the last timestamp, held')).toBe(3);
    expect(behind.map(uuidV7Timestamp)).toEqual([heldMs, heldMs, heldMs]);
    expect(behind.map(counterOf)).toEqual([1, 2, 3].map((step) => counterOf(before[1]!) + step));
    clock.ms = heldMs + 1;
    const after = generator.next();
    expect(uuidV7Timestamp(after)).toBe(heldMs + 1);
    expectStrictlyIncreasing([...before, ...behind, after]);
    expect(generator.stats.clockBehind).toBe(3);
  });

  it('runs the timestamp ahead of a stopped clock when the counter overflows', () => {
    const clock = new ManualClock();
    // All-ones random bytes seed each millisecond's counter at its highest: 0x7ff.
    const generator = new UuidV7Generator({ clock, fillRandom: (bytes) => bytes.fill(0xff) });
    const perMillisecond = uuidV7CounterMax - 0x7ff + 1;
    const ids: string[] = [];
    const marks = collectMarks(() => {
      for (let index = 0; index < perMillisecond * 3 - 1; index++) ids.push(generator.next());
    });
    expect(marks.get('uuidv7: counter overflow runs the timestamp ahead')).toBe(2);
    expect(uuidV7Timestamp(ids[0]!)).toBe(clock.ms);
    expect(uuidV7Timestamp(ids[perMillisecond - 1]!)).toBe(clock.ms);
    expect(counterOf(ids[perMillisecond - 1]!)).toBe(uuidV7CounterMax);
    expect(uuidV7Timestamp(ids[perMillisecond]!)).toBe(clock.ms + 1);
    expect(counterOf(ids[perMillisecond]!)).toBe(0x7ff);
    expect(uuidV7Timestamp(ids.at(-1)!)).toBe(clock.ms + 2);
    expectStrictlyIncreasing(ids);
    // A clock still behind the timestamp that ran ahead does not pull it back.
    clock.ms += 1;
    const next = generator.next();
    expect(uuidV7Timestamp(next)).toBe(clock.ms + 1);
    expect(counterOf(next)).toBe(uuidV7CounterMax);
    expect(ids.at(-1)! < next).toBe(true);
  });

  it('refuses text that is not a version 7 UUID', () => {
    for (const text of ['', 'not-a-uuid', '0190a6e2-3b4c-4d5e-8f00-0123456789ab',
      '0190a6e2-3b4c-7d5e-cf00-0123456789ab', '0190a6e23b4c7d5e8f000123456789ab']) {
      let error: unknown;
      try {
        uuidV7Timestamp(text);
      } catch (caught) {
        error = caught;
      }
      expect(isSynodError(error, 'SYNOD_INVALID_ARGUMENT')).toBe(true);
    }
  });

  it('refuses ids once closed, and batches out of bounds', async () => {
    const generator = new UuidV7Generator();
    for (const count of [-1, 1.5, 100_001]) {
      await expect(generator.nextBatch(count)).rejects.toMatchObject({
        code: 'SYNOD_INVALID_ARGUMENT',
      });
    }
    await generator.close();
    expect(() => generator.next()).toThrowError(expect.objectContaining({
      code: 'SYNOD_ID_GENERATOR_CLOSED',
    }));
  });
});
