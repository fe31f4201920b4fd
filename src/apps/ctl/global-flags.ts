/**
 * etcdctl's global flags (etcdctl/ctlv3/ctl.go, command/global.go at v3.4.23) and their
 * environment variables. A flag on the command line wins; otherwise `SYNODCTL_<NAME>`, then
 * etcdctl's `ETCDCTL_<NAME>` (NAME is the flag in upper case, `-` as `_`), then the default.
 * The result is validated once and frozen.
 */

import { CtlUsageError, type FlagValues, type OptionSpec, type OutputFormat } from './command.js';

/** The flags every command accepts, before or after the command words. */
export const globalOptions: OptionSpec = Object.freeze({
  endpoints: { type: 'string' },
  'dial-timeout': { type: 'string' },
  'command-timeout': { type: 'string' },
  'write-out': { type: 'string', short: 'w' },
  hex: { type: 'boolean' },
  cacert: { type: 'string' },
  cert: { type: 'string' },
  key: { type: 'string' },
  user: { type: 'string' },
  password: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
});

/** TLS material named on the command line (paths, read when the connection is built). */
export interface TlsFiles {
  /** CA bundle that verifies the server; the system roots when absent. */
  readonly cacert?: string;
  /** Client certificate chain; given together with `key`. */
  readonly cert?: string;
  readonly key?: string;
}

/**
 * `--user` and `--password`, split as etcdctl's authCfgFromCmd splits them: with `--password`,
 * `--user` is the whole name; without, `--user name:password` splits at the first colon, and a
 * name alone leaves the password to be asked for.
 */
export interface UserFlags {
  readonly name: string;
  /** Null: ask for it (`Password: `) when the connection first needs a token. */
  readonly password: string | null;
}

/** The validated global configuration of one invocation. */
export interface GlobalConfig {
  /** In the order given; each `host:port`, or a URL (`http://`, `https://`). Never empty. */
  readonly endpoints: readonly string[];
  /** How long to wait for a connection to one endpoint, ms. Positive. */
  readonly dialTimeoutMs: number;
  /** The gRPC deadline of each unary call, ms. Positive. */
  readonly commandTimeoutMs: number;
  /** The command timeout was given explicitly (only then does `snapshot save` get a deadline). */
  readonly commandTimeoutExplicit: boolean;
  readonly writeOut: OutputFormat;
  /** Print keys and values as `\x..` hex in simple output. */
  readonly hex: boolean;
  /** TLS is used when this is set or an endpoint is `https://`. */
  readonly tls: TlsFiles | null;
  /** Who to authenticate as; null without `--user` (or with an empty one). */
  readonly user: UserFlags | null;
}

const defaults = Object.freeze({
  endpoints: '127.0.0.1:2379',
  'dial-timeout': '2s',
  'command-timeout': '5s',
  'write-out': 'simple',
});

const outputFormats: readonly OutputFormat[] = ['simple', 'json', 'table'];

/** The environment variables that may set global flag `name`, in precedence order. */
export function environmentNames(name: string): readonly string[] {
  const suffix = name.toUpperCase().replaceAll('-', '_');
  return [`SYNODCTL_${suffix}`, `ETCDCTL_${suffix}`];
}

/** Resolves and validates the global flags from parsed `values` and `env`. */
export function globalConfigOf(
  values: FlagValues, env: Readonly<Record<string, string | undefined>>,
): GlobalConfig {
  type TextFlag = keyof typeof defaults | 'cacert' | 'cert' | 'key' | 'user' | 'password';
  const text = (name: TextFlag): string | undefined => {
    const given = values[name];
    if (typeof given === 'string') return given;
    for (const variable of environmentNames(name)) {
      const value = env[variable];
      if (value !== undefined && value !== '') return value;
    }
    return name in defaults ? defaults[name as keyof typeof defaults] : undefined;
  };
  const endpoints = text('endpoints')!.split(',').map((each) => each.trim())
    .filter((each) => each !== '');
  if (endpoints.length === 0) throw new CtlUsageError('--endpoints names no endpoint');
  const writeOut = text('write-out')!;
  if (!outputFormats.includes(writeOut as OutputFormat)) {
    throw new CtlUsageError(`unsupported output format "${writeOut}" (simple, json or table)`);
  }
  const commandTimeoutExplicit = typeof values['command-timeout'] === 'string' ||
    environmentNames('command-timeout').some((variable) => (env[variable] ?? '') !== '');
  return Object.freeze({
    endpoints: Object.freeze(endpoints),
    dialTimeoutMs: durationMs('dial-timeout', text('dial-timeout')!),
    commandTimeoutMs: durationMs('command-timeout', text('command-timeout')!),
    commandTimeoutExplicit,
    writeOut: writeOut as OutputFormat,
    hex: switchOf(values, env, 'hex'),
    tls: tlsFilesOf({ cacert: text('cacert'), cert: text('cert'), key: text('key') }),
    user: userFlagsOf(text('user') ?? '', text('password') ?? ''),
  });
}

/** etcdctl's authCfgFromCmd, minus the prompt (asked later, only if a call is made). */
function userFlagsOf(user: string, password: string): UserFlags | null {
  if (user === '') return null;
  if (password !== '') return Object.freeze({ name: user, password });
  const colon = user.indexOf(':');
  if (colon < 0) return Object.freeze({ name: user, password: null });
  return Object.freeze({ name: user.slice(0, colon), password: user.slice(colon + 1) });
}

function switchOf(
  values: FlagValues, env: Readonly<Record<string, string | undefined>>, name: string,
): boolean {
  // `--hex` or `--hex=false` (index.ts's explicitSwitches) wins over the environment.
  if (typeof values[name] === 'boolean') return values[name] === true;
  for (const variable of environmentNames(name)) {
    const value = env[variable];
    if (value === undefined || value === '') continue;
    if (value === 'true' || value === '1') return true;
    if (value === 'false' || value === '0') return false;
    throw new CtlUsageError(`${variable}=${value}: expected true or false`);
  }
  return false;
}

function tlsFilesOf(files: Record<keyof TlsFiles, string | undefined>): TlsFiles | null {
  if ((files.cert === undefined) !== (files.key === undefined)) {
    throw new CtlUsageError('--cert and --key must be given together');
  }
  const given = Object.entries(files)
    .filter((entry): entry is [string, string] => entry[1] !== undefined);
  return given.length === 0 ? null : Object.freeze(Object.fromEntries(given));
}

const durationUnitsMs: Readonly<Record<string, number>> = Object.freeze({
  ns: 1e-6, us: 1e-3, µs: 1e-3, ms: 1, s: 1_000, m: 60_000, h: 3_600_000,
});

/** Parses a Go duration (`2s`, `500ms`, `1m30s`) into milliseconds; rejects zero and garbage. */
export function durationMs(flag: string, text: string): number {
  const part = /(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)/y;
  let totalMs = 0;
  let offset = 0;
  while (offset < text.length) {
    part.lastIndex = offset;
    const match = part.exec(text);
    if (match === null) break;
    totalMs += Number(match[1]) * durationUnitsMs[match[2]!]!;
    offset = part.lastIndex;
  }
  if (text === '' || offset !== text.length || !(totalMs > 0)) {
    throw new CtlUsageError(
      `invalid argument "${text}" for "--${flag}" flag: expected a duration such as 2s or 500ms`);
  }
  return Math.max(1, Math.round(totalMs));
}
