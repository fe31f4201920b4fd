/**
 * One lock safety run: two contender processes (contender-child.ts) and the fenced resource.
 * Holder A takes the lock and writes; then B asks for it; then the fault strikes — A frozen past
 * its TTL in the middle of its section, or a server restarted or killed under A — and both carry
 * on to the end. Mutual exclusion held iff A's and B's accepted writes never interleaved on the
 * resource (fenced-resource.ts), i.e. the lock, with its fencing token where it has one, kept the
 * resource safe.
 */

import { fork, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import type { LockBackendKind } from '../../src/client/locks/lock.js';
import type { LockBackendSpec } from './backend-spec.js';
import type { ContenderConfig } from './contender-child.js';
import { FencedResource, type ExclusionVerdict } from './fenced-resource.js';

/** The faults a run can inject. */
export type LockFault = 'holder-pause' | 'leader-kill' | 'primary-restart' | 'server-restart';

/** One run to make. */
export interface SafetyCase {
  readonly backend: LockBackendKind;
  readonly fault: LockFault;
  readonly spec: LockBackendSpec;
  /** The server-side fault, for every fault but holder-pause; runs right after A's first write. */
  readonly inject?: () => Promise<void>;
  /**
   * False: the resource ignores the tokens, as if holders did not pass them on. Used to show the
   * run catches what fencing prevents (a planted bug); default true.
   */
  readonly fenced?: boolean;
}

/** The outcome, as the benchmark's JSON reports it (plus the evidence). */
export interface SafetyOutcome {
  readonly backend: LockBackendKind;
  readonly fault: LockFault;
  readonly mutual_exclusion_held: boolean;
  readonly verdict: ExclusionVerdict;
  /** Whether each holder noticed it lost the lock before releasing. */
  readonly noticedLoss: { readonly a: boolean; readonly b: boolean };
}

const childPath = join(import.meta.dirname, 'contender-child.ts');
/** Bound on a whole run; a run that passes it is reported as a failure of the harness. */
const runTimeoutMs = 90_000;

interface Contender {
  readonly child: ChildProcess;
  readonly messages: AsyncIterator<Record<string, unknown>>;
}

function startContender(config: ContenderConfig, holder: string, resource: FencedResource, fenced: boolean): Contender {
  const child = fork(childPath, [JSON.stringify(config)], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const queue: Record<string, unknown>[] = [];
  let wake: (() => void) | null = null;
  let exited = false;
  child.on('message', (message: Record<string, unknown>) => {
    if (message.type === 'write') {
      const token = message.token === null || !fenced ? null : BigInt(message.token as string);
      child.send({ type: 'ack', accepted: resource.write({ holder, token }) });
      return;
    }
    queue.push(message);
    wake?.();
  });
  child.on('exit', () => {
    exited = true;
    wake?.();
  });
  const messages: AsyncIterator<Record<string, unknown>> = {
    async next() {
      while (queue.length === 0 && !exited) await new Promise<void>((resolve) => (wake = resolve));
      const value = queue.shift();
      return value === undefined ? { done: true, value: undefined } : { done: false, value };
    },
  };
  return { child, messages };
}

async function expectMessage(contender: Contender, type: string): Promise<Record<string, unknown>> {
  const { value, done } = await contender.messages.next();
  if (done === true || value.type !== type) throw new Error(`contender: expected ${type}, got ${JSON.stringify(value)}`);
  return value;
}

/** Runs `safetyCase` once; always stops both contenders. */
export async function runSafetyCase(safetyCase: SafetyCase): Promise<SafetyOutcome> {
  const resource = new FencedResource();
  const ttlMs = safetyCase.spec.ttlMs;
  const pausing = safetyCase.fault === 'holder-pause';
  const fenced = safetyCase.fenced ?? true;
  const name = `safety-${safetyCase.fault}-${process.pid}`;
  const a = startContender({ spec: safetyCase.spec, name, pauseMs: pausing ? ttlMs * 3 : 0, holdMs: pausing ? 0 : ttlMs * 2, writeIntervalMs: 25 }, 'A', resource, fenced);
  const b = startContender({ spec: safetyCase.spec, name, pauseMs: 0, holdMs: ttlMs, writeIntervalMs: 25 }, 'B', resource, fenced);
  const timer = setTimeout(() => {
    a.child.kill('SIGKILL');
    b.child.kill('SIGKILL');
  }, runTimeoutMs);
  try {
    await Promise.all([expectMessage(a, 'ready'), expectMessage(b, 'ready')]);
    a.child.send({ type: 'acquire' });
    await expectMessage(a, 'granted');
    b.child.send({ type: 'acquire' });
    if (safetyCase.inject !== undefined) await safetyCase.inject();
    const [releasedA, releasedB] = await Promise.all([
      expectMessage(a, 'released'),
      expectMessage(b, 'granted').then(() => expectMessage(b, 'released')),
    ]);
    const verdict = resource.verdict();
    return {
      backend: safetyCase.backend, fault: safetyCase.fault, mutual_exclusion_held: verdict.held, verdict,
      noticedLoss: { a: releasedA.lost === true, b: releasedB.lost === true },
    };
  } finally {
    clearTimeout(timer);
    for (const contender of [a, b]) if (contender.child.exitCode === null) contender.child.kill('SIGKILL');
  }
}
