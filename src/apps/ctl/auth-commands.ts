/**
 * `auth enable|disable` (command/auth_command.go at v3.4.23) and etcdctl 3.5's `auth status`.
 * `enable` and `disable` print their one line whatever `-w` says, as etcdctl does.
 */

import {
  expectArguments, exitCodes, printResult,
  type CommandContext, type CommandSpec, type ParsedCommand,
} from './command.js';
import { isServiceError } from './connection.js';
import { authStatusShape, goJson } from './json-output.js';
import type { WireAuthStatusResponse, WireHeaderResponse } from './wire.js';

/**
 * AuthEnable attempts of one `auth enable`. etcdctl loops until AuthEnable stops answering
 * "root user does not have root role"; after one RoleAdd and grant the second attempt passes.
 */
const authEnableAttemptsMax = 3;

/** The answer etcdctl meets by creating the root role and granting it to root. */
const rootRoleMissing = 'etcdserver: root user does not have root role';

function isRootRoleMissing(error: unknown): boolean {
  return isServiceError(error) && error.details === rootRoleMissing;
}

/** AuthEnable, creating the root role and granting it to root when that is all that is missing. */
async function runEnable(context: CommandContext, parsed: ParsedCommand): Promise<number> {
  expectArguments(parsed, { min: 0, max: 0 }, 'auth enable command does not accept any arguments');
  const { connection } = context;
  const write = (method: string, request: object) =>
    connection.unary<WireHeaderResponse>({ service: 'Auth', method, request, kind: 'write' });
  for (let attempt = 1; ; attempt++) {
    try {
      await write('AuthEnable', {});
      break;
    } catch (error) {
      if (attempt === authEnableAttemptsMax || !isRootRoleMissing(error)) throw error;
    }
    await write('RoleAdd', { name: 'root' });
    await write('UserGrantRole', { user: 'root', role: 'root' });
  }
  context.io.stdout.write('Authentication Enabled\n');
  return exitCodes.success;
}

async function runDisable(context: CommandContext, parsed: ParsedCommand): Promise<number> {
  expectArguments(parsed, { min: 0, max: 0 }, 'auth disable command does not accept any arguments');
  await context.connection.unary<WireHeaderResponse>({
    service: 'Auth', method: 'AuthDisable', request: {}, kind: 'write',
  });
  context.io.stdout.write('Authentication Disabled\n');
  return exitCodes.success;
}

async function runStatus(context: CommandContext, parsed: ParsedCommand): Promise<number> {
  expectArguments(parsed, { min: 0, max: 0 }, 'auth status command does not accept any arguments');
  const response = await context.connection.unary<WireAuthStatusResponse>({
    service: 'Auth', method: 'AuthStatus', request: {}, kind: 'read',
  });
  printResult(context, {
    json: () => goJson(response, authStatusShape),
    simple: () => `Authentication Status: ${response.enabled}\n` +
      `AuthRevision: ${response.authRevision}\n`,
  });
  return exitCodes.success;
}

/** The auth commands. */
export const authCommands: readonly CommandSpec[] = [
  {
    path: ['auth', 'enable'], synopsis: '', options: {}, formats: ['simple', 'json', 'table'],
    run: runEnable,
  },
  {
    path: ['auth', 'disable'], synopsis: '', options: {}, formats: ['simple', 'json', 'table'],
    run: runDisable,
  },
  { path: ['auth', 'status'], synopsis: '', options: {}, run: runStatus },
];
