/**
 * The KV state machine Raft drives: `apply(command)` runs one committed command to completion and
 * returns its response and events, or the expected error it met (an error is an outcome the client
 * sees, applied identically on every replica; the store is unchanged by it). Assertion failures are
 * bugs and propagate. `serialize` and `restore` move the whole state for Raft snapshots, raised
 * alarms included (they are entries of the meta bucket).
 */

import { isSynodError, SynodError } from '../base/index.js';
import { commandGrowsDatabase, type Command } from './command.js';
import { MemoryBackend } from './memory-backend.js';
import type {
  AlarmResponse, AuthChangeResponse, LeaseGrantResponse, MemberChangeResponse, MvccStoreOptions,
} from './mvcc-store.js';
import { MvccStore } from './mvcc-store.js';
import { restoreBackend, serializeBackend } from './snapshot.js';
import type {
  DeleteRangeResponse, KvEvent, PutResponse, ResponseHeader, TxnResponse,
} from './types.js';

/** The response of each command type. */
export type CommandResponse =
  | { readonly type: 'put'; readonly response: PutResponse }
  | { readonly type: 'deleteRange'; readonly response: DeleteRangeResponse }
  | { readonly type: 'txn'; readonly response: TxnResponse }
  | { readonly type: 'compact'; readonly response: { readonly header: ResponseHeader } }
  | { readonly type: 'leaseGrant'; readonly response: LeaseGrantResponse }
  | { readonly type: 'leaseRevoke'; readonly response: { readonly header: ResponseHeader } }
  | { readonly type: 'alarm'; readonly response: AlarmResponse }
  | { readonly type: 'member'; readonly response: MemberChangeResponse }
  | { readonly type: 'auth'; readonly response: AuthChangeResponse };

/** The outcome of applying one command. Events are empty on error. */
export type ApplyResult =
  | { readonly ok: true; readonly result: CommandResponse; readonly events: readonly KvEvent[] }
  | { readonly ok: false; readonly error: SynodError; readonly events: readonly KvEvent[] };

/** The replicated KV state machine. */
export class KvStateMachine {
  /** The store, for reads (Range, lease queries) between applies. */
  readonly store: MvccStore;

  private constructor(store: MvccStore) {
    this.store = store;
  }

  /** Opens over `options.backend` (a fresh memory backend if unset). */
  static open(options: MvccStoreOptions = {}): KvStateMachine {
    return new KvStateMachine(MvccStore.open(options));
  }

  /** Builds a state machine from `serialize()` output, into `options.backend` (must be empty). */
  static restore(snapshot: Uint8Array, options: MvccStoreOptions = {}): KvStateMachine {
    const backend = options.backend ?? new MemoryBackend();
    restoreBackend(snapshot, backend);
    return KvStateMachine.open({ ...options, backend });
  }

  /** The whole state, for a Raft snapshot. */
  serialize(): Uint8Array {
    return serializeBackend(this.store.backend);
  }

  /** The Raft index of the last applied command (0 if none); resume applying after it. */
  get appliedIndex(): number {
    return this.store.appliedIndex;
  }

  /**
   * Applies one committed command. With `raftIndex`, the index is made durable with the command's
   * effects (or alone, if it had none), so a restarted replica resumes after `appliedIndex`
   * without applying anything twice; it must exceed `appliedIndex`.
   */
  apply(command: Command, options: { raftIndex?: number } = {}): ApplyResult {
    if (options.raftIndex !== undefined) this.store.stageAppliedIndex(options.raftIndex);
    let result: ApplyResult;
    try {
      result = this.#dispatch(command);
    } catch (error) {
      // Corrupt storage is not a client's outcome: the replica must stop, not answer. Neither may
      // an assertion failure record the index: the command did not complete.
      if (!isSynodError(error) || error.code === 'SYNOD_STORAGE_CORRUPT') throw error;
      result = { ok: false, error, events: [] };
    }
    this.store.flushAppliedIndex();
    return result;
  }

  /**
   * Runs `body`, a sequence of `apply` calls, as one backend commit (etcd's batch transaction):
   * results are those of applying one by one, and each command stays all-or-nothing. A crash
   * keeps a prefix of whole batches, and the applied index commits with them, so a restarted
   * replica replays the rest from the Raft log. If `body` throws, discard this state machine.
   */
  batch<T>(body: () => T): T {
    return this.store.batch(body);
  }

  /**
   * etcd's alarm appliers (applierV3Corrupt, applierV3Capped): while CORRUPT is raised every write
   * fails; while NOSPACE is raised whatever can grow the database fails. Alarms are replicated
   * state, so every replica refuses the same entries. Alarm commands always pass, or no alarm
   * could ever be cleared.
   */
  #checkAlarms(command: Command): void {
    // Membership changes pass too: removing a corrupt member or adding space elsewhere is how
    // an operator recovers.
    if (command.type === 'alarm' || command.type === 'member' || command.type === 'auth') return;
    if (this.store.hasAlarm('CORRUPT')) throw new SynodError('SYNOD_CORRUPT_CLUSTER');
    if (this.store.hasAlarm('NOSPACE') && commandGrowsDatabase(command)) {
      throw new SynodError('SYNOD_NO_SPACE');
    }
  }

  #dispatch(command: Command): ApplyResult {
    const store = this.store;
    this.#checkAlarms(command);
    switch (command.type) {
      case 'put': {
        const { response, events } = store.put(command.request);
        return { ok: true, result: { type: 'put', response }, events };
      }
      case 'deleteRange': {
        const { response, events } = store.deleteRange(command.request);
        return { ok: true, result: { type: 'deleteRange', response }, events };
      }
      case 'txn': {
        const { response, events } = store.txn(command.request);
        return { ok: true, result: { type: 'txn', response }, events };
      }
      case 'compact': {
        const response = store.compact(command.revision);
        return { ok: true, result: { type: 'compact', response }, events: [] };
      }
      case 'leaseGrant': {
        const response = store.leaseGrant({ id: command.id, ttlSeconds: command.ttlSeconds });
        return { ok: true, result: { type: 'leaseGrant', response }, events: [] };
      }
      case 'leaseRevoke': {
        const { response, events } = store.leaseRevoke(command.id);
        return { ok: true, result: { type: 'leaseRevoke', response }, events };
      }
      case 'alarm': {
        const response = command.action === 'activate'
          ? store.alarmActivate(command.member)
          : store.alarmDeactivate(command.member);
        return { ok: true, result: { type: 'alarm', response }, events: [] };
      }
      case 'member': {
        const response = store.memberChange(command.change);
        return { ok: true, result: { type: 'member', response }, events: [] };
      }
      case 'auth': {
        const response = store.authChange(command.change);
        return { ok: true, result: { type: 'auth', response }, events: [] };
      }
    }
  }
}
