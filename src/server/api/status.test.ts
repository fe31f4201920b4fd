import { status as GrpcStatus } from '@grpc/grpc-js';
import { describe, expect, it } from 'vitest';
import { AssertionFailure, errorCodes, SynodError, type ErrorCode } from '../../base/index.js';
import { internalStatus, invalidArgument, statusOf, statusOfCode } from './status.js';

describe('statusOf', () => {
  it('sends the kv layer\'s etcd messages unchanged', () => {
    for (const [code, status] of Object.entries(statusOfCode)) {
      const text = errorCodes[code as ErrorCode];
      // An etcd error without an rpctypes mapping (ErrVerifyOnly) reaches clients as Unknown
      // with its own text, which has no `etcdserver: ` prefix.
      const etcdText = text.startsWith('etcdserver: ') || status?.code === GrpcStatus.UNKNOWN;
      if (etcdText) expect(status?.message).toBe(text);
      else expect(status?.message.startsWith('etcdserver: ')).toBe(true);
    }
  });

  it('maps by code, not by the error\'s own (local) message', () => {
    const noLeader = new SynodError('SYNOD_NO_LEADER', 'the leader changed before the read index');
    expect(statusOf(noLeader)).toEqual({
      code: GrpcStatus.UNAVAILABLE, message: 'etcdserver: no leader',
    });
    expect(statusOf(new SynodError('SYNOD_EMPTY_KEY')).code).toBe(GrpcStatus.INVALID_ARGUMENT);
    expect(statusOf(new SynodError('SYNOD_LEASE_NOT_FOUND')).code).toBe(GrpcStatus.NOT_FOUND);
  });

  it('hides unexpected errors and unmapped codes behind INTERNAL', () => {
    expect(statusOf(new TypeError('secret detail'))).toBe(internalStatus);
    expect(statusOf(new SynodError('SYNOD_STORAGE_CORRUPT', 'page 7'))).toBe(internalStatus);
    expect(statusOf(invalidArgument('limit too large')).code).toBe(GrpcStatus.INVALID_ARGUMENT);
  });

  it('rethrows assertion failures', () => {
    expect(() => statusOf(new AssertionFailure('bug'))).toThrow(AssertionFailure);
  });
});
