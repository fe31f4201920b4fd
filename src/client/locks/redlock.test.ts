import fc from 'fast-check';
import type { Redis } from 'ioredis';
import { describe, expect, it } from 'vitest';
import { AssertionFailure, isSynodError } from '../../base/index.js';
import { backoffDelayMs, lockTiming } from './redis-common.js';
import {
  RedlockBackend, checkRedlockServerCount, redlockDriftMs, redlockExtensionVerdict, redlockGranted,
  redlockQuorum, redlockServersMax, redlockValidityMs,
} from './redlock.js';

describe('redlockQuorum', () => {
  it('is N/2+1 for the odd sizes Redlock accepts', () => {
    expect([3, 5, 7, 9].map(redlockQuorum)).toEqual([2, 3, 4, 5]);
  });

  it('agrees with the naive definition: the smallest count that is more than half', () => {
    fc.assert(fc.property(fc.integer({ min: 1, max: 101 }), (serverCount) => {
      let naive = 0;
      while (naive * 2 <= serverCount) naive++;
      expect(redlockQuorum(serverCount)).toBe(naive);
      // Two quorums always overlap, which is what makes a second grant impossible while the
      // servers remember.
      expect(2 * redlockQuorum(serverCount) - serverCount).toBeGreaterThanOrEqual(1);
    }));
  });

  it('asserts on a count that is not a positive integer', () => {
    expect(() => redlockQuorum(0)).toThrow(AssertionFailure);
    expect(() => redlockQuorum(2.5)).toThrow(AssertionFailure);
  });
});

describe('checkRedlockServerCount', () => {
  it('accepts odd counts from 3 to the maximum', () => {
    for (const serverCount of [3, 5, redlockServersMax]) {
      expect(() => checkRedlockServerCount(serverCount)).not.toThrow();
    }
  });

  it('refuses even, too small and too large counts with SYNOD_INVALID_ARGUMENT', () => {
    for (const serverCount of [0, 1, 2, 4, 6, redlockServersMax + 2, 3.5]) {
      let caught: unknown;
      try {
        checkRedlockServerCount(serverCount);
      } catch (error) {
        caught = error;
      }
      expect(isSynodError(caught, 'SYNOD_INVALID_ARGUMENT'), `count ${serverCount}`).toBe(true);
    }
  });
});

describe('redlockDriftMs and redlockValidityMs', () => {
  it('follow the docs: drift = ttl * factor + 2, validity = ttl - elapsed - drift', () => {
    expect(redlockDriftMs({ ttlMs: 10_000, clockDriftFactor: 0.01 })).toBe(102);
    expect(redlockValidityMs({ ttlMs: 10_000, elapsedMs: 40, clockDriftFactor: 0.01 })).toBe(9_858);
    // With no drift factor the 2 ms for PX's granularity remain.
    expect(redlockValidityMs({ ttlMs: 100, elapsedMs: 0, clockDriftFactor: 0 })).toBe(98);
  });

  it('goes to zero and below once the attempt took the whole TTL less the drift', () => {
    expect(redlockValidityMs({ ttlMs: 1_000, elapsedMs: 988, clockDriftFactor: 0.01 })).toBe(0);
    expect(redlockValidityMs({ ttlMs: 1_000, elapsedMs: 1_000, clockDriftFactor: 0.01 }))
      .toBeLessThan(0);
  });

  it('never promises more than the TTL and shrinks as the attempt takes longer', () => {
    fc.assert(fc.property(
      fc.integer({ min: 1, max: 10_000_000 }), fc.double({ min: 0, max: 0.49, noNaN: true }),
      fc.integer({ min: 0, max: 10_000_000 }), fc.integer({ min: 1, max: 1000 }),
      (ttlMs, clockDriftFactor, elapsedMs, moreMs) => {
        const validityMs = redlockValidityMs({ ttlMs, elapsedMs, clockDriftFactor });
        expect(validityMs).toBeLessThan(ttlMs - elapsedMs);
        const laterMs =
          redlockValidityMs({ ttlMs, elapsedMs: elapsedMs + moreMs, clockDriftFactor });
        expect(laterMs).toBe(validityMs - moreMs);
      },
    ));
  });
});

