/**
 * The set workload: clients add unique elements, each as its own key under one prefix, and after
 * the run one linearizable read lists the set. Every acknowledged add must be there; an add of
 * unknown outcome may or may not be; nothing may be there that no client tried to add.
 */

import { setTimeout as delay } from 'node:timers/promises';
import { assert } from '../../../base/index.js';
import { checkSet, type SetFinalRead } from '../checkers/set-checker.js';
import {
  prefixEnd, retryUntilSuccess, type CallContext, type ClientRun, type KvClient, type Workload,
} from './workload.js';

/** Options of `setWorkload`. */
export interface SetWorkloadOptions {
  /** Elements are stored as `${keyPrefix}${element}`; setup deletes everything under it. */
  readonly keyPrefix?: string;
  /** Pause after a failed or unknown add, so a client facing a fault does not spin. */
  readonly failureBackoffMs?: number;
  /** Keys per page of the final read; every page reads the first page's revision. */
  readonly finalReadPageKeys?: number;
}

const defaults = Object.freeze({
  keyPrefix: 'chaos/set/',
  failureBackoffMs: 20,
  finalReadPageKeys: 1_000,
});

/** A set operation: add one element. */
export interface SetCall {
  readonly kind: 'add';
  readonly element: string;
}

/** An acknowledged add. */
export interface SetResult {
  readonly kind: 'add';
}

/** Creates the set workload. */
export function setWorkload(options: SetWorkloadOptions = {}): Workload<SetFinalRead> {
  const config = Object.freeze({ ...defaults, ...options });
  assert(Number.isSafeInteger(config.finalReadPageKeys) && config.finalReadPageKeys > 0, 'page');
  const rangeEnd = prefixEnd(config.keyPrefix);
  return {
    kind: 'set',
    async setup(clients) {
      await retryUntilSuccess(clients, (client, context) =>
        client.kv.deleteRange({ key: config.keyPrefix, rangeEnd }, context));
    },
    startClient: (run) => runSetClient(run, config),
    async final(clients) {
      const elements = await retryUntilSuccess(clients, (client, context) =>
        readElements(client.kv, { ...config, rangeEnd }, context));
      return { elements };
    },
    check: (history, finalRead) => checkSet(history, finalRead),
  };
}

async function runSetClient(
  run: ClientRun,
  config: { readonly keyPrefix: string; readonly failureBackoffMs: number },
): Promise<void> {
  let sequence = 0;
  while (!run.signal.aborted) {
    const element = `${run.clientId}-${sequence++}`;
    const entry = await run.recorder.perform<SetCall, SetResult>(
      {
        workload: 'set', clientId: run.clientId, member: run.client.member,
        call: { kind: 'add', element }, effect: 'write',
      },
      async (context) => {
        await run.client.kv.put({ key: `${config.keyPrefix}${element}`, value: element }, context);
        return { outcome: 'ok', result: { kind: 'add' } };
      },
    );
    if (entry.outcome !== 'ok') await delay(config.failureBackoffMs);
  }
}

/**
 * Lists the elements page by page, every page at the first page's revision, so the whole list is
 * one snapshot. Shares `context`'s deadline across pages; a failure retries from the start.
 */
async function readElements(
  kv: KvClient,
  options: {
    readonly keyPrefix: string;
    readonly rangeEnd: string;
    readonly finalReadPageKeys: number;
  },
  context: CallContext,
): Promise<string[]> {
  const elements: string[] = [];
  let revision: number | undefined;
  let key = options.keyPrefix;
  while (true) {
    const page = await kv.range(
      revision === undefined
        ? { key, rangeEnd: options.rangeEnd, limit: options.finalReadPageKeys }
        : { key, rangeEnd: options.rangeEnd, limit: options.finalReadPageKeys, revision },
      context,
    );
    revision ??= page.revision;
    for (const kv of page.kvs) elements.push(kv.key.slice(options.keyPrefix.length));
    const last = page.kvs.at(-1);
    if (!page.more || last === undefined) return elements;
    key = `${last.key}\0`;
  }
}
