/**
 * The report of one chaos run: the summary (the `--json` line), a text verdict for the terminal,
 * and an HTML page with a timeline of operations and faults that a person opens in a browser.
 * The page is one self-contained file (inline SVG, no scripts from elsewhere).
 */

import type { AvailabilityByKind } from './availability.js';
import type { ChaosTarget, CheckVerdict, FaultRecord, HistoryEntry } from './types.js';

/** The `--json` summary, exactly the issue's fields. */
export interface ChaosSummary {
  readonly target: ChaosTarget;
  readonly nodes: number;
  readonly duration_s: number;
  readonly ops: number;
  readonly ok: number;
  readonly failed: number;
  readonly unknown: number;
  readonly faults: number;
  readonly violations: number;
  readonly lost_writes: number;
  readonly verdict: 'valid' | 'invalid';
  readonly report: string;
}

/** Everything a report is made of. */
export interface ChaosRun {
  readonly target: ChaosTarget;
  readonly nodes: number;
  readonly seed: number;
  readonly durationMs: number;
  readonly history: readonly HistoryEntry[];
  readonly faults: readonly FaultRecord[];
  readonly verdicts: readonly CheckVerdict[];
  readonly availability: readonly AvailabilityByKind[];
}

/** The summary line's object. */
export function summarize(run: ChaosRun, reportPath: string): ChaosSummary {
  const count = (outcome: string) => run.history.filter((entry) => entry.outcome === outcome).length;
  const violations = run.verdicts.reduce((sum, verdict) => sum + verdict.violations.length, 0);
  const lostWrites = run.verdicts.reduce((sum, verdict) => sum + verdict.lostWrites, 0);
  return {
    target: run.target,
    nodes: run.nodes,
    duration_s: Math.round(run.durationMs / 100) / 10,
    ops: run.history.length,
    ok: count('ok'),
    failed: count('failed'),
    unknown: count('unknown'),
    faults: run.faults.length,
    violations,
    lost_writes: lostWrites,
    verdict: violations === 0 && lostWrites === 0 && run.verdicts.every((v) => v.valid) ? 'valid' : 'invalid',
    report: reportPath,
  };
}

/** The terminal verdict: counts, each checker's conclusion, faults and availability. */
export function textReport(run: ChaosRun, summary: ChaosSummary): string {
  const lines = [
    `chaos: ${run.target}, ${run.nodes} members, ${summary.duration_s} s, seed ${run.seed}`,
    `operations: ${summary.ops} (ok ${summary.ok}, failed ${summary.failed}, unknown ${summary.unknown})`,
    `faults: ${run.faults.length} (${faultCounts(run.faults)})`,
  ];
  for (const verdict of run.verdicts) {
    const stats = Object.entries(verdict.stats).map(([name, value]) => `${name} ${value}`).join(', ');
    lines.push(`${verdict.valid ? 'valid  ' : 'INVALID'} ${verdict.checker}: ${stats}`);
    for (const violation of verdict.violations.slice(0, 10)) lines.push(`  - ${violation}`);
    if (verdict.violations.length > 10) lines.push(`  … ${verdict.violations.length - 10} more`);
  }
  for (const entry of run.availability) {
    lines.push(`writes unavailable after ${entry.kind}: p50 ${entry.p50Ms} ms, max ${entry.maxMs} ms (${entry.faults} faults)`);
  }
  lines.push(`verdict: ${summary.verdict} (violations ${summary.violations}, lost writes ${summary.lost_writes})`);
  lines.push(`report: ${summary.report}`);
  return lines.join('\n');
}

function faultCounts(faults: readonly FaultRecord[]): string {
  const counts = new Map<string, number>();
  for (const fault of faults) counts.set(fault.kind, (counts.get(fault.kind) ?? 0) + 1);
  return [...counts].map(([kind, count]) => `${kind} ${count}`).join(', ') || 'none';
}

/** Operations drawn at most on the timeline; beyond it, every k-th (the counts stay exact). */
export const timelineOperationsMax = 40_000;

