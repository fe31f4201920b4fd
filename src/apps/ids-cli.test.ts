// `synod ids`: its flags, and the service it starts in front of a Synod member in this process.
import { readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Etcd3 } from 'etcd3';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { isSynodError } from '../base/index.js';
import { startInProcessSynod, type ClientTarget } from '../../test/client/targets.js';
import {
  makeTestCertificates, type TestCertificates,
} from '../server/tls/certificate-test-kit.js';
import { httpsRequest } from '../server/tls/tls-test-kit.js';
import {
  idsListenGrpcDefault, idsListenHttpDefault, idsMain, idsPasswordVariable, parseIdsFlags,
  parseListenAddress, startIds, type IdsConfig,
} from './ids-cli.js';

let certs: TestCertificates;
beforeAll(async () => {
  certs = await makeTestCertificates();
}, 60_000);
afterAll(async () => certs?.remove());

/** The flags of TLS with client-certificate auth on the listeners, from the test kit. */
function listenTlsFlags(): string[] {
  return [
    '--listen-cert-file', certs.server.cert, '--listen-key-file', certs.server.key,
    '--listen-trusted-ca-file', certs.ca, '--listen-client-cert-auth',
  ];
}

describe('synod ids flags', () => {
  it('fills the defaults', () => {
    expect(parseIdsFlags(['--endpoints', 'http://127.0.0.1:2379,127.0.0.1:22379'])).toEqual({
      endpoints: ['http://127.0.0.1:2379', '127.0.0.1:22379'],
      listenHttp: parseListenAddress('listen-http', idsListenHttpDefault),
      listenGrpc: parseListenAddress('listen-grpc', idsListenGrpcDefault),
      prefix: 'synod/ids/segment', step: 1_000, tagsMax: 1_000, batchMax: 1_000, datacenterId: 0,
    });
    expect(parseListenAddress('listen-grpc', '[::1]:0')).toEqual({ host: '::1', port: 0 });
    expect(parseIdsFlags(['--help'])).toBe('help');
  });

  it('refuses bad usage with SYNOD_INVALID_CONFIG', () => {
    const endpoints = ['--endpoints', '127.0.0.1:2379'];
    for (const argv of [
      [], ['--endpoints', ','], [...endpoints, '--step', '0'],
      [...endpoints, '--step', '2147483648'],
      [...endpoints, '--tags-max', '100001'], [...endpoints, '--batch-max', '100001'],
      [...endpoints, '--listen-http', '127.0.0.1'], [...endpoints, '--listen-grpc', 'h:65536'],
      [...endpoints, '--datacenter-id', '32'], [...endpoints, '--frobnicate'], [...endpoints, 'positional'],
    ]) {
      let thrown: unknown;
      try {
        parseIdsFlags(argv);
      } catch (error) {
        thrown = error;
      }
      expect(isSynodError(thrown, 'SYNOD_INVALID_CONFIG'), argv.join(' ')).toBe(true);
    }
  });
});

describe('synod ids towards a secured cluster: flags', () => {
  const endpoints = ['--endpoints', '127.0.0.1:2379'];
  const codeOf = (argv: string[], env: Record<string, string> = {}): string | undefined => {
    try {
      parseIdsFlags(argv, env);
    } catch (error) {
      return (error as { code?: string }).code;
    }
    return undefined;
  };

  it('reads the password from the environment, never from the command line', () => {
    const config = parseIdsFlags([...endpoints, '--user', 'ids'], { [idsPasswordVariable]: 'pw' });
    expect(config !== 'help' && config.auth).toEqual({ username: 'ids', password: 'pw' });
    expect(codeOf([...endpoints, '--user', 'ids'])).toBe('SYNOD_INVALID_CONFIG');
    expect(codeOf([...endpoints, '--password', 'pw'])).toBe('SYNOD_INVALID_CONFIG');
  });

  it('reads the PEM files at parse time; --cert and --key go together', () => {
    const ca = join(tmpdir(), `synod-ids-ca-${process.pid}.pem`);
    writeFileSync(ca, '-----BEGIN CERTIFICATE-----\n');
    const config = parseIdsFlags([...endpoints, '--cacert', ca]);
    expect(config !== 'help' && config.tls?.ca?.toString()).toBe('-----BEGIN CERTIFICATE-----\n');
    expect(codeOf([...endpoints, '--cacert', '/nonexistent/ca.pem'])).toBe('SYNOD_INVALID_CONFIG');
    expect(codeOf([...endpoints, '--cert', ca])).toBe('SYNOD_INVALID_CONFIG');
  });
});

