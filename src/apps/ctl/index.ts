/**
 * `synod ctl`: Synod's own command line for the etcd v3 API, etcdctl 3.4's commands, flags and
 * output (docs/ctl.md). `ctlMain` parses the command line, runs one command over a Connection
 * and returns the exit code; it takes its I/O as an argument so tests run it in process.
 */

import { getEventListeners } from 'node:events';
import { parseArgs } from 'node:util';
import { loadEtcdProto } from '../../server/grpc/proto.js';
import {
  CtlCommandError, CtlUsageError, exitCodes,
  type CommandSpec, type CtlIo, type FlagValue, type OptionSpec, type OutputFormat,
  type ParsedCommand,
} from './command.js';
import { commandGroups, findCommand, usageText } from './commands.js';
import { Connection, isServiceError, serviceErrorMessage } from './connection.js';
import { globalConfigOf, globalOptions } from './global-flags.js';
import { PasswordInput, credentialsOf, readTerminalLine } from './password-input.js';

export type { CtlIo, TextWriter } from './command.js';
export { exitCodes } from './command.js';

/** The command a command line names, and its flags parsed strictly against that command's table. */
function parseCommandLine(
  argv: readonly string[],
): { spec: CommandSpec; parsed: ParsedCommand } | 'help' {
  // A first, lenient pass finds the command words among the positionals.
  const loose = parseArgs({
    args: [...argv], options: globalOptions, strict: false, allowPositionals: true,
  });
  if (loose.positionals.length === 0) {
    if (loose.values['help'] === true) return 'help';
    throw new CtlUsageError('no command given');
  }
  const spec = findCommand(loose.positionals);
  if (spec === null) {
    const [first, second] = loose.positionals;
    throw new CtlUsageError(commandGroups.has(first!)
      ? `unknown subcommand "${second ?? ''}" for "${first}"`
      : `unknown command "${first}" for "synod ctl"`);
  }
  const options = { ...globalOptions, ...spec.options };
  let strict;
  let switches;
  try {
    switches = explicitSwitches(argv, options);
    strict = parseArgs({ args: switches.args, options, strict: true, allowPositionals: true });
  } catch (error) {
    throw new CommandUsageError(spec, (error as Error).message);
  }
  const positionals = strict.positionals.slice(spec.path.length);
  const values: Record<string, FlagValue> = { ...strict.values, ...switches.values };
  return { spec, parsed: { values, positionals } };
}

/** Go's strconv.ParseBool, which pflag applies to `--switch=VALUE`. */
const switchValues: Readonly<Record<string, boolean>> = Object.freeze({
  1: true, t: true, T: true, TRUE: true, true: true, True: true,
  0: false, f: false, F: false, FALSE: false, false: false, False: false,
});

/**
 * pflag's `--switch=true|false` (etcdctl's `user add --interactive=false`), which parseArgs
 * refuses for a boolean option: each such word is taken out of `argv` and its value returned,
 * so the last mention of a switch wins, as in pflag. Words after `--` are left alone.
 */
function explicitSwitches(
  argv: readonly string[], options: OptionSpec,
): { readonly args: string[]; readonly values: Record<string, boolean> } {
  const args: string[] = [];
  const values: Record<string, boolean> = {};
  const end = argv.indexOf('--');
  for (const [index, word] of argv.entries()) {
    const match = end >= 0 && index > end ? null : /^--([^=]+)(?:=(.*))?$/s.exec(word);
    const name = match?.[1];
    if (name === undefined || options[name]?.type !== 'boolean') {
      args.push(word);
      continue;
    }
    const text = match![2];
    if (text === undefined) {
      args.push(word);
      delete values[name];
      continue;
    }
    const value = switchValues[text];
    if (value === undefined) {
      throw new CtlUsageError(`invalid argument "${text}" for "--${name}" flag`);
    }
    values[name] = value;
  }
  return { args, values };
}

