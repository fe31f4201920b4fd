/**
 * History builders and a brute-force reference checker shared by the linearizability tests
 * (linearizability.test.ts: known histories; linearizability-properties.test.ts: generated ones).
 */

import { kvModel, type CheckFailed, type CheckResult, type KvCall, type KvResult, type Operation } from './index.js';
// ---- History builders: `end` null means the client never heard back. -------------------------

export function operation(
  clientId: number,
  key: string,
  call: KvCall,
  times: readonly [number, number | null],
  result: KvResult,
): Operation {
  const [invokedAt, respondedAt] = times;
  const response = respondedAt === null ? null : { respondedAt, result };
  return { clientId, key, call, invokedAt, response };
}

// Histories read best as compact data, hence the positional arguments: client, key, what, then
// the invocation and response times.
export type End = number | null;
export const put = (client: number, key: string, value: string, start: number, end: End) =>
  operation(client, key, { kind: 'put', value }, [start, end], { kind: 'put' });
export const get = (client: number, key: string, value: string | null, start: number, end: End) =>
  operation(client, key, { kind: 'get' }, [start, end], { kind: 'get', value });
export const del = (client: number, key: string, start: number, end: End) =>
  operation(client, key, { kind: 'delete' }, [start, end], { kind: 'delete' });
export const cas = (
  client: number,
  key: string,
  swap: { expected: string | null; value: string; ok: boolean },
  start: number,
  end: End,
) => {
  const call: KvCall = { kind: 'cas', expected: swap.expected, value: swap.value };
  return operation(client, key, call, [start, end], { kind: 'cas', ok: swap.ok });
};

export function expectFailed(result: CheckResult): CheckFailed {
  if (result.ok !== false) throw new Error(`expected a failure, got ${JSON.stringify(result)}`);
  return result;
}

// ---- A brute-force reference: every order consistent with real time over the whole map of keys,
// remembering only the dead ends (no partitioning, linked lists, or reductions).

export function bruteForceLinearizable(history: readonly Operation[]): boolean {
  const live = history.filter((op) => op.response !== null || op.call.kind !== 'get');
  const answered = live.filter((op) => op.response !== null).length;
  const taken = new Array<boolean>(live.length).fill(false);
  const deadEnds = new Set<string>();
  const explore = (store: ReadonlyMap<string, string>, takenAnswered: number): boolean => {
    if (takenAnswered === answered) return true;
    const configuration = JSON.stringify([taken, [...store].sort()]);
    if (deadEnds.has(configuration)) return false;
    deadEnds.add(configuration);
    for (let index = 0; index < live.length; index++) {
      if (taken[index]) continue;
      const candidate = live[index]!;
      // Some untaken operation responded strictly before this one was invoked: it must go first.
      const mustWait = live.some(
        (other, otherIndex) =>
          !taken[otherIndex] &&
          other.response !== null &&
          other.response.respondedAt < candidate.invokedAt,
      );
      if (mustWait) continue;
      const current = store.get(candidate.key) ?? null;
      const step = kvModel.step(current, candidate.call, candidate.response?.result ?? null);
      if (!step.ok) continue;
      const next = new Map(store);
      if (step.nextState === null) next.delete(candidate.key);
      else next.set(candidate.key, step.nextState);
      taken[index] = true;
      const found = explore(next, takenAnswered + (candidate.response === null ? 0 : 1));
      taken[index] = false;
      if (found) return true;
    }
    return false;
  };
  return explore(new Map(), 0);
}
