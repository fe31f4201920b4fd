/**
 * The kv benchmark's results: one row per (target, members, op, clients) cell, the JSON the
 * `--json` option prints, and a Markdown table that sets Synod beside etcd with their ratios.
 */

import { assert } from '../src/base/index.js';
import type { CellMeasurement, OperationName } from './kv-load.js';
import type { TargetKind } from './kv-targets.js';

/** Which cell a result belongs to. */
export interface CellIdentity {
  readonly target: TargetKind;
  readonly members: number;
  readonly op: OperationName;
  readonly clients: number;
}

/** One measured cell, as it appears in the JSON results. */
export interface Result {
  readonly target: TargetKind;
  readonly members: number;
  readonly op: OperationName;
  readonly clients: number;
  readonly ops_per_sec: number;
  readonly p50_ms: number;
  readonly p99_ms: number;
  readonly server_cpu_us_per_op: number;
  readonly rss_mb: number;
}

/** A target or cell that produced no numbers, and why. `op` and `clients` are null for a target. */
export interface Failure {
  readonly target: TargetKind;
  readonly members: number;
  readonly op: OperationName | null;
  readonly clients: number | null;
  readonly reason: string;
}

function round(value: number, digits: number): number {
  const scale = 10 ** digits;
  return Math.round(value * scale) / scale;
}

/** The `q`-quantile (0 < q < 1) of unsorted samples, nearest-rank; 0 without samples. */
export function quantile(samples: readonly number[], q: number): number {
  assert(q > 0 && q < 1, 'quantile within (0, 1)');
  if (samples.length === 0) return 0;
  const sorted = Float64Array.from(samples).sort();
  return sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)]!;
}

/** The bench process's CPU over the window, in cores (1 = one core busy throughout). */
export function clientCpuShare(measurement: CellMeasurement): number {
  const { window } = measurement;
  return window.clientCpuMicroseconds / ((window.closedMs - window.openedMs) * 1000);
}

/** Turns a cell's raw measurement into its result row. */
export function summarize(cell: CellIdentity, measurement: CellMeasurement): Result {
  const { window } = measurement;
  const seconds = (window.closedMs - window.openedMs) / 1000;
  assert(seconds > 0, 'the window has a length');
  const operations = measurement.operations;
  return {
    ...cell,
    ops_per_sec: Math.round(operations / seconds),
    p50_ms: round(quantile(measurement.latenciesMs, 0.5), 3),
    p99_ms: round(quantile(measurement.latenciesMs, 0.99), 3),
    server_cpu_us_per_op:
      operations === 0 ? 0 : round(window.serverCpuMicroseconds / operations, 1),
    rss_mb: round(window.residentBytes / (1024 * 1024), 1),
  };
}

/** One line for progress output; `clientCpuShare` is the bench's CPU per second of window. */
export function describeResult(result: Result, clientCpuShare: number): string {
  return (
    `${result.target} ${result.members}m ${result.op} c=${result.clients}: ` +
    `${result.ops_per_sec.toLocaleString('en-US')} ops/s, ` +
    `p50 ${result.p50_ms} ms, p99 ${result.p99_ms} ms, ` +
    `${result.server_cpu_us_per_op} µs CPU/op, ${result.rss_mb} MB RSS ` +
    `(client used ${Math.round(clientCpuShare * 100)}% of a core)`
  );
}

function ratio(synod: number | undefined, etcd: number | undefined): string {
  if (synod === undefined || etcd === undefined || etcd === 0) return '—';
  return `${round(synod / etcd, 2)}×`;
}

function cellText(value: number | undefined): string {
  return value === undefined ? '—' : String(value);
}

/**
 * A Markdown table with one row per (members, op, clients): Synod's and etcd's numbers side by
 * side and the Synod/etcd ratio of each (throughput above 1× is Synod ahead; latency, CPU and
 * memory below 1× are). Failures are listed under it.
 */
export function markdownTable(results: readonly Result[], failures: readonly Failure[]): string {
  const lines = [
    '| members | op | clients | ops/s synod | ops/s etcd | ratio | ' +
      'p50 ms synod | p50 ms etcd | ratio | p99 ms synod | p99 ms etcd | ratio | ' +
      'CPU µs/op synod | CPU µs/op etcd | ratio | RSS MB synod | RSS MB etcd |',
    '|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
  ];
  const keys = [...new Set(results.map((r) => `${r.members}\u0000${r.op}\u0000${r.clients}`))];
  for (const key of keys) {
    const same = results.filter((r) => `${r.members}\u0000${r.op}\u0000${r.clients}` === key);
    const synod = same.find((r) => r.target === 'synod');
    const etcd = same.find((r) => r.target === 'etcd');
    const any = (synod ?? etcd)!;
    const pair = (field: 'ops_per_sec' | 'p50_ms' | 'p99_ms' | 'server_cpu_us_per_op') =>
      [cellText(synod?.[field]), cellText(etcd?.[field]), ratio(synod?.[field], etcd?.[field])];
    const cells = [
      any.members, any.op, any.clients,
      ...pair('ops_per_sec'), ...pair('p50_ms'), ...pair('p99_ms'), ...pair('server_cpu_us_per_op'),
      cellText(synod?.rss_mb), cellText(etcd?.rss_mb),
    ];
    lines.push(`| ${cells.join(' | ')} |`);
  }
  for (const failure of failures) lines.push('', describeFailure(failure));
  return lines.join('\n');
}

/** `synod 3-member: could not start (reason)` or `synod 1-member watch c=10: failed (reason)`. */
export function describeFailure(failure: Failure): string {
  const target = `${failure.target} ${failure.members}-member`;
  if (failure.op === null) return `${target}: could not start (${failure.reason})`;
  return `${target} ${failure.op} c=${failure.clients}: failed (${failure.reason})`;
}