/** A usage error once the command is known, so the report can show that command's usage. */
class CommandUsageError extends CtlUsageError {
  constructor(readonly spec: CommandSpec, message: string) {
    super(message);
  }
}

/** Runs `synod ctl` with `argv` (the words after `ctl`); resolves with the exit code. */
export async function ctlMain(argv: readonly string[], io: CtlIo = processIo()): Promise<number> {
  let spec: CommandSpec | null = null;
  let connection: Connection | null = null;
  try {
    const commandLine = parseCommandLine(argv);
    if (commandLine === 'help') {
      io.stdout.write(usageText());
      return exitCodes.success;
    }
    spec = commandLine.spec;
    const { parsed } = commandLine;
    if (parsed.values['help'] === true) {
      io.stdout.write(`usage: ${commandUsage(spec)}\n`);
      return exitCodes.success;
    }
    const config = globalConfigOf(parsed.values, io.env);
    const formats: readonly OutputFormat[] = spec.formats ?? ['simple', 'json'];
    if (!formats.includes(config.writeOut)) {
      throw new CtlUsageError(`${config.writeOut} not supported as output format`);
    }
    const passwords = new PasswordInput(io);
    connection = new Connection({
      config, proto: loadEtcdProto(), credentials: () => credentialsOf(config.user, passwords),
    });
    return await spec.run({ io, config, connection, passwords }, parsed);
  } catch (error) {
    return report(io, error, error instanceof CommandUsageError ? error.spec : spec);
  } finally {
    await connection?.close();
  }
}

function commandUsage(spec: CommandSpec): string {
  return ['synod ctl', ...spec.path, spec.synopsis].filter((part) => part !== '').join(' ');
}

/** Prints an expected failure as etcdctl does (`Error: …` on stderr) and picks the exit code. */
function report(io: CtlIo, error: unknown, spec: CommandSpec | null): number {
  if (error instanceof CtlUsageError) {
    io.stderr.write(`Error: ${error.message}\n`);
    io.stderr.write(spec === null ? usageText() : `usage: ${commandUsage(spec)}\n`);
    return exitCodes.usage;
  }
  if (error instanceof CtlCommandError) {
    io.stderr.write(`Error: ${error.message}\n`);
    return exitCodes.error;
  }
  if (isServiceError(error)) {
    io.stderr.write(`Error: ${serviceErrorMessage(error)}\n`);
    return exitCodes.error;
  }
  if (isSystemError(error)) {
    io.stderr.write(`Error: ${error.message}\n`);
    return exitCodes.error;
  }
  // Anything else is a bug: let it crash with its stack.
  throw error;
}

/** A failed system call (an unwritable snapshot path, say): Node's errors carry `syscall`. */
function isSystemError(error: unknown): error is NodeJS.ErrnoException {
  return error instanceof Error && typeof (error as NodeJS.ErrnoException).syscall === 'string';
}

/**
 * The process's own streams and environment. SIGINT aborts `interrupt` when a command listens to
 * it (watch, keep-alive: they stop cleanly and return 130); otherwise the process exits 130 at
 * once, as an uncaught SIGINT would, so Ctrl-C still ends a `txn` waiting on the terminal.
 */
function processIo(): CtlIo {
  const interrupt = new AbortController();
  const onSigint = (): void => {
    process.removeListener('SIGINT', onSigint);
    const listened = getEventListeners(interrupt.signal, 'abort').length > 0;
    interrupt.abort();
    if (!listened) process.exit(exitCodes.interrupted);
  };
  process.on('SIGINT', onSigint);
  return {
    stdout: process.stdout,
    stderr: process.stderr,
    readStdin: async () => {
      const chunks: Buffer[] = [];
      for await (const chunk of process.stdin) chunks.push(Buffer.from(chunk as Buffer));
      return Buffer.concat(chunks);
    },
    ...(process.stdin.isTTY ? { readTerminalLine: () => readTerminalLine(process.stdin) } : {}),
    env: process.env,
    interrupt: interrupt.signal,
  };
}
