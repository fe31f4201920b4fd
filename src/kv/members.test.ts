import { describe, expect, it } from 'vitest';
import { isSynodError } from '../base/index.js';
import { decodeCommand, encodeCommand } from './command.js';
import { MemoryBackend } from './memory-backend.js';
import type { MemberRecord } from './members.js';
import { KvStateMachine } from './state-machine.js';

const record = (raftId: number, port: number, extra: Partial<MemberRecord> = {}): MemberRecord => ({
  raftId, memberId: BigInt(raftId) * 0x1_0000_0001n, name: '', peerUrls: [`http://10.0.0.1:${port}`],
  clientUrls: [], isLearner: false, ...extra,
});

function apply(machine: KvStateMachine, change: Parameters<KvStateMachine['store']['memberChange']>[0]) {
  return machine.apply({ type: 'member', change });
}

function codeOf(result: ReturnType<typeof apply>): string | undefined {
  return result.ok ? undefined : result.error.code;
}

describe('member table', () => {
  it('adds, publishes, promotes, updates and removes members, in the snapshot too', () => {
    const machine = KvStateMachine.open();
    expect(apply(machine, { action: 'add', member: record(1, 2380) }).ok).toBe(true);
    expect(apply(machine, { action: 'add', member: record(2, 2381, { isLearner: true, promoteWhenReady: true }) }).ok).toBe(true);
    expect(apply(machine, { action: 'attributes', raftId: 2, name: 'two', clientUrls: ['http://10.0.0.2:2379'] }).ok).toBe(true);
    expect(apply(machine, { action: 'promote', raftId: 2 }).ok).toBe(true);
    expect(apply(machine, { action: 'update', raftId: 1, peerUrls: ['http://10.0.0.9:2380'] }).ok).toBe(true);
    const restored = KvStateMachine.restore(machine.serialize());
    expect(restored.store.members()).toEqual([
      record(1, 2380, { peerUrls: ['http://10.0.0.9:2380'] }),
      record(2, 2381, { name: 'two', clientUrls: ['http://10.0.0.2:2379'] }),
    ]);
    expect(apply(restored, { action: 'remove', raftId: 2 }).ok).toBe(true);
    expect(restored.store.isRemovedMember(2)).toBe(true);
    expect(restored.store.raftIdHighest()).toBe(2);
    // The revision never moves: members are not keys.
    expect(restored.store.currentRevision).toBe(1);
  });

  it('refuses what does not fit the table with stable codes, changing nothing', () => {
    const machine = KvStateMachine.open();
    apply(machine, { action: 'add', member: record(1, 2380) });
    apply(machine, { action: 'add', member: record(2, 2381) });
    apply(machine, { action: 'remove', raftId: 2 });
    expect(codeOf(apply(machine, { action: 'add', member: record(1, 2390) }))).toBe('SYNOD_MEMBER_EXISTS');
    expect(codeOf(apply(machine, { action: 'add', member: record(2, 2391) }))).toBe('SYNOD_MEMBER_REMOVED');
    expect(codeOf(apply(machine, { action: 'add', member: record(3, 2380) }))).toBe('SYNOD_PEER_URL_EXISTS');
    expect(codeOf(apply(machine, { action: 'add', member: record(3, 2392, { peerUrls: ['ftp://x'] }) })))
      .toBe('SYNOD_INVALID_MEMBER_URL');
    expect(codeOf(apply(machine, { action: 'promote', raftId: 1 }))).toBe('SYNOD_MEMBER_NOT_LEARNER');
    expect(codeOf(apply(machine, { action: 'promote', raftId: 9 }))).toBe('SYNOD_MEMBER_NOT_FOUND');
    expect(codeOf(apply(machine, { action: 'attributes', raftId: 2, name: 'x', clientUrls: [] }))).toBe('SYNOD_MEMBER_REMOVED');
    expect(machine.store.members()).toEqual([record(1, 2380)]);
  });

  it('round-trips member commands through the log codec, 64-bit ids included', () => {
    const member = record(7, 2380, { memberId: 0xffff_ffff_ffff_fff1n, isLearner: true, promoteWhenReady: true });
    const command = { type: 'member' as const, change: { action: 'add' as const, member } };
    expect(decodeCommand(encodeCommand(command))).toEqual(command);
  });

  it('treats a malformed stored record as corrupt storage', () => {
    const backend = new MemoryBackend();
    backend.commit([{ bucket: 'meta', key: new TextEncoder().encode('member/12345678'), value: new TextEncoder().encode('{') }]);
    let caught: unknown = null;
    try {
      KvStateMachine.open({ backend });
    } catch (error) {
      caught = error;
    }
    expect(isSynodError(caught, 'SYNOD_STORAGE_CORRUPT')).toBe(true);
  });
});
