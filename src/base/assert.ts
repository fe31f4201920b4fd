/**
 * Assertions for bugs, on in production. A failed assertion means the program's own invariants are
 * broken: it throws `AssertionFailure`, which no code may catch and continue from. A replica that
 * trips one crashes and recovers from its durable state.
 */

/** Thrown only by `assert` and `unreachable`; never caught to continue. */
export class AssertionFailure extends Error {
  override name = 'AssertionFailure';
}

/** Throws `AssertionFailure` with `message` unless `condition` holds. */
export function assert(condition: unknown, message = 'assertion failed'): asserts condition {
  if (!condition) throw new AssertionFailure(message);
}

/** Marks a branch the type system proves impossible, e.g. the default of an exhaustive switch. */
export function unreachable(value: never, message = 'unreachable'): never {
  throw new AssertionFailure(`${message}: ${String(value)}`);
}
