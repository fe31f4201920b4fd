/**
 * The lists the search walks, built once per search. Every list is doubly linked and in time
 * order; the search unlinks an operation's nodes when it linearizes the operation and relinks them,
 * in the reverse order, when it takes that back (Knuth's dancing links), so no list is ever copied.
 */

import { assert } from '../base/index.js';
import { assertTimedOperation, type TimedOperation } from './history.js';
import type { Model } from './model.js';

/** Answered read-only operations: tried first, and alone when one fits (see linearizability.ts). */
export const phaseRead = 0;
/** Answered operations that may change the state. */
export const phaseWrite = 1;
/** Unanswered operations: tried last. */
export const phaseUnanswered = 2;
/** Which of the candidate lists an operation is tried from. */
export type Phase = typeof phaseRead | typeof phaseWrite | typeof phaseUnanswered;

/** A list head, or a node of a list. */
export interface Link<Item> {
  next: ListNode<Item> | null;
}

/** A node of a list, holding `item`. */
export class ListNode<Item> implements Link<Item> {
  prev: Link<Item>;
  next: ListNode<Item> | null = null;

  constructor(readonly item: Item) {
    this.prev = { next: null }; // A detached head, until the node is linked into a list.
  }

  /** Whether the node is first in its list (nothing but the head before it). */
  get isFirst(): boolean {
    return !(this.prev instanceof ListNode);
  }

  unlink(): void {
    this.prev.next = this.next;
    if (this.next !== null) this.next.prev = this.prev;
  }

  relink(): void {
    this.prev.next = this;
    if (this.next !== null) this.next.prev = this;
  }
}

/** The head of a list of operations. */
export type OperationList<Call, Result> = Link<SearchOperation<Call, Result>>;

/** An operation as the search holds it. */
export class SearchOperation<Call, Result> {
  /** In the candidate list of `phase`, ordered by invocation. */
  readonly callNode: ListNode<SearchOperation<Call, Result>>;
  /** In the list of answered operations ordered by response; null when unanswered. */
  readonly returnNode: ListNode<SearchOperation<Call, Result>> | null;
  /** In the list of unanswered operations with the same call key; null when answered. */
  readonly twinNode: ListNode<SearchOperation<Call, Result>> | null;
  /** The response time; +∞ when unanswered. */
  readonly respondedAt: number;

  constructor(
    /** Index in the searched array. */
    readonly index: number,
    readonly operation: TimedOperation<Call, Result>,
    readonly phase: Phase,
    /** The operation's bit: in the unanswered bitset if unanswered, else in the answered one. */
    readonly slot: number,
    /** Whether the call overwrites the state without reading it (`Model.isBlindWrite`). */
    readonly isBlindWrite: boolean,
  ) {
    const answered = operation.response !== null;
    this.callNode = new ListNode(this);
    this.returnNode = answered ? new ListNode(this) : null;
    this.twinNode = answered ? null : new ListNode(this);
    this.respondedAt = operation.response === null ? Infinity : operation.response.respondedAt;
  }

  get invokedAt(): number {
    return this.operation.invokedAt;
  }

  get result(): Result | null {
    return this.operation.response === null ? null : this.operation.response.result;
  }
}

/** Everything a search walks. */
export interface SearchLists<Call, Result> {
  /** Per phase, the operations not yet linearized, by invocation. */
  readonly calls: readonly [
    OperationList<Call, Result>,
    OperationList<Call, Result>,
    OperationList<Call, Result>,
  ];
  /** Answered operations not yet linearized, by response: the head bounds the candidates. */
  readonly returns: OperationList<Call, Result>;
  readonly answeredCount: number;
  readonly unansweredCount: number;
}

/**
 * Builds the lists for `operations`. Unanswered read-only operations are left out: they can neither
 * constrain nor explain anything.
 */
export function buildSearchLists<State, Call, Result>(
  model: Model<State, Call, Result>,
  operations: readonly TimedOperation<Call, Result>[],
): SearchLists<Call, Result> {
  type Operation = SearchOperation<Call, Result>;
  const searched: Operation[] = [];
  let answeredCount = 0;
  let unansweredCount = 0;
  operations.forEach((operation, index) => {
    assertTimedOperation(operation);
    const phase = phaseOf(model, operation);
    if (phase === null) return;
    const slot = phase === phaseUnanswered ? unansweredCount++ : answeredCount++;
    const isBlindWrite = model.isBlindWrite(operation.call);
    searched.push(new SearchOperation(index, operation, phase, slot, isBlindWrite));
  });
  const byInvocation = [...searched].sort(
    (left, right) => left.invokedAt - right.invokedAt || left.index - right.index,
  );
  const calls = [phaseRead, phaseWrite, phaseUnanswered].map((phase) =>
    listOf(byInvocation.filter((operation) => operation.phase === phase).map((op) => op.callNode)),
  );
  const twins = new Map<string, ListNode<Operation>[]>();
  for (const operation of byInvocation) {
    if (operation.twinNode === null) continue;
    const key = model.callKey(operation.operation.call);
    const nodes = twins.get(key);
    if (nodes === undefined) twins.set(key, [operation.twinNode]);
    else nodes.push(operation.twinNode);
  }
  for (const nodes of twins.values()) listOf(nodes);
  const byResponse = searched.flatMap((operation) => operation.returnNode ?? []);
  byResponse.sort(
    (left, right) =>
      left.item.respondedAt - right.item.respondedAt || left.item.index - right.item.index,
  );
  const returns = listOf(byResponse);
  assert(calls.length === 3 && byResponse.length === answeredCount);
  return { calls: [calls[0]!, calls[1]!, calls[2]!], returns, answeredCount, unansweredCount };
}

/** The phase `operation` is tried in, or null if it cannot matter. */
function phaseOf<State, Call, Result>(
  model: Model<State, Call, Result>,
  operation: TimedOperation<Call, Result>,
): Phase | null {
  const response = operation.response;
  if (response === null) return model.isReadOnly(operation.call, null) ? null : phaseUnanswered;
  return model.isReadOnly(operation.call, response.result) ? phaseRead : phaseWrite;
}

/** Links `nodes`, in order, after a new head. */
function listOf<Item>(nodes: readonly ListNode<Item>[]): Link<Item> {
  const head: Link<Item> = { next: null };
  let previous = head;
  for (const node of nodes) {
    node.prev = previous;
    previous.next = node;
    previous = node;
  }
  return head;
}
