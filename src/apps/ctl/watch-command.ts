/**
 * `watch KEY [END] [--prefix] [--rev N] [--prev-kv] [--count N]` (command/watch_command.go at
 * v3.4.23): one Watch stream with `hasleader: true`, as etcdctl opens it; each response's events
 * printed as they arrive until SIGINT, `--count` events, or the server cancels the watch.
 */

import type { ClientDuplexStream } from '@grpc/grpc-js';
import {
  CtlCommandError, CtlUsageError, booleanFlag, exitCodes, integerFlag, stringFlag,
  type CommandContext, type CommandSpec, type ParsedCommand,
} from './command.js';
import { goJson, watchShape } from './json-output.js';
import { keyValueLines, type KeyValueStyle } from './simple-output.js';
import {
  fromKeyRangeEnd, keyBytes, prefixRangeEnd, rangeEndField, type WireWatchResponse,
} from './wire.js';

/** A WatchCreateRequest from `watch`'s flags. */
export function watchCreateRequest(parsed: ParsedCommand): object {
  const [keyText, endText] = parsed.positionals;
  if (keyText === undefined || parsed.positionals.length > 2) {
    throw new CtlUsageError('bad number of arguments');
  }
  const prefix = booleanFlag(parsed.values, 'prefix');
  if (endText !== undefined && prefix) {
    throw new CtlUsageError('`range_end` and `--prefix` are mutually exclusive');
  }
  let key = keyBytes(keyText);
  let rangeEnd = endText === undefined ? null : keyBytes(endText);
  if (prefix) {
    // clientv3's WithPrefix on an empty key watches every key.
    [key, rangeEnd] = key.length === 0
      ? [fromKeyRangeEnd, fromKeyRangeEnd] : [key, prefixRangeEnd(key)];
  }
  return {
    key, ...rangeEndField(rangeEnd),
    start_revision: integerFlag(parsed.values, 'rev'),
    prev_kv: booleanFlag(parsed.values, 'prev-kv'),
  };
}

/** etcdctl's simple Watch: per event its type, the previous pair (with --prev-kv), the pair. */
export function watchSimple(response: WireWatchResponse, style: KeyValueStyle): string {
  return response.events.map((event) => {
    const previous = event.prev_kv === null ? '' : keyValueLines(event.prev_kv, style);
    return `${event.type}\n${previous}${event.kv === null ? '' : keyValueLines(event.kv, style)}`;
  }).join('');
}

/** Why the server cancelled a watch, as clientv3's WatchResponse.Err words it. */
export function watchCancelReason(response: WireWatchResponse): string {
  if (BigInt(response.compact_revision) !== 0n) {
    return 'etcdserver: mvcc: required revision has been compacted';
  }
  if (response.cancel_reason !== '') return response.cancel_reason;
  return 'etcdserver: mvcc: required revision is a future revision';
}

function countOf(parsed: ParsedCommand): number | null {
  if (stringFlag(parsed.values, 'count') === '') return null;
  const count = Number(integerFlag(parsed.values, 'count'));
  if (!Number.isSafeInteger(count) || count < 1) {
    throw new CtlUsageError('--count must be a positive number of events');
  }
  return count;
}

type WatchStream = ClientDuplexStream<object, WireWatchResponse>;

/** etcdctl's last words when the server ends a watch. */
const canceled = (): CtlCommandError => new CtlCommandError('watch is canceled by the server');

/** Prints responses until the count is reached; returns true once the watch should stop. */
function responsePrinter(
  context: CommandContext, countMax: number | null,
): (response: WireWatchResponse) => boolean {
  let remaining = countMax ?? Infinity;
  return (response) => {
    const events = response.events.slice(0, Math.min(response.events.length, remaining));
    remaining -= events.length;
    const shown = { ...response, events };
    context.io.stdout.write(context.config.writeOut === 'json'
      ? `${goJson(shown, watchShape)}\n`
      : watchSimple(shown, { hex: context.config.hex }));
    return remaining === 0;
  };
}

/** Runs the stream until it ends one of the ways the module comment lists. */
function follow(
  context: CommandContext, stream: WatchStream, countMax: number | null,
): Promise<number> {
  const print = responsePrinter(context, countMax);
  const { interrupt } = context.io;
  return new Promise<number>((resolve, reject) => {
    let done = false;
    const finish = (settle: () => void): void => {
      if (done) return;
      done = true;
      interrupt.removeEventListener('abort', onInterrupt);
      stream.cancel();
      settle();
    };
    const onInterrupt = (): void => finish(() => resolve(exitCodes.interrupted));
    interrupt.addEventListener('abort', onInterrupt, { once: true });
    stream.on('data', (response: WireWatchResponse) => {
      if (done) return;
      if (response.created) context.io.onStarted?.();
      if (response.canceled) {
        context.io.stderr.write(`watch was canceled (${watchCancelReason(response)})\n`);
        return finish(() => reject(canceled()));
      }
      if (response.events.length > 0 && print(response)) finish(() => resolve(exitCodes.success));
    });
    stream.on('error', (error: Error) => finish(() => reject(error)));
    stream.on('end', () => finish(() => reject(canceled())));
    if (interrupt.aborted) onInterrupt();
  });
}

async function runWatch(context: CommandContext, parsed: ParsedCommand): Promise<number> {
  const request = watchCreateRequest(parsed);
  const countMax = countOf(parsed);
  const stream = await context.connection.bidiStream<object, WireWatchResponse>({
    service: 'Watch', method: 'Watch', metadata: { hasleader: 'true' },
  });
  const outcome = follow(context, stream, countMax);
  stream.write({ create_request: request });
  return outcome;
}

/** `watch`. */
export const watchCommands: readonly CommandSpec[] = [{
  path: ['watch'],
  synopsis: 'KEY [END] [--prefix] [--rev N] [--prev-kv] [--count N]  (until SIGINT or N events)',
  options: {
    prefix: { type: 'boolean' }, rev: { type: 'string' }, 'prev-kv': { type: 'boolean' },
    count: { type: 'string' },
  },
  run: runWatch,
}];
