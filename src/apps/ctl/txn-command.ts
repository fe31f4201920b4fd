/**
 * `txn`: etcdctl's transaction text on standard input (command/txn_command.go at v3.4.23):
 *
 *   compares, one per line:   value("k") = "v"   mod("k") > "5"   version("k") != "0"
 *   a blank line
 *   success operations:       put k v [--prev-kv] [--lease HEX] | get k [END] [flags] | del k …
 *   a blank line
 *   failure operations, then a blank line (or the end of input)
 *
 * Compare targets: `ver`/`version`, `c`/`create`, `m`/`mod`, `val`/`value`, `lease` (a hex lease
 * ID, as every lease ID etcdctl prints); operators `=`, `==`, `!=`, `<`, `>`. Keys and values are
 * Go-quoted strings, so `"\x00"` and `"a\"b"` work as in etcdctl.
 */

import { parseArgs } from 'node:util';
import {
  CtlUsageError, exitCodes, type CommandContext, type CommandSpec, type OptionSpec,
  type ParsedCommand,
} from './command.js';
import { goJson, txnShape } from './json-output.js';
import {
  deleteOptions, deleteRequest, deleteSimple, getOptions, putOptions, putRequest, putSimple,
  rangeRequest, rangeSimple,
} from './kv-commands.js';
import { parseHexId, type KeyValueStyle } from './simple-output.js';
import type { WireResponseOp, WireTxnResponse } from './wire.js';

/** The three sections of a transaction, as wire messages. */
export interface TxnText {
  readonly compare: readonly object[];
  readonly success: readonly object[];
  readonly failure: readonly object[];
}

/** Parses etcdctl's transaction text; a malformed line is a CtlUsageError quoting it. */
export function parseTxnText(text: string): TxnText {
  const lines = text.split('\n').map((line) => line.trim());
  let cursor = 0;
  const section = <Item>(parse: (line: string) => Item): Item[] => {
    const items: Item[] = [];
    while (cursor < lines.length && lines[cursor] !== '') items.push(parse(lines[cursor++]!));
    cursor++;
    return items;
  };
  const compare = section(parseCompare);
  const success = section(parseOperation);
  const failure = section(parseOperation);
  return { compare, success, failure };
}

const compareResults: Readonly<Record<string, string>> = Object.freeze({
  '=': 'EQUAL', '==': 'EQUAL', '!=': 'NOT_EQUAL', '<': 'LESS', '>': 'GREATER',
});

const quoted = String.raw`"((?:[^"\\]|\\.)*)"`;
const compareLine = new RegExp(String.raw`^(\w+)\(${quoted}\)\s+(\S+)\s+${quoted}$`);

/** One compare line as a Compare message. */
export function parseCompare(line: string): object {
  const match = compareLine.exec(line);
  if (match === null) throw new CtlUsageError(`malformed comparison: ${line}`);
  const [target, keyText, operator, valueText] = match.slice(1) as [string, string, string, string];
  const key = unquoteGo(keyText);
  const value = unquoteGo(valueText);
  const result = compareResults[operator];
  if (key === null || value === null || result === undefined) {
    throw new CtlUsageError(`malformed comparison: ${line}`);
  }
  const integer = (): string => {
    const text = value.toString('utf8');
    if (!/^-?\d+$/.test(text)) throw new CtlUsageError(`invalid txn compare request: ${line}`);
    return BigInt(text).toString();
  };
  const base = { result, key };
  switch (target) {
    case 'ver': case 'version': return { ...base, target: 'VERSION', version: integer() };
    case 'c': case 'create': return { ...base, target: 'CREATE', create_revision: integer() };
    case 'm': case 'mod': return { ...base, target: 'MOD', mod_revision: integer() };
    case 'val': case 'value': return { ...base, target: 'VALUE', value };
    case 'lease': {
      const lease = parseHexId(value.toString('utf8'), { signed: true });
      if (lease === null) throw new CtlUsageError(`invalid txn compare request: ${line}`);
      return { ...base, target: 'LEASE', lease: lease.toString() };
    }
    default: throw new CtlUsageError(`malformed comparison: ${line} (unknown target ${target})`);
  }
}

const operations: Readonly<Record<string, OptionSpec>> = Object.freeze({
  put: putOptions, get: getOptions, del: deleteOptions,
});

