/**
 * The search at the heart of the checker: Wing & Gong's backtracking over a history's call and
 * return events (J. Wing, C. Gong, "Testing and verifying concurrent objects", 1993) with Lowe's
 * improvements (G. Lowe, "Testing for linearizability", 2017): operations are linearized just in
 * time, in a doubly linked event list that is unlinked and relinked in LIFO order, and configurations
 * already explored are memoized (see memo-cache.ts). The search is model-agnostic and knows nothing
 * of keys; the caller partitions by key first (P-compositionality, Horn & Kroening 2015).
 *
 * An operation without a response is given a response time of +∞: it has no return event, so it
 * never forces a backtrack and may be linearized anywhere after its call. Once every answered
 * operation is linearized the rest can be dropped (taking effect at the very end is invisible), so
 * the search succeeds at that point.
 */

import { assert } from '../base/index.js';
import { assertTimedOperation, type TimedOperation } from './history.js';
import { MemoCache, mix32 } from './memo-cache.js';
import type { Model } from './model.js';

/** Limits of one search. */
export interface SearchOptions {
  /** Event visits before giving up with `budget-exhausted`. A positive integer. */
  readonly stepsMax: number;
}

/** How far a failed search got: the best evidence of where the history goes wrong. */
export interface PartialLinearization {
  /** Indices into the searched operations, in the order they took effect, on the deepest path. */
  readonly order: readonly number[];
  /** The operation whose response came before it could take effect after `order`. */
  readonly blocked: number;
}

/** What a search concluded. `steps` counts event visits, at most `stepsMax`. */
export type SearchOutcome =
  | { readonly kind: 'linearizable'; readonly steps: number }
  | {
      readonly kind: 'not-linearizable';
      readonly steps: number;
      readonly deepest: PartialLinearization;
    }
  | { readonly kind: 'budget-exhausted'; readonly steps: number };

/** Offsets Zobrist keys so slot 0 does not hash to 0 (the mixer fixes 0). */
const zobristSalt = 0x9e3779b9;

/** The head of the event list, or one of its events. */
interface Link<Call, Result> {
  next: EventNode<Call, Result> | null;
}

/** A call or return event. A call knows its return (null when the operation has no response). */
class EventNode<Call, Result> implements Link<Call, Result> {
  prev: Link<Call, Result>;
  next: EventNode<Call, Result> | null = null;
  match: EventNode<Call, Result> | null = null;

  constructor(
    /** Index of the operation in the searched array. */
    readonly operation: number,
    /** The operation's bit in the linearized-set bitset. */
    readonly slot: number,
    readonly isCall: boolean,
    readonly call: Call,
    readonly result: Result | null,
    head: Link<Call, Result>,
  ) {
    this.prev = head;
  }
}

/**
 * Decides whether `operations` (all on one object) are linearizable with respect to `model`. Never
 * answers `linearizable` unless it found a linearization.
 */
export function searchLinearization<State, Call, Result>(
  model: Model<State, Call, Result>,
  operations: readonly TimedOperation<Call, Result>[],
  options: SearchOptions,
): SearchOutcome {
  assert(Number.isInteger(options.stepsMax) && options.stepsMax >= 1, 'stepsMax must be ≥ 1');
  const head: Link<Call, Result> = { next: null };
  const answered = buildEventList(model, operations, head);
  const search = new Search(model, head, answered.slotCount);
  return search.run(answered.count, options.stepsMax);
}

/**
 * Links the events of `operations` after `head` in time order. Calls precede returns at equal times,
 * which makes operations that touch the same instant concurrent. Unanswered read-only operations are
 * left out: they can neither constrain nor explain anything.
 */
function buildEventList<State, Call, Result>(
  model: Model<State, Call, Result>,
  operations: readonly TimedOperation<Call, Result>[],
  head: Link<Call, Result>,
): { count: number; slotCount: number } {
  const events: { time: number; node: EventNode<Call, Result> }[] = [];
  let slotCount = 0;
  let count = 0;
  operations.forEach((operation, index) => {
    assertTimedOperation(operation);
    const response = operation.response;
    if (response === null && model.isReadOnly(operation.call, null)) return;
    const slot = slotCount++;
    const result = response === null ? null : response.result;
    const call = new EventNode(index, slot, true, operation.call, result, head);
    events.push({ time: operation.invokedAt, node: call });
    if (response === null) return;
    count++;
    call.match = new EventNode(index, slot, false, operation.call, result, head);
    call.match.match = call;
    events.push({ time: response.respondedAt, node: call.match });
  });
  events.sort(
    (left, right) =>
      left.time - right.time ||
      Number(right.node.isCall) - Number(left.node.isCall) ||
      left.node.slot - right.node.slot,
  );
  let previous = head;
  for (const { node } of events) {
    node.prev = previous;
    previous.next = node;
    previous = node;
  }
  assert(events.length === slotCount + count);
  return { count, slotCount };
}

