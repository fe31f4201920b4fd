/**
 * `user add|delete|get|list|passwd|grant-role|revoke-role` (command/user_command.go and
 * printer_simple.go at v3.4.23). Passwords come from the argument (`NAME:PASSWORD`),
 * `--new-user-password`, two prompts (the default, `--interactive`), or with
 * `--interactive=false` the first word of stdin (password-input.ts).
 */

import {
  CtlUsageError, booleanFlag, expectArguments, exitCodes, printResult, stringFlag,
  type CommandContext, type CommandSpec, type ParsedCommand,
} from './command.js';
import { goJson, headerOnlyShape, rolesShape, userListShape } from './json-output.js';
import { newPasswordOf } from './password-input.js';
import { printRole } from './role-commands.js';
import type { WireHeaderResponse, WireRolesResponse, WireUserListResponse } from './wire.js';

/** `--interactive`, on unless `--interactive=false`. */
function interactive(parsed: ParsedCommand): boolean {
  return parsed.values['interactive'] !== false;
}

/** The new password: prompted twice, or the first word of stdin with `--interactive=false`. */
function passwordFor(
  context: CommandContext, parsed: ParsedCommand, name: string,
): Promise<string> {
  return interactive(parsed) ? newPasswordOf(context.passwords, name) : context.passwords.word();
}

/** etcdctl's userAddCommandFunc: who is added, with which password, or with none. */
async function userToAdd(
  context: CommandContext, parsed: ParsedCommand,
): Promise<{ readonly name: string; readonly password: string; readonly noPassword: boolean }> {
  const argument = parsed.positionals[0]!;
  if (booleanFlag(parsed.values, 'no-password')) {
    return { name: argument, password: '', noPassword: true };
  }
  const given = stringFlag(parsed.values, 'new-user-password');
  if (given !== '') return { name: argument, password: given, noPassword: false };
  const colon = argument.indexOf(':');
  if (colon < 0) {
    return {
      name: argument, password: await passwordFor(context, parsed, argument), noPassword: false,
    };
  }
  const name = argument.slice(0, colon);
  if (name === '') throw new CtlUsageError('empty user name is not allowed');
  return { name, password: argument.slice(colon + 1), noPassword: false };
}

async function runAdd(context: CommandContext, parsed: ParsedCommand): Promise<number> {
  const usage = 'user add command requires user name as its argument';
  expectArguments(parsed, { min: 1, max: 1 }, usage);
  const user = await userToAdd(context, parsed);
  const response = await context.connection.unary<WireHeaderResponse>({
    service: 'Auth', method: 'UserAdd', kind: 'write',
    request: {
      name: user.name, password: user.password, options: { no_password: user.noPassword },
    },
  });
  printResult(context, {
    json: () => goJson(response, headerOnlyShape), simple: () => `User ${user.name} created\n`,
  });
  return exitCodes.success;
}

async function runDelete(context: CommandContext, parsed: ParsedCommand): Promise<number> {
  const usage = 'user delete command requires user name as its argument';
  expectArguments(parsed, { min: 1, max: 1 }, usage);
  const name = parsed.positionals[0]!;
  const response = await context.connection.unary<WireHeaderResponse>({
    service: 'Auth', method: 'UserDelete', request: { name }, kind: 'write',
  });
  printResult(context, {
    json: () => goJson(response, headerOnlyShape), simple: () => `User ${name} deleted\n`,
  });
  return exitCodes.success;
}

/**
 * `user get NAME`; with `--detail`, `User: NAME` and then each role as `role get` prints it,
 * after a blank line, in json output too (etcdctl prints those two lines itself).
 */
