// The clock guards as pure functions: the offset from the live workers' mean, the asymmetric
// tolerance (reports only lag), the reservation a start may wait out, and report parsing.
import { describe, expect, it } from 'vitest';
import { isSynodError } from '../../base/index.js';
import {
  checkClockAgainstLiveWorkers, checkReservationReachable, formatWorkerReport, liveClockOffsetMs,
  parseWorkerReport, reportBytesMax,
} from './clock-guard.js';

const nowMs = 1_700_000_000_000;

function refusal(body: () => void): string {
  try {
    body();
  } catch (error) {
    expect(isSynodError(error, 'SYNOD_ID_CLOCK_BEHIND')).toBe(true);
    return (error as Error).message;
  }
  return expect.fail('expected SYNOD_ID_CLOCK_BEHIND');
}

describe('liveClockOffsetMs', () => {
  it('is this clock minus the mean report, and null without reports', () => {
    expect(liveClockOffsetMs(nowMs, [])).toBeNull();
    expect(liveClockOffsetMs(nowMs, [nowMs - 100, nowMs - 300])).toBe(200);
    expect(liveClockOffsetMs(nowMs, [nowMs + 1000])).toBe(-1000);
  });

  it('stays exact over thousands of unix-ms reports', () => {
    const reports = Array.from({ length: 4096 }, (_, index) => nowMs - (index % 2 === 0 ? 10 : 30));
    expect(liveClockOffsetMs(nowMs, reports)).toBe(20);
  });
});

describe('checkClockAgainstLiveWorkers', () => {
  const check = (reportedAtMs: number[]) => checkClockAgainstLiveWorkers({
    nowMs, reportedAtMs, clockSkewMsMax: 5000, reportAgeMsMax: 1000,
  });

  it('passes within the skew, and ahead by the skew plus the report age', () => {
    check([]);
    check([nowMs + 5000]);
    check([nowMs - 6000]);
    check([nowMs - 1000, nowMs + 1000]);
  });

  it('refuses a clock behind by more than the skew, naming the offset', () => {
    expect(refusal(() => check([nowMs + 5001]))).toMatch(/5001 ms behind the mean of 1 live/);
  });

  it('refuses a clock ahead by more than the skew plus the report age', () => {
    expect(refusal(() => check([nowMs - 6001]))).toMatch(/6001 ms ahead of the mean/);
    const twoAhead = refusal(() => check([nowMs - 10_000, nowMs - 10_000]));
    expect(twoAhead).toMatch(/10000 ms ahead .* 2 live/);
  });
});

describe('checkReservationReachable', () => {
  const check = (reservedMs: number) => checkReservationReachable({
    nowMs, reservedMs, startWaitMsMax: 9000, worker: '1/2',
  });

  it('passes a reservation behind this clock or within the start wait', () => {
    check(0);
    check(nowMs - 1);
    check(nowMs + 9000);
  });

  it('refuses one further ahead than the start waits', () => {
    expect(refusal(() => check(nowMs + 9001))).toMatch(/worker 1\/2: .* 9001 ms ahead .* 9000 ms/);
  });
});

describe('worker reports', () => {
  const report = { host: 'h1', pid: 42, reportedAtMs: nowMs, reservedUntilMs: nowMs + 3000 };

  it('round-trip through the JSON a worker key holds', () => {
    const text = formatWorkerReport(report);
    expect(JSON.parse(text)).toEqual(report);
    expect(parseWorkerReport(Buffer.from(text))).toEqual(report);
  });

  it('are null for a value that is not a report', () => {
    for (const value of ['', 'not json', '[]', 'null', '{"host":"h","pid":1,"reportedAtMs":-1,' +
      '"reservedUntilMs":0}', '{"host":1,"pid":1,"reportedAtMs":1,"reservedUntilMs":1}',
    '{"host":"h","pid":1.5,"reportedAtMs":1,"reservedUntilMs":1}']) {
      expect(parseWorkerReport(Buffer.from(value))).toBeNull();
    }
    expect(parseWorkerReport(Buffer.alloc(reportBytesMax + 1, 0x20))).toBeNull();
  });
});
