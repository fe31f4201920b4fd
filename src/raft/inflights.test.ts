import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Inflights } from './inflights.js';

describe('Inflights', () => {
  it('behaves like a bounded FIFO freed by acknowledgement (against an array model)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 8 }), fc.array(fc.tuple(fc.boolean(), fc.nat(5)), { maxLength: 100 }), (capacity, ops) => {
        const inflights = new Inflights(capacity);
        let model: number[] = [];
        let next = 1;
        for (const [isAdd, step] of ops) {
          if (isAdd && !inflights.full()) {
            next += step + 1;
            inflights.add(next);
            model.push(next);
          } else if (!isAdd) {
            const ack = next - step;
            inflights.freeLE(ack);
            model = model.filter((index) => index > ack);
          }
          expect(inflights.count).toBe(model.length);
          expect(inflights.full()).toBe(model.length === capacity);
        }
      }),
    );
  });

  it('frees the oldest message on freeFirstOne, and nothing when empty', () => {
    const inflights = new Inflights(2);
    inflights.freeFirstOne();
    inflights.add(5);
    inflights.add(9);
    inflights.freeFirstOne();
    expect(inflights.count).toBe(1);
    inflights.freeLE(8);
    expect(inflights.count).toBe(1);
    inflights.freeLE(9);
    expect(inflights.count).toBe(0);
  });

  it('refuses to grow past its capacity', () => {
    const inflights = new Inflights(2);
    inflights.add(1);
    inflights.add(2);
    expect(() => inflights.add(3)).toThrow(/overflow/);
  });
});
