/**
 * The backend quota (etcd's --quota-backend-bytes; etcd server/etcdserver/quota.go and
 * v3rpc/quota.go). Before a write that can grow the database is proposed, the API checks that the
 * backend's size plus the request's size stays below the quota. If it would not, the write fails
 * with "database space exceeded" and this member raises the NOSPACE alarm through Raft, after
 * which every replica refuses such writes at apply time (state-machine.ts) until an operator
 * disarms it.
 *
 * The check runs before proposing, on the member the client talks to, as in etcd: the size is a
 * local measurement, so it cannot decide anything at apply time without breaking determinism. The
 * alarm it raises is what makes the refusal cluster-wide.
 */

import { assert, isSynodError, SynodError } from '../../base/index.js';
import { quotaBackendBytesDefault } from '../flags.js';
import type { RaftNode } from '../node/raft-node.js';

/** What the KV (and lease) service asks before proposing a write that can grow the database. */
export interface Quota {
  /**
   * Resolves if a write of `requestBytes` fits; otherwise raises NOSPACE and rejects with
   * SYNOD_NO_SPACE. Other rejections are the size measurement's own failures.
   */
  check(requestBytes: number): Promise<void>;
}

/** Options of `createQuota`. */
export interface QuotaOptions {
  /** etcd's --quota-backend-bytes; 0 means etcd's default of 2 GiB. */
  readonly quotaBackendBytes: number;
  /** The backend's current size in bytes (Status's dbSize). */
  readonly dbSizeBytes: () => Promise<number>;
  /**
   * Raises NOSPACE for this member (`alarmActivator`). A SynodError from it (no leader, timeout)
   * is ignored, as etcd ignores its alarm call's error: the write fails either way.
   */
  readonly activateAlarm: () => Promise<void>;
  /**
   * Whether NOSPACE is already raised. If so a write is refused at once, unmeasured and
   * unproposed: otherwise every refused retry would still append an entry to the Raft log, which
   * is disk the member is short of. Default: never (the state machine then refuses at apply).
   */
  readonly isAlarmRaised?: () => boolean;
}

/** A quota over `options`; see the module comment. */
export function createQuota(options: QuotaOptions): Quota {
  const { quotaBackendBytes } = options;
  if (!Number.isSafeInteger(quotaBackendBytes) || quotaBackendBytes < 0) {
    throw new SynodError('SYNOD_INVALID_CONFIG', 'quotaBackendBytes must be an integer ≥ 0');
  }
  const quotaBytes = quotaBackendBytes === 0 ? quotaBackendBytesDefault : quotaBackendBytes;
  // Writes arriving together share one measurement: a burst of Puts costs one stat of the files.
  let measuring: Promise<number> | null = null;
  const measure = (): Promise<number> => {
    measuring ??= options.dbSizeBytes().finally(() => {
      measuring = null;
    });
    return measuring;
  };
  return Object.freeze({
    async check(requestBytes: number): Promise<void> {
      assert(Number.isSafeInteger(requestBytes) && requestBytes >= 0, 'request size is a count');
      if (options.isAlarmRaised?.() === true) throw new SynodError('SYNOD_NO_SPACE');
      const dbBytes = await measure();
      assert(Number.isSafeInteger(dbBytes) && dbBytes >= 0, 'database size is a count');
      // etcd's backendQuota.Available: the write fits while size + cost stays below the quota.
      if (dbBytes + requestBytes < quotaBytes) return;
      await options.activateAlarm().catch((error: unknown) => {
        if (!isSynodError(error)) throw error;
      });
      throw new SynodError(
        'SYNOD_NO_SPACE',
        `database ${dbBytes} B + request ${requestBytes} B reaches the quota of ${quotaBytes} B`,
      );
    },
  });
}

/**
 * `activateAlarm` for `createQuota`: proposes NOSPACE for `memberId` through `node`, unless the
 * state machine already lists it (a burst of refused writes then proposes nothing more).
 */
export function alarmActivator(options: {
  readonly node: RaftNode;
  readonly memberId: bigint;
}): () => Promise<void> {
  const { node, memberId } = options;
  return async () => {
    const raised = node.stateMachine.store.alarms('NOSPACE');
    if (raised.some((member) => member.memberId === memberId)) return;
    const outcome = await node.propose({
      type: 'alarm', action: 'activate', member: { memberId, alarm: 'NOSPACE' },
    });
    // Alarm commands pass every alarm check and touch no key: they cannot fail when applied.
    assert(outcome.ok, 'applying an alarm command cannot fail');
  };
}

/**
 * The quota a member's KV and lease services share: `createQuota` with NOSPACE raised for
 * `memberId` through `node` (`alarmActivator`) and read back from its state machine.
 */
export function createNodeQuota(options: {
  readonly node: RaftNode;
  readonly memberId: bigint;
  readonly quotaBackendBytes: number;
  readonly dbSizeBytes: () => Promise<number>;
}): Quota {
  const { node, memberId } = options;
  return createQuota({
    quotaBackendBytes: options.quotaBackendBytes,
    dbSizeBytes: options.dbSizeBytes,
    activateAlarm: alarmActivator({ node, memberId }),
    // `node.stateMachine`, not a captured store: a snapshot install replaces the state machine.
    isAlarmRaised: () => node.stateMachine.store.hasAlarm('NOSPACE'),
  });
}
