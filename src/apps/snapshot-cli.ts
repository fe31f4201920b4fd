/**
 * `synod snapshot status <file> [-w simple|table|json]` and `synod snapshot restore <file> …`:
 * etcdctl 3.4's `snapshot status` and `snapshot restore`, for the files `etcdctl snapshot save`
 * writes from Synod (which are not bbolt files, so etcdctl's own commands cannot read them). The
 * work is in src/server/snapshot-file.ts and src/server/restore.ts; this file parses and prints.
 * Exits 0 on success, 1 when the command failed (a corrupt file, a data directory in use), 2 on
 * bad usage. An expected failure prints one line, never a stack; a bug still crashes with one.
 */

import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { AssertionFailure } from '../base/index.js';
import { parseServerFlags } from '../server/flags.js';
import { restoreMember, type RestoreOptions } from '../server/restore.js';
import { snapshotStatusOf, type SnapshotStatus } from '../server/snapshot-file.js';

const usage = `usage: synod snapshot status <file> [-w simple|table|json]
       synod snapshot restore <file> [--name NAME] [--data-dir DIR]
         [--initial-cluster NAME=URL,…] [--initial-cluster-token TOKEN]
         [--initial-advertise-peer-urls URL,…] [--skip-hash-check]`;

/** Formats of `status` (etcdctl's -w / --write-out; `fields` and `protobuf` are not offered). */
export const statusFormats = ['simple', 'table', 'json'] as const;
/** One of `statusFormats`. */
export type StatusFormat = (typeof statusFormats)[number];

/** Where the command prints: one call per line. */
export interface CliOutput {
  readonly out: (line: string) => void;
  readonly err: (line: string) => void;
}

const consoleOutput: CliOutput = {
  out: (line) => console.log(line),
  err: (line) => console.error(line),
};

/** Bad usage: printed with the usage text, exit 2. */
class UsageError extends Error {}

/** `synod snapshot …`; returns the exit code. */
export async function snapshotMain(
  argv: readonly string[],
  output: CliOutput = consoleOutput,
): Promise<number> {
  const [subcommand, ...rest] = argv;
  if (subcommand === 'status' || subcommand === 'restore') {
    return runSubcommand(subcommand, rest, output);
  }
  if (subcommand === '--help' || subcommand === '-h' || subcommand === 'help') {
    output.out(usage);
    return 0;
  }
  output.err(usage);
  return 2;
}

async function runSubcommand(
  subcommand: 'status' | 'restore',
  argv: readonly string[],
  output: CliOutput,
): Promise<number> {
  let run: () => Promise<string[]>;
  try {
    run = subcommand === 'status' ? parseStatus(argv) : parseRestore(argv);
  } catch (error) {
    if (error instanceof AssertionFailure || !(error instanceof Error)) throw error;
    output.err(`synod snapshot ${subcommand}: ${error.message}\n${usage}`);
    return 2;
  }
  try {
    for (const line of await run()) output.out(line);
    return 0;
  } catch (error) {
    // A bug crashes with its stack; a damaged file or a directory in use gets one clear line.
    if (error instanceof AssertionFailure || !(error instanceof Error)) throw error;
    output.err(`synod snapshot ${subcommand}: ${error.message}`);
    return 1;
  }
}

function oneFile(positionals: readonly string[]): string {
  if (positionals.length !== 1) throw new UsageError('expected exactly one snapshot file');
  return positionals[0]!;
}

function parseStatus(argv: readonly string[]): () => Promise<string[]> {
  const { values, positionals } = parseArgs({
    args: [...argv],
    options: { 'write-out': { type: 'string', short: 'w', default: 'simple' } },
    allowPositionals: true,
  });
  const path = oneFile(positionals);
  const format = values['write-out'];
  if (!statusFormats.includes(format as StatusFormat)) {
    throw new UsageError(`--write-out ${format}: expected one of ${statusFormats.join(', ')}`);
  }
  return async () => {
    const file = await readFile(path);
    return formatStatus(snapshotStatusOf(file), format as StatusFormat);
  };
}