describe('synod ids with TLS on its own listeners: flags', () => {
  const endpoints = ['--endpoints', '127.0.0.1:2379'];
  const messageOf = (argv: string[]): string => {
    try {
      parseIdsFlags(argv);
    } catch (error) {
      if (isSynodError(error, 'SYNOD_INVALID_CONFIG')) return error.message;
      throw error;
    }
    return 'accepted';
  };

  it('reads the PEM files at parse time, apart from the flags towards the cluster', () => {
    const config = parseIdsFlags([...endpoints, ...listenTlsFlags(), '--cacert', certs.ca]);
    expect(config !== 'help' && config.listenTls).toEqual({
      cert: readFileSync(certs.server.cert), key: readFileSync(certs.server.key),
      ca: readFileSync(certs.ca), clientCertAuth: true,
    });
    expect(config !== 'help' && config.tls).toEqual({
      ca: readFileSync(certs.ca), cert: undefined, key: undefined,
    });
    const plain = parseIdsFlags([
      ...endpoints, '--listen-cert-file', certs.server.cert, '--listen-key-file', certs.server.key,
    ]);
    expect(plain !== 'help' && plain.listenTls?.clientCertAuth).toBe(false);
    expect(plain !== 'help' && plain.tls).toBeUndefined();
    const towardsCluster = parseIdsFlags([
      ...endpoints, '--cert', certs.alice.cert, '--key', certs.alice.key,
    ]);
    expect(towardsCluster !== 'help' && towardsCluster.listenTls).toBeUndefined();
  });

  it('refuses bad combinations and files that cannot serve, naming the flag', () => {
    const cert = ['--listen-cert-file', certs.server.cert];
    const key = ['--listen-key-file', certs.server.key];
    const trusted = ['--listen-trusted-ca-file', certs.ca];
    expect(messageOf([...endpoints, ...cert]))
      .toBe('--listen-cert-file and --listen-key-file go together');
    expect(messageOf([...endpoints, ...key]))
      .toBe('--listen-cert-file and --listen-key-file go together');
    for (const alone of [trusted, ['--listen-client-cert-auth']]) {
      expect(messageOf([...endpoints, ...alone])).toBe(
        '--listen-trusted-ca-file and --listen-client-cert-auth need --listen-cert-file and ' +
        '--listen-key-file');
    }
    expect(messageOf([...endpoints, ...cert, ...key, '--listen-client-cert-auth'])).toBe(
      '--listen-client-cert-auth needs --listen-trusted-ca-file, the CA client certificates ' +
      'must be signed by');
    expect(messageOf([...endpoints, ...cert, '--listen-key-file', '/nonexistent/server.key']))
      .toMatch(/^--listen-key-file \/nonexistent\/server\.key: ENOENT/);
    expect(messageOf([...endpoints, ...cert, '--listen-key-file', certs.alice.key])).toMatch(
      /^--listen-cert-file \S+ and --listen-key-file \S+ do not go together/);
    expect(messageOf([...endpoints, ...cert, ...key, '--listen-trusted-ca-file', certs.server.key]))
      .toMatch(/^--listen-trusted-ca-file \S+: no PEM certificate in the file$/);
    expect(messageOf([...endpoints, '--listen-cert-file', certs.server.key, ...key]))
      .toMatch(/^--listen-cert-file \S+: no PEM certificate in the file$/);
  });

  it('exits 2 on a bad combination, before reaching the cluster', async () => {
    const quiet = vi.spyOn(console, 'error').mockImplementation(() => {});
    try {
      expect(await idsMain([...endpoints, '--listen-cert-file', certs.server.cert])).toBe(2);
      expect(String(quiet.mock.calls[0]?.[0])).toContain('--listen-key-file');
    } finally {
      quiet.mockRestore();
    }
  });
});

