import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { isSynodError } from '../../base/index.js';
import {
  decodeSnapshotFile, snapshotBody, snapshotChunkBytes, snapshotChunks, snapshotPageBytes,
  writeSnapshot, type SnapshotMessage,
} from './snapshot-stream.js';

/** A file as `etcdctl snapshot save` writes it: the body, then its SHA-256. */
function fileOf(payload: Uint8Array): Uint8Array {
  const body = Buffer.concat(snapshotBody(payload));
  return Buffer.concat([body, createHash('sha256').update(body).digest()]);
}

/** A server stream whose client takes a message only when `release` is called. */
class SlowCall extends Writable {
  cancelled = false;
  readonly received: SnapshotMessage[] = [];
  readonly #pending: (() => void)[] = [];
  #flowing = false;

  constructor() {
    super({ objectMode: true, highWaterMark: 2 });
  }

  override _write(message: SnapshotMessage, _encoding: string, done: () => void): void {
    this.received.push(message);
    if (this.#flowing) queueMicrotask(done);
    else this.#pending.push(done);
  }

  /** Emits 'full' when a write finds the buffer full (the writer must wait for 'drain'). */
  override write(message: SnapshotMessage): boolean {
    const accepted = super.write(message);
    if (!accepted) this.emit('full');
    return accepted;
  }

  /** From now on the client reads everything at once. */
  flow(): void {
    this.#flowing = true;
    for (const done of this.#pending.splice(0)) done();
  }
}

describe('snapshot file format', () => {
  it('pads the body to whole 512-byte pages and decodes back to the payload', () => {
    for (const size of [0, 1, 491, 492, 493, 5000]) {
      const payload = new Uint8Array(size).map((_, index) => index % 251);
      const file = fileOf(payload);
      expect(file.length % snapshotPageBytes).toBe(32);
      expect(file.length - 32 - 20 - size).toBeLessThan(snapshotPageBytes);
      expect(decodeSnapshotFile(file)).toEqual(payload);
    }
  });

  it('refuses a file whose hash, magic, length or padding is wrong', () => {
    const good = fileOf(new Uint8Array(100).fill(7));
    const corruptWith = (edit: (file: Uint8Array) => void): string => {
      const file = Uint8Array.from(good);
      edit(file);
      try {
        decodeSnapshotFile(file);
      } catch (error) {
        expect(isSynodError(error, 'SYNOD_STORAGE_CORRUPT')).toBe(true);
        return (error as Error).message;
      }
      return 'accepted';
    };
    /** Edits the body, then re-hashes it, so the check after the hash is reached. */
    const rehashed = (edit: (body: Uint8Array) => void) => (file: Uint8Array) => {
      const body = file.subarray(0, file.length - 32);
      edit(body);
      file.set(createHash('sha256').update(body).digest(), body.length);
    };
    expect(corruptWith((file) => { file[30] = 255 - file[30]!; })).toMatch(/SHA-256 mismatch/);
    expect(corruptWith(rehashed((body) => { body[0] = 0; }))).toMatch(/not a Synod snapshot/);
    expect(corruptWith(rehashed((body) => { body[11] = 9; }))).toMatch(/format version/);
    expect(corruptWith(rehashed((body) => { body[12] = 1; }))).toMatch(/past the end/);
    expect(corruptWith(rehashed((body) => { body[body.length - 1] = 1; }))).toMatch(/not zero/);
    const twoPages = fileOf(new Uint8Array(600));
    rehashed((body) => { body.fill(0, 12, 20); })(twoPages);
    expect(() => decodeSnapshotFile(twoPages)).toThrow(/more padding than one page/);
    expect(() => decodeSnapshotFile(good.subarray(0, good.length - 1)))
      .toThrow(/whole 512-byte pages/);
  });

  it('cuts 32 KiB chunks across segments, counting the bytes left after each', () => {
    const segments = [new Uint8Array(20), new Uint8Array(70_000).fill(1), new Uint8Array(12)];
    const chunks = [...snapshotChunks(segments)];
    expect(chunks.map((chunk) => chunk.blob.length))
      .toEqual([snapshotChunkBytes, snapshotChunkBytes, 70_032 - 2 * snapshotChunkBytes]);
    expect(chunks.map((chunk) => chunk.remainingBytes))
      .toEqual([70_032 - snapshotChunkBytes, 70_032 - 2 * snapshotChunkBytes, 0]);
    expect(Buffer.concat(chunks.map((chunk) => chunk.blob))).toEqual(Buffer.concat(segments));
  });
});

describe('writeSnapshot', () => {
  const payload = new Uint8Array(200_000).map((_, index) => index % 13);
  const header = () => ({ revision: '1' });

  it('waits for the client to drain, then ends with the SHA-256 of the body', async () => {
    const call = new SlowCall();
    const full = once(call, 'full');
    const written = writeSnapshot(call as never, { payload, header });
    await full;
    // The stream's buffer is full: nothing more is produced until the client reads.
    expect(call.listenerCount('drain')).toBe(1);
    expect(call.received.length).toBe(1);
    expect(call.writableLength).toBe(2);
    call.flow();
    await written;
    expect(call.writableEnded).toBe(true);
    const blobs = call.received.map((message) => message.blob);
    const body = Buffer.concat(blobs.slice(0, -1));
    expect(blobs.at(-1)).toEqual(new Uint8Array(createHash('sha256').update(body).digest()));
    expect(decodeSnapshotFile(Buffer.concat(blobs))).toEqual(payload);
  });

  it('stops without ending the call once the client cancels', async () => {
    const call = new SlowCall();
    const full = once(call, 'full');
    const written = writeSnapshot(call as never, { payload, header });
    await full;
    call.cancelled = true;
    call.emit('cancelled');
    await written;
    expect(call.writableEnded).toBe(false);
    expect(call.received.length).toBe(1);
  });
});
