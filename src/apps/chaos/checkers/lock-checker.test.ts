import { describe, expect, it } from 'vitest';
import {
  checkLock, type LockHistory, type LockSectionRecord, type LockWriteRecord,
} from './lock-checker.js';

const write = (atMs: number, outcome: LockWriteRecord['outcome'] = 'ok'): LockWriteRecord =>
  ({ invokedAtMs: atMs, completedAtMs: atMs + 2, outcome });

function section(clientId: number, token: number, fromMs: number, toMs: number,
  writes: readonly LockWriteRecord[] = [write(fromMs + 1), write(toMs - 4)]): LockSectionRecord {
  return { clientId, member: 'm1', lockKey: `lk/${clientId}`, token, acquireInvokedAtMs: fromMs - 5,
    acquiredAtMs: fromMs, writes, releaseInvokedAtMs: toMs, releaseCompletedAtMs: toMs + 2,
    releaseOutcome: 'ok', lease: { ttlMs: 3_000, confirmedInvokedAtMs: [fromMs - 10] } };
}

const history = (sections: readonly LockSectionRecord[]): LockHistory =>
  ({ lockName: 'lk', sections, acquiresFailed: 0, acquiresUnknown: 0 });

describe('checkLock', () => {
  it('passes sections one after another with growing tokens', () => {
    const verdict = checkLock(history([
      section(1, 10, 0, 20), section(2, 12, 25, 40), section(1, 15, 45, 60),
    ]));
    expect(verdict.violations).toEqual([]);
    expect(verdict.stats).toMatchObject({ sections: 3, sectionsCompletedOk: 3, writesOk: 6 });
  });

  it('catches two overlapping unfenced critical sections', () => {
    // Both wrote in token order, so only the overlap itself is wrong.
    const verdict = checkLock(history([
      section(1, 10, 0, 30, [write(1), write(5)]), section(2, 12, 20, 50),
    ]));
    expect(verdict.valid).toBe(false);
    expect(verdict.violations).toEqual([expect.stringMatching(new RegExp(
      'overlapping unfenced critical sections: ' +
      'client 1 token 10 \\[0, 30\\] ms and client 2 token 12 \\[20, 50\\] ms'))]);
  });

  it('excuses an overlap when the first holder\'s lease may have expired before the next grant', () => {
    // The holder's last confirmed keep-alive was sent at -3000 with TTL 3 s: by 20 ms its lease
    // may be gone, so the next grant at 20 ms is the lock working as designed.
    const expired = { ...section(1, 10, 0, 30, [write(1), write(5)]), lease: { ttlMs: 3_000, confirmedInvokedAtMs: [-3_000] } };
    expect(checkLock(history([expired, section(2, 12, 20, 50)])).violations).toEqual([]);
    // A keep-alive sent after the grant that still answered TTL > 0 proves the lease was alive.
    const alive = { ...expired, lease: { ttlMs: 3_000, confirmedInvokedAtMs: [-3_000, 25] } };
    expect(checkLock(history([alive, section(2, 12, 20, 50)])).valid).toBe(false);
  });

  it('excuses an overlap when the stale holder was fenced out', () => {
    const stale = section(1, 10, 0, 30, [write(1), { ...write(26, 'fenced'), storedToken: 12 }]);
    const verdict = checkLock(history([stale, section(2, 12, 20, 50, [write(22), write(40)])]));
    expect(verdict.violations).toEqual([]);
    expect(verdict.stats['writesFenced']).toBe(1);
  });

  it('catches tokens out of acquisition order and a token issued twice', () => {
    const backwards = checkLock(history([section(1, 12, 0, 20), section(2, 10, 25, 40)]));
    expect(backwards.violations.join('\n')).toMatch(/token order: client 1 token 12/);
    expect(backwards.violations.join('\n')).toMatch(/stale write accepted: token 10/);
    const twice = checkLock(history([section(1, 12, 0, 20), section(2, 12, 25, 40)]));
    expect(twice.violations.join('\n')).toMatch(/token 12 issued twice/);
  });

  it('catches a write fenced by a token that was not larger', () => {
    const wrong = section(1, 12, 0, 20, [{ ...write(5, 'fenced'), storedToken: 11 }]);
    expect(checkLock(history([wrong])).violations)
      .toEqual([expect.stringMatching(/fenced wrongly/)]);
  });
});
