/**
 * A campaign: several chaos runs (seeds × targets) from one command, and the two tables
 * docs/reliability.md shows for it — one row per run, and write unavailability per fault kind
 * over every run of each target, side by side.
 */

import type { AvailabilityByKind } from './availability.js';
import type { ChaosSummary } from './report.js';
import type { ChaosTarget, FaultKind } from './types.js';

/** One run of a campaign: its summary and availability, or why it produced none. */
export type CampaignEntry =
  | { readonly seed: number; readonly summary: ChaosSummary; readonly availability: readonly AvailabilityByKind[] }
  | { readonly seed: number; readonly target: ChaosTarget; readonly error: string };

/** A Markdown table with one row per run. */
export function campaignTable(entries: readonly CampaignEntry[]): string {
  const header = '| seed | target | ops | ok | failed | unknown | faults | violations | lost writes | verdict |\n' +
    '| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |';
  const rows = entries.map((entry) => {
    if (!('summary' in entry)) return `| ${entry.seed} | ${entry.target} | | | | | | | | run failed: ${entry.error} |`;
    const s = entry.summary;
    return `| ${entry.seed} | ${s.target} | ${s.ops} | ${s.ok} | ${s.failed} | ${s.unknown} | ${s.faults} | ${s.violations} | ${s.lost_writes} | ${s.verdict} |`;
  });
  return [header, ...rows].join('\n');
}

/** Write unavailability per fault kind over all runs of each target: count, p50 and max (ms). */
export function availabilityTable(entries: readonly CampaignEntry[]): string {
  const gaps = new Map<FaultKind, Map<ChaosTarget, number[]>>();
  const targets: ChaosTarget[] = [];
  for (const entry of entries) {
    if (!('summary' in entry)) continue;
    const target = entry.summary.target;
    if (!targets.includes(target)) targets.push(target);
    for (const byKind of entry.availability) {
      const perTarget = gaps.get(byKind.kind) ?? new Map<ChaosTarget, number[]>();
      perTarget.set(target, [...(perTarget.get(target) ?? []), ...byKind.gapsMs]);
      gaps.set(byKind.kind, perTarget);
    }
  }
  const header = `| fault | ${targets.map((t) => `${t} faults | ${t} p50 ms | ${t} max ms`).join(' | ')} |\n` +
    `| --- | ${targets.map(() => '---: | ---: | ---:').join(' | ')} |`;
  const rows = [...gaps].sort(([a], [b]) => a.localeCompare(b)).map(([kind, perTarget]) => {
    const cells = targets.map((target) => {
      const sorted = [...(perTarget.get(target) ?? [])].sort((a, b) => a - b);
      if (sorted.length === 0) return '0 | – | –';
      const p50 = sorted[Math.floor((sorted.length - 1) / 2)]!;
      return `${sorted.length} | ${Math.round(p50)} | ${Math.round(sorted[sorted.length - 1]!)}`;
    });
    return `| ${kind} | ${cells.join(' | ')} |`;
  });
  return [header, ...rows].join('\n');
}
