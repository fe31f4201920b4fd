/**
 * Raft's safety properties (paper figure 3, thesis §3.6), checked as the run goes rather than at
 * the end, so a violation names the step where it first became visible. Every check is incremental:
 * the driver reports each leader election, durable write, apply, crash and restart, and the checker
 * compares it with global records kept since the start of the run (including nodes that have since
 * crashed or been removed).
 *
 * - Election safety: at most one leader per term.
 * - Log matching: two durable entries with the same index and term hold the same command and follow
 *   an entry of the same term (which, by induction, makes the logs identical up to there).
 * - Leader completeness: a new leader of term L holds every entry known committed in a term < L.
 * - State machine safety: no two nodes apply different entries at one index, and their state
 *   machines agree after applying it.
 * - Commit durability: when an entry is first applied (so it is committed), no voter whose
 *   durable log lacks it is at least as up to date (§5.4.1) as a majority of the voters' durable
 *   logs. Such a voter could win an election and overwrite the entry; the proof of leader
 *   completeness (paper §5.4.3) shows that in correct Raft the majority that stores the entry, with
 *   an entry of the committing leader's term, refuses it. This catches a commit that is not
 *   durable on a quorum the moment it happens, without waiting for the faults that would lose it.
 * - Vote safety: a node's durable vote never changes within a term, and its durable term never
 *   decreases (across crashes).
 * - Commit monotonicity: a live node's commit index never goes back.
 * - Durability: after a restart, a node's disk still holds every entry it had applied, or a
 *   snapshot covering them.
 */

import type { Entry, HardState, NodeId, SnapshotMetadata, Storage } from '../raft/index.js';
import { hashBytes } from './trace.js';

/** Violations recorded at most per run; one bug tends to cascade into many. */
const violationsMax = 20;

/** Log keys pack (index, term); terms stay far below this in any run. */
const termBase = 1 << 20;

/** The global record of one applied index. */
interface AppliedRecord {
  readonly term: number;
  readonly fingerprint: number;
  readonly stateHash: number;
  /**
   * An upper bound on the term in which the entry committed: the lowest current term of any node
   * when it applied the entry (a node learns a commit index only from a leader of its term or
   * older).
   */
  committedTermBound: number;
}

/** A voter's durable log, for the commit durability check. */
export interface VoterDisk {
  readonly id: NodeId;
  readonly storage: Storage;
}

/** A node that just became leader. */
export interface NewLeader {
  readonly id: NodeId;
  readonly term: number;
  /** The term at `index` of its whole log (durable and not yet persisted); null where none. */
  readonly termAt: (index: number) => number | null;
  /** Its durable snapshot. */
  readonly snapshot: SnapshotMetadata;
}

/** One entry applied by one node. */
export interface Apply {
  readonly id: NodeId;
  readonly entry: Entry;
  /** The node's current term when it applied the entry. */
  readonly nodeTerm: number;
  /** The hash of its state machine after applying the entry. */
  readonly stateHash: number;
}

/** A snapshot installed into a node's state machine. */
export interface SnapshotInstall {
  readonly id: NodeId;
  readonly metadata: SnapshotMetadata;
  /** The hash of its state machine after installing the snapshot. */
  readonly stateHash: number;
}

/** Records and checks the safety properties of one run. */
export class SafetyChecker {
  /** The step events are attributed to. */
  step = 0;
  readonly violations: string[] = [];
  /** Term → the node that led it. */
  readonly #leaders = new Map<number, NodeId>();
  /** (index, term) of each durable entry → its fingerprint and the term of the entry before it. */
  readonly #durableEntries = new Map<number, { fingerprint: number; previousTerm: number }>();
  /** Index → what was applied there; index 0 is unused. */
  readonly #applied: (AppliedRecord | undefined)[] = [];
  #appliedMax = 0;
  /** Per node: the commit index of its current incarnation (reset on crash). */
  readonly #liveCommit = new Map<NodeId, number>();
  /** Per node: the last hard state written to its disk (kept when the disk is wiped). */
  readonly #durableHardState = new Map<NodeId, HardState>();
  /** Per crashed node: the index it had applied when it crashed. */
  readonly #appliedAtCrash = new Map<NodeId, number>();
  /** The disks of the current voters (crashed ones included). */
  readonly #voterDisks: () => readonly VoterDisk[];

  constructor(options: { readonly voterDisks: () => readonly VoterDisk[] }) {
    this.#voterDisks = options.voterDisks;
  }

  /** The highest index applied by any node. */
  get appliedMax(): number {
    return this.#appliedMax;
  }

  /** The term of the entry applied at `index`, if any node applied it. */
  appliedTerm(index: number): number | undefined {
    return this.#applied[index]?.term;
  }

