import { describe, expect, it } from 'vitest';
import { cachedMeasure } from './db-size.js';

describe('cachedMeasure', () => {
  it('measures once per period and forgets a failed measurement', async () => {
    let calls = 0;
    let fail = true;
    const measure = cachedMeasure(async () => {
      calls += 1;
      if (fail) throw new Error('stat failed');
      return calls * 100;
    }, 60_000);
    await expect(measure()).rejects.toThrow('stat failed');
    fail = false;
    expect(await measure()).toBe(200);
    expect(await measure()).toBe(200);
    expect(calls).toBe(2);
    const fresh = cachedMeasure(async () => ++calls, 0);
    const first = await fresh();
    await new Promise((resolve) => setImmediate(resolve));
    expect(await fresh()).toBeGreaterThan(first);
  });
});