async function runGet(context: CommandContext, parsed: ParsedCommand): Promise<number> {
  const usage = 'user get command requires user name as its argument';
  expectArguments(parsed, { min: 1, max: 1 }, usage);
  const name = parsed.positionals[0]!;
  const response = await context.connection.unary<WireRolesResponse>({
    service: 'Auth', method: 'UserGet', request: { name }, kind: 'read',
  });
  if (!booleanFlag(parsed.values, 'detail')) {
    printResult(context, {
      json: () => goJson(response, rolesShape),
      simple: () => `User: ${name}\nRoles:${response.roles.map((role) => ` ${role}`).join('')}\n`,
    });
    return exitCodes.success;
  }
  context.io.stdout.write(`User: ${name}\n`);
  for (const role of response.roles) {
    context.io.stdout.write('\n');
    await printRole(context, role);
  }
  return exitCodes.success;
}

async function runList(context: CommandContext, parsed: ParsedCommand): Promise<number> {
  expectArguments(parsed, { min: 0, max: 0 }, 'user list command requires no arguments');
  const response = await context.connection.unary<WireUserListResponse>({
    service: 'Auth', method: 'UserList', request: {}, kind: 'read',
  });
  printResult(context, {
    json: () => goJson(response, userListShape),
    simple: () => response.users.map((user) => `${user}\n`).join(''),
  });
  return exitCodes.success;
}

async function runPasswd(context: CommandContext, parsed: ParsedCommand): Promise<number> {
  const usage = 'user passwd command requires user name as its argument';
  expectArguments(parsed, { min: 1, max: 1 }, usage);
  const name = parsed.positionals[0]!;
  const password = await passwordFor(context, parsed, name);
  const response = await context.connection.unary<WireHeaderResponse>({
    service: 'Auth', method: 'UserChangePassword', request: { name, password }, kind: 'write',
  });
  printResult(context, {
    json: () => goJson(response, headerOnlyShape), simple: () => 'Password updated\n',
  });
  return exitCodes.success;
}

/** grant-role and revoke-role: a user and a role, one RPC, `Role ROLE is <done> user USER`. */
function roleChangeCommand(options: {
  readonly method: 'UserGrantRole' | 'UserRevokeRole';
  readonly usage: string;
  readonly done: string;
}): CommandSpec['run'] {
  return async (context, parsed) => {
    expectArguments(parsed, { min: 2, max: 2 }, options.usage);
    const [user, role] = parsed.positionals as [string, string];
    // The request names the user `user` in UserGrantRole but `name` in UserRevokeRole.
    const request = options.method === 'UserGrantRole' ? { user, role } : { name: user, role };
    const response = await context.connection.unary<WireHeaderResponse>({
      service: 'Auth', method: options.method, request, kind: 'write',
    });
    printResult(context, {
      json: () => goJson(response, headerOnlyShape),
      simple: () => `Role ${role} is ${options.done} user ${user}\n`,
    });
    return exitCodes.success;
  };
}

const interactiveOption = { interactive: { type: 'boolean' } } as const;

/** The user commands. */
export const userCommands: readonly CommandSpec[] = [
  {
    path: ['user', 'add'],
    synopsis: 'NAME[:PASSWORD] [--new-user-password PASSWORD] [--no-password] ' +
      '[--interactive=false]',
    options: {
      ...interactiveOption, 'new-user-password': { type: 'string' },
      'no-password': { type: 'boolean' },
    },
    run: runAdd,
  },
  { path: ['user', 'delete'], synopsis: 'NAME', options: {}, run: runDelete },
  {
    path: ['user', 'get'], synopsis: 'NAME [--detail]', options: { detail: { type: 'boolean' } },
    run: runGet,
  },
  { path: ['user', 'list'], synopsis: '', options: {}, run: runList },
  {
    path: ['user', 'passwd'], synopsis: 'NAME [--interactive=false]', options: interactiveOption,
    run: runPasswd,
  },
  {
    path: ['user', 'grant-role'], synopsis: 'NAME ROLE', options: {},
    run: roleChangeCommand({
      method: 'UserGrantRole', done: 'granted to',
      usage: 'user grant command requires user name and role name as its argument',
    }),
  },
  {
    path: ['user', 'revoke-role'], synopsis: 'NAME ROLE', options: {},
    run: roleChangeCommand({
      method: 'UserRevokeRole', done: 'revoked from',
      usage: 'user revoke-role requires user name and role name as its argument',
    }),
  },
];
