/**
 * Deliberate server bugs for the chaos harness's planted-bug tests: each breaks one promise Synod
 * makes, so a test can show the harness catches it on real processes. Switched on only by the
 * environment variable `SYNOD_PLANTED_BUG` (never a flag, so no etcd script turns one on by
 * accident), and announced loudly in the log when set.
 */

import { SynodError } from '../base/index.js';

/** The bugs, each named by the promise it breaks. */
export const serverPlantedBugs = Object.freeze([
  /** Linearizable Range is served from the local state machine, without a ReadIndex round. */
  'read-without-read-index',
  /** Put answers as soon as it is proposed, before it commits (or even reaches a quorum). */
  'ack-before-commit',
  /** The leader never revokes expired leases, so their keys live on. */
  'lease-never-expires',
] as const);

/** One planted server bug. */
export type ServerPlantedBug = (typeof serverPlantedBugs)[number];

/** The environment variable that switches a bug on. */
export const plantedBugVariable = 'SYNOD_PLANTED_BUG';

/** The bug `env` asks for, or null; an unknown name is SYNOD_INVALID_CONFIG. */
export function plantedBugFromEnv(env: Readonly<Record<string, string | undefined>>): ServerPlantedBug | null {
  const name = env[plantedBugVariable];
  if (name === undefined || name === '') return null;
  if (!(serverPlantedBugs as readonly string[]).includes(name)) {
    throw new SynodError('SYNOD_INVALID_CONFIG', `${plantedBugVariable}=${name}: expected one of ${serverPlantedBugs.join(', ')}`);
  }
  return name as ServerPlantedBug;
}
