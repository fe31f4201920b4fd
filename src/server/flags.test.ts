import { describe, expect, it } from 'vitest';
import { isSynodError } from '../base/index.js';
import { envName, parseServerFlags, quotaBackendBytesDefault } from './flags.js';

function rejection(argv: string[], env: Record<string, string> = {}): string {
  try {
    parseServerFlags(argv, env);
  } catch (error) {
    if (isSynodError(error, 'SYNOD_INVALID_CONFIG')) return error.message;
    throw error;
  }
  return 'accepted';
}

describe('parseServerFlags', () => {
  it("fills etcd 3.4's defaults", () => {
    const config = parseServerFlags([], {});
    expect(config.name).toBe('default');
    expect(config.dataDir).toBe('default.etcd');
    expect(config.listenClientUrls.map(String)).toEqual(['http://localhost:2379/']);
    expect(config.initialCluster).toEqual([{ name: 'default', peerUrls: [new URL('http://localhost:2380')] }]);
    expect(config).toMatchObject({
      heartbeatIntervalMs: 100,
      electionTimeoutMs: 1000,
      snapshotCount: 100000,
      snapshotCatchUpEntries: 5000,
      quotaBackendBytes: quotaBackendBytesDefault,
      maxRequestBytes: 1572864,
      maxTxnOps: 128,
      initialClusterState: 'new',
      initialClusterToken: 'etcd-cluster',
      autoCompaction: { mode: 'off' },
    });
    expect(Object.isFrozen(config)).toBe(true);
  });

  it('reads a three-member static bootstrap as an etcd script writes it', () => {
    const config = parseServerFlags(
      [
        '--name', 'n2',
        '--data-dir=/var/lib/synod/n2',
        '--listen-client-urls', 'http://127.0.0.1:22379',
        '--advertise-client-urls', 'http://127.0.0.1:22379',
        '--listen-peer-urls', 'http://127.0.0.1:22380',
        '--initial-advertise-peer-urls', 'http://127.0.0.1:22380',
        '--initial-cluster', 'n1=http://127.0.0.1:12380,n2=http://127.0.0.1:22380,n3=http://127.0.0.1:32380',
        '--initial-cluster-state', 'new',
        '--initial-cluster-token', 'tkn',
        '--heartbeat-interval', '50',
        '--election-timeout', '500',
        '--auto-compaction-mode', 'revision',
        '--auto-compaction-retention', '1000',
        '--logger', 'zap',
      ],
      {},
    );
    expect(config.name).toBe('n2');
    expect(config.dataDir).toBe('/var/lib/synod/n2');
    expect(config.initialCluster.map((m) => m.name)).toEqual(['n1', 'n2', 'n3']);
    expect(config.autoCompaction).toEqual({ mode: 'revision', retentionRevisions: 1000 });
    expect(config.ignoredFlags).toEqual(['logger']);
  });

  it('takes ETCD_* environment variables, and a flag beats its variable', () => {
    expect(envName('data-dir')).toBe('ETCD_DATA_DIR');
    const config = parseServerFlags(['--name', 'flag'], { ETCD_NAME: 'env', ETCD_DATA_DIR: '/d', ETCD_INITIAL_CLUSTER: 'flag=http://h:2380' });
    expect(config.name).toBe('flag');
    expect(config.dataDir).toBe('/d');
  });

  it('parses periodic retention as hours or a duration', () => {
    expect(parseServerFlags(['--auto-compaction-retention', '2'], {}).autoCompaction).toEqual({ mode: 'periodic', retentionMs: 7_200_000 });
    expect(parseServerFlags(['--auto-compaction-retention', '1h30m'], {}).autoCompaction).toEqual({ mode: 'periodic', retentionMs: 5_400_000 });
    expect(rejection(['--auto-compaction-retention', 'soon'])).toMatch(/neither hours nor a duration/);
  });

  it('refuses what etcd refuses, naming the flag', () => {
    expect(rejection(['--heartbeat-interval', '300', '--election-timeout', '1000'])).toMatch(/should be at least as 5 times as --heartbeat-interval/);
    expect(rejection(['--election-timeout', '60000'])).toMatch(/too long/);
    expect(rejection(['--name', 'x', '--initial-cluster', 'y=http://h:2380'])).toMatch(/couldn't find local name "x"/);
    expect(rejection(['--initial-cluster-state', 'maybe'])).toMatch(/must be "new" or "existing"/);
    expect(rejection(['--listen-client-urls', 'ftp://x:1'])).toMatch(/scheme/);
    expect(rejection(['--listen-client-urls', 'http://x:1/path'])).toMatch(/path/);
    expect(rejection(['--snapshot-count', 'many'])).toMatch(/--snapshot-count must be an integer/);
    expect(rejection(['--quota-backend-bytes', String(9 * 1024 ** 3)])).toMatch(/exceeds the maximum/);
    expect(rejection(['--no-such-flag'])).toMatch(/no-such-flag/);
  });
});
