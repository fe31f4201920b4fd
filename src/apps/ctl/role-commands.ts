/**
 * `role add|delete|get|list|grant-permission|revoke-permission` (command/role_command.go and
 * printer_simple.go at v3.4.23). With auth on, every one of them is root only on the server.
 */

import {
  CtlUsageError, booleanFlag, expectArguments, exitCodes, printResult,
  type CommandContext, type CommandSpec, type ParsedCommand,
} from './command.js';
import { goJson, headerOnlyShape, roleGetShape, rolesShape } from './json-output.js';
import {
  fromKeyRangeEnd, keyBytes, prefixRangeEnd, rangeEndField,
  type WireHeaderResponse, type WirePermission, type WireRoleGetResponse, type WireRolesResponse,
} from './wire.js';

/** authpb.Permission.Type's names, which etcdctl reads in any case (`read`, `READWRITE`). */
const permissionTypes: readonly WirePermission['permType'][] = ['READ', 'WRITE', 'READWRITE'];

/** A permission's key range. `rangeEnd` empty: the key alone; `"\0"`: every key from `key`. */
export interface PermissionRange {
  readonly key: Buffer;
  readonly rangeEnd: Buffer;
}

const isOpenEnded = (rangeEnd: Buffer): boolean => rangeEnd.equals(fromKeyRangeEnd);

/** One permission line of `role get`: `\tkey`, `\t[key, end)` or `\t[key, <open ended>`. */
function permissionLine(permission: WirePermission): string {
  const key = permission.key.toString('utf8');
  const end = permission.range_end;
  if (end.length === 0) return `\t${key}\n`;
  const range = isOpenEnded(end)
    ? `\t[${key}, <open ended>` : `\t[${key}, ${end.toString('utf8')})`;
  const prefix = prefixRangeEnd(permission.key).equals(end) ? ` (prefix ${key})` : '';
  return `${range}${prefix}\n`;
}

/** etcdctl's simple RoleGet: the role, then its read and its write permissions. */
export function roleGetSimple(role: string, response: WireRoleGetResponse): string {
  const lines = (types: readonly WirePermission['permType'][]): string => response.perm
    .filter((permission) => types.includes(permission.permType)).map(permissionLine).join('');
  return `Role ${role}\nKV Read:\n${lines(['READ', 'READWRITE'])}` +
    `KV Write:\n${lines(['WRITE', 'READWRITE'])}`;
}

/** Prints `role get`'s answer for `role` as `-w` asks (also `user get --detail`'s). */
export async function printRole(context: CommandContext, role: string): Promise<void> {
  const response = await context.connection.unary<WireRoleGetResponse>({
    service: 'Auth', method: 'RoleGet', request: { role }, kind: 'read',
  });
  printResult(context, {
    json: () => goJson(response, roleGetShape), simple: () => roleGetSimple(role, response),
  });
}

/**
 * etcdctl's permRange: the range that `KEY [END]` and `--prefix`/`--from-key` name. An empty
 * KEY is `"\0"` (etcd's permissions are intervals of bytes), every key with either flag.
 */
export function permissionRange(
  keys: readonly string[], flags: { readonly prefix: boolean; readonly fromKey: boolean },
): PermissionRange {
  const exclusive = '--from-key and --prefix flags are mutually exclusive';
  const [keyText, endText] = keys;
  if (keyText === undefined) throw new CtlUsageError('a permission needs a key');
  if (keyText === '') {
    if (flags.prefix && flags.fromKey) throw new CtlUsageError(exclusive);
    const everyKey = flags.prefix || flags.fromKey;
    return { key: Buffer.from([0]), rangeEnd: everyKey ? fromKeyRangeEnd : Buffer.alloc(0) };
  }
  const key = keyBytes(keyText);
  if (endText === undefined) {
    if (flags.prefix && flags.fromKey) throw new CtlUsageError(exclusive);
    if (flags.prefix) return { key, rangeEnd: prefixRangeEnd(key) };
    return { key, rangeEnd: flags.fromKey ? fromKeyRangeEnd : Buffer.alloc(0) };
  }
  if (flags.prefix) throw new CtlUsageError('unexpected endkey argument with --prefix flag');
  if (flags.fromKey) throw new CtlUsageError('unexpected endkey argument with --from-key flag');
  return { key, rangeEnd: keyBytes(endText) };
}

function rangeFlags(parsed: ParsedCommand): { prefix: boolean; fromKey: boolean } {
  return {
    prefix: booleanFlag(parsed.values, 'prefix'), fromKey: booleanFlag(parsed.values, 'from-key'),
  };
}

