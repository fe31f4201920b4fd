/**
 * Synod's consensus core: a pure, deterministic Raft with pre-vote, check-quorum, flow control,
 * snapshots, single-server membership changes with learners, ReadIndex and lease reads, and
 * leadership transfer. See docs/raft.md.
 */
export { RawNode } from './raw-node.js';
export type { Ready } from './ready.js';
export { MemoryStorage, type Storage } from './storage.js';
export { validateConfig, raftDefaults, type RaftConfig, type RaftConfigInput, type PlantedBug, type ReadOnlyOption } from './config.js';
export { encodeConfChange, decodeConfChange } from './confchange.js';
export { newMessage } from './messages.js';
export type { Status, ProgressStatus, ProgressState } from './status.js';
export * from './types.js';
