import { describe, expect, it } from 'vitest';
import { AssertionFailure, isSynodError } from '../base/index.js';
import { utf8, utf8Text } from './bytes.js';
import { decodeCommand, encodeCommand, type Command } from './command.js';
import { MemoryBackend } from './memory-backend.js';
import type { AlarmMember } from './mvcc-store.js';
import { KvStateMachine, type ApplyResult } from './state-machine.js';

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

describe('KvStateMachine alarms', () => {
  const nospace = { memberId: 0xfeed_beef_0000_0001n, alarm: 'NOSPACE' } as const;
  const corrupt = { memberId: 7n, alarm: 'CORRUPT' } as const;
  const activate = (member: AlarmMember): Command =>
    ({ type: 'alarm', action: 'activate', member });
  const deactivate = (member: AlarmMember): Command =>
    ({ type: 'alarm', action: 'deactivate', member });
  const errorCode = (outcome: ApplyResult) => (outcome.ok ? 'ok' : outcome.error.code);
  const put = (key: string): Command =>
    ({ type: 'put', request: { key: utf8(key), value: utf8('v') } });

  it('answers ACTIVATE with the alarm even when raised, DEACTIVATE only when raised', () => {
    const machine = build();
    const revision = machine.store.currentRevision;
    const first = machine.apply(activate(nospace));
    expect(first).toMatchObject({ ok: true, result: { response: { alarms: [nospace] } } });
    expect(machine.apply(activate(nospace))).toEqual(first);
    expect(machine.store.alarms()).toEqual([nospace]);
    expect(machine.store.currentRevision).toBe(revision);
    const cleared = machine.apply(deactivate(nospace));
    expect(cleared).toMatchObject({ ok: true, result: { response: { alarms: [nospace] } } });
    expect(machine.apply(deactivate(nospace)))
      .toMatchObject({ ok: true, result: { response: { alarms: [] } } });
    expect(machine.store.alarms()).toEqual([]);
  });

  it('under NOSPACE refuses what grows the database; deletes and compaction pass', () => {
    const machine = build();
    machine.apply(activate(nospace));
    const before = machine.serialize();
    expect(errorCode(machine.apply(put('x')))).toBe('SYNOD_NO_SPACE');
    expect(errorCode(machine.apply({ type: 'leaseGrant', id: 0n, ttlSeconds: 5 })))
      .toBe('SYNOD_NO_SPACE');
    const putY = { requestPut: { key: utf8('y'), value: utf8('') } };
    const nestedPut: Command = {
      type: 'txn', request: { failure: [{ requestTxn: { success: [putY] } }] },
    };
    expect(errorCode(machine.apply(nestedPut))).toBe('SYNOD_NO_SPACE');
    expect(machine.serialize()).toEqual(before);
    const outcome = machine.apply(put('x'));
    expect(!outcome.ok && outcome.error.message).toBe('etcdserver: mvcc: database space exceeded');
    const deleteOnly: Command = {
      type: 'txn', request: { success: [{ requestDeleteRange: { key: utf8('c') } }] },
    };
    expect(errorCode(machine.apply(deleteOnly))).toBe('ok');
    const deleteA: Command = { type: 'deleteRange', request: { key: utf8('a') } };
    expect(errorCode(machine.apply(deleteA))).toBe('ok');
    expect(errorCode(machine.apply({ type: 'compact', revision: 5 }))).toBe('ok');
    expect(errorCode(machine.apply({ type: 'leaseRevoke', id: 1n }))).toBe('ok');
    machine.apply(deactivate(nospace));
    expect(errorCode(machine.apply(put('x')))).toBe('ok');
  });

  it('under CORRUPT refuses every write', () => {
    const machine = build();
    machine.apply(activate(corrupt));
    expect(errorCode(machine.apply({ type: 'deleteRange', request: { key: utf8('a') } })))
      .toBe('SYNOD_CORRUPT_CLUSTER');
    expect(errorCode(machine.apply({ type: 'compact', revision: 5 })))
      .toBe('SYNOD_CORRUPT_CLUSTER');
    expect(errorCode(machine.apply(activate(nospace)))).toBe('ok');
    expect(machine.store.alarms('CORRUPT')).toEqual([corrupt]);
    expect(machine.store.alarms()).toEqual([corrupt, nospace]);
  });

  it('keeps alarms across reopen and snapshots; snapshots from before alarms have none', () => {
    const backend = new MemoryBackend();
    const machine = KvStateMachine.open({ backend });
    expect(KvStateMachine.restore(machine.serialize()).store.alarms()).toEqual([]);
    machine.apply(activate(nospace), { raftIndex: 1 });
    machine.apply(activate(corrupt), { raftIndex: 2 });
    expect(KvStateMachine.open({ backend }).store.alarms()).toEqual([corrupt, nospace]);
    const restored = KvStateMachine.restore(machine.serialize());
    expect(restored.store.alarms()).toEqual([corrupt, nospace]);
    expect(restored.appliedIndex).toBe(2);
    restored.apply(deactivate(corrupt));
    expect(restored.store.hasAlarm('CORRUPT')).toBe(false);
    expect(restored.store.hasAlarm('NOSPACE')).toBe(true);
  });

  it('encodes alarm commands with uint64 member IDs intact', () => {
    const member: AlarmMember = { memberId: 0xffff_ffff_ffff_fff0n, alarm: 'NOSPACE' };
    expect(decodeCommand(encodeCommand(activate(member)))).toEqual(activate(member));
  });

  it('refuses to open a backend holding a malformed alarm entry', () => {
    const backend = new MemoryBackend();
    backend.commit([{ bucket: 'meta', key: utf8('alarm/x'), value: Uint8Array.of(1) }]);
    expect(() => KvStateMachine.open({ backend })).toThrow(/malformed alarm entry/);
  });
});
