/**
 * Coverage marks: a core calls `mark('vote rejected: stale log')` on an interesting branch, and a test
 * asserts the branch was reached with `expectMark`. When no test is watching, a mark costs one
 * property lookup and nothing else.
 */

let watched: Map<string, number> | null = null;

/** Records that the named branch ran, if a test is watching. */
export function mark(name: string): void {
  if (watched !== null) watched.set(name, (watched.get(name) ?? 0) + 1);
}

/** Runs `body` and returns how many times each mark fired during it. Not reentrant. */
export function collectMarks(body: () => void): Map<string, number> {
  const previous = watched;
  watched = new Map();
  try {
    body();
    return watched;
  } finally {
    watched = previous;
  }
}