  /** A node became leader: checks election safety and leader completeness. */
  onBecameLeader(leader: NewLeader): void {
    const { id, term, termAt, snapshot } = leader;
    const previous = this.#leaders.get(term);
    if (previous !== undefined && previous !== id) {
      this.#violate(
        'election safety',
        `nodes ${previous} and ${id} both became leader of term ${term}`,
      );
    }
    this.#leaders.set(term, id);
    if (
      snapshot.index > 0 &&
      snapshot.index <= this.#appliedMax &&
      this.#applied[snapshot.index]!.term !== snapshot.term
    ) {
      this.#violate(
        'leader completeness',
        `leader ${id} of term ${term} has snapshot ${snapshot.index}/${snapshot.term}, ` +
          `applied was term ${this.#applied[snapshot.index]!.term}`,
      );
    }
    for (let index = snapshot.index + 1; index <= this.#appliedMax; index++) {
      const record = this.#applied[index]!;
      if (record.committedTermBound >= term) continue;
      const held = termAt(index);
      if (held !== record.term) {
        const holding = held === null ? 'no entry' : `term ${held}`;
        this.#violate(
          'leader completeness',
          `leader ${id} of term ${term} holds ${holding} at index ${index}, but the entry of ` +
            `term ${record.term} there committed by term ${record.committedTermBound}`,
        );
        return;
      }
    }
  }

  /** A Ready of node `id` reported `hardState` (in memory, not yet durable). */
  onHardState(id: NodeId, hardState: HardState): void {
    const commit = this.#liveCommit.get(id) ?? 0;
    if (hardState.commit < commit) {
      this.#violate(
        'commit monotonicity',
        `node ${id} commit went back from ${commit} to ${hardState.commit}`,
      );
    }
    this.#liveCommit.set(id, hardState.commit);
  }

  /** Node `id` wrote `entries` and `hardState` to `storage` (already written). */
  onPersist(
    id: NodeId,
    storage: Storage,
    entries: readonly Entry[],
    hardState: HardState | null,
  ): void {
    const firstIndex = storage.firstIndex();
    for (const entry of entries) {
      if (entry.index < firstIndex) continue;
      this.#checkLogMatching(id, entry, storage.term(entry.index - 1));
    }
    if (hardState !== null) this.#checkVote(id, hardState);
  }

  #checkLogMatching(id: NodeId, entry: Entry, previousTerm: number): void {
    if (entry.term < previousTerm) {
      this.#violate(
        'log matching',
        `node ${id} wrote entry ${entry.index} of term ${entry.term} after one of term ` +
          `${previousTerm}`,
      );
    }
    const key = logKey(entry.index, entry.term);
    const fingerprint = entryFingerprint(entry);
    const known = this.#durableEntries.get(key);
    if (known === undefined) {
      this.#durableEntries.set(key, { fingerprint, previousTerm });
    } else if (known.fingerprint !== fingerprint || known.previousTerm !== previousTerm) {
      this.#violate(
        'log matching',
        `node ${id} wrote entry ${entry.index}/${entry.term} ` +
          (known.fingerprint !== fingerprint
            ? 'with a different command'
            : `after term ${previousTerm}, not ${known.previousTerm}`) +
          ' than another node',
      );
    }
  }

  #checkVote(id: NodeId, hardState: HardState): void {
    const previous = this.#durableHardState.get(id);
    this.#durableHardState.set(id, hardState);
    if (previous === undefined) return;
    if (hardState.term < previous.term) {
      this.#violate(
        'vote safety',
        `node ${id} durable term went back from ${previous.term} to ${hardState.term}`,
      );
    } else if (
      hardState.term === previous.term &&
      previous.vote !== 0 &&
      hardState.vote !== previous.vote
    ) {
      this.#violate(
        'vote safety',
        `node ${id} voted for ${previous.vote} and then ${hardState.vote} in term ` +
          `${hardState.term}`,
      );
    }
    if (hardState.commit < previous.commit) {
      this.#violate(
        'commit monotonicity',
        `node ${id} durable commit went back from ${previous.commit} to ${hardState.commit}`,
      );
    }
  }

  /** A node applied an entry. Returns true when this is the first apply of the index anywhere. */
  onApply(apply: Apply): boolean {
    const { id, entry, nodeTerm, stateHash } = apply;
    const fingerprint = entryFingerprint(entry);
    const record = this.#applied[entry.index];
    if (record === undefined) {
      if (entry.index !== this.#appliedMax + 1) {
        this.#violate(
          'state machine safety',
          `node ${id} applied index ${entry.index} but no node applied ${this.#appliedMax + 1}`,
        );
      }
      this.#applied[entry.index] = {
        term: entry.term,
        fingerprint,
        stateHash,
        committedTermBound: nodeTerm,
      };
      this.#appliedMax = Math.max(this.#appliedMax, entry.index);
      this.#checkCommitDurable(id, entry);
      return true;
    }
    record.committedTermBound = Math.min(record.committedTermBound, nodeTerm);
    if (record.fingerprint !== fingerprint || record.term !== entry.term) {
      this.#violate(
        'state machine safety',
        `node ${id} applied entry of term ${entry.term} at index ${entry.index}, another node ` +
          `one of term ${record.term}`,
      );
    } else if (record.stateHash !== stateHash) {
      this.#violate(
        'state machine safety',
        `node ${id} state after applying index ${entry.index} differs from another node's`,
      );
    }
    return false;
  }

  #checkCommitDurable(appliedBy: NodeId, entry: Entry): void {
    const disks = this.#voterDisks();
    const positions = disks.map(({ storage }) => {
      const lastIndex = storage.lastIndex();
      return { lastIndex, lastTerm: storage.term(lastIndex) };
    });
    const quorum = Math.floor(disks.length / 2) + 1;
    disks.forEach(({ id, storage }, n) => {
      if (holds(storage, entry)) return;
      const candidate = positions[n]!;
      const electors = disks
        .filter((_, v) => atLeastAsUpToDate(candidate, positions[v]!))
        .map((disk) => disk.id);
      if (electors.length < quorum) return;
      this.#violate(
        'commit durability',
        `node ${appliedBy} applied entry ${entry.index}/${entry.term}, but voter ${id}, whose ` +
          `disk lacks it (last ${candidate.lastIndex}/${candidate.lastTerm}), is as up to date ` +
          `as voters ${electors.join(', ')}`,
      );
    });
  }

  /** A node installed a snapshot (from a leader, or its own on restart). */
  onSnapshotInstalled(install: SnapshotInstall): void {
    const { id, metadata, stateHash } = install;
    const record = this.#applied[metadata.index];
    if (record === undefined) {
      this.#violate(
        'state machine safety',
        `node ${id} installed snapshot ${metadata.index} beyond every applied index`,
      );
    } else if (record.term !== metadata.term || record.stateHash !== stateHash) {
      this.#violate(
        'state machine safety',
        `node ${id} installed snapshot ${metadata.index}/${metadata.term} unlike the state ` +
          `applied there`,
      );
    }
  }

  /** A node crashed having applied up to `applied`. */
  onCrash(crash: { readonly id: NodeId; readonly applied: number }): void {
    this.#liveCommit.delete(crash.id);
    this.#appliedAtCrash.set(crash.id, crash.applied);
  }

  /** Node `id` restarted from `storage`. */
  onRestart(id: NodeId, storage: Storage): void {
    const { hardState } = storage.initialState();
    this.#liveCommit.set(id, hardState.commit);
    const applied = this.#appliedAtCrash.get(id) ?? 0;
    this.#appliedAtCrash.delete(id);
    if (applied === 0 || storage.snapshot().metadata.index >= applied) return;
    const held = storage.lastIndex() >= applied ? storage.term(applied) : null;
    if (held !== this.appliedTerm(applied)) {
      this.#violate(
        'durability',
        `node ${id} applied index ${applied} before crashing, but its disk lost it ` +
          `(last index ${storage.lastIndex()})`,
      );
    }
  }

  /** A node's disk was emptied for a fresh start under the same id, keeping `hardState`. */
  onWipe(wipe: { readonly id: NodeId; readonly hardState: HardState }): void {
    this.#liveCommit.delete(wipe.id);
    this.#durableHardState.set(wipe.id, wipe.hardState);
    this.#appliedAtCrash.delete(wipe.id);
  }

  /** Records a violation found outside the checker (e.g. a liveness miss). */
  report(invariant: string, detail: string): void {
    this.#violate(invariant, detail);
  }

  #violate(invariant: string, detail: string): void {
    if (this.violations.length >= violationsMax) return;
    this.violations.push(`${invariant} violated at step ${this.step}: ${detail}`);
  }
}

/** Whether `storage` durably holds `entry` (in its log, or covered by its snapshot). */
function holds(storage: Storage, entry: Entry): boolean {
  if (entry.index <= storage.firstIndex() - 1) return true; // Compacted: the snapshot covers it.
  return entry.index <= storage.lastIndex() && storage.term(entry.index) === entry.term;
}

/** The election restriction (paper §5.4.1): would a voter at `voter` vote for `candidate`? */
function atLeastAsUpToDate(
  candidate: { readonly lastIndex: number; readonly lastTerm: number },
  voter: { readonly lastIndex: number; readonly lastTerm: number },
): boolean {
  return (
    candidate.lastTerm > voter.lastTerm ||
    (candidate.lastTerm === voter.lastTerm && candidate.lastIndex >= voter.lastIndex)
  );
}

function logKey(index: number, term: number): number {
  return index * termBase + (term % termBase);
}

/** A fingerprint of an entry's position and contents. */
export function entryFingerprint(entry: Entry): number {
  const seed = Math.imul(entry.term ^ 0x5bd1e995, entry.type === 'normal' ? 3 : 5) >>> 0;
  return hashBytes(entry.data, seed);
}
