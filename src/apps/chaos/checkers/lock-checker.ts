/**
 * The lock checker: critical sections under one etcd lock, fenced by the lock key's create
 * revision. Pure over the recorded data. It checks, with client-side times (an interval
 * [acquired, release invoked] lies inside the true holding interval):
 *
 * - Mutual exclusion: no section is granted while another holder's lease is provably alive and
 *   its writes all succeed. Excused are a section some write of which was fenced out (its compare
 *   failed) or is unknown, and a holder whose lease may have expired before the next grant (its
 *   keep-alives failed): a lease-based lock promises no more, and fencing exists for that holder.
 *   A lease is provably alive at t when a grant or keep-alive that answered TTL > 0 was invoked
 *   at i with i + TTL > t (the server counts the TTL from its receipt, after i), or was invoked
 *   at or after t (an expired lease never answers TTL > 0 again).
 * - Tokens: distinct, and increasing in acquisition order (a section acquired before another was
 *   even requested has the smaller token).
 * - Fencing: the resource accepted writes in token order (an acknowledged write completed before
 *   another was invoked carries a token no larger), and a fenced write saw a larger stored token.
 */

import type { CheckVerdict } from '../types.js';

/** One resource write inside a critical section. */
export interface LockWriteRecord {
  readonly invokedAtMs: number;
  readonly completedAtMs: number;
  /** 'ok' stored; 'fenced' the compare failed (a larger token is stored); else as Jepsen's. */
  readonly outcome: 'ok' | 'fenced' | 'failed' | 'unknown';
  /** The token stored when fenced. */
  readonly storedToken?: number;
}

/** One critical section: a Lock that succeeded, the writes, the Unlock. */
export interface LockSectionRecord {
  readonly clientId: number;
  readonly member: string;
  /** The lock key the Lock response named (`name/leaseHex`). */
  readonly lockKey: string;
  /** The fencing token: the lock key's create revision. */
  readonly token: number;
  readonly acquireInvokedAtMs: number;
  /** When the Lock response arrived. */
  readonly acquiredAtMs: number;
  readonly writes: readonly LockWriteRecord[];
  readonly releaseInvokedAtMs: number;
  readonly releaseCompletedAtMs: number;
  readonly releaseOutcome: 'ok' | 'failed' | 'unknown';
  /** The holder's lease: its TTL and when each grant or keep-alive that answered TTL > 0 was sent. */
  readonly lease: { readonly ttlMs: number; readonly confirmedInvokedAtMs: readonly number[] };
}

/** What the lock workload records. */
export interface LockHistory {
  readonly lockName: string;
  readonly sections: readonly LockSectionRecord[];
  /** Lock calls that failed or are unknown (no section). */
  readonly acquiresFailed: number;
  readonly acquiresUnknown: number;
}

/** Checks `history`; see the module comment. */
export function checkLock(history: LockHistory): CheckVerdict {
  const sections = [...history.sections].sort((a, b) => a.acquiredAtMs - b.acquiredAtMs);
  const violations = [
    ...checkExclusion(sections),
    ...checkTokens(sections),
    ...checkFencing(sections),
  ];
  const writes = sections.flatMap((section) => section.writes);
  return {
    checker: 'lock',
    valid: violations.length === 0,
    violations,
    lostWrites: 0,
    stats: {
      sections: sections.length,
      sectionsCompletedOk: sections.filter(completedOk).length,
      acquiresFailed: history.acquiresFailed,
      acquiresUnknown: history.acquiresUnknown,
      writesOk: writes.filter((write) => write.outcome === 'ok').length,
      writesFenced: writes.filter((write) => write.outcome === 'fenced').length,
      writesUnknown: writes.filter((write) => write.outcome === 'unknown').length,
    },
  };
}

/** Whether every write of `section` was acknowledged (and it made at least one). */
function completedOk(section: LockSectionRecord): boolean {
  return section.writes.length > 0 && section.writes.every((write) => write.outcome === 'ok');
}

function describe(section: LockSectionRecord): string {
  return `client ${section.clientId} token ${section.token} ` +
    `[${section.acquiredAtMs}, ${section.releaseInvokedAtMs}] ms`;
}

/** Sections sorted by `acquiredAtMs`. */
function checkExclusion(sections: readonly LockSectionRecord[]): string[] {
  const found: string[] = [];
  const held = sections.filter(completedOk);
  for (const [index, first] of held.entries()) {
    for (const second of held.slice(index + 1)) {
      if (second.acquiredAtMs >= first.releaseInvokedAtMs) break;
      if (!leaseProvablyAlive(first, second.acquiredAtMs)) continue;
      found.push(`overlapping unfenced critical sections: ${describe(first)} and ` +
        `${describe(second)}`);
    }
  }
  return found;
}

/** Whether `section`'s lease certainly existed at `atMs` (see the module comment). */
function leaseProvablyAlive(section: LockSectionRecord, atMs: number): boolean {
  const { ttlMs, confirmedInvokedAtMs } = section.lease;
  return confirmedInvokedAtMs.some((invokedAtMs) => invokedAtMs >= atMs || invokedAtMs + ttlMs > atMs);
}

/** Sections sorted by `acquiredAtMs`. */
function checkTokens(sections: readonly LockSectionRecord[]): string[] {
  const found: string[] = [];
  const owners = new Map<number, LockSectionRecord>();
  for (const section of sections) {
    const owner = owners.get(section.token);
    if (owner !== undefined) {
      found.push(`token ${section.token} issued twice: ${describe(owner)} and ` +
        describe(section));
    }
    owners.set(section.token, section);
  }
  for (const [index, earlier] of sections.entries()) {
    for (const later of sections.slice(index + 1)) {
      if (later.acquireInvokedAtMs <= earlier.acquiredAtMs) continue;
      if (later.token > earlier.token) continue;
      found.push(`token order: ${describe(earlier)} was acquired before ${describe(later)} ` +
        `was requested (at ${later.acquireInvokedAtMs} ms) yet holds a token no smaller`);
    }
  }
  return found;
}

function checkFencing(sections: readonly LockSectionRecord[]): string[] {
  const found: string[] = [];
  const accepted = sections.flatMap((section) => section.writes
    .filter((write) => write.outcome === 'ok')
    .map((write) => ({ section, write })))
    .sort((a, b) => a.write.completedAtMs - b.write.completedAtMs);
  for (const [index, before] of accepted.entries()) {
    for (const after of accepted.slice(index + 1)) {
      if (after.write.invokedAtMs <= before.write.completedAtMs) continue;
      if (after.section.token >= before.section.token) continue;
      found.push(`stale write accepted: token ${after.section.token} (client ` +
        `${after.section.clientId}) at ${after.write.invokedAtMs} ms after token ` +
        `${before.section.token} (client ${before.section.clientId}) was stored at ` +
        `${before.write.completedAtMs} ms`);
    }
  }
  for (const section of sections) {
    for (const write of section.writes) {
      if (write.outcome !== 'fenced' || (write.storedToken ?? Infinity) > section.token) continue;
      found.push(`write fenced wrongly: ${describe(section)} at ${write.invokedAtMs} ms saw ` +
        `stored token ${write.storedToken}, not larger than its own`);
    }
  }
  return found;
}