/** The flags `restore` shares with `synod server`, parsed and defaulted by parseServerFlags. */
const clusterFlags = [
  'name', 'data-dir', 'initial-cluster', 'initial-cluster-token', 'initial-advertise-peer-urls',
] as const;

function parseRestore(argv: readonly string[]): () => Promise<string[]> {
  const { values, positionals } = parseArgs({
    args: [...argv],
    options: {
      name: { type: 'string' },
      'data-dir': { type: 'string' },
      'initial-cluster': { type: 'string' },
      'initial-cluster-token': { type: 'string' },
      'initial-advertise-peer-urls': { type: 'string' },
      'skip-hash-check': { type: 'boolean', default: false },
    },
    allowPositionals: true,
  });
  const snapshotPath = oneFile(positionals);
  const forwarded = clusterFlags.flatMap((flag) => {
    const value = values[flag];
    return typeof value === 'string' ? [`--${flag}`, value] : [];
  });
  // etcd's defaults and checks, exactly as the member will read the same flags at start; only
  // the flags given count (no ETCD_* variables), as with etcdctl.
  const options: RestoreOptions = {
    snapshotPath,
    config: parseServerFlags(forwarded, {}),
    skipHashCheck: values['skip-hash-check'] === true,
  };
  return async () => {
    const report = await restoreMember(options);
    const members = `${report.voters.length} member${report.voters.length === 1 ? '' : 's'}`;
    return [
      `restored snapshot ${snapshotPath} into ${report.dataDir}: ` +
      `member ${report.memberId.toString(16)} of cluster ${report.clusterId.toString(16)} ` +
      `(${members}), revision ${report.revision}, raft index ${report.raftIndex}`,
    ];
  };
}

/** The lines etcdctl 3.4 prints for `snapshot status` in `format`. */
export function formatStatus(status: SnapshotStatus, format: StatusFormat): string[] {
  if (format === 'json') {
    const { hash, revision, totalKey, totalSize } = status;
    return [JSON.stringify({ hash, revision, totalKey, totalSize })];
  }
  const row = [
    status.hash.toString(16), String(status.revision), String(status.totalKey),
    humanizeBytes(status.totalSize),
  ];
  if (format === 'simple') return [row.join(', ')];
  return renderTable(['HASH', 'REVISION', 'TOTAL KEYS', 'TOTAL SIZE'], row);
}

/** go-humanize's `Bytes` (SI units), which etcdctl prints sizes with: 2101248 → "2.1 MB". */
export function humanizeBytes(bytes: number): string {
  if (bytes < 10) return `${bytes} B`;
  const units = ['B', 'kB', 'MB', 'GB', 'TB', 'PB', 'EB'];
  const exponent = Math.min(Math.floor(Math.log(bytes) / Math.log(1000)), units.length - 1);
  // Tenths, rounded half up as go-humanize does; then Go's %.1f below 10, else %.0f, which
  // rounds an exact half to even (20.5 → "20").
  const tenths = Math.floor((bytes / 1000 ** exponent) * 10 + 0.5);
  const whole = Math.floor(tenths / 10);
  const digit = tenths % 10;
  if (tenths < 100) return `${whole}.${digit} ${units[exponent]}`;
  const rounded = digit > 5 || (digit === 5 && whole % 2 === 1) ? whole + 1 : whole;
  return `${rounded} ${units[exponent]}`;
}

/** A one-row table in tablewriter's style, as etcdctl -w table draws it (cells right-aligned). */
function renderTable(header: readonly string[], row: readonly string[]): string[] {
  const widths = header.map((title, column) => Math.max(title.length, row[column]!.length));
  const rule = `+${widths.map((width) => '-'.repeat(width + 2)).join('+')}+`;
  const centered = header.map((title, column) => {
    const gap = widths[column]! - title.length;
    return ' '.repeat(Math.floor(gap / 2)) + title + ' '.repeat(gap - Math.floor(gap / 2));
  });
  const line = (cells: readonly string[]) => `| ${cells.join(' | ')} |`;
  const cells = row.map((cell, column) => cell.padStart(widths[column]!));
  return [rule, line(centered), rule, line(cells), rule];
}
