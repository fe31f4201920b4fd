/**
 * Test kit for snapshot files: a small state machine with overwrites, a delete and a lease, and
 * the file `etcdctl snapshot save` would write from it.
 */

import { createHash } from 'node:crypto';
import { assert } from '../base/index.js';
import { KvStateMachine, utf8, type Command, type MemberRecord } from '../kv/index.js';
import { snapshotBody } from './api/snapshot-stream.js';

function oldMember(raftId: number, name: string): MemberRecord {
  return {
    raftId, memberId: 0xdead_0000n + BigInt(raftId), name,
    peerUrls: [`http://10.9.9.${raftId}:2380`], clientUrls: [`http://10.9.9.${raftId}:2379`],
    isLearner: false,
  };
}

/** A snapshot file as `etcdctl snapshot save` writes it from Synod: body, then its SHA-256. */
export function snapshotFileOf(payload: Uint8Array): Buffer {
  const body = Buffer.concat(snapshotBody(payload));
  return Buffer.concat([body, createHash('sha256').update(body).digest()]);
}

/**
 * Lease 7 (TTL 600 s) holds `leased`; `a` was overwritten, `b` deleted: revision 6. The old
 * cluster's member table holds member `old` (Raft id 1) and Raft id 2, removed. Applied index 9.
 */
export function sampleState(): KvStateMachine {
  const machine = KvStateMachine.open();
  const commands: Command[] = [
    { type: 'leaseGrant', id: 7n, ttlSeconds: 600 },
    { type: 'put', request: { key: utf8('a'), value: utf8('1') } },
    { type: 'put', request: { key: utf8('a'), value: utf8('2') } },
    { type: 'put', request: { key: utf8('b'), value: utf8('gone') } },
    { type: 'deleteRange', request: { key: utf8('b') } },
    { type: 'put', request: { key: utf8('leased'), value: utf8('x'), lease: 7n } },
    { type: 'member', change: { action: 'add', member: oldMember(1, 'old') } },
    { type: 'member', change: { action: 'add', member: oldMember(2, 'gone') } },
    { type: 'member', change: { action: 'remove', raftId: 2 } },
  ];
  commands.forEach((command, position) => {
    const result = machine.apply(command, { raftIndex: position + 1 });
    assert(result.ok, `sample command ${position} applies`);
  });
  return machine;
}
