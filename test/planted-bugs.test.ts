/**
 * A check that cannot fail proves nothing. Each planted bug below is a deliberate mutation of the
 * consensus core (RaftConfig.plantedBug); with it switched on, the simulator's invariants or the
 * linearizability checker must report a violation within 2,000 seeds. The seeds are run in order and
 * the search stops at the first detection, so the test costs only as many runs as detection takes.
 */

import { describe, expect, it } from 'vitest';
import type { PlantedBug } from '../src/raft/index.js';
import { runSeed } from '../src/sim/index.js';

const seedsMax = 2000;

const plantedBugs: readonly PlantedBug[] = ['commit-previous-term', 'vote-without-log-check', 'ack-before-persist', 'forget-vote-on-restart', 'defer-vote-sync'];

/** The first seed whose run reports a violation, and what was reported. */
function firstDetection(plantedBug: PlantedBug): { seed: number; finding: string } | null {
  for (let seed = 1; seed <= seedsMax; seed++) {
    const result = runSeed(seed, { plantedBug });
    if (result.violations.length > 0) return { seed, finding: result.violations[0]! };
    if (result.linearizability.ok === false) return { seed, finding: `not linearizable: ${result.linearizability.reason}` };
  }
  return null;
}

describe('planted bugs are caught', () => {
  for (const plantedBug of plantedBugs) {
    it(`${plantedBug} is reported within ${seedsMax} seeds`, () => {
      const detection = firstDetection(plantedBug);
      expect(detection, `${plantedBug} went unnoticed for ${seedsMax} seeds`).not.toBeNull();
      console.log(`planted bug ${plantedBug}: caught at seed ${detection!.seed}: ${detection!.finding.slice(0, 160)}`);
    });
  }
});
