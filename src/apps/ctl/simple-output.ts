/**
 * The pieces of etcdctl 3.4's `simple` and `table` output (command/printer_simple.go,
 * printer_table.go, util.go): key-value lines, `--hex`, IDs in hex, go-humanize byte sizes, Go
 * durations, and olekukonko/tablewriter tables. Pure functions of their arguments.
 */

import { assert } from '../../base/index.js';
import type { Int64, WireKeyValue } from './wire.js';

/** How key-value pairs print. */
export interface KeyValueStyle {
  /** `--hex`: every byte as `\xNN`. */
  readonly hex: boolean;
  /** `--print-value-only`: the value line alone. */
  readonly valueOnly?: boolean;
}

/** etcdctl's printKV: the key line (unless value-only), then the value line. */
export function keyValueLines(
  kv: Pick<WireKeyValue, 'key' | 'value'>, style: KeyValueStyle,
): string {
  const text = (bytes: Buffer) => (style.hex ? hexEscaped(bytes) : bytes.toString('utf8'));
  const value = `${text(kv.value)}\n`;
  return style.valueOnly === true ? value : `${text(kv.key)}\n${value}`;
}

/** `foo` → `\x66\x6f\x6f` (etcdctl's addHexPrefix over hex.EncodeToString). */
export function hexEscaped(bytes: Buffer): string {
  let text = '';
  for (const byte of bytes) text += `\\x${byte.toString(16).padStart(2, '0')}`;
  return text;
}

/** A lease ID as `%016x` of an int64 (negative IDs print as their two's complement). */
export function leaseIdHex(id: Int64 | bigint): string {
  return BigInt.asUintN(64, BigInt(id)).toString(16).padStart(16, '0');
}

/** A member or cluster ID as `%x` of a uint64. */
export function memberIdHex(id: Int64 | bigint): string {
  return BigInt.asUintN(64, BigInt(id)).toString(16);
}

/** Parses a hex ID argument as etcdctl's strconv.ParseUint/ParseInt(arg, 16, 64). */
export function parseHexId(text: string, bits: { readonly signed: boolean }): bigint | null {
  if (!/^[0-9a-fA-F]{1,16}$/.test(text)) return null;
  const id = BigInt(`0x${text}`);
  return bits.signed && id > 2n ** 63n - 1n ? null : id;
}

const byteSizes = ['B', 'kB', 'MB', 'GB', 'TB', 'PB', 'EB'];

/** go-humanize's Bytes: SI units, one decimal below 10 (`66 kB`, `1.6 kB`, `7 B`). */
export function humanizeBytes(bytes: number): string {
  assert(Number.isInteger(bytes) && bytes >= 0, `a byte count: ${bytes}`);
  if (bytes < 10) return `${bytes} B`;
  const exponent = Math.floor(Math.log(bytes) / Math.log(1000));
  const value = Math.floor((bytes / 1000 ** exponent) * 10 + 0.5) / 10;
  return `${value < 10 ? value.toFixed(1) : value.toFixed(0)} ${byteSizes[exponent]}`;
}

/** Go's time.Duration.String for a non-negative duration in nanoseconds (`4.528736ms`). */
export function goDuration(nanoseconds: bigint): string {
  assert(nanoseconds >= 0n, 'durations are measured forwards');
  if (nanoseconds === 0n) return '0s';
  const fraction = (unitNs: bigint, suffix: string): string => {
    const whole = nanoseconds / unitNs;
    const digits = unitNs.toString().length - 1;
    const rest = (nanoseconds % unitNs).toString().padStart(digits, '0').replace(/0+$/, '');
    return `${whole}${rest === '' ? '' : `.${rest}`}${suffix}`;
  };
  if (nanoseconds < 1_000n) return `${nanoseconds}ns`;
  if (nanoseconds < 1_000_000n) return fraction(1_000n, 'µs');
  if (nanoseconds < 1_000_000_000n) return fraction(1_000_000n, 'ms');
  return fraction(1_000_000_000n, 's');
}

/**
 * An olekukonko/tablewriter table as etcdctl renders it: upper-case centred headers, cells
 * aligned right, `+---+` borders. (tablewriter also wraps cells over 30 characters at spaces;
 * this does not.)
 */
export function renderTable(
  header: readonly string[], rows: readonly (readonly string[])[],
): string {
  for (const row of rows) assert(row.length === header.length, 'every row has a cell per column');
  const titles = header.map((title) => title.toUpperCase());
  const widths = titles.map((title, column) =>
    Math.max(width(title), ...rows.map((row) => width(row[column]!))));
  const border = `+${widths.map((each) => '-'.repeat(each + 2)).join('+')}+\n`;
  const line = (cells: readonly string[], pad: (cell: string, size: number) => string): string =>
    `|${cells.map((cell, column) => ` ${pad(cell, widths[column]!)} `).join('|')}|\n`;
  const centred = (cell: string, size: number): string => {
    const gap = size - width(cell);
    const left = Math.floor(gap / 2);
    return ' '.repeat(left) + cell + ' '.repeat(gap - left);
  };
  const right = (cell: string, size: number): string => ' '.repeat(size - width(cell)) + cell;
  const body = rows.map((row) => line(row, right)).join('');
  return border + line(titles, centred) + border + body + border;
}

/** Display width: code points (every cell here is ASCII or Latin text). */
function width(text: string): number {
  return [...text].length;
}
