/**
 * `put`, `get`, `del` and `compaction` (etcdctl/ctlv3/command/{put,get,del,compaction}_command.go
 * at v3.4.23). The request builders are exported because `txn` parses its operations with the
 * same flags.
 */

import {
  CtlUsageError, booleanFlag, expectArguments, exitCodes, integerFlag, stringFlag,
  type CommandContext, type CommandSpec, type OptionSpec, type ParsedCommand,
} from './command.js';
import { goJson, deleteRangeShape, putShape, rangeShape } from './json-output.js';
import { keyValueLines, parseHexId, type KeyValueStyle } from './simple-output.js';
import {
  fromKeyRangeEnd, keyBytes, prefixRangeEnd, rangeEndField,
  type WireDeleteRangeResponse, type WirePutResponse, type WireRangeResponse,
} from './wire.js';

/** `put`'s flags. */
export const putOptions: OptionSpec = Object.freeze({
  lease: { type: 'string' },
  'prev-kv': { type: 'boolean' },
  'ignore-value': { type: 'boolean' },
  'ignore-lease': { type: 'boolean' },
});

/** `get`'s flags. */
export const getOptions: OptionSpec = Object.freeze({
  consistency: { type: 'string' },
  order: { type: 'string' },
  'sort-by': { type: 'string' },
  limit: { type: 'string' },
  prefix: { type: 'boolean' },
  'from-key': { type: 'boolean' },
  rev: { type: 'string' },
  'keys-only': { type: 'boolean' },
  'count-only': { type: 'boolean' },
  'print-value-only': { type: 'boolean' },
});

/** `del`'s flags. */
export const deleteOptions: OptionSpec = Object.freeze({
  prefix: { type: 'boolean' },
  'prev-kv': { type: 'boolean' },
  'from-key': { type: 'boolean' },
});

const putUsage = 'put command needs 1 argument and input from stdin or 2 arguments';

/** A PutRequest from `put`'s flags; `value` is the second argument or standard input. */
export function putRequest(parsed: ParsedCommand, value: Buffer | string | null): object {
  const key = parsed.positionals[0];
  if (key === undefined) throw new CtlUsageError(putUsage);
  const ignoreValue = booleanFlag(parsed.values, 'ignore-value');
  if (ignoreValue && parsed.positionals.length > 1) {
    throw new CtlUsageError("put command needs only 1 argument when 'ignore-value' is set");
  }
  if (!ignoreValue && value === null) throw new CtlUsageError(putUsage);
  const leaseText = stringFlag(parsed.values, 'lease', '0');
  const lease = parseHexId(leaseText, { signed: true });
  if (lease === null) throw new CtlUsageError(`bad lease ID (${leaseText}), expecting ID in Hex`);
  return {
    key: keyBytes(key),
    value: ignoreValue ? Buffer.alloc(0) : Buffer.isBuffer(value) ? value : keyBytes(value!),
    lease: lease.toString(),
    prev_kv: booleanFlag(parsed.values, 'prev-kv'),
    ignore_value: ignoreValue,
    ignore_lease: booleanFlag(parsed.values, 'ignore-lease'),
  };
}

