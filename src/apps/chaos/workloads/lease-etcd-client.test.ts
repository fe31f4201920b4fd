import { status } from '@grpc/grpc-js';
import { describe, expect, it } from 'vitest';
import { deadlineAfter, outcomeOfError, prefixRangeEnd, revisionOf } from './lease-etcd-client.js';

describe('the workloads\' etcd client helpers', () => {
  it('computes the range end of a prefix as etcd clients do', () => {
    expect(prefixRangeEnd(Buffer.from('chaos/'))).toEqual(Buffer.from('chaos0'));
    expect(prefixRangeEnd(Buffer.from([0x61, 0xff]))).toEqual(Buffer.from([0x62]));
    expect(prefixRangeEnd(Buffer.from([0xff, 0xff]))).toEqual(Buffer.from([0]));
  });

  it('classifies refusals as failed and everything else as unknown', () => {
    expect(outcomeOfError({ code: status.FAILED_PRECONDITION })).toBe('failed');
    expect(outcomeOfError({ code: status.DEADLINE_EXCEEDED })).toBe('unknown');
    expect(outcomeOfError({ code: status.UNAVAILABLE })).toBe('unknown');
    expect(outcomeOfError(new Error('socket hang up'))).toBe('unknown');
  });

  it('decodes revisions and follows a parent signal', () => {
    expect(revisionOf('42')).toBe(42);
    expect(() => revisionOf('-1')).toThrow();
    const parent = new AbortController();
    const deadline = deadlineAfter(60_000, parent.signal);
    parent.abort();
    expect(deadline.signal.aborted).toBe(true);
    deadline.clear();
  });
});
