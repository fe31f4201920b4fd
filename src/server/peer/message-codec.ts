/**
 * Raft messages on the peer wire. A batch is a u32 count followed by each message; a message is
 * its type code, the fixed fields, its entries, an optional snapshot and the context bytes. Type
 * codes are stable: a code is never reused for another meaning, so members running different
 * builds either agree or reject the frame (SYNOD_PEER_PROTOCOL), never misread it.
 *
 * Local message types (`hup`, `beat`, …) have no code: they never leave a node.
 */

import type { ConfState, Entry, EntryType, Message, MessageType, Snapshot } from '../../raft/index.js';
import { peerProtocolError, WireReader, WireWriter } from './wire-buffer.js';

const typeCodes: ReadonlyMap<MessageType, number> = new Map<MessageType, number>([
  ['prop', 1], ['app', 2], ['app-resp', 3], ['vote', 4], ['vote-resp', 5], ['pre-vote', 6],
  ['pre-vote-resp', 7], ['snap', 8], ['heartbeat', 9], ['heartbeat-resp', 10],
  ['transfer-leader', 11], ['timeout-now', 12], ['read-index', 13], ['read-index-resp', 14],
]);
const typesByCode: ReadonlyMap<number, MessageType> = new Map(
  [...typeCodes].map(([type, code]) => [code, type]),
);

/** A bound on one batch's message count, far above what one Ready produces. */
export const batchMessagesMax = 65_536;
/** Bound on entries in one message (the core sends at most maxSizePerMsg bytes of them). */
export const messageEntriesMax = 1 << 20;
/** Bound on voters plus learners in a snapshot's membership. */
export const confStateMembersMax = 1024;

/** Encodes `messages` as one batch. Every message must be a network type. */
export function encodeMessages(messages: readonly Message[]): Uint8Array {
  const writer = new WireWriter(64 + 64 * messages.length);
  writer.u32(messages.length);
  for (const message of messages) writeMessage(writer, message);
  return writer.finish();
}

/** Decodes a batch written by `encodeMessages`; a malformed batch is SYNOD_PEER_PROTOCOL. */
export function decodeMessages(bytes: Uint8Array): Message[] {
  const reader = new WireReader(bytes);
  const count = reader.u32();
  if (count > batchMessagesMax) throw peerProtocolError(`batch of ${count} messages`);
  const messages: Message[] = [];
  for (let i = 0; i < count; i++) messages.push(readMessage(reader));
  reader.end();
  return messages;
}

function writeMessage(writer: WireWriter, message: Message): void {
  const code = typeCodes.get(message.type);
  if (code === undefined) throw new TypeError(`local message type ${message.type} on the wire`);
  writer.u8(code).uint(message.to).uint(message.from).uint(message.term).uint(message.logTerm);
  writer.uint(message.index).uint(message.commit).u8(message.reject ? 1 : 0);
  writer.uint(message.rejectHint).uint(message.leaseTick).bytes(message.context);
  writer.u32(message.entries.length);
  for (const entry of message.entries) writeEntry(writer, entry);
  if (message.snapshot === null) {
    writer.u8(0);
  } else {
    writer.u8(1);
    writeSnapshot(writer, message.snapshot);
  }
}

function readMessage(reader: WireReader): Message {
  const code = reader.u8();
  const type = typesByCode.get(code);
  if (type === undefined) throw peerProtocolError(`unknown message type code ${code}`);
  const to = reader.uint();
  const from = reader.uint();
  const term = reader.uint();
  const logTerm = reader.uint();
  const index = reader.uint();
  const commit = reader.uint();
  const reject = readBoolean(reader);
  const rejectHint = reader.uint();
  const leaseTick = reader.uint();
  const context = reader.bytes();
  const entryCount = reader.u32();
  if (entryCount > messageEntriesMax) throw peerProtocolError(`${entryCount} entries`);
  const entries: Entry[] = [];
  for (let i = 0; i < entryCount; i++) entries.push(readEntry(reader));
  const snapshot = readBoolean(reader) ? readSnapshot(reader) : null;
  return {
    type, to, from, term, logTerm, index, entries, commit, reject, rejectHint, snapshot, context,
    leaseTick,
  };
}

function writeEntry(writer: WireWriter, entry: Entry): void {
  writer.uint(entry.term).uint(entry.index).u8(entry.type === 'normal' ? 0 : 1).bytes(entry.data);
}

function readEntry(reader: WireReader): Entry {
  const term = reader.uint();
  const index = reader.uint();
  const typeCode = reader.u8();
  if (typeCode > 1) throw peerProtocolError(`unknown entry type ${typeCode}`);
  const type: EntryType = typeCode === 0 ? 'normal' : 'conf-change';
  return { term, index, type, data: reader.bytes() };
}

function writeSnapshot(writer: WireWriter, snapshot: Snapshot): void {
  const { index, term, confState } = snapshot.metadata;
  writer.uint(index).uint(term);
  writeIds(writer, confState.voters);
  writeIds(writer, confState.learners);
  writer.bytes(snapshot.data);
}

function readSnapshot(reader: WireReader): Snapshot {
  const index = reader.uint();
  const term = reader.uint();
  const confState: ConfState = { voters: readIds(reader), learners: readIds(reader) };
  return { metadata: { index, term, confState }, data: reader.bytes() };
}

function writeIds(writer: WireWriter, ids: readonly number[]): void {
  writer.u32(ids.length);
  for (const id of ids) writer.uint(id);
}

function readIds(reader: WireReader): number[] {
  const count = reader.u32();
  if (count > confStateMembersMax) throw peerProtocolError(`${count} members in a snapshot`);
  const ids: number[] = [];
  for (let i = 0; i < count; i++) ids.push(reader.uint());
  return ids;
}

function readBoolean(reader: WireReader): boolean {
  const value = reader.u8();
  if (value > 1) throw peerProtocolError(`boolean ${value}`);
  return value === 1;
}
