/**
 * The log entry format of a Synod member's proposals: a fixed header naming the request, then the
 * KV command as `encodeCommand` writes it. The request id lets the member that proposed an entry
 * match it to its waiting caller when it applies the entry, whichever member led at the time (a
 * follower's proposal is forwarded by the core and comes back to it through the log).
 *
 * Header (big-endian): version u8 (1), member id u32, incarnation 2 × u32, sequence 2 × u32.
 * The incarnation is drawn from the injected `Random` each time a `RaftNode` is built, so ids of a
 * previous run of the same member, replayed from the log after a restart, do not match new waiters
 * (collision chance 2^-64 per pair of runs; the server seeds its `Random` from real entropy).
 */

import { assert, isSynodError, SynodError, type Random } from '../../base/index.js';
import { decodeCommand, encodeCommand, type Command } from '../../kv/index.js';
import { decodeConfChange, type Entry } from '../../raft/index.js';

/** Bytes of the header before the encoded command. */
export const proposalHeaderBytes = 21;
const proposalVersion = 1;
const uint32Range = 2 ** 32;

/** A decoded proposal: who asked (as a map key) and what. */
export interface DecodedProposal {
  /** The request id as a string, unique per member run and sequence. */
  readonly requestId: string;
  readonly command: Command;
}

/** Hands out request ids for one run of one member. */
export class RequestIdGenerator {
  readonly #memberId: number;
  readonly #incarnationHigh: number;
  readonly #incarnationLow: number;
  #sequence = 0;

  /** `memberId` must fit in 32 bits; the incarnation comes from `random`. */
  constructor(options: { readonly memberId: number; readonly random: Random }) {
    assert(Number.isSafeInteger(options.memberId) && options.memberId > 0, 'memberId > 0');
    assert(options.memberId < uint32Range, 'memberId fits in 32 bits');
    this.#memberId = options.memberId;
    this.#incarnationHigh = options.random.nextUint32();
    this.#incarnationLow = options.random.nextUint32();
  }

  /** The next header (fresh bytes) and its request id. */
  next(): { readonly header: Uint8Array; readonly requestId: string } {
    this.#sequence += 1;
    assert(Number.isSafeInteger(this.#sequence), 'request sequence overflow');
    const header = new Uint8Array(proposalHeaderBytes);
    const view = new DataView(header.buffer);
    view.setUint8(0, proposalVersion);
    view.setUint32(1, this.#memberId);
    view.setUint32(5, this.#incarnationHigh);
    view.setUint32(9, this.#incarnationLow);
    view.setUint32(13, Math.floor(this.#sequence / uint32Range));
    view.setUint32(17, this.#sequence % uint32Range);
    return { header, requestId: requestIdOf(view) };
  }
}

/**
 * Encodes `command` behind `header` (from `RequestIdGenerator.next`). The command is written
 * straight after the header in one buffer of the exact size: no intermediate body to copy.
 */
export function encodeProposal(header: Uint8Array, command: Command): Uint8Array {
  assert(header.length === proposalHeaderBytes, 'proposal header size');
  const data = encodeCommand(command, { prefix: header });
  assert(data.length > proposalHeaderBytes, 'proposal holds a command');
  return data;
}

/**
 * A proposal no caller waits for (request id zero): the conf-change entries a new cluster is
 * bootstrapped with, which no member proposed.
 */
export function unclaimedProposal(command: Command): Uint8Array {
  const header = new Uint8Array(proposalHeaderBytes);
  header[0] = proposalVersion;
  return encodeProposal(header, command);
}

/**
 * Decodes an entry written by `encodeProposal`. Malformed input is SYNOD_STORAGE_CORRUPT. The
 * command is decoded from a view of `data`; its byte strings are copies, so the entry can go.
 */
export function decodeProposal(data: Uint8Array): DecodedProposal {
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  if (data.length < proposalHeaderBytes || view.getUint8(0) !== proposalVersion) {
    throw new SynodError('SYNOD_STORAGE_CORRUPT', 'proposal: bad header');
  }
  return {
    requestId: requestIdOf(view),
    command: decodeCommand(data.subarray(proposalHeaderBytes)),
  };
}

function requestIdOf(view: DataView): string {
  const hex = (offset: number): string => view.getUint32(offset).toString(16);
  return `${hex(1)}.${hex(5)}.${hex(9)}.${hex(13)}.${hex(17)}`;
}

/**
 * The proposal an entry carries: a normal entry's data, or a conf-change entry's context (the
 * member change); undefined for a conf change without one. A malformed conf change is corrupt
 * storage: it was validated before it was proposed.
 */
export function proposalOfEntry(entry: Entry): Uint8Array | undefined {
  if (entry.type !== 'conf-change') return entry.data;
  try {
    return decodeConfChange(entry.data).context;
  } catch (error) {
    if (!isSynodError(error, 'SYNOD_INVALID_CONF_CHANGE')) throw error;
    throw new SynodError('SYNOD_STORAGE_CORRUPT', `conf change entry ${entry.index}: ${error.message}`);
  }
}