/** The key and range end of `get`/`del` (`[key]`, `[key, end)`, `--prefix`, `--from-key`). */
function keyRange(
  parsed: ParsedCommand, command: 'get' | 'del',
): { key: Buffer; rangeEnd: Buffer | null } {
  const prefix = booleanFlag(parsed.values, 'prefix');
  const fromKey = booleanFlag(parsed.values, 'from-key');
  expectArguments(parsed, { min: 1, max: 2 },
    `${command} command needs one argument as key and an optional argument as range_end`);
  if (prefix && fromKey) {
    throw new CtlUsageError(
      '`--prefix` and `--from-key` cannot be set at the same time, choose one');
  }
  const [keyText, endText] = parsed.positionals as [string, string | undefined];
  if (endText !== undefined) {
    if (prefix || fromKey) {
      throw new CtlUsageError(
        'too many arguments, only accept one argument when `--prefix` or `--from-key` is set');
    }
    return { key: keyBytes(keyText), rangeEnd: keyBytes(endText) };
  }
  // An empty key with --prefix or --from-key means every key: key "\0", range end "\0".
  if ((prefix || fromKey) && keyText === '') {
    return { key: fromKeyRangeEnd, rangeEnd: fromKeyRangeEnd };
  }
  if (prefix) return { key: keyBytes(keyText), rangeEnd: prefixRangeEnd(keyBytes(keyText)) };
  if (fromKey) return { key: keyBytes(keyText), rangeEnd: fromKeyRangeEnd };
  return { key: keyBytes(keyText), rangeEnd: null };
}

const sortTargets: Readonly<Record<string, string>> = Object.freeze({
  '': 'KEY', KEY: 'KEY', VERSION: 'VERSION', CREATE: 'CREATE', MODIFY: 'MOD', VALUE: 'VALUE',
});

/** A RangeRequest from `get`'s flags. */
export function rangeRequest(parsed: ParsedCommand): object {
  const consistency = stringFlag(parsed.values, 'consistency', 'l');
  if (consistency !== 'l' && consistency !== 's') {
    throw new CtlUsageError(`unknown consistency flag "${consistency}"`);
  }
  const order = stringFlag(parsed.values, 'order').toUpperCase();
  if (!['', 'ASCEND', 'DESCEND'].includes(order)) {
    throw new CtlUsageError(`bad sort order ${stringFlag(parsed.values, 'order')}`);
  }
  const target = sortTargets[stringFlag(parsed.values, 'sort-by').toUpperCase()];
  if (target === undefined) {
    throw new CtlUsageError(`bad sort target ${stringFlag(parsed.values, 'sort-by')}`);
  }
  const { key, rangeEnd } = keyRange(parsed, 'get');
  // clientv3's WithSort: sorting by key ascending is the server's own order, so it sends NONE.
  const sortOrder = order === '' || (order === 'ASCEND' && target === 'KEY') ? 'NONE' : order;
  const revision = integerFlag(parsed.values, 'rev');
  return {
    key, ...rangeEndField(rangeEnd),
    limit: integerFlag(parsed.values, 'limit'),
    revision: BigInt(revision) > 0n ? revision : '0',
    sort_order: sortOrder,
    sort_target: target,
    serializable: consistency === 's',
    keys_only: booleanFlag(parsed.values, 'keys-only'),
    count_only: booleanFlag(parsed.values, 'count-only'),
  };
}

/** A DeleteRangeRequest from `del`'s flags. */
export function deleteRequest(parsed: ParsedCommand): object {
  const { key, rangeEnd } = keyRange(parsed, 'del');
  return { key, ...rangeEndField(rangeEnd), prev_kv: booleanFlag(parsed.values, 'prev-kv') };
}

/** etcdctl's simple Put: `OK`, then the previous pair when `--prev-kv` found one. */
export function putSimple(response: WirePutResponse, style: KeyValueStyle): string {
  return `OK\n${response.prev_kv === null ? '' : keyValueLines(response.prev_kv, style)}`;
}

/** etcdctl's simple Get: each pair's key and value lines. */
export function rangeSimple(response: WireRangeResponse, style: KeyValueStyle): string {
  return response.kvs.map((kv) => keyValueLines(kv, style)).join('');
}

/** etcdctl's simple Del: the number deleted, then the deleted pairs with `--prev-kv`. */
export function deleteSimple(response: WireDeleteRangeResponse, style: KeyValueStyle): string {
  return `${response.deleted}\n${response.prev_kvs.map((kv) => keyValueLines(kv, style)).join('')}`;
}

