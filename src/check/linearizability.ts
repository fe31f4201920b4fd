/**
 * The search at the heart of the checker: Wing & Gong's backtracking (J. Wing, C. Gong, "Testing
 * and verifying concurrent objects", 1993) with Lowe's improvements (G. Lowe, "Testing for
 * linearizability", 2017): operations are linearized just in time from doubly linked lists that are
 * unlinked and relinked in LIFO order, and configurations already explored are memoized (see
 * memo-cache.ts). The search is model-agnostic and knows nothing of keys; the caller partitions by
 * key first (P-compositionality: A. Horn, D. Kroening, "Faster linearizability checking via
 * P-compositionality", 2015).
 *
 * A configuration is the set of operations linearized so far plus the model state. From it, an
 * operation may be linearized next if it was invoked no later than the earliest response among
 * the answered operations not yet linearized (equal times count as concurrent). An operation
 * without a response has no such response: it may take effect anywhere after its call, and once
 * every answered operation is linearized the search succeeds, the rest simply never taking effect.
 *
 * Four reductions keep the search small. Each only skips candidates when, if a linearization
 * exists at all, a shortest one goes through a candidate that is still tried, so none is lost:
 * - Reads first, and only one. If an answered read-only operation can be linearized now, some
 *   shortest linearization linearizes it now: moving a read earlier changes no state and breaks no
 *   real-time order, since everything that had to precede it already has. So the configuration
 *   stands or falls with that one child, and its other children are never tried.
 * - Unanswered operations last. They are tried after the answered ones, so the configurations
 *   visited first have few of them linearized and cover the later ones (see memo-cache.ts).
 * - One of twins. Of unanswered operations with equal calls (`Model.callKey`) only the earliest
 *   invoked is tried: wherever a later twin takes effect, the earliest could take effect instead.
 * - Only when observable. An unanswered operation is tried only if some candidate that reads the
 *   state (not a blind write, `Model.isBlindWrite`) could follow it. Otherwise what follows it in
 *   a linearization overwrites its effect, or nothing follows, and dropping it gives a shorter one.
 */

import { assert } from '../base/index.js';
import type { TimedOperation } from './history.js';
import { MemoCache, mix32 } from './memo-cache.js';
import type { Model } from './model.js';
import {
  buildSearchLists,
  phaseRead,
  phaseUnanswered,
  phaseWrite,
  type Phase,
  type SearchLists,
  type SearchOperation,
} from './search-lists.js';

/** Limits of one search. */
export interface SearchOptions {
  /** Units of work before giving up with `budget-exhausted` (see `SearchOutcome`). Positive. */
  readonly stepsMax: number;
}

/** How far a failed search got: the best evidence of where the history goes wrong. */
export interface PartialLinearization {
  /** Indices into the searched operations, in the order they took effect, on the deepest path. */
  readonly order: readonly number[];
  /** The operation whose response came before it, or anything else, could take effect next. */
  readonly blocked: number;
}

/**
 * What a search concluded. `steps` counts units of work, at most `stepsMax`: candidates considered
 * and memoized configurations compared against.
 */
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
  const search = new Search(model, buildSearchLists(model, operations));
  return search.run(options.stepsMax);
}

/** What became of one attempt to linearize an operation next. */
type Attempt = 'entered' | 'rejected' | 'covered';

/** The state of one backtracking search. */
class Search<State, Call, Result> {
  readonly #model: Model<State, Call, Result>;
  readonly #lists: SearchLists<Call, Result>;
  readonly #memo: MemoCache<State>;
  /** Bit `slot` is set while that answered operation is linearized. */
  readonly #answered: Uint32Array;
  /** Zobrist hash of `#answered`: the xor of `mix32(slot + zobristSalt)` over its set bits. */
  #answeredHash = 0;
  /** Bit `slot` is set while that unanswered operation is linearized. */
  readonly #unanswered: Uint32Array;
  #state: State;
  /** The linearized operations, oldest first, with the model state before each. */
  readonly #stackOperations: SearchOperation<Call, Result>[] = [];
  readonly #stackStates: State[] = [];
  /** Candidates examined by `#observable`: search work that counts against the budget. */
  #lookaheadSteps = 0;
  #deepestLength = -1;
  #deepest: PartialLinearization | null = null;