describe('redlockGranted', () => {
  it('needs a majority and validity left', () => {
    expect(redlockGranted({ serverCount: 3, acquiredCount: 2, validityMs: 1 })).toBe(true);
    expect(redlockGranted({ serverCount: 3, acquiredCount: 1, validityMs: 9_000 })).toBe(false);
    expect(redlockGranted({ serverCount: 3, acquiredCount: 3, validityMs: 0 })).toBe(false);
    expect(redlockGranted({ serverCount: 5, acquiredCount: 2, validityMs: 9_000 })).toBe(false);
    expect(redlockGranted({ serverCount: 5, acquiredCount: 3, validityMs: 9_000 })).toBe(true);
  });

  it('never grants two contenders at once while the servers remember their votes', () => {
    // Each server votes for at most one contender; if both were granted, their votes would sum
    // past the server count.
    const oddCounts = fc.integer({ min: 1, max: 7 }).map((half) => 2 * half + 1);
    fc.assert(fc.property(oddCounts, fc.nat(), (serverCount, split) => {
      const firstVotes = split % (serverCount + 1);
      const secondVotes = serverCount - firstVotes;
      const both = redlockGranted({ serverCount, acquiredCount: firstVotes, validityMs: 1 }) &&
        redlockGranted({ serverCount, acquiredCount: secondVotes, validityMs: 1 });
      expect(both).toBe(false);
    }));
  });
});

describe('redlockExtensionVerdict', () => {
  it('extends with a majority in time, is refused when no majority can be, else unknown', () => {
    const verdict = (extendedCount: number, refusedCount: number, validityMs = 100): string =>
      redlockExtensionVerdict({ serverCount: 3, extendedCount, refusedCount, validityMs });
    expect(verdict(2, 0)).toBe('extended');
    expect(verdict(2, 1)).toBe('extended');
    expect(verdict(1, 2)).toBe('refused');
    expect(verdict(0, 2)).toBe('refused');
    // One server refused and one did not answer: a majority is still possible next round.
    expect(verdict(1, 1)).toBe('unknown');
    expect(verdict(0, 0)).toBe('unknown');
    // A majority that arrived too late is no extension.
    expect(verdict(3, 0, 0)).toBe('unknown');
  });

  it('asserts on counts that add up to more than the servers', () => {
    const tooMany = { serverCount: 3, extendedCount: 2, refusedCount: 2, validityMs: 1 };
    expect(() => redlockExtensionVerdict(tooMany)).toThrow(AssertionFailure);
  });
});

describe('backoffDelayMs', () => {
  it('doubles per failed attempt from the first delay up to the cap', () => {
    const ceilings = [0, 1, 2, 3, 4, 10].map((failedAttempts) =>
      backoffDelayMs({ failedAttempts, firstMs: 25, maxMs: 250, unit: 0.999_999 }));
    expect(ceilings.map(Math.round)).toEqual([25, 50, 100, 200, 250, 250]);
  });

  it('stays within [ceiling / 2, ceiling] and under the cap, whatever the attempt count', () => {
    fc.assert(fc.property(
      fc.nat({ max: 1_000_000 }), fc.integer({ min: 1, max: 1000 }),
      fc.integer({ min: 0, max: 100_000 }),
      fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }),
      (failedAttempts, firstMs, extraMs, unit) => {
        const maxMs = firstMs + extraMs;
        const delayMs = backoffDelayMs({ failedAttempts, firstMs, maxMs, unit });
        const ceilingMs = Math.min(maxMs, firstMs * 2 ** Math.min(failedAttempts, 16));
        expect(delayMs).toBeGreaterThanOrEqual(ceilingMs / 2);
        expect(delayMs).toBeLessThanOrEqual(ceilingMs);
        expect(Number.isFinite(delayMs)).toBe(true);
      },
    ));
  });
});

describe('configuration', () => {
  it('fills the timing defaults: 30 s TTL, renewal at a third of it', () => {
    const timing = lockTiming({});
    expect(timing).toMatchObject({
      ttlMs: 30_000, renewIntervalMs: 10_000, retryDelayMs: 25, retryDelayMaxMs: 250,
    });
    expect(Object.isFrozen(timing)).toBe(true);
  });

  it('refuses a renewal interval outside the TTL and a fractional TTL', () => {
    const refused = [
      { ttlMs: 100, renewIntervalMs: 100 }, { ttlMs: 10.5 }, { retryDelayMs: 0 },
      { retryDelayMs: 50, retryDelayMaxMs: 10 },
    ];
    for (const options of refused) {
      expect(() => lockTiming(options), JSON.stringify(options)).toThrow(/must|need/);
    }
  });

  /** Stand-ins for ioredis clients that fail the test if the backend touches them. */
  function untouchableClients(count: number): Redis[] {
    const untouchable = new Proxy({}, {
      get: () => {
        throw new Error('a client was used');
      },
    });
    return Array.from({ length: count }, () => untouchable as Redis);
  }

  it('refuses an even number of servers before touching any of them', async () => {
    await expect(RedlockBackend.connect({ redis: untouchableClients(2) }))
      .rejects.toMatchObject({ code: 'SYNOD_INVALID_ARGUMENT' });
  });

  it('refuses a server timeout that eats the whole validity', async () => {
    const options = { redis: untouchableClients(3), ttlMs: 100, serverTimeoutMs: 98 };
    await expect(RedlockBackend.connect(options))
      .rejects.toMatchObject({ code: 'SYNOD_INVALID_ARGUMENT' });
  });
});
