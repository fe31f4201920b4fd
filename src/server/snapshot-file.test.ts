import { createHash } from 'node:crypto';
import { crc32 } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { bucketNames, KvStateMachine, utf8 } from '../kv/index.js';
import { decodeSnapshot, snapshotStatusOf } from './snapshot-file.js';
import { sampleState, snapshotFileOf } from './snapshot-test-kit.js';

function recordsIn(machine: KvStateMachine): number {
  let records = 0;
  for (const bucket of bucketNames) {
    records += [...machine.store.backend.scan(bucket, { start: new Uint8Array(0) })].length;
  }
  return records;
}

/** `file` with its body changed by `edit` and the hash trailer recomputed to match. */
function rehashed(file: Uint8Array, edit: (body: Uint8Array) => void): Buffer {
  const body = Uint8Array.from(file.subarray(0, file.length - 32));
  edit(body);
  return Buffer.concat([body, createHash('sha256').update(body).digest()]);
}

describe('snapshot status', () => {
  it('reports the crc32 of the payload, the revision, every record and the file size', () => {
    const machine = sampleState();
    const payload = machine.serialize();
    const file = snapshotFileOf(payload);
    const status = snapshotStatusOf(file);
    expect(status).toEqual({
      hash: crc32(payload),
      revision: machine.store.currentRevision,
      totalKey: recordsIn(machine),
      totalSize: file.length,
    });
    // Puts at 2, 3, 4, the delete at 5, the leased put at 6.
    expect(status.revision).toBe(6);
    // The same state gives the same hash; another state another.
    expect(snapshotStatusOf(snapshotFileOf(sampleState().serialize())).hash).toBe(status.hash);
    const empty = snapshotFileOf(KvStateMachine.open().serialize());
    expect(snapshotStatusOf(empty).hash).not.toBe(status.hash);
  });

  it('refuses a file whose SHA-256 does not match', () => {
    const file = snapshotFileOf(sampleState().serialize());
    file[40]! ^= 0x01;
    expect(() => snapshotStatusOf(file)).toThrow(expect.objectContaining({
      code: 'SYNOD_STORAGE_CORRUPT', message: 'snapshot file: SHA-256 mismatch',
    }));
  });

  it('refuses a truncated file, wherever it was cut', () => {
    const machine = sampleState();
    machine.apply({ type: 'put', request: { key: utf8('big'), value: new Uint8Array(2000) } });
    const file = snapshotFileOf(machine.serialize());
    expect(file.length).toBeGreaterThan(4 * 512);
    // Cut inside a page, at a page boundary (whole pages plus 32 bytes, as a good file), and
    // just before or after the trailer.
    for (const length of [0, 10, 512 + 32, 1024 + 32, file.length - 32, file.length - 1]) {
      expect(() => snapshotStatusOf(file.subarray(0, length)), `cut at ${length}`)
        .toThrow(expect.objectContaining({ code: 'SYNOD_STORAGE_CORRUPT' }));
    }
  });

  it('refuses a file with the wrong magic and a matching hash (e.g. etcd\'s bbolt file)', () => {
    const good = snapshotFileOf(sampleState().serialize());
    const file = rehashed(good, (body) => body.set(utf8('BBOLTSNP')));
    expect(() => snapshotStatusOf(file)).toThrow(expect.objectContaining({
      code: 'SYNOD_STORAGE_CORRUPT', message: 'snapshot file: not a Synod snapshot',
    }));
  });

  it('refuses a well-formed file whose payload is not a state machine snapshot', () => {
    const file = snapshotFileOf(utf8('not the serialized state'));
    expect(() => snapshotStatusOf(file)).toThrow(expect.objectContaining({
      code: 'SYNOD_STORAGE_CORRUPT', message: 'kv snapshot: not a KV snapshot',
    }));
  });
});

describe('decodeSnapshot', () => {
  it('skips only the hash check when asked to', () => {
    const payload = sampleState().serialize();
    const file = snapshotFileOf(payload);
    file[file.length - 1]! ^= 0xff;
    expect(() => decodeSnapshot(file, { verifyHash: true })).toThrow(/SHA-256 mismatch/);
    expect(decodeSnapshot(file, { verifyHash: false })).toEqual(payload);
    const wrongMagic = Buffer.from(file);
    wrongMagic[0] = 0;
    expect(() => decodeSnapshot(wrongMagic, { verifyHash: false })).toThrow(/not a Synod snapshot/);
    expect(() => decodeSnapshot(file.subarray(0, 100), { verifyHash: false }))
      .toThrow(/512-byte pages/);
  });
});
