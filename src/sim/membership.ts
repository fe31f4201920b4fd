/**
 * The cluster's membership as the simulator's operator sees it, and the operator's decisions: which
 * single-server change to propose next (add a learner, promote it, demote or remove a voter, add a
 * removed node back), which nodes to start when they are added, and which to shut down once their
 * removal commits. A removed node is stopped, like an etcd member that learns it was removed; one
 * added back starts with a wiped disk, the documented way to re-add a member.
 *
 * The configuration here follows the first apply of each conf-change entry anywhere, in log order;
 * the core itself ignores a change that would leave no voter, and so does this mirror.
 */

import type { SeededRandom } from '../base/index.js';
import type { ConfChange, NodeId } from '../raft/index.js';

/** What the operator does to a node after a membership change commits. */
export type LifecycleAction =
  /** Start a node that is not running and holds no useful disk (never started, or removed). */
  | { readonly kind: 'start-fresh'; readonly id: NodeId }
  /** Shut down a node removed from the cluster. */
  | { readonly kind: 'stop'; readonly id: NodeId };

/** Voters the operator keeps at most (and the fewest it removes down to, below). */
const votersMax = 5;
const votersMinToRemove = 3;

/** The operator's view of the membership. */
export class Membership {
  readonly #voters = new Set<NodeId>();
  readonly #learners = new Set<NodeId>();
  readonly #allIds: readonly NodeId[];
  /** Ids whose disk holds a past life: removed from the cluster, or never started. */
  readonly #outside = new Set<NodeId>();
  #actions: LifecycleAction[] = [];

  constructor(options: {
    readonly voterIds: readonly NodeId[];
    readonly learnerIds: readonly NodeId[];
    readonly spareIds: readonly NodeId[];
  }) {
    for (const id of options.voterIds) this.#voters.add(id);
    for (const id of options.learnerIds) this.#learners.add(id);
    for (const id of options.spareIds) this.#outside.add(id);
    this.#allIds = [...options.voterIds, ...options.learnerIds, ...options.spareIds].sort(
      (a, b) => a - b,
    );
  }

  /** Voters and learners, sorted. */
  memberIds(): NodeId[] {
    return [...this.#voters, ...this.#learners].sort((a, b) => a - b);
  }

  /** Voters, sorted. */
  voterIds(): NodeId[] {
    return [...this.#voters].sort((a, b) => a - b);
  }

  /** Whether `id` is a voter or learner. */
  isMember(id: NodeId): boolean {
    return this.#voters.has(id) || this.#learners.has(id);
  }

  /** Records the first apply of `change` and queues what the operator must do about it. */
  onApplied(change: ConfChange): void {
    const id = change.nodeId;
    const removesVoter = change.type === 'remove' || change.type === 'add-learner';
    // The core ignores a change that would leave no voter; so does this mirror.
    if (removesVoter && this.#voters.size === 1 && this.#voters.has(id)) return;
    switch (change.type) {
      case 'add-voter':
        this.#learners.delete(id);
        this.#voters.add(id);
        break;
      case 'add-learner':
        this.#voters.delete(id);
        this.#learners.add(id);
        break;
      case 'remove':
        this.#voters.delete(id);
        this.#learners.delete(id);
        this.#outside.add(id);
        this.#actions.push({ kind: 'stop', id });
        return;
    }
    if (this.#outside.delete(id)) this.#actions.push({ kind: 'start-fresh', id });
  }

  /** The actions queued since the last call, in order. */
  takeActions(): LifecycleAction[] {
    const actions = this.#actions;
    this.#actions = [];
    return actions;
  }

  /** A random valid change to propose, or null when none fits. */
  chooseChange(random: SeededRandom): ConfChange | null {
    const options: ConfChange[] = [];
    for (const id of this.#allIds) {
      if (this.#outside.has(id)) options.push({ type: 'add-learner', nodeId: id });
      if (this.#learners.has(id)) {
        options.push({ type: 'remove', nodeId: id });
        if (this.#voters.size < votersMax) options.push({ type: 'add-voter', nodeId: id });
      }
      if (this.#voters.has(id) && this.#voters.size >= votersMinToRemove) {
        options.push({ type: 'remove', nodeId: id }, { type: 'add-learner', nodeId: id });
      }
    }
    return options.length === 0 ? null : options[random.int(options.length)]!;
  }
}
