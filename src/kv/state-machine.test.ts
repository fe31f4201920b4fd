import { describe, expect, it } from 'vitest';
import { AssertionFailure, isSynodError } from '../base/index.js';
import { utf8, utf8Text } from './bytes.js';
import { decodeCommand, encodeCommand, type Command } from './command.js';
import { MemoryBackend } from './memory-backend.js';
import { KvStateMachine } from './state-machine.js';

const all = { key: new Uint8Array([0]), rangeEnd: new Uint8Array([0]) };

function build(): KvStateMachine {
  const machine = KvStateMachine.open();
  const commands: Command[] = [
    { type: 'leaseGrant', id: 0n, ttlSeconds: 30 },
    { type: 'put', request: { key: utf8('a'), value: utf8('1'), lease: 1n } },
    { type: 'put', request: { key: utf8('b'), value: utf8('1') } },
    { type: 'put', request: { key: utf8('b'), value: utf8('2') } },
    { type: 'deleteRange', request: { key: utf8('b') } },
    { type: 'put', request: { key: utf8('c'), value: utf8('1') } },
    { type: 'compact', revision: 4 },
  ];
  for (const command of commands) expect(machine.apply(command).ok).toBe(true);
  return machine;
}

describe('KvStateMachine', () => {
  it('returns expected errors as outcomes and leaves the store unchanged', () => {
    const machine = build();
    const before = machine.serialize();
    const outcome = machine.apply({ type: 'compact', revision: 3 });
    expect(outcome.ok).toBe(false);
    expect(!outcome.ok && isSynodError(outcome.error, 'SYNOD_COMPACTED')).toBe(true);
    expect(!outcome.ok && outcome.error.message)
      .toBe('etcdserver: mvcc: required revision has been compacted');
    expect(machine.serialize()).toEqual(before);
  });

  it('round-trips a snapshot: same reads, same history, same leases, same next revision', () => {
    const machine = build();
    const restored = KvStateMachine.restore(machine.serialize());
    expect(restored.serialize()).toEqual(machine.serialize());
    for (const revision of [0, 4, 5, 6]) {
      expect(restored.store.range({ ...all, revision }))
        .toEqual(machine.store.range({ ...all, revision }));
    }
    expect(restored.store.compactRevision).toBe(4);
    expect(restored.store.leaseTimeToLive({ id: 1n, keys: true }).keys.map(utf8Text))
      .toEqual(['a']);
    const revoke: Command = { type: 'leaseRevoke', id: 1n };
    const grant: Command = { type: 'leaseGrant', id: 0n, ttlSeconds: 5 };
    expect(restored.apply(revoke)).toEqual(machine.apply(revoke));
    expect(restored.apply(grant)).toEqual(machine.apply(grant));
    expect(restored.serialize()).toEqual(machine.serialize());
  });

  it('records the Raft index with each command, even one that wrote nothing or failed', () => {
    const backend = new MemoryBackend();
    const machine = KvStateMachine.open({ backend });
    expect(machine.appliedIndex).toBe(0);
    machine.apply({ type: 'put', request: { key: utf8('a'), value: utf8('1') } }, { raftIndex: 3 });
    machine.apply({ type: 'txn', request: {} }, { raftIndex: 4 });
    const failed = machine.apply({ type: 'compact', revision: 99 }, { raftIndex: 5 });
    expect(failed.ok).toBe(false);
    const reopened = KvStateMachine.open({ backend });
    expect(reopened.appliedIndex).toBe(5);
    expect(reopened.store.currentRevision).toBe(2);
    expect(KvStateMachine.restore(machine.serialize()).appliedIndex).toBe(5);
    expect(() => reopened.apply({ type: 'compact', revision: 1 }, { raftIndex: 5 }))
      .toThrow(AssertionFailure);
  });

  it('rejects a malformed snapshot', () => {
    const bytes = build().serialize();
    expect(() => KvStateMachine.restore(bytes.slice(0, bytes.length - 3))).toThrow(/truncated/);
    expect(() => KvStateMachine.restore(new Uint8Array([1, 2, 3, 4, 5])))
      .toThrow(/not a KV snapshot/);
  });

  it('encodes commands with bytes and int64 lease IDs intact', () => {
    const commands: Command[] = [
      {
        type: 'put',
        request: { key: new Uint8Array([0, 255, 7]), value: utf8('v'), lease: 2n ** 62n },
      },
      {
        type: 'txn',
        request: {
          compare: [{ key: utf8('k'), target: 'LEASE', lease: -3n, result: 'EQUAL' }],
          success: [{ requestDeleteRange: { key: utf8('a'), rangeEnd: new Uint8Array([0]) } }],
          failure: [{ requestTxn: { success: [{ requestRange: { key: utf8('x'), limit: 3 } }] } }],
        },
      },
      { type: 'leaseRevoke', id: 0x7fff_ffff_ffff_ffffn },
      { type: 'compact', revision: 12 },
    ];
    for (const command of commands) expect(decodeCommand(encodeCommand(command))).toEqual(command);
    expect(() => decodeCommand(utf8('{"type":"nope"}'))).toThrow(/unknown type/);
    expect(() => decodeCommand(utf8('{'))).toThrow(/kv command/);
  });
});
