/**
 * The sequential specification of one key: a register holding a string or nothing. Histories are
 * partitioned by key before checking, so the model never sees a key.
 */

import { unreachable } from '../base/index.js';
import type { KvCall, KvResult } from './history.js';
import type { Model, StepResult } from './model.js';

/** The value of the key, or null while it is absent. */
export type KvState = string | null;

/** The register model of one key. */
export const kvModel: Model<KvState, KvCall, KvResult> = Object.freeze({
  init: (): KvState => null,
  step: stepKv,
  isReadOnly: (call: KvCall, result: KvResult | null): boolean =>
    call.kind === 'get' || (result?.kind === 'cas' && !result.ok),
  isBlindWrite: (call: KvCall): boolean => call.kind === 'put' || call.kind === 'delete',
  callKey: describeCall,
  hash: hashKvState,
  equal: (left: KvState, right: KvState): boolean => left === right,
  describeState: describeValue,
  describeOperation: describeKvOperation,
});

function stepKv(state: KvState, call: KvCall, result: KvResult | null): StepResult<KvState> {
  switch (call.kind) {
    case 'get': {
      const ok = result === null || (result.kind === 'get' && result.value === state);
      return { ok, nextState: state };
    }
    case 'put':
      return { ok: true, nextState: call.value };
    case 'delete':
      return { ok: true, nextState: null };
    case 'cas': {
      const matched = state === call.expected;
      // An unanswered cas still took effect exactly when it matched: the register is deterministic.
      const ok = result === null || (result.kind === 'cas' && result.ok === matched);
      return { ok, nextState: matched ? call.value : state };
    }
    default:
      return unreachable(call, 'unknown kv call');
  }
}

/** FNV-1a over the UTF-16 code units; absent hashes apart from every string, including "". */
function hashKvState(state: KvState): number {
  if (state === null) return 0x7f4a7c15;
  let hash = 0x811c9dc5;
  for (let index = 0; index < state.length; index++) {
    hash ^= state.charCodeAt(index);
    hash = Math.imul(hash, 0x01000193);
  }
  return hash | 0;
}

function describeValue(value: KvState): string {
  return value === null ? 'absent' : JSON.stringify(value);
}

function describeKvOperation(call: KvCall, result: KvResult | null): string {
  return describeCall(call) + (result === null ? ' → ?' : describeResult(result));
}

/** The call as text; also its key, as the text names every argument unambiguously. */
function describeCall(call: KvCall): string {
  switch (call.kind) {
    case 'get':
      return 'get()';
    case 'put':
      return `put(${JSON.stringify(call.value)})`;
    case 'delete':
      return 'delete()';
    case 'cas':
      return `cas(${describeValue(call.expected)}, ${JSON.stringify(call.value)})`;
    default:
      return unreachable(call, 'unknown kv call');
  }
}

function describeResult(result: KvResult): string {
  switch (result.kind) {
    case 'get':
      return ` → ${describeValue(result.value)}`;
    case 'cas':
      return ` → ${result.ok ? 'ok' : 'failed'}`;
    case 'put':
    case 'delete':
      return '';
    default:
      return unreachable(result, 'unknown kv result');
  }
}
