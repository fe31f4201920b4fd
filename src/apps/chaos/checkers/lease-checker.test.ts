import { describe, expect, it } from 'vitest';
import {
  checkLease, type LeaseHistory, type LeaseRecord, type LeaseRenewalRecord, type LeaseSample,
} from './lease-checker.js';

const ok = (invokedAtMs: number, completedAtMs = invokedAtMs + 5): LeaseRenewalRecord =>
  ({ invokedAtMs, completedAtMs, outcome: 'ok', ttlSeconds: 3 });

/** Granted at 0, attached by 20, renewed at 1000 and 2000, died at 2500: expires in [5000, …]. */
const lease: LeaseRecord = {
  clientId: 1, member: 'm1', leaseId: '7', key: 'l/1-0', grant: ok(0),
  attach: { invokedAtMs: 10, completedAtMs: 20, outcome: 'ok' },
  keepAlives: [ok(1000), ok(2000)], diedAtMs: 2500,
};

/** A read every 250 ms from 0 to 10 s; the key is present in [20, presentUntilMs). */
function samples(presentUntilMs: number): LeaseSample[] {
  const out: LeaseSample[] = [];
  for (let atMs = 0; atMs <= 10_000; atMs += 250) {
    const present = atMs >= 20 && atMs + 3 < presentUntilMs;
    out.push({ member: 'm1', invokedAtMs: atMs, completedAtMs: atMs + 3,
      keys: present ? [lease.key] : [] });
  }
  return out;
}

function history(presentUntilMs: number, leases: readonly LeaseRecord[] = [lease]): LeaseHistory {
  return {
    prefix: 'l/', leases, samples: samples(presentUntilMs), samplesFailed: 0, grantsFailed: 0,
  };
}

describe('checkLease', () => {
  it('passes a key that lives its TTL past the last renewal and then goes', () => {
    const verdict = checkLease(history(5600));
    expect(verdict.violations).toEqual([]);
    expect(verdict.stats)
      .toMatchObject({ leases: 1, earlyChecked: 1, lateChecked: 1, keepAlivesOk: 2 });
  });

  it('catches a key that vanishes before its TTL', () => {
    const verdict = checkLease(history(4000));
    expect(verdict.valid).toBe(false);
    expect(verdict.violations).toEqual([
      expect.stringMatching(
        /key missing in a read on m1 \[4000, 4003\] ms, before it may expire at 4900 ms/),
    ]);
  });

  it('catches a keep-alive answered TTL 0 before the lease may expire', () => {
    const expired = { ...lease, keepAlives: [...lease.keepAlives,
      { invokedAtMs: 3000, completedAtMs: 3004, outcome: 'failed' as const, ttlSeconds: 0 }] };
    const verdict = checkLease(history(5600, [expired]));
    expect(verdict.violations.join('\n')).toMatch(/keep-alive answered TTL 0 at 3004 ms/);
  });

  it('catches a key that lives too long', () => {
    // Must be gone by diedAt 2500 + 3000 + 3000 = 8500.
    const verdict = checkLease(history(9300));
    expect(verdict.violations).toEqual([
      expect.stringMatching(
        /still present in a read on m1 invoked at 8750 ms, after it must be gone by 8500 ms/),
    ]);
  });

  it('extends the late bound over a fault, and leaves an unhealed one unjudged', () => {
    const healed = checkLease(history(9300), { faults: [
      { kind: 'kill-leader', startedAtMs: 4000, healedAtMs: 5000, detail: 'm1' },
    ] });
    expect(healed.violations).toEqual([]);
    const unhealed = checkLease(history(9300), { faults: [
      { kind: 'pause', startedAtMs: 4000, healedAtMs: null, detail: 'm1' },
    ] });
    expect(unhealed.violations).toEqual([]);
    expect(unhealed.stats['lateUnbounded']).toBe(1);
  });

  it('skips the early check of a key whose put is unknown, but still bounds it', () => {
    const unknown = { ...lease, attach: { ...lease.attach, outcome: 'unknown' as const } };
    const verdict = checkLease(history(0, [unknown]));
    expect(verdict.violations).toEqual([]);
    expect(verdict.stats['earlyChecked']).toBe(0);
  });
});