/** add and delete: one role name, one RPC, `Role NAME <done>`. */
function nameCommand(options: {
  readonly verb: 'add' | 'delete';
  readonly method: string;
  readonly done: string;
}): CommandSpec['run'] {
  return async (context, parsed) => {
    const usage = `role ${options.verb} command requires role name as its argument`;
    expectArguments(parsed, { min: 1, max: 1 }, usage);
    const role = parsed.positionals[0]!;
    const request = options.verb === 'add' ? { name: role } : { role };
    const response = await context.connection.unary<WireHeaderResponse>({
      service: 'Auth', method: options.method, request, kind: 'write',
    });
    printResult(context, {
      json: () => goJson(response, headerOnlyShape), simple: () => `Role ${role} ${options.done}\n`,
    });
    return exitCodes.success;
  };
}

async function runGet(context: CommandContext, parsed: ParsedCommand): Promise<number> {
  const usage = 'role get command requires role name as its argument';
  expectArguments(parsed, { min: 1, max: 1 }, usage);
  await printRole(context, parsed.positionals[0]!);
  return exitCodes.success;
}

async function runList(context: CommandContext, parsed: ParsedCommand): Promise<number> {
  expectArguments(parsed, { min: 0, max: 0 }, 'role list command requires no arguments');
  const response = await context.connection.unary<WireRolesResponse>({
    service: 'Auth', method: 'RoleList', request: {}, kind: 'read',
  });
  printResult(context, {
    json: () => goJson(response, rolesShape),
    simple: () => response.roles.map((role) => `${role}\n`).join(''),
  });
  return exitCodes.success;
}

async function runGrantPermission(context: CommandContext, parsed: ParsedCommand): Promise<number> {
  if (parsed.positionals.length < 3) {
    throw new CtlUsageError('role grant command requires role name, permission type, ' +
      'and key [endkey] as its argument');
  }
  const [role, typeText, ...keys] = parsed.positionals as [string, string, ...string[]];
  const permType = permissionTypes.find((type) => type === typeText.toUpperCase());
  if (permType === undefined) throw new CtlUsageError(`invalid permission type: ${typeText}`);
  const { key, rangeEnd } = permissionRange(keys, rangeFlags(parsed));
  const response = await context.connection.unary<WireHeaderResponse>({
    service: 'Auth', method: 'RoleGrantPermission', kind: 'write',
    request: { name: role, perm: { permType, key, ...rangeEndField(rangeEnd) } },
  });
  printResult(context, {
    json: () => goJson(response, headerOnlyShape), simple: () => `Role ${role} updated\n`,
  });
  return exitCodes.success;
}

/** etcdctl's simple RoleRevokePermission, which names the key as it was typed. */
function revokedText(role: string, keyText: string, rangeEnd: Buffer): string {
  if (rangeEnd.length === 0) return `Permission of key ${keyText} is revoked from role ${role}\n`;
  const end = isOpenEnded(rangeEnd) ? '<open ended>' : `${rangeEnd.toString('utf8')})`;
  return `Permission of range [${keyText}, ${end} is revoked from role ${role}\n`;
}

async function runRevokePermission(
  context: CommandContext, parsed: ParsedCommand,
): Promise<number> {
  if (parsed.positionals.length < 2) {
    throw new CtlUsageError(
      'role revoke-permission command requires role name and key [endkey] as its argument');
  }
  const [role, ...keys] = parsed.positionals as [string, ...string[]];
  const { key, rangeEnd } = permissionRange(keys, rangeFlags(parsed));
  const response = await context.connection.unary<WireHeaderResponse>({
    service: 'Auth', method: 'RoleRevokePermission', kind: 'write',
    request: { role, key, ...rangeEndField(rangeEnd) },
  });
  printResult(context, {
    json: () => goJson(response, headerOnlyShape),
    simple: () => revokedText(role, keys[0]!, rangeEnd),
  });
  return exitCodes.success;
}

const rangeOptions = {
  prefix: { type: 'boolean' }, 'from-key': { type: 'boolean' },
} as const;

/** The role commands. */
export const roleCommands: readonly CommandSpec[] = [
  {
    path: ['role', 'add'], synopsis: 'ROLE', options: {},
    run: nameCommand({ verb: 'add', method: 'RoleAdd', done: 'created' }),
  },
  {
    path: ['role', 'delete'], synopsis: 'ROLE', options: {},
    run: nameCommand({ verb: 'delete', method: 'RoleDelete', done: 'deleted' }),
  },
  { path: ['role', 'get'], synopsis: 'ROLE', options: {}, run: runGet },
  { path: ['role', 'list'], synopsis: '', options: {}, run: runList },
  {
    path: ['role', 'grant-permission'],
    synopsis: 'ROLE read|write|readwrite KEY [END] [--prefix] [--from-key]',
    options: rangeOptions, run: runGrantPermission,
  },
  {
    path: ['role', 'revoke-permission'], synopsis: 'ROLE KEY [END] [--prefix] [--from-key]',
    options: rangeOptions, run: runRevokePermission,
  },
];
