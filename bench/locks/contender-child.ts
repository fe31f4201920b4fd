/**
 * One lock contender as its own process, for the safety runs: it takes the lock, writes to the
 * parent's fenced resource from inside its critical section, and can be frozen in the middle of
 * that section the way a long GC pause or a SIGSTOP freezes a real holder. The freeze blocks the
 * whole event loop (Atomics.wait), so no renewal, no `lost` check and no timer runs, and the write
 * right after it is the next statement — the holder acts before it could learn it lost the lock.
 *
 * Protocol over the IPC channel (parent → child → parent):
 *   child: {type:'ready'}
 *   parent: {type:'acquire'}            child: {type:'granted', token}
 *   child: {type:'write', token}        parent: {type:'ack', accepted}
 *   child: {type:'released', lost}      (then the child exits)
 */

import type { HeldLock } from '../../src/client/locks/lock.js';
import { openLockBackend, type LockBackendSpec } from './backend-spec.js';

/** What the parent passes as argv[2], JSON. */
export interface ContenderConfig {
  readonly spec: LockBackendSpec;
  readonly name: string;
  /** Freeze for this long right after the first write; 0: no freeze. */
  readonly pauseMs: number;
  /** After the first write (and any freeze), keep writing this long while the lock is not lost. */
  readonly holdMs: number;
  readonly writeIntervalMs: number;
}

type ParentMessage = { type: 'acquire' } | { type: 'ack'; accepted: boolean };

const config = JSON.parse(process.argv[2]!) as ContenderConfig;
const inbox: ParentMessage[] = [];
let wake: (() => void) | null = null;
process.on('message', (message: ParentMessage) => {
  inbox.push(message);
  wake?.();
});

async function next(type: ParentMessage['type']): Promise<ParentMessage> {
  while (true) {
    const index = inbox.findIndex((message) => message.type === type);
    if (index >= 0) return inbox.splice(index, 1)[0]!;
    await new Promise<void>((resolve) => (wake = resolve));
  }
}

function send(message: object): void {
  process.send!(message);
}

async function write(held: HeldLock): Promise<void> {
  send({ type: 'write', token: held.fencingToken?.toString() ?? null });
  await next('ack');
}

function freeze(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

const backend = await openLockBackend(config.spec);
send({ type: 'ready' });
await next('acquire');
/** Acquires, retrying failures (a failover mid-request) as an application would, for a minute. */
async function acquireWithRetries(): Promise<HeldLock> {
  const deadlineMs = performance.now() + 60_000;
  while (true) {
    try {
      return await backend.acquire(config.name, { timeoutMs: Math.max(1, Math.round(deadlineMs - performance.now())) });
    } catch (error) {
      if (performance.now() >= deadlineMs) throw error;
      process.stderr.write(`contender: acquire failed, retrying: ${(error as Error).message}\n`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
}

const held = await acquireWithRetries();
send({ type: 'granted', token: held.fencingToken?.toString() ?? null });
await write(held);
if (config.pauseMs > 0) {
  freeze(config.pauseMs);
  await write(held);
}
const until = performance.now() + config.holdMs;
while (performance.now() < until && !held.lost.aborted) {
  await new Promise((resolve) => setTimeout(resolve, config.writeIntervalMs));
  if (!held.lost.aborted) await write(held);
}
const lost = held.lost.aborted;
await held.release().catch(() => undefined);
send({ type: 'released', lost });
await backend.close().catch(() => undefined);
process.disconnect();
