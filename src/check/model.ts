/**
 * The sequential specification a history is checked against. The checker knows nothing about keys
 * or values: any deterministic object with these operations can be plugged in.
 */

/** The outcome of applying one operation to a model state. */
export interface StepResult<State> {
  /** Whether the sequential object could have produced the recorded result from this state. */
  readonly ok: boolean;
  /** The state after the operation; meaningful only when `ok`. */
  readonly nextState: State;
}

/**
 * A deterministic sequential object. `State` values are immutable: `step` returns a new state and
 * never changes the one it was given, because the search keeps earlier states to backtrack to.
 */
export interface Model<State, Call, Result> {
  /** The state before any operation. */
  init(): State;
  /**
   * Applies `call` to `state`. `result` is what the client heard, or null when it heard nothing;
   * with a null result the step must be ok, since determinism leaves exactly one possible outcome.
   */
  step(state: State, call: Call, result: Result | null): StepResult<State>;
  /**
   * True only if, from every state where the step is ok, this call with this result leaves the
   * state unchanged. Such operations are dropped when they have no response (they carry no
   * information), linearized as soon as they fit, and removed when shrinking a counterexample
   * (removal cannot hide a linearization).
   */
  isReadOnly(call: Call, result: Result | null): boolean;
  /**
   * True only if the call is ok from every state, whatever its result, and leads to the same state
   * whatever the state before it: it overwrites without reading. The search skips an unanswered
   * operation that only such writes could follow, and shrinking drops what such a write overwrote.
   */
  isBlindWrite(call: Call): boolean;
  /**
   * A key for `call`: calls with equal keys must have equal effects from every state. Unanswered
   * operations with equal keys are interchangeable, so the search tries only one of them.
   */
  callKey(call: Call): string;
  /** A 32-bit hash of `state`; equal states must hash equal. */
  hash(state: State): number;
  /** Whether two states are the same. */
  equal(left: State, right: State): boolean;
  /** The state for people, e.g. in a failure reason. */
  describeState(state: State): string;
  /** The operation for people, e.g. `cas("a", "b") → failed`; a null result renders as unknown. */
  describeOperation(call: Call, result: Result | null): string;
}
