import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { RenewalWatchdog, type Renew } from './renewal-watchdog.js';

// Fake timers move the fake Date with every timer they fire, so `now` below reads the exact
// instant each timer runs at.
const now = (): number => Date.now();
const ttlMs = 300;
const renewIntervalMs = 100;

function start(renew: Renew): RenewalWatchdog {
  return new RenewalWatchdog({ ttlMs, renewIntervalMs, renew, now }, now());
}

/** A renewal that settles only when the test says so. */
function deferredRenewals(): {
  renew: Renew; settle: (extended: boolean) => void; calls: () => number;
} {
  const pending: ((extended: boolean) => void)[] = [];
  let calls = 0;
  return {
    renew: () => {
      calls += 1;
      return new Promise<boolean>((resolve) => pending.push(resolve));
    },
    settle: (extended) => pending.shift()?.(extended),
    calls: () => calls,
  };
}

describe('RenewalWatchdog', () => {
  beforeEach(() => {
    vi.useFakeTimers({ now: 1_000_000 });
  });

  afterEach(() => {
    vi.useRealTimers();
  });

  it('keeps renewing every interval while renewals succeed, long past the TTL', async () => {
    const renew = vi.fn<Renew>(async () => true);
    const watchdog = start(renew);
    await vi.advanceTimersByTimeAsync(10 * ttlMs);
    expect(watchdog.lost.aborted).toBe(false);
    expect(renew).toHaveBeenCalledTimes((10 * ttlMs) / renewIntervalMs);
    watchdog.stop();
  });

  it('declares the lock lost as soon as a renewal is refused, with the reason', async () => {
    const renew = vi.fn<Renew>().mockResolvedValueOnce(true).mockResolvedValueOnce(false);
    const watchdog = start(renew);
    await vi.advanceTimersByTimeAsync(renewIntervalMs);
    expect(watchdog.lost.aborted).toBe(false);
    await vi.advanceTimersByTimeAsync(renewIntervalMs);
    expect(watchdog.lost.aborted).toBe(true);
    expect((watchdog.lost.reason as Error).message).toMatch(/held by someone else or gone/);
    // Lost is final: no renewals after it.
    await vi.advanceTimersByTimeAsync(10 * ttlMs);
    expect(renew).toHaveBeenCalledTimes(2);
  });

  it('retries failing renewals but gives the lock up exactly one TTL after the grant', async () => {
    const renew = vi.fn<Renew>(async () => {
      throw new Error('connection refused');
    });
    const watchdog = start(renew);
    await vi.advanceTimersByTimeAsync(ttlMs - 1);
    expect(watchdog.lost.aborted).toBe(false);
    expect(renew.mock.calls.length).toBeGreaterThanOrEqual(2);
    await vi.advanceTimersByTimeAsync(1);
    expect(watchdog.lost.aborted).toBe(true);
    expect((watchdog.lost.reason as Error).message).toMatch(/TTL passed/);
  });

  it('counts validity from the start of the last good renewal, not from the grant', async () => {
    let succeed = true;
    const renew = vi.fn<Renew>(async () => {
      if (succeed) return true;
      throw new Error('timeout');
    });
    const watchdog = start(renew);
    await vi.advanceTimersByTimeAsync(renewIntervalMs); // Renewed at t=100: valid until 400.
    succeed = false;
    await vi.advanceTimersByTimeAsync(ttlMs - 1); // t=399
    expect(watchdog.lost.aborted).toBe(false);
    await vi.advanceTimersByTimeAsync(1); // t=400
    expect(watchdog.lost.aborted).toBe(true);
  });

  it('does not let a slow renewal stretch the lock past the TTL it started within', async () => {
    const renewals = deferredRenewals();
    const watchdog = start(renewals.renew);
    await vi.advanceTimersByTimeAsync(renewIntervalMs); // A renewal starts at t=100 and hangs.
    expect(renewals.calls()).toBe(1);
    await vi.advanceTimersByTimeAsync(ttlMs - renewIntervalMs); // t=300: the grant's TTL passed.
    expect(watchdog.lost.aborted).toBe(true);
    renewals.settle(true); // Too late: it answers after the loss was declared.
    await vi.advanceTimersByTimeAsync(ttlMs);
    expect(watchdog.lost.aborted).toBe(true);
    expect(renewals.calls()).toBe(1);
  });

  it('dates a slow renewal that succeeded from its start, not from its answer', async () => {
    const renewals = deferredRenewals();
    const watchdog = start(renewals.renew);
    await vi.advanceTimersByTimeAsync(renewIntervalMs); // A renewal starts at t=100.
    await vi.advanceTimersByTimeAsync(150);
    renewals.settle(true); // It answers at t=250: valid until 100 + 300 = 400, not 550.
    await vi.advanceTimersByTimeAsync(149); // t=399; the next renewal (t=350) hangs.
    expect(renewals.calls()).toBe(2);
    expect(watchdog.lost.aborted).toBe(false);
    await vi.advanceTimersByTimeAsync(1); // t=400
    expect(watchdog.lost.aborted).toBe(true);
    expect((watchdog.lost.reason as Error).message).toMatch(/TTL passed/);
  });

  it('never fires lost after stop(), however long it is left', async () => {
    const renew = vi.fn<Renew>(async () => false);
    const watchdog = start(renew);
    await vi.advanceTimersByTimeAsync(renewIntervalMs / 2);
    watchdog.stop();
    await vi.advanceTimersByTimeAsync(100 * ttlMs);
    expect(watchdog.lost.aborted).toBe(false);
    expect(renew).not.toHaveBeenCalled();
    watchdog.markLost('too late');
    expect(watchdog.lost.aborted).toBe(false);
  });

  it('ignores a refusal that arrives after stop() (the holder was releasing)', async () => {
    const renewals = deferredRenewals();
    const watchdog = start(renewals.renew);
    await vi.advanceTimersByTimeAsync(renewIntervalMs);
    watchdog.stop();
    renewals.settle(false);
    await vi.advanceTimersByTimeAsync(ttlMs);
    expect(watchdog.lost.aborted).toBe(false);
  });

  it('markLost aborts at once with the given reason and stops renewing', async () => {
    const renew = vi.fn<Renew>(async () => true);
    const watchdog = start(renew);
    watchdog.markLost('the connection closed');
    expect(watchdog.lost.aborted).toBe(true);
    expect((watchdog.lost.reason as Error).message).toBe('the connection closed');
    await vi.advanceTimersByTimeAsync(10 * ttlMs);
    expect(renew).not.toHaveBeenCalled();
  });
});
