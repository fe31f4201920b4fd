/**
 * Step 2 of the Ready contract (src/raft/ready.ts) for a member: what of a Ready reaches the Raft
 * log, and when it must be durable.
 *
 * A Ready that only raises the commit index is not written at all (etcd's `MustSync`): the commit
 * index is volatile state in Raft, which a restarted member relearns from the leader, so it waits
 * in memory for the next write that must be durable anyway (new entries, a changed term or vote, a
 * snapshot) and rides along with it. Before this, every proposal cost the leader two fsyncs: one
 * for its entries and one for the commit that followed them.
 *
 * What a crash then loses is a commit index below what the state machine applied. The member
 * copes: the core restarts with `applied` at the stored snapshot and raises its commit to it
 * (`RaftLog.appliedTo`), the driver skips the entries a durable state machine already holds, and
 * a snapshot taken above the persisted commit is still a committed prefix of the log.
 */

import type { HardState, Ready } from '../../raft/index.js';
import type { PersistRequest, RaftLogStore } from '../../storage/index.js';
import type { NodeTimings } from './raft-node-options.js';

export class ReadyPersister {
  readonly #store: RaftLogStore;
  readonly #timings: NodeTimings | undefined;
  /** The latest hard state not yet written: it differs from the stored one in commit only. */
  #unwritten: HardState | null = null;

  constructor(store: RaftLogStore, timings: NodeTimings | undefined) {
    this.#store = store;
    this.#timings = timings;
  }

  /** Persists what `ready` must have on disk before its messages leave; resolves once durable. */
  async persist(ready: Ready): Promise<void> {
    if (!ready.mustSync && ready.snapshot === null) {
      if (ready.hardState !== null) this.#unwritten = ready.hardState;
      return;
    }
    const { snapshot, entries } = ready;
    await this.#write({ snapshot, entries, hardState: ready.hardState ?? this.#unwritten });
  }

  /** Writes the commit index held back, if any (a clean stop restarts from where it applied). */
  async flush(): Promise<void> {
    if (this.#unwritten === null) return;
    await this.#write({ snapshot: null, entries: [], hardState: this.#unwritten });
  }

  async #write(request: PersistRequest): Promise<void> {
    this.#unwritten = null;
    const startedMs = performance.now();
    await this.#store.persist(request);
    this.#timings?.persisted((performance.now() - startedMs) / 1000);
  }
}