/** The state of one backtracking search. */
class Search<State, Call, Result> {
  readonly #model: Model<State, Call, Result>;
  readonly #head: Link<Call, Result>;
  readonly #memo: MemoCache<State>;
  /** Bit `slot` is set while that operation is linearized. */
  readonly #linearized: Uint32Array;
  /** Zobrist hash of `#linearized`: the xor of `mix32(slot + zobristSalt)` over its set bits. */
  #linearizedHash = 0;
  #state: State;
  /** The linearized calls, oldest first, with the model state before each. */
  readonly #stackCalls: EventNode<Call, Result>[] = [];
  readonly #stackStates: State[] = [];
  #deepestLength = -1;
  #deepest: PartialLinearization | null = null;

  constructor(model: Model<State, Call, Result>, head: Link<Call, Result>, slotCount: number) {
    this.#model = model;
    this.#head = head;
    const wordCount = Math.max(1, Math.ceil(slotCount / 32));
    this.#linearized = new Uint32Array(wordCount);
    this.#memo = new MemoCache({ wordCount, stateHash: model.hash, stateEqual: model.equal });
    this.#state = model.init();
  }

  /** Runs until every one of the `answeredCount` answered operations is linearized, or it cannot be. */
  run(answeredCount: number, stepsMax: number): SearchOutcome {
    let unlinearized = answeredCount;
    let entry = this.#head.next;
    let steps = 0;
    this.#noteDepth();
    while (unlinearized > 0) {
      if (steps === stepsMax) return { kind: 'budget-exhausted', steps };
      steps++;
      // Invariant: an answered operation is unlinearized, so its return event lies ahead.
      assert(entry !== null, 'ran off the event list with operations unlinearized');
      if (entry.isCall) {
        if (this.#tryLinearize(entry)) {
          if (entry.match !== null) unlinearized--;
          entry = this.#head.next;
        } else {
          entry = entry.next;
        }
        continue;
      }
      // A response arrived for an operation not yet linearized: undo the latest choice.
      this.#noteBlocked(entry);
      const undone = this.#undoLatest();
      if (undone === null) {
        assert(this.#deepest !== null);
        return { kind: 'not-linearizable', steps, deepest: this.#deepest };
      }
      if (undone.match !== null) unlinearized++;
      entry = undone.next;
    }
    assert(unlinearized === 0 && steps <= stepsMax);
    return { kind: 'linearizable', steps };
  }

  /** Linearizes `call` next if the model allows it and the configuration is new. */
  #tryLinearize(call: EventNode<Call, Result>): boolean {
    const { ok, nextState } = this.#model.step(this.#state, call.call, call.result);
    if (!ok) return false;
    this.#flip(call.slot);
    if (!this.#memo.insertIfAbsent(this.#linearized, this.#linearizedHash, nextState)) {
      this.#flip(call.slot);
      return false;
    }
    this.#stackCalls.push(call);
    this.#stackStates.push(this.#state);
    this.#state = nextState;
    unlink(call);
    if (call.match !== null) unlink(call.match);
    this.#noteDepth();
    return true;
  }

  /** Takes back the most recent linearization; returns its call, or null if there was none. */
  #undoLatest(): EventNode<Call, Result> | null {
    const call = this.#stackCalls.pop();
    if (call === undefined) return null;
    const state = this.#stackStates.pop();
    assert(state !== undefined && this.#stackStates.length === this.#stackCalls.length);
    this.#state = state;
    this.#flip(call.slot);
    // Relink in the reverse order of unlinking, as dancing links require.
    if (call.match !== null) relink(call.match);
    relink(call);
    return call;
  }

  #flip(slot: number): void {
    const word = slot >>> 5;
    this.#linearized[word] = this.#linearized[word]! ^ (1 << (slot & 31));
    this.#linearizedHash ^= mix32(slot + zobristSalt);
  }

  #noteDepth(): void {
    if (this.#stackCalls.length <= this.#deepestLength) return;
    this.#deepestLength = this.#stackCalls.length;
    this.#deepest = null;
  }

  /** The first block at the deepest point reached is the most telling one; keep it. */
  #noteBlocked(returnEvent: EventNode<Call, Result>): void {
    if (this.#deepest !== null || this.#stackCalls.length !== this.#deepestLength) return;
    const order = this.#stackCalls.map((call) => call.operation);
    this.#deepest = { order, blocked: returnEvent.operation };
  }
}

function unlink<Call, Result>(node: EventNode<Call, Result>): void {
  node.prev.next = node.next;
  if (node.next !== null) node.next.prev = node.prev;
}

function relink<Call, Result>(node: EventNode<Call, Result>): void {
  node.prev.next = node;
  if (node.next !== null) node.next.prev = node;
}
