import type { ClientDuplexStream } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkWatch } from '../checkers/watch-checker.js';
import { connectEtcd, prefixRangeEnd } from './lease-etcd-client.js';
import { startResettableProxy, startTestMember, type TestMember } from './lease-test-member.js';
import { runWatchWorkload } from './watch-workload.js';

describe('runWatchWorkload against one Synod member', () => {
  let member: TestMember;
  beforeAll(async () => {
    member = await startTestMember();
  });
  afterAll(async () => member.close());

  it('delivers every committed event to every watcher, once and in order', async () => {
    const history = await runWatchWorkload({
      proto: member.proto, endpoints: [member.endpoint], nowMs: member.nowMs,
      durationMs: 2000, prefix: 'chaos/watch/', writers: 3, watchers: 3,
    });
    const verdict = checkWatch(history);
    expect(verdict.violations).toEqual([]);
    expect(verdict.valid).toBe(true);
    expect(verdict.stats['writesOk']).toBeGreaterThan(0);
    expect(verdict.stats['watchersCaughtUp']).toBe(3);
    expect(verdict.stats['eventsDelivered']).toBe(3 * verdict.stats['committedEvents']!);
    expect(verdict.stats['committedEvents']).toBe(verdict.stats['writesOk']);
  });

  it('resumes after the last delivered revision when streams are cut', async () => {
    const proxy = await startResettableProxy(member.endpoint);
    try {
      // Watchers alternate between the proxy and the member; cutting the proxy's connections
      // mid-run fails the streams on it, and each resumes (on the member) where it left off.
      const running = runWatchWorkload({
        proto: member.proto, endpoints: [proxy.endpoint, member.endpoint], nowMs: member.nowMs,
        durationMs: 1500, prefix: 'chaos/watch-cut/', writers: 2, watchers: 2,
      });
      await untilRevisionWritten(member, 'chaos/watch-cut/', 20);
      proxy.reset();
      const history = await running;
      const verdict = checkWatch(history);
      expect(verdict.violations).toEqual([]);
      // Some stream resumed past where it first started: after events it had delivered.
      const firstRevision = history.watchers[0]!.sessions[0]!.startRevision;
      const resumed = history.watchers.flatMap((watcher) => watcher.sessions.slice(1))
        .filter((session) => session.startRevision > firstRevision);
      expect(resumed.length).toBeGreaterThan(0);
      expect(verdict.stats['reconnects']).toBeGreaterThan(0);
      expect(verdict.stats['watchersCaughtUp']).toBe(2);
    } finally {
      await proxy.close();
    }
  });
});

/** Resolves once `count` events were committed under `prefix` (watched from revision 1). */
function untilRevisionWritten(member: TestMember, prefix: string, count: number): Promise<void> {
  const clients = connectEtcd(member.proto, member.endpoint);
  const stream = (clients.watch['Watch'] as () => ClientDuplexStream<object, WatchResponse>)
    .call(clients.watch);
  let seen = 0;
  return new Promise<void>((resolve) => {
    stream.on('data', (response: WatchResponse) => {
      seen += response.events.length;
      if (seen < count) return;
      stream.cancel();
      clients.close();
      resolve();
    });
    stream.on('error', () => undefined);
    const key = Buffer.from(prefix);
    stream.write({ create_request: { key, range_end: prefixRangeEnd(key), start_revision: '1' } });
  });
}

interface WatchResponse {
  readonly events: readonly unknown[];
}
