/**
 * The history a linearizability check consumes: what each client asked for, when, and what (if
 * anything) it heard back. Plain data with no tie to the simulator, so a test against real
 * processes can record the same shape. Times are any monotonic numbers (simulation steps,
 * nanoseconds): only their order matters, and equal times count as concurrent because nothing
 * orders them.
 */

import { assert } from '../base/index.js';

/**
 * The shape every checked operation shares, whatever the model: a call, when it was invoked, and
 * its response if the client received one. The checker core works on this alone.
 */
export interface TimedOperation<Call, Result> {
  readonly call: Call;
  /** When the client sent the request. Finite. */
  readonly invokedAt: number;
  /**
   * What the client heard back, or null when it never learned the outcome (it timed out, lost the
   * connection or crashed). Such an operation may take effect at any point after `invokedAt`, or
   * never.
   */
  readonly response: TimedResponse<Result> | null;
}

/** A response received by the client. */
export interface TimedResponse<Result> {
  /** When the client received the response. Finite and ≥ the operation's `invokedAt`. */
  readonly respondedAt: number;
  readonly result: Result;
}

/** A request to the key-value register named by the operation's key. Values are strings. */
export type KvCall =
  /** Reads the value. */
  | { readonly kind: 'get' }
  /** Sets the value. */
  | { readonly kind: 'put'; readonly value: string }
  /** Sets the value to `value` if it currently equals `expected`; null expects the key absent. */
  | { readonly kind: 'cas'; readonly expected: string | null; readonly value: string }
  /** Makes the key absent. */
  | { readonly kind: 'delete' };

/** The answer to a `KvCall`; its `kind` matches the call's. */
export type KvResult =
  /** The value read; null when the key was absent. */
  | { readonly kind: 'get'; readonly value: string | null }
  | { readonly kind: 'put' }
  /** Whether the compare matched and the value was set. */
  | { readonly kind: 'cas'; readonly ok: boolean }
  | { readonly kind: 'delete' };

/** The kinds of key-value call. */
export type KvCallKind = KvCall['kind'];

/** One key-value operation of one client, as recorded by the test harness. */
export interface Operation extends TimedOperation<KvCall, KvResult> {
  /** Who issued it; only used to label the operation in reports. */
  readonly clientId: number;
  /** The key the operation touches. Operations on different keys never constrain each other. */
  readonly key: string;
}

/**
 * Asserts that `operation` is well formed: finite times, a response no earlier than the call, and a
 * result of the call's kind. A malformed history is a bug in whatever recorded it.
 */
export function assertTimedOperation<Call, Result>(operation: TimedOperation<Call, Result>): void {
  assert(Number.isFinite(operation.invokedAt), `invokedAt must be finite: ${operation.invokedAt}`);
  const response = operation.response;
  if (response === null) return;
  const respondedAt = response.respondedAt;
  assert(Number.isFinite(respondedAt), `respondedAt must be finite: ${respondedAt}`);
  assert(
    response.respondedAt >= operation.invokedAt,
    `response at ${response.respondedAt} precedes invocation at ${operation.invokedAt}`,
  );
}

/** Asserts that `operation` is a well-formed key-value operation (see `assertTimedOperation`). */
export function assertOperation(operation: Operation): void {
  assertTimedOperation(operation);
  assert(typeof operation.key === 'string', 'key must be a string');
  const call = operation.call;
  if (call.kind === 'put' || call.kind === 'cas') {
    assert(typeof call.value === 'string', `${call.kind} value must be a string`);
  }
  if (call.kind === 'cas') {
    assert(call.expected === null || typeof call.expected === 'string', 'bad cas expected value');
  }
  const result = operation.response?.result;
  if (result === undefined) return;
  assert(result.kind === call.kind, `result of kind ${result.kind} answers a ${call.kind} call`);
  if (result.kind === 'get') {
    assert(result.value === null || typeof result.value === 'string', 'bad get result value');
  }
}

/**
 * Splits a history into one sub-history per key, each in the order of `history`. Keys come out
 * sorted so that the first failing key reported is the same from run to run.
 */
export function partitionByKey(history: readonly Operation[]): Map<string, Operation[]> {
  const byKey = new Map<string, Operation[]>();
  for (const operation of history) {
    const operations = byKey.get(operation.key);
    if (operations === undefined) byKey.set(operation.key, [operation]);
    else operations.push(operation);
  }
  const keys = [...byKey.keys()].sort();
  const sorted = new Map<string, Operation[]>();
  for (const key of keys) sorted.set(key, byKey.get(key)!);
  assert(sorted.size === byKey.size);
  return sorted;
}

/**
 * The history as it stood at time `cutAt`: the operations invoked at or before it, with responses
 * received after it removed (those operations were still running). Linearizability is closed under
 * taking such prefixes, so a non-linearizable prefix proves the whole history non-linearizable.
 */
export function prefixAt<Op extends TimedOperation<unknown, unknown>>(
  operations: readonly Op[],
  cutAt: number,
): Op[] {
  const prefix: Op[] = [];
  for (const operation of operations) {
    if (operation.invokedAt > cutAt) continue;
    const response = operation.response;
    if (response === null || response.respondedAt <= cutAt) prefix.push(operation);
    else prefix.push({ ...operation, response: null });
  }
  assert(prefix.length <= operations.length);
  return prefix;
}
