/**
 * Which directed links between members are cut. Pure: no I/O and no sockets; `PeerNetwork` asks it
 * whether the bytes of one connection direction may flow and applies the answer to the sockets.
 */

import { assert } from '../../../base/index.js';

/** The set of cut directed links `from → to` among a fixed set of member names. */
export class LinkTable {
  readonly #members: ReadonlySet<string>;
  /** `from` → the members `from` cannot send to. Invariant: no self links, only known names. */
  readonly #cutTargets = new Map<string, Set<string>>();

  /** `members` are the names of the cluster; they are unique and non-empty. */
  constructor(members: readonly string[]) {
    assert(members.length > 0, 'a link table needs at least one member');
    this.#members = new Set(members);
    assert(this.#members.size === members.length, 'member names must be unique');
    for (const name of members) assert(name.length > 0, 'member names must be non-empty');
  }

  /** Stops bytes from `from` to `to`. Idempotent; the reverse direction is untouched. */
  cut(from: string, to: string): void {
    assert(this.#members.has(from), `unknown member: ${from}`);
    assert(this.#members.has(to), `unknown member: ${to}`);
    assert(from !== to, `a member cannot be cut from itself: ${from}`);
    let targets = this.#cutTargets.get(from);
    if (targets === undefined) {
      targets = new Set();
      this.#cutTargets.set(from, targets);
    }
    targets.add(to);
  }

  /**
   * Cuts both ways between every pair of members in different groups, in addition to the links
   * already cut. Members named in no group keep their links. A member may be in one group only.
   */
  partition(groups: readonly (readonly string[])[]): void {
    const seen = new Set<string>();
    for (const group of groups) {
      for (const name of group) {
        assert(this.#members.has(name), `unknown member: ${name}`);
        assert(!seen.has(name), `member in two groups: ${name}`);
        seen.add(name);
      }
    }
    for (const [index, group] of groups.entries()) {
      for (const other of groups.slice(index + 1)) {
        for (const a of group) {
          for (const b of other) {
            this.cut(a, b);
            this.cut(b, a);
          }
        }
      }
    }
  }

  /** True when bytes from `from` to `to` must not flow. Unknown names are never cut. */
  isCut(from: string, to: string): boolean {
    return this.#cutTargets.get(from)?.has(to) ?? false;
  }

  /** True when no link is cut. */
  get empty(): boolean {
    return this.#cutTargets.size === 0;
  }

  /** Restores every link. */
  clear(): void {
    this.#cutTargets.clear();
  }

  /** The cut links as `from→to` strings, sorted, for logs and fault records. */
  describe(): string[] {
    const links: string[] = [];
    for (const [from, targets] of this.#cutTargets) {
      for (const to of targets) links.push(`${from}→${to}`);
    }
    return links.sort();
  }
}
