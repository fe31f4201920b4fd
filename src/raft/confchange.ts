/**
 * Membership changes one server at a time (thesis §4.1). A change takes effect on each node when
 * its entry is applied. Safety rests on two rules the leader enforces: at most one change is
 * unapplied at a time, and a new leader proposes none until everything in its log at election time is
 * applied, which requires committing an entry of its own term first (the fix to the single-server
 * change bug Ongaro described on raft-dev in 2015).
 */

import { SynodError } from '../base/index.js';
import type { ProgressTracker } from './tracker.js';
import type { ConfChange, NodeId } from './types.js';

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** The bytes of a conf-change entry. */
export function encodeConfChange(change: ConfChange): Uint8Array {
  const { context, ...rest } = change;
  const record = context === undefined ? rest : { ...rest, context: base64Of(context) };
  return encoder.encode(JSON.stringify(record));
}

function base64Of(bytes: Uint8Array): string {
  let binary = '';
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return btoa(binary);
}

function bytesOfBase64(text: string): Uint8Array {
  const binary = atob(text);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
}

/** Parses a conf-change entry's bytes; throws SYNOD_INVALID_CONF_CHANGE if malformed. */
export function decodeConfChange(data: Uint8Array): ConfChange {
  let value: unknown;
  try {
    value = JSON.parse(decoder.decode(data));
  } catch {
    throw new SynodError('SYNOD_INVALID_CONF_CHANGE', 'conf change entry is not valid JSON');
  }
  if (typeof value !== 'object' || value === null) {
    throw new SynodError('SYNOD_INVALID_CONF_CHANGE', 'conf change entry is not an object');
  }
  const { type, nodeId, context } = value as { type?: unknown; nodeId?: unknown; context?: unknown };
  if (type !== 'add-voter' && type !== 'add-learner' && type !== 'remove') {
    throw new SynodError('SYNOD_INVALID_CONF_CHANGE', `unknown conf change type ${String(type)}`);
  }
  if (typeof nodeId !== 'number' || !Number.isSafeInteger(nodeId) || nodeId <= 0) {
    throw new SynodError('SYNOD_INVALID_CONF_CHANGE', `conf change node id must be a positive integer`);
  }
  if (context === undefined) return { type, nodeId };
  if (typeof context !== 'string') {
    throw new SynodError('SYNOD_INVALID_CONF_CHANGE', 'conf change context must be base64 text');
  }
  try {
    return { type, nodeId, context: bytesOfBase64(context) };
  } catch {
    throw new SynodError('SYNOD_INVALID_CONF_CHANGE', 'conf change context is not base64');
  }
}

/** Throws SYNOD_INVALID_CONF_CHANGE if `change` would leave the configuration without voters. */
export function validateConfChange(voters: ReadonlySet<NodeId>, change: ConfChange): void {
  const removesVoter = change.type === 'remove' || change.type === 'add-learner';
  if (removesVoter && voters.size === 1 && voters.has(change.nodeId)) {
    throw new SynodError('SYNOD_INVALID_CONF_CHANGE', `removing voter ${change.nodeId} would leave no voters`);
  }
}

/**
 * Applies `change` to `tracker`; new peers start probing at `next`. An invalid change is ignored
 * identically on every node (it is already committed), and reported by the return value.
 */
export function applyConfChange(tracker: ProgressTracker, change: ConfChange, next: number): boolean {
  try {
    validateConfChange(tracker.voters, change);
  } catch {
    return false;
  }
  switch (change.type) {
    case 'add-voter':
      tracker.addVoter(change.nodeId, next);
      break;
    case 'add-learner':
      tracker.addLearner(change.nodeId, next);
      break;
    case 'remove':
      tracker.remove(change.nodeId);
      break;
  }
  return true;
}