async function runPut(context: CommandContext, parsed: ParsedCommand): Promise<number> {
  if (parsed.positionals.length > 2) throw new CtlUsageError(putUsage);
  let value: Buffer | string | null = parsed.positionals[1] ?? null;
  const valueMissing = value === null && parsed.positionals.length === 1;
  if (valueMissing && !booleanFlag(parsed.values, 'ignore-value')) {
    // etcdctl's argOrStdin: `cat file | put KEY` stores the file's bytes.
    const stdin = await context.io.readStdin();
    value = stdin.length === 0 ? null : stdin;
  }
  const request = putRequest(parsed, value);
  const response = await context.connection.unary<WirePutResponse>({
    service: 'KV', method: 'Put', request, kind: 'write',
  });
  context.io.stdout.write(context.config.writeOut === 'json'
    ? `${goJson(response, putShape)}\n`
    : putSimple(response, { hex: context.config.hex }));
  return exitCodes.success;
}

async function runGet(context: CommandContext, parsed: ParsedCommand): Promise<number> {
  const valueOnly = booleanFlag(parsed.values, 'print-value-only');
  if (valueOnly && context.config.writeOut !== 'simple') {
    throw new CtlUsageError('print-value-only is only for `--write-out=simple`');
  }
  const response = await context.connection.unary<WireRangeResponse>({
    service: 'KV', method: 'Range', request: rangeRequest(parsed), kind: 'read',
  });
  if (context.config.writeOut === 'json') {
    context.io.stdout.write(`${goJson(response, rangeShape)}\n`);
  } else if (booleanFlag(parsed.values, 'count-only')) {
    context.io.stdout.write(`${response.count}\n`);
  } else {
    context.io.stdout.write(rangeSimple(response, { hex: context.config.hex, valueOnly }));
  }
  return exitCodes.success;
}

async function runDelete(context: CommandContext, parsed: ParsedCommand): Promise<number> {
  const response = await context.connection.unary<WireDeleteRangeResponse>({
    service: 'KV', method: 'DeleteRange', request: deleteRequest(parsed), kind: 'write',
  });
  context.io.stdout.write(context.config.writeOut === 'json'
    ? `${goJson(response, deleteRangeShape)}\n`
    : deleteSimple(response, { hex: context.config.hex }));
  return exitCodes.success;
}

async function runCompaction(context: CommandContext, parsed: ParsedCommand): Promise<number> {
  expectArguments(parsed, { min: 1, max: 1 }, 'compaction command needs 1 argument');
  const revision = parsed.positionals[0]!;
  if (!/^\d+$/.test(revision)) {
    throw new CtlUsageError(`bad revision "${revision}": expected a number`);
  }
  await context.connection.unary({
    service: 'KV', method: 'Compact', kind: 'write',
    request: { revision, physical: booleanFlag(parsed.values, 'physical') },
  });
  context.io.stdout.write(`compacted revision ${BigInt(revision)}\n`);
  return exitCodes.success;
}

/** The key-value commands. */
export const kvCommands: readonly CommandSpec[] = [
  {
    path: ['put'],
    synopsis: 'KEY [VALUE] [--lease HEX] [--prev-kv] [--ignore-value] [--ignore-lease]',
    options: putOptions, run: runPut,
  },
  {
    path: ['get'],
    synopsis: 'KEY [END] [--prefix] [--from-key] [--rev N] [--limit N] [--keys-only]\n' +
      '      [--count-only] [--print-value-only] [--order ASCEND|DESCEND]\n' +
      '      [--sort-by KEY|VERSION|CREATE|MODIFY|VALUE] [--consistency l|s]',
    options: getOptions, run: runGet,
  },
  {
    path: ['del'], synopsis: 'KEY [END] [--prefix] [--from-key] [--prev-kv]',
    options: deleteOptions, run: runDelete,
  },
  {
    path: ['compaction'], synopsis: 'REV [--physical]',
    options: { physical: { type: 'boolean' } }, run: runCompaction,
  },
];
