/** Starts and talks to test/support/lock-contender.ts, a lock contender in another process. */

import { fork, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';

const script = join(import.meta.dirname, 'lock-contender.ts');

/** A message from the contender (see lock-contender.ts). */
export interface ContenderMessage {
  readonly type: 'ready' | 'held' | 'released' | 'error';
  readonly token?: string;
  readonly message?: string;
}

/** The contender process and its next message. */
export interface Contender {
  readonly child: ChildProcess;
  /** The next message; rejects if the process exits first or `deadlineMs` passes. */
  next(deadlineMs?: number): Promise<ContenderMessage>;
  /** Sends a command: `acquire`, `release` or `exit`. */
  send(command: 'acquire' | 'release' | 'exit'): void;
  /** SIGKILLs the process and waits for it to exit. */
  kill(): Promise<void>;
}

/** Forks a contender for `name` and waits until it has opened its backend. */
export async function startContender(options: {
  readonly backend: 'sqlite' | 'postgres';
  readonly target: string;
  readonly name: string;
  readonly mode: string;
  readonly ttlMs: number;
}): Promise<Contender> {
  const args = [options.backend, options.target, options.name, options.mode, String(options.ttlMs)];
  const child = fork(script, args, {
    execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const next = (deadlineMs = 30_000): Promise<ContenderMessage> => {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('the contender is silent')), deadlineMs);
      const onExit = (): void => {
        clearTimeout(timer);
        reject(new Error('the contender exited'));
      };
      child.once('exit', onExit);
      child.once('message', (message: ContenderMessage) => {
        clearTimeout(timer);
        child.off('exit', onExit);
        resolve(message);
      });
    });
  };
  const contender: Contender = {
    child,
    next,
    send: (command) => child.send(command),
    kill: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGKILL');
      await exited;
    },
  };
  const ready = await next();
  if (ready.type !== 'ready') {
    throw new Error(`contender failed to start: ${ready.message ?? ready.type}`);
  }
  return contender;
}