describe('synod ids against a member', () => {
  let target: ClientTarget;

  beforeAll(async () => {
    target = await startInProcessSynod();
  });
  afterAll(async () => {
    await target?.stop();
  });

  it('serves segment tags kept in Synod and Snowflake on a leased worker id, decodes, and closes', async () => {
    const config: IdsConfig = {
      endpoints: [target.endpoint],
      listenHttp: { host: '127.0.0.1', port: 0 },
      listenGrpc: { host: '127.0.0.1', port: 0 },
      prefix: 'test/ids-cli', step: 5, tagsMax: 4, batchMax: 50, datacenterId: 3,
    };
    const running = await startIds(config, pino({ level: 'silent' }));
    const base = `http://127.0.0.1:${running.server.httpPort}`;
    const batch = await (await fetch(`${base}/v1/ids/cli?count=12`)).json();
    expect(batch).toEqual({ tag: 'cli', ids: Array.from({ length: 12 }, (_, i) => String(i + 1)) });
    // The segment key moved past everything issued.
    const key = await running.client.get('test/ids-cli/cli');
    expect(BigInt(key!.value.toString())).toBeGreaterThan(12n);
    expect((await fetch(`${base}/v1/ids/cli?count=51`)).status).toBe(400);
    const snowflake = await (await fetch(`${base}/v1/ids/snowflake?count=3`)).json() as {
      ids: string[];
    };
    expect(snowflake.ids).toHaveLength(3);
    expect(BigInt(snowflake.ids[2]!)).toBeGreaterThan(BigInt(snowflake.ids[1]!));
    const decoded = await (await fetch(`${base}/v1/decode/${snowflake.ids[0]}`)).json() as {
      datacenterId: number; timestampMs: number;
    };
    expect(decoded.datacenterId).toBe(3);
    expect(Math.abs(decoded.timestampMs - Date.now())).toBeLessThan(60_000);
    // The worker id is held in the cluster, under a lease.
    const workers = await running.client.getPrefix('synod/ids/snowflake/default/workers/3/');
    expect(workers).toHaveLength(1);
    const unknown = await fetch(`${base}/v1/ids/nosuch%2Ftag`);
    expect(unknown.status).toBe(400);
    expect((await fetch(`${base}/readyz`)).status).toBe(200);
    expect(running.server.grpcPort).toBeGreaterThan(0);
    await running.close();
    await expect(fetch(`${base}/livez`)).rejects.toThrow();
    await expect(running.client.get('test/ids-cli/cli')).rejects.toSatisfy(
      (error) => isSynodError(error, 'SYNOD_CLIENT_CLOSED'));
  });

  it('serves HTTPS with client-certificate auth from the --listen-* flags', async () => {
    const parsed = parseIdsFlags([
      '--endpoints', target.endpoint, '--prefix', 'test/ids-cli-tls',
      '--listen-http', '127.0.0.1:0', '--listen-grpc', '127.0.0.1:0', ...listenTlsFlags(),
    ]);
    if (parsed === 'help') throw new Error('parsed as --help');
    const running = await startIds(parsed, pino({ level: 'silent' }));
    try {
      const port = running.server.httpPort!;
      const ca = readFileSync(certs.ca);
      const alice = { cert: readFileSync(certs.alice.cert), key: readFileSync(certs.alice.key) };
      const path = '/v1/ids/tls?count=2';
      const answer = await httpsRequest({ port, path, tls: { ca, ...alice } });
      expect(answer.status).toBe(200);
      expect(JSON.parse(answer.body)).toEqual({ tag: 'tls', ids: ['1', '2'] });
      await expect(httpsRequest({ port, path: '/livez', tls: { ca } })).rejects.toThrow();
      await expect(fetch(`http://127.0.0.1:${port}/livez`)).rejects.toThrow();
    } finally {
      await running.close();
    }
  });
});

describe('synod ids against a member with auth enabled', () => {
  let target: ClientTarget;
  let setup: Etcd3;

  beforeAll(async () => {
    target = await startInProcessSynod();
    setup = new Etcd3({ hosts: target.endpoint });
    await setup.user('root').create('root-pw');
    await setup.user('root').addRole('root');
    await setup.auth.authEnable();
  }, 60_000);
  afterAll(async () => {
    const root = new Etcd3({ hosts: target.endpoint, auth: { username: 'root', password: 'root-pw' } });
    await root.auth.authDisable().catch(() => undefined);
    root.close();
    setup?.close();
    await target?.stop();
  });

  const config = (auth?: IdsConfig['auth']): IdsConfig => ({
    endpoints: [target.endpoint], listenHttp: { host: '127.0.0.1', port: 0 },
    listenGrpc: { host: '127.0.0.1', port: 0 }, prefix: 'test/ids-auth', step: 5, tagsMax: 4,
    batchMax: 50, datacenterId: 1, ...(auth === undefined ? {} : { auth }),
  });

  it('serves with the user it authenticates as, and refuses to start with a wrong password', async () => {
    const running = await startIds(config({ username: 'root', password: 'root-pw' }), pino({ level: 'silent' }));
    try {
      const base = `http://127.0.0.1:${running.server.httpPort}`;
      expect(await (await fetch(`${base}/v1/ids/secured?count=2`)).json())
        .toEqual({ tag: 'secured', ids: ['1', '2'] });
      expect((await fetch(`${base}/v1/ids/snowflake`)).status).toBe(200);
    } finally {
      await running.close();
    }
    const refused = await startIds(config({ username: 'root', password: 'wrong' }), pino({ level: 'silent' }))
      .then((started) => started.close().then(() => null), (error: unknown) => error);
    expect(isSynodError(refused, 'SYNOD_AUTH_FAILED')).toBe(true);
  });
});
