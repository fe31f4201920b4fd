import { describe, expect, it } from 'vitest';
import { isSynodError, SynodError } from '../../base/index.js';
import { deferred } from '../node/deferred.js';
import { quotaBackendBytesDefault } from '../flags.js';
import { createQuota } from './quota.js';

/** The code `promise` rejects with, or 'ok'. */
async function outcomeOf(promise: Promise<void>): Promise<string> {
  try {
    await promise;
    return 'ok';
  } catch (error) {
    if (isSynodError(error)) return error.code;
    throw error;
  }
}

describe('createQuota', () => {
  it('passes writes below the quota; raises NOSPACE for one that reaches it', async () => {
    let raised = 0;
    const quota = createQuota({
      quotaBackendBytes: 1000,
      dbSizeBytes: async () => 900,
      activateAlarm: async () => {
        raised += 1;
      },
    });
    expect(await outcomeOf(quota.check(99))).toBe('ok');
    expect(raised).toBe(0);
    const refused = quota.check(100);
    await expect(refused).rejects.toThrow(/reaches the quota of 1000 B/);
    expect(await outcomeOf(quota.check(100))).toBe('SYNOD_NO_SPACE');
    expect(raised).toBe(2);
  });

  it('takes 0 as etcd\'s 2 GiB default and refuses a negative quota', async () => {
    const quota = createQuota({
      quotaBackendBytes: 0,
      dbSizeBytes: async () => quotaBackendBytesDefault - 10,
      activateAlarm: async () => {},
    });
    expect(await outcomeOf(quota.check(9))).toBe('ok');
    expect(await outcomeOf(quota.check(10))).toBe('SYNOD_NO_SPACE');
    expect(() => createQuota({
      quotaBackendBytes: -1, dbSizeBytes: async () => 0, activateAlarm: async () => {},
    })).toThrow(/quotaBackendBytes/);
  });

  it('fails the write when raising the alarm fails expectedly; rethrows a bug', async () => {
    const noLeader = createQuota({
      quotaBackendBytes: 10,
      dbSizeBytes: async () => 10,
      activateAlarm: async () => {
        throw new SynodError('SYNOD_NO_LEADER');
      },
    });
    expect(await outcomeOf(noLeader.check(0))).toBe('SYNOD_NO_SPACE');
    const broken = createQuota({
      quotaBackendBytes: 10,
      dbSizeBytes: async () => 10,
      activateAlarm: async () => {
        throw new TypeError('bug');
      },
    });
    await expect(broken.check(0)).rejects.toThrow(TypeError);
  });

  it('shares one size measurement among checks that arrive together', async () => {
    let measurements = 0;
    const size = deferred<number>();
    const quota = createQuota({
      quotaBackendBytes: 1000,
      dbSizeBytes: () => {
        measurements += 1;
        return size.promise;
      },
      activateAlarm: async () => {},
    });
    const checks = [quota.check(1), quota.check(2), quota.check(3)];
    size.resolve(10);
    await Promise.all(checks);
    expect(measurements).toBe(1);
    await quota.check(1);
    expect(measurements).toBe(2);
  });

  it('refuses at once, without measuring, while NOSPACE is raised', async () => {
    let measurements = 0;
    let raised = true;
    const quota = createQuota({
      quotaBackendBytes: 1000,
      dbSizeBytes: async () => {
        measurements += 1;
        return 0;
      },
      activateAlarm: async () => {},
      isAlarmRaised: () => raised,
    });
    expect(await outcomeOf(quota.check(1))).toBe('SYNOD_NO_SPACE');
    expect(measurements).toBe(0);
    raised = false;
    expect(await outcomeOf(quota.check(1))).toBe('ok');
    expect(measurements).toBe(1);
  });
});
