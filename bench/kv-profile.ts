/**
 * Reads a V8 `.cpuprofile` (what `node --cpu-prof` writes) and ranks functions by self time: the
 * samples in which the function itself, not a callee, was on top of the stack.
 */

import { readFileSync } from 'node:fs';
import { relative } from 'node:path';
import { assert } from '../src/base/index.js';

interface ProfileNode {
  readonly id: number;
  readonly callFrame: {
    readonly functionName: string;
    readonly url: string;
    readonly lineNumber: number;
  };
}

interface CpuProfile {
  readonly nodes: readonly ProfileNode[];
  readonly samples: readonly number[];
  readonly timeDeltas: readonly number[];
}

/** One function's share of the profile. */
export interface SelfTime {
  /** `name (file:line)`, the file relative to the repository when it is inside it. */
  readonly location: string;
  readonly selfMs: number;
  /** Self time as a share of all sampled time, 0..1. */
  readonly share: number;
}

/** The `count` functions with the most self time in the profile at `path`. */
export function topSelfTimes(options: { path: string; count: number; root: string }): SelfTime[] {
  const profile = JSON.parse(readFileSync(options.path, 'utf8')) as CpuProfile;
  assert(profile.samples.length === profile.timeDeltas.length, 'one time delta per sample');
  const locationOf = new Map<number, string>();
  for (const node of profile.nodes) {
    const { functionName, url, lineNumber } = node.callFrame;
    const file = url.startsWith('file://') ? relative(options.root, new URL(url).pathname) : url;
    const name = functionName === '' ? '(anonymous)' : functionName;
    locationOf.set(node.id, file === '' ? name : `${name} (${file}:${lineNumber + 1})`);
  }
  const selfUs = new Map<string, number>();
  let totalUs = 0;
  for (let index = 0; index < profile.samples.length; index++) {
    // A sample's delta is the time since the previous sample; attribute it to this sample's node.
    const deltaUs = Math.max(0, profile.timeDeltas[index]!);
    const location = locationOf.get(profile.samples[index]!) ?? '(unknown)';
    selfUs.set(location, (selfUs.get(location) ?? 0) + deltaUs);
    totalUs += deltaUs;
  }
  return [...selfUs]
    .sort((a, b) => b[1] - a[1])
    .slice(0, options.count)
    .map(([location, us]) => ({
      location,
      selfMs: Math.round(us / 100) / 10,
      share: totalUs === 0 ? 0 : us / totalUs,
    }));
}