  constructor(model: Model<State, Call, Result>, lists: SearchLists<Call, Result>) {
    this.#model = model;
    this.#lists = lists;
    const answeredWordCount = Math.max(1, Math.ceil(lists.answeredCount / 32));
    const unansweredWordCount = Math.ceil(lists.unansweredCount / 32);
    this.#answered = new Uint32Array(answeredWordCount);
    this.#unanswered = new Uint32Array(unansweredWordCount);
    this.#memo = new MemoCache({
      answeredWordCount,
      unansweredWordCount,
      stateHash: model.hash,
      stateEqual: model.equal,
    });
    this.#state = model.init();
  }

  /** Runs until every answered operation is linearized, or it is clear they cannot all be. */
  run(stepsMax: number): SearchOutcome {
    const { calls, returns } = this.#lists;
    let phase: Phase = phaseRead;
    let node = calls[phase].next;
    let candidateSteps = 0;
    this.#noteDepth();
    // The initial configuration covers those an unanswered no-op leads to.
    this.#memo.visit(this.#answered, this.#answeredHash, this.#unanswered, this.#state);
    for (let frontier = returns.next; frontier !== null; frontier = returns.next) {
      if (this.#steps(candidateSteps) >= stepsMax) {
        return { kind: 'budget-exhausted', steps: stepsMax };
      }
      candidateSteps++;
      if (node !== null && node.item.invokedAt <= frontier.item.respondedAt) {
        const attempt = this.#tryLinearize(node.item, frontier.item.respondedAt);
        if (attempt === 'entered') {
          phase = phaseRead;
          node = calls[phase].next;
        } else if (attempt === 'covered' && phase === phaseRead) {
          // This configuration stands or falls with that read, which is covered: it falls.
          phase = phaseUnanswered;
          node = null;
        } else {
          node = node.next;
        }
      } else if (phase !== phaseUnanswered) {
        phase = phase === phaseRead ? phaseWrite : phaseUnanswered;
        node = calls[phase].next;
      } else {
        // Every candidate from this configuration failed.
        this.#noteBlocked(frontier.item);
        const undone = this.#undoLatest();
        if (undone === null) {
          assert(this.#deepest !== null, 'a failed search recorded where it got stuck');
          const steps = Math.min(stepsMax, this.#steps(candidateSteps));
          return { kind: 'not-linearizable', steps, deepest: this.#deepest };
        }
        // The siblings of a read need no trial: its configuration stood or fell with it.
        const afterRead = undone.phase === phaseRead;
        phase = afterRead ? phaseUnanswered : undone.phase;
        node = afterRead ? null : undone.callNode.next;
      }
    }
    return { kind: 'linearizable', steps: Math.min(stepsMax, this.#steps(candidateSteps)) };
  }

  /** All work so far: the loop's own steps plus lookahead and memo comparisons. */
  #steps(candidateSteps: number): number {
    return candidateSteps + this.#lookaheadSteps + this.#memo.comparisons;
  }

  /**
   * Linearizes `operation` next, unless the model rejects it, a reduction skips it, or a visited
   * configuration covers the one it leads to. `frontier` is the earliest response still pending.
   */
  #tryLinearize(operation: SearchOperation<Call, Result>, frontier: number): Attempt {
    if (operation.twinNode !== null && !operation.twinNode.isFirst) return 'rejected';
    const step = this.#model.step(this.#state, operation.operation.call, operation.result);
    if (!step.ok) return 'rejected';
    const unanswered = operation.phase === phaseUnanswered;
    if (unanswered && !this.#observable(operation, step.nextState, frontier)) return 'rejected';
    this.#flip(operation);
    if (!this.#memo.visit(this.#answered, this.#answeredHash, this.#unanswered, step.nextState)) {
      this.#flip(operation);
      return 'covered';
    }
    this.#stackOperations.push(operation);
    this.#stackStates.push(this.#state);
    this.#state = step.nextState;
    operation.callNode.unlink();
    operation.returnNode?.unlink();
    operation.twinNode?.unlink();
    this.#noteDepth();
    return 'entered';
  }

  /**
   * Whether some other candidate that reads the state could follow `unanswered` once it has taken
   * effect, leaving `nextState`. `frontier` is the earliest response still pending.
   */
  #observable(
    unanswered: SearchOperation<Call, Result>,
    nextState: State,
    frontier: number,
  ): boolean {
    for (const list of this.#lists.calls) {
      for (let node = list.next; node !== null; node = node.next) {
        const candidate = node.item;
        if (candidate.invokedAt > frontier) break;
        if (candidate === unanswered || candidate.isBlindWrite) continue;
        this.#lookaheadSteps++;
        if (this.#model.step(nextState, candidate.operation.call, candidate.result).ok) return true;
      }
    }
    return false;
  }

  /** Takes back the most recent linearization; returns its operation, or null if there was none. */
  #undoLatest(): SearchOperation<Call, Result> | null {
    const operation = this.#stackOperations.pop();
    if (operation === undefined) return null;
    const state = this.#stackStates.pop();
    assert(state !== undefined && this.#stackStates.length === this.#stackOperations.length);
    this.#state = state;
    this.#flip(operation);
    // Each list is relinked in the reverse order of unlinking, as dancing links require.
    operation.twinNode?.relink();
    operation.returnNode?.relink();
    operation.callNode.relink();
    return operation;
  }

  #flip(operation: SearchOperation<Call, Result>): void {
    const slot = operation.slot;
    const unanswered = operation.phase === phaseUnanswered;
    const bits = unanswered ? this.#unanswered : this.#answered;
    const word = slot >>> 5;
    bits[word] = bits[word]! ^ (1 << (slot & 31));
    if (!unanswered) this.#answeredHash ^= mix32(slot + zobristSalt);
  }

  #noteDepth(): void {
    if (this.#stackOperations.length <= this.#deepestLength) return;
    this.#deepestLength = this.#stackOperations.length;
    this.#deepest = null;
  }

  /** The first dead end at the deepest point reached is the most telling one; keep it. */
  #noteBlocked(blocked: SearchOperation<Call, Result>): void {
    if (this.#deepest !== null || this.#stackOperations.length !== this.#deepestLength) return;
    const order = this.#stackOperations.map((operation) => operation.index);
    this.#deepest = { order, blocked: blocked.index };
  }
}
