/**
 * Where the SDK suites run: a Synod member started in this process (npm test), or real etcd and
 * Synod as processes (the interop suite). A suite receives a `ClientTarget` and knows nothing else.
 */

import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { SynodClient, type ClientOptions } from '../../src/client/index.js';
import { createGrpcServer } from '../../src/server/api/grpc-server.js';
import { MemberAuthSource, authInterceptor } from '../../src/server/auth/auth-interceptor.js';
import { parseServerFlags } from '../../src/server/flags.js';
import { loadEtcdProto } from '../../src/server/grpc/proto.js';
import { startServer } from '../../src/server/server.js';
import { etcdServices } from '../../src/server/services.js';
import { startTarget, stopTarget } from '../support/etcdctl-harness.js';

/** A running server the suites talk to. */
export interface ClientTarget {
  readonly name: 'synod' | 'etcd';
  readonly endpoint: string;
  /** A new client of the target; the suite closes it. */
  client(options?: Partial<ClientOptions>): SynodClient;
  stop(): Promise<void>;
}

function targetOf(name: ClientTarget['name'], endpoint: string, stop: () => Promise<void>): ClientTarget {
  return {
    name,
    endpoint,
    client: (options = {}) => new SynodClient({ endpoints: [endpoint], ...options }),
    stop,
  };
}

/**
 * A single Synod member in this process, on a free loopback port, with its own data directory,
 * wired as `synod server` wires it (auth checked on every call).
 */
export async function startInProcessSynod(): Promise<ClientTarget> {
  const proto = loadEtcdProto();
  const dataDir = await mkdtemp(join(tmpdir(), 'synod-client-'));
  const config = parseServerFlags(['--data-dir', dataDir, '--listen-client-urls', 'http://127.0.0.1:0'], {});
  const authSource = new MemberAuthSource();
  const server = await startServer({
    config, logger: pino({ level: 'silent' }),
    grpc: createGrpcServer({ proto, interceptors: [authInterceptor({ source: authSource })] }),
    registerServices: etcdServices(proto, { authSource }), synodVersion: '0.0.0-test',
  });
  return targetOf('synod', `127.0.0.1:${server.clientPort}`, async () => {
    await server.close();
    await rm(dataDir, { recursive: true, force: true });
  });
}

/** Real etcd or Synod as a process (etcd's flags), for differential runs. */
export async function startProcessTarget(name: ClientTarget['name']): Promise<ClientTarget> {
  const target = await startTarget(name);
  return targetOf(name, `127.0.0.1:${target.clientPort}`, () => stopTarget(target));
}
