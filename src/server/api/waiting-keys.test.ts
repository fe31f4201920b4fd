import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { collectMarks, isSynodError, SynodError } from '../../base/index.js';
import type { RaftNode } from '../node/raft-node.js';
import { startLeader } from './single-member-test-kit.js';
import { KeyWaiters } from './waiting-keys.js';

const key = new TextEncoder().encode('k');

async function put(node: RaftNode, value: string): Promise<void> {
  const result = await node.propose({
    type: 'put', request: { key, value: new TextEncoder().encode(value) },
  });
  expect(result.ok).toBe(true);
}

function valueOf(node: RaftNode): string | undefined {
  const kv = node.stateMachine.store.range({ key }).kvs[0];
  return kv === undefined ? undefined : new TextDecoder().decode(kv.value);
}

describe('KeyWaiters', () => {
  const cleanups: (() => Promise<void>)[] = [];
  let node: RaftNode;

  beforeEach(async () => {
    node = await startLeader('synod-waiting-keys-', cleanups);
  });

  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  it('re-runs a step after each applied batch until it returns a value', async () => {
    const waiters = new KeyWaiters({ node });
    const seen: (string | undefined)[] = [];
    const done = waiters.wait(() => {
      const value = valueOf(node);
      seen.push(value);
      return value === 'go' ? value : undefined;
    }, new AbortController().signal);
    expect(seen).toEqual([undefined]); // The first step runs at once.
    await put(node, 'wait');
    await put(node, 'go');
    expect(await done).toBe('go');
    expect(seen).toEqual([undefined, 'wait', 'go']);
    expect(waiters.size).toBe(0);
  });

  it('finishes at once when the state already satisfies the step', async () => {
    await put(node, 'go');
    const waiters = new KeyWaiters({ node });
    expect(await waiters.wait(() => valueOf(node), new AbortController().signal)).toBe('go');
  });

  it('ends a wait whose step throws with that error', async () => {
    const waiters = new KeyWaiters({ node });
    const failed = waiters.wait(() => {
      if (valueOf(node) === 'gone') throw new SynodError('SYNOD_LOCK_SESSION_EXPIRED');
      return undefined;
    }, new AbortController().signal);
    await put(node, 'gone');
    await expect(failed)
      .rejects.toSatisfy((error) => isSynodError(error, 'SYNOD_LOCK_SESSION_EXPIRED'));
    expect(waiters.size).toBe(0);
  });

  it('ends a wait when its signal aborts, and refuses an aborted signal', async () => {
    const waiters = new KeyWaiters({ node });
    const controller = new AbortController();
    const waiting = waiters.wait(() => undefined, controller.signal);
    expect(waiters.size).toBe(1);
    controller.abort();
    await expect(waiting).rejects.toSatisfy((error) => isSynodError(error, 'SYNOD_CALL_CANCELLED'));
    expect(waiters.size).toBe(0);
    await expect(waiters.wait(() => 1, controller.signal))
      .rejects.toSatisfy((error) => isSynodError(error, 'SYNOD_CALL_CANCELLED'));
  });

  it('refuses a wait beyond waitersMax with a typed error', async () => {
    const waiters = new KeyWaiters({ node, waitersMax: 1 });
    const controller = new AbortController();
    const first = waiters.wait(() => undefined, controller.signal);
    expect(waiters.full).toBe(true);
    let refused: Promise<unknown> = Promise.resolve();
    const marks = collectMarks(() => {
      refused = waiters.wait(() => 1, new AbortController().signal);
    });
    expect(marks.get('key wait refused: waitersMax')).toBe(1);
    await expect(refused)
      .rejects.toSatisfy((error) => isSynodError(error, 'SYNOD_KEY_WAITERS_EXHAUSTED'));
    controller.abort();
    await expect(first).rejects.toBeInstanceOf(SynodError);
    expect(waiters.full).toBe(false);
  });

  it('validates waitersMax', () => {
    expect(() => new KeyWaiters({ node, waitersMax: 0 }))
      .toThrow(expect.objectContaining({ code: 'SYNOD_INVALID_CONFIG' }));
  });
});