const outcomeColors: Readonly<Record<string, string>> = { ok: '#2e7d32', failed: '#f9a825', unknown: '#c62828' };

/** The HTML page: the verdict on top, then the timeline (one row per client, faults as bands). */
export function htmlReport(run: ChaosRun, summary: ChaosSummary): string {
  const width = 1400;
  const rowHeight = 6;
  const clients = [...new Set(run.history.map((entry) => `${entry.workload}/${entry.clientId}`))].sort();
  const rowOf = new Map(clients.map((client, index) => [client, index]));
  const height = 40 + clients.length * rowHeight;
  const x = (ms: number) => ((ms / Math.max(run.durationMs, 1)) * width).toFixed(1);
  const step = Math.max(1, Math.ceil(run.history.length / timelineOperationsMax));
  const bands = run.faults.map((fault) => {
    const end = fault.healedAtMs ?? run.durationMs;
    const w = Math.max(1, Number(x(end)) - Number(x(fault.startedAtMs)));
    return `<rect x="${x(fault.startedAtMs)}" y="0" width="${w.toFixed(1)}" height="${height}" fill="#90caf9" opacity="0.35"><title>${escapeHtml(`${fault.kind}: ${fault.detail} (${fault.startedAtMs.toFixed(0)}–${end.toFixed(0)} ms)`)}</title></rect>` +
      `<text x="${x(fault.startedAtMs)}" y="12" font-size="10">${escapeHtml(fault.kind)}</text>`;
  });
  const operations: string[] = [];
  for (let index = 0; index < run.history.length; index += step) {
    const entry = run.history[index]!;
    const row = rowOf.get(`${entry.workload}/${entry.clientId}`)!;
    const w = Math.max(1, Number(x(entry.completedAtMs)) - Number(x(entry.invokedAtMs)));
    operations.push(`<rect x="${x(entry.invokedAtMs)}" y="${20 + row * rowHeight}" width="${w.toFixed(1)}" height="${rowHeight - 1}" fill="${outcomeColors[entry.outcome]}"/>`);
  }
  const verdictRows = run.verdicts.map((verdict) => `<tr><td>${escapeHtml(verdict.checker)}</td><td>${verdict.valid ? 'valid' : '<b>INVALID</b>'}</td><td>${escapeHtml(verdict.violations.slice(0, 20).join('\n'))}</td></tr>`);
  const availabilityRows = run.availability.map((entry) => `<tr><td>${entry.kind}</td><td>${entry.faults}</td><td>${entry.p50Ms}</td><td>${entry.maxMs}</td></tr>`);
  return `<!doctype html>
<html><head><meta charset="utf-8"><title>Synod chaos report: ${summary.verdict}</title>
<style>body{font-family:sans-serif;margin:1em}td,th{border:1px solid #ccc;padding:2px 6px;vertical-align:top;white-space:pre-wrap}table{border-collapse:collapse;margin-bottom:1em}</style></head>
<body>
<h1>${escapeHtml(run.target)}, ${run.nodes} members: ${summary.verdict}</h1>
<pre>${escapeHtml(textReport(run, summary))}</pre>
<h2>Checkers</h2><table><tr><th>checker</th><th>verdict</th><th>violations</th></tr>${verdictRows.join('')}</table>
<h2>Write unavailability per fault kind (ms)</h2><table><tr><th>fault</th><th>count</th><th>p50</th><th>max</th></tr>${availabilityRows.join('')}</table>
<h2>Timeline</h2>
<p>One row per client; green ok, yellow failed, red unknown; blue bands are faults (hover for details).${step > 1 ? ` Every ${step}th operation drawn.` : ''}</p>
<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}">${bands.join('')}${operations.join('')}</svg>
</body></html>
`;
}

function escapeHtml(text: string): string {
  return text.replaceAll('&', '&amp;').replaceAll('<', '&lt;').replaceAll('>', '&gt;').replaceAll('"', '&quot;');
}
