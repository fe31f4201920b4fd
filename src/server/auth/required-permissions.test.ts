import { describe, expect, it } from 'vitest';
import { requirementOf as requirementOfBytes, type Requirement } from './required-permissions.js';

const b = (text: string) => Buffer.from(text);
const check = (key: string, rangeEnd: string, wanted: 'READ' | 'WRITE') => ({ key, rangeEnd, wanted });
/** The requirement with keys as text, so expectations read plainly. */
function requirementOf(method: string, request: unknown): unknown {
  const requirement: Requirement = requirementOfBytes(method, request);
  if (requirement.kind !== 'keys') return requirement;
  const text = (bytes: Uint8Array) => Buffer.from(bytes).toString();
  return { kind: 'keys', checks: requirement.checks.map((c) => check(text(c.key), text(c.rangeEnd), c.wanted)) };
}

describe('requirementOf', () => {
  it('asks KV reads and writes for their keys, prev_kv reads included', () => {
    expect(requirementOf('/etcdserverpb.KV/Range', { key: b('a'), range_end: b('c') }))
      .toEqual({ kind: 'keys', checks: [check('a', 'c', 'READ')] });
    expect(requirementOf('/etcdserverpb.KV/Put', { key: b('k'), prev_kv: true }))
      .toEqual({ kind: 'keys', checks: [check('k', '', 'WRITE'), check('k', '', 'READ')] });
    expect(requirementOf('/etcdserverpb.KV/DeleteRange', { key: b('a'), range_end: b('b') }))
      .toEqual({ kind: 'keys', checks: [check('a', 'b', 'WRITE')] });
    expect(requirementOf('/etcdserverpb.KV/Compact', { revision: '3' })).toEqual({ kind: 'user' });
  });

  it('asks a Txn for its compares and both branches, nested ones too', () => {
    const txn = {
      compare: [{ key: b('c'), range_end: b('') }],
      success: [{ request: 'request_put', request_put: { key: b('p') } }],
      failure: [{ request: 'request_txn', request_txn: {
        compare: [], success: [{ request: 'request_range', request_range: { key: b('r'), range_end: b('s') } }], failure: [],
      } }],
    };
    expect(requirementOf('/etcdserverpb.KV/Txn', txn)).toEqual({
      kind: 'keys', checks: [check('c', '', 'READ'), check('p', '', 'WRITE'), check('r', 's', 'READ')],
    });
  });

  it('asks watch creates for READ, lease revokes for their keys, and closes the rest to non-root', () => {
    expect(requirementOf('/etcdserverpb.Watch/Watch', { create_request: { key: b('w'), range_end: b('') } }))
      .toEqual({ kind: 'keys', checks: [check('w', '', 'READ')] });
    expect(requirementOf('/etcdserverpb.Watch/Watch', { cancel_request: { watch_id: '1' } })).toEqual({ kind: 'user' });
    expect(requirementOf('/etcdserverpb.Lease/LeaseRevoke', { ID: '42' })).toEqual({ kind: 'lease-keys', leaseId: '42' });
    expect(requirementOf('/etcdserverpb.Lease/LeaseGrant', { TTL: '5' })).toEqual({ kind: 'user' });
    expect(requirementOf('/etcdserverpb.Auth/Authenticate', {})).toEqual({ kind: 'open' });
    expect(requirementOf('/etcdserverpb.Auth/UserAdd', {})).toEqual({ kind: 'root' });
    expect(requirementOf('/etcdserverpb.Cluster/MemberAdd', {})).toEqual({ kind: 'root' });
    expect(requirementOf('/etcdserverpb.Cluster/MemberList', {})).toEqual({ kind: 'user' });
    expect(requirementOf('/etcdserverpb.Maintenance/Alarm', { action: 'GET' })).toEqual({ kind: 'user' });
    expect(requirementOf('/etcdserverpb.Maintenance/Alarm', { action: 'DEACTIVATE' })).toEqual({ kind: 'root' });
    expect(requirementOf('/some.New/Rpc', {})).toEqual({ kind: 'root' });
  });

  it('asks the lock and election recipes for their name prefix', () => {
    expect(requirementOf('/v3lockpb.Lock/Lock', { name: b('job') }))
      .toEqual({ kind: 'keys', checks: [check('job/', 'job0', 'READ'), check('job/', 'job0', 'WRITE')] });
    expect(requirementOf('/v3electionpb.Election/Observe', { name: b('e') }))
      .toEqual({ kind: 'keys', checks: [check('e/', 'e0', 'READ')] });
  });
});