/** One operation line (`put`, `get` or `del` with their flags) as a RequestOp. */
export function parseOperation(line: string): object {
  const [name, ...args] = splitArguments(line) ?? [];
  const options = name === undefined ? undefined : operations[name];
  if (options === undefined || args.length === 0) {
    throw new CtlUsageError(`invalid txn request: ${line}`);
  }
  let parsed: ParsedCommand;
  try {
    const { values, positionals } = parseArgs({
      args, options, strict: true, allowPositionals: true,
    });
    parsed = { values, positionals };
  } catch {
    throw new CtlUsageError(`invalid txn request: ${line}`);
  }
  if (name === 'put') return { request_put: putRequest(parsed, parsed.positionals[1] ?? null) };
  if (name === 'get') return { request_range: rangeRequest(parsed) };
  return { request_delete_range: deleteRequest(parsed) };
}

/**
 * Splits a line into arguments like etcdctl's argify: runs of non-space, `"Go-quoted"` and
 * `'single-quoted'` strings. Null when a quote is not closed.
 */
export function splitArguments(line: string): string[] | null {
  const token = /\s*(?:"((?:[^"\\]|\\.)*)"|'([^']*)'|(\S+))/y;
  const args: string[] = [];
  while (line.slice(token.lastIndex).trim() !== '') {
    const match = token.exec(line);
    if (match === null) return null;
    if (match[1] !== undefined) {
      const text = unquoteGo(match[1]);
      if (text === null) return null;
      args.push(text.toString('utf8'));
    } else {
      args.push(match[2] ?? match[3]!);
    }
  }
  return args;
}

const simpleEscapes: Readonly<Record<string, number>> = Object.freeze({
  a: 7, b: 8, f: 12, n: 10, r: 13, t: 9, v: 11, '\\': 92, '"': 34, "'": 39,
});

/** The bytes of the body of a Go double-quoted string (strconv.Unquote); null if malformed. */
export function unquoteGo(body: string): Buffer | null {
  const bytes: Buffer[] = [];
  const escape = new RegExp(String.raw`\\(?:([abfnrtv\\"'])|x([0-9a-fA-F]{2})|([0-7]{3})` +
    String.raw`|u([0-9a-fA-F]{4})|U([0-9a-fA-F]{8}))`, 'y');
  let plainStart = 0;
  let index = body.indexOf('\\');
  while (index >= 0) {
    bytes.push(Buffer.from(body.slice(plainStart, index), 'utf8'));
    escape.lastIndex = index;
    const match = escape.exec(body);
    if (match === null) return null;
    if (match[1] !== undefined) bytes.push(Buffer.from([simpleEscapes[match[1]]!]));
    else if (match[2] !== undefined || match[3] !== undefined) {
      const byte = match[2] !== undefined ? parseInt(match[2], 16) : parseInt(match[3]!, 8);
      if (byte > 0xff) return null;
      bytes.push(Buffer.from([byte]));
    } else {
      const codePoint = parseInt(match[4] ?? match[5]!, 16);
      if (codePoint > 0x10ffff) return null;
      bytes.push(Buffer.from(String.fromCodePoint(codePoint), 'utf8'));
    }
    plainStart = escape.lastIndex;
    index = body.indexOf('\\', plainStart);
  }
  bytes.push(Buffer.from(body.slice(plainStart), 'utf8'));
  return Buffer.concat(bytes);
}

/** etcdctl's simple Txn: SUCCESS or FAILURE, then each response after a blank line. */
export function txnSimple(response: WireTxnResponse, style: KeyValueStyle): string {
  const parts = [response.succeeded ? 'SUCCESS\n' : 'FAILURE\n'];
  for (const op of response.responses) parts.push('\n', responseSimple(op, style));
  return parts.join('');
}

function responseSimple(op: WireResponseOp, style: KeyValueStyle): string {
  switch (op.response) {
    case 'response_range': return rangeSimple(op.response_range!, style);
    case 'response_put': return putSimple(op.response_put!, style);
    case 'response_delete_range': return deleteSimple(op.response_delete_range!, style);
    case 'response_txn': return txnSimple(op.response_txn!, style);
  }
}

async function runTxn(context: CommandContext, parsed: ParsedCommand): Promise<number> {
  if (parsed.positionals.length !== 0) {
    throw new CtlUsageError('txn command does not accept argument');
  }
  const request = parseTxnText((await context.io.readStdin()).toString());
  const response = await context.connection.unary<WireTxnResponse>({
    service: 'KV', method: 'Txn', request, kind: 'write',
  });
  context.io.stdout.write(context.config.writeOut === 'json'
    ? `${goJson(response, txnShape)}\n`
    : txnSimple(response, { hex: context.config.hex }));
  return exitCodes.success;
}

/** `txn`. */
export const txnCommands: readonly CommandSpec[] = [
  {
    path: ['txn'], synopsis: '< compares, blank line, success ops, blank line, failure ops',
    options: {}, run: runTxn,
  },
];
