/**
 * What every `synod ctl` command is made of: the I/O it is handed (so tests run it in process),
 * the spec a command group exports, and the two ways a command fails.
 *
 * The two failures never leave `ctlMain`: it prints them as one `Error: …` line on stderr, as
 * etcdctl does, and turns them into the exit code. They are not `SynodError`s because nothing
 * outside the command line ever handles them.
 */

import type { ParseArgsConfig } from 'node:util';
import type { Connection } from './connection.js';
import type { GlobalConfig } from './global-flags.js';
import type { PasswordInput } from './password-input.js';

/** A sink for text: `process.stdout`, or a test's collector. */
export interface TextWriter {
  write(text: string): unknown;
}

/** Everything a command reads from or writes to the world outside the cluster. */
export interface CtlIo {
  readonly stdout: TextWriter;
  readonly stderr: TextWriter;
  /** Resolves with all of standard input (`txn`, and `put KEY` without a value, kept binary). */
  readonly readStdin: () => Promise<Buffer | string>;
  /**
   * Reads one line from the terminal with echo off, for password prompts. Present only when
   * standard input is a terminal; without it prompts read the next line of `readStdin`.
   */
  readonly readTerminalLine?: () => Promise<string>;
  /** Where `SYNODCTL_*` and `ETCDCTL_*` are looked up. */
  readonly env: Readonly<Record<string, string | undefined>>;
  /** Aborted on SIGINT: ends `watch` and `lease keep-alive`. */
  readonly interrupt: AbortSignal;
  /**
   * Called once a long-running command is established: the watch is created on the server, or the
   * first keep-alive was answered. Lets an in-process caller act "after it started" without a
   * sleep.
   */
  readonly onStarted?: () => void;
}

/** The option table of one command, in `node:util` `parseArgs` form. */
export type OptionSpec = NonNullable<ParseArgsConfig['options']>;

/** Flag values after parsing: strings for valued flags, booleans for switches. */
export type FlagValues = Readonly<Record<string, FlagValue>>;

/** One flag's value (`node:util` parseArgs also types repeated flags, which none of ours are). */
export type FlagValue = string | boolean | (string | boolean)[] | undefined;

/** One command's parsed command line, the command words removed. */
export interface ParsedCommand {
  readonly values: FlagValues;
  readonly positionals: readonly string[];
}

/** What a command runs with. */
export interface CommandContext {
  readonly io: CtlIo;
  readonly config: GlobalConfig;
  /** The endpoints, dialled lazily on first use. */
  readonly connection: Connection;
  /** Standard input as passwords are read from it (shared with `--user`'s prompt). */
  readonly passwords: PasswordInput;
}

/** How a command's result may be printed (`-w`). */
export type OutputFormat = 'simple' | 'json' | 'table';

/** One command: `path` words select it (`['lease', 'grant']`), `run` returns the exit code. */
export interface CommandSpec {
  readonly path: readonly string[];
  /** The arguments and flags after the command words, for the usage text. */
  readonly synopsis: string;
  readonly options: OptionSpec;
  /** The `-w` values the command prints; `simple` and `json` when omitted. */
  readonly formats?: readonly OutputFormat[];
  run(context: CommandContext, parsed: ParsedCommand): Promise<number>;
}

/** The exit codes `ctlMain` returns. etcdctl's own codes are listed in docs/ctl.md. */
export const exitCodes = Object.freeze({
  success: 0,
  /** The server or the environment refused: etcdctl's ExitError. */
  error: 1,
  /** The command line was wrong; nothing was sent. */
  usage: 2,
  /** `watch` or `lease keep-alive` ended by SIGINT, as a shell reports a process it interrupted. */
  interrupted: 130,
});

/** A wrong command line: printed as `Error: <message>` with the usage line; exit 2. */
export class CtlUsageError extends Error {
  override readonly name: string = 'CtlUsageError';
}

/** A failure the user can act on (a missing file, a refused request); exit 1. */
export class CtlCommandError extends Error {
  override readonly name: string = 'CtlCommandError';
}

/** Flag `name` as a string, or `fallback` when absent. */
export function stringFlag(values: FlagValues, name: string, fallback = ''): string {
  const value = values[name];
  return typeof value === 'string' ? value : fallback;
}

/** Flag `name` as a boolean switch. */
export function booleanFlag(values: FlagValues, name: string): boolean {
  return values[name] === true;
}

/** A decimal int64 flag (`--rev`, `--limit`), as the decimal string the wire takes. */
export function integerFlag(values: FlagValues, name: string): string {
  const text = stringFlag(values, name, '0');
  if (!/^-?\d+$/.test(text)) {
    throw new CtlUsageError(`invalid argument "${text}" for "--${name}" flag`);
  }
  return BigInt(text).toString();
}

/** Rejects more or fewer positional arguments than the command takes. */
export function expectArguments(
  parsed: ParsedCommand, range: { readonly min: number; readonly max: number }, message: string,
): void {
  const count = parsed.positionals.length;
  if (count < range.min || count > range.max) throw new CtlUsageError(message);
}

/** Writes a result as `-w` asks: `json()` and a newline for json, `simple()` otherwise. */
export function printResult(
  context: CommandContext, output: { readonly json: () => string; readonly simple: () => string },
): void {
  context.io.stdout.write(
    context.config.writeOut === 'json' ? `${output.json()}\n` : output.simple());
}
