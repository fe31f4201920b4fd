#!/usr/bin/env node
/**
 * The `synod` command. `synod server [etcd flags]` starts a member from the same command line as
 * etcd (see src/server/flags.ts); SIGTERM or SIGINT shuts it down cleanly.
 */

import { readFileSync } from 'node:fs';
import { pino } from 'pino';
import { AssertionFailure, isSynodError } from '../base/index.js';
import { parseServerFlags } from '../server/flags.js';
import { startServer, type ServiceRegistrar } from '../server/server.js';
import { createGrpcServer } from '../server/api/grpc-server.js';
import { requestLogInterceptor } from '../server/api/request-log.js';
import { loadEtcdProto } from '../server/grpc/proto.js';
import { etcdServices } from '../server/services.js';
import { authInterceptor, MemberAuthSource } from '../server/auth/auth-interceptor.js';
import { plantedBugFromEnv } from '../server/planted-bugs.js';

const { version } = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
const usage = 'usage: synod server [etcd flags: --name, --data-dir, --listen-client-urls, …] | synod chaos [options] | synod --version | synod ctl COMMAND [flags] | synod ids --endpoints URL [flags]';

async function main(argv: readonly string[]): Promise<void> {
  const [command, ...rest] = argv;
  if (command === '--version' || command === 'version') {
    console.log(`synod ${version}`);
    return;
  }
  if (command === 'chaos') {
    const { chaosMain } = await import('./chaos-cli.js');
    process.exitCode = await chaosMain(rest);
    return;
  }
  if (command === 'ctl') {
    const { ctlMain } = await import('./ctl/index.js');
    process.exitCode = await ctlMain(rest);
    return;
  }
  if (command === 'ids') {
    const { idsMain } = await import('./ids-cli.js');
    process.exitCode = await idsMain(rest);
    return;
  }
  if (command === 'snapshot') {
    const { snapshotMain } = await import('./snapshot-cli.js');
    process.exitCode = await snapshotMain(rest);
    return;
  }
  if (command !== 'server') {
    console.error(usage);
    process.exitCode = 2;
    return;
  }
  const logger = pino({ name: 'synod' }, pino.destination(2));
  const config = parseServerFlags(rest, process.env);
  for (const flag of config.ignoredFlags) logger.warn({ flag }, `--${flag} is accepted for etcd compatibility and ignored`);
  const proto = loadEtcdProto();
  const authSource = new MemberAuthSource();
  const registerServices: ServiceRegistrar = etcdServices(proto, { authSource });
  // Request ids start with the member id, known once the member runs (0 for calls before).
  let memberId = 0n;
  const requestLog = requestLogInterceptor({ logger, memberId: () => memberId });
  const server = await startServer({
    config,
    logger,
    grpc: createGrpcServer({
      proto, maxRequestBytes: config.maxRequestBytes,
      interceptors: [requestLog, authInterceptor({ source: authSource })],
    }),
    registerServices,
    synodVersion: version,
    plantedBug: plantedBugFromEnv(process.env),
  });
  memberId = server.identity.memberId;
  logger.info(`synod ${version} serving etcd v3 clients on ${config.listenClientUrls[0]!.href} (data in ${config.dataDir})`);
  let closing = false;
  const shutdown = (signal: string) => {
    if (closing) return;
    closing = true;
    logger.info({ signal }, 'shutting down');
    server.close().then(
      () => process.exit(0),
      (error: unknown) => {
        logger.error({ err: error }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  // etcd stops a member the cluster removed; its data directory must not be reused (its Raft id
  // is retired), so exiting is the clear signal to the operator.
  void server.removed.then(() => shutdown('removed from the cluster'));
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
}

main(process.argv.slice(2)).catch((error: unknown) => {
  if (isSynodError(error, 'SYNOD_INVALID_CONFIG')) {
    console.error(`synod: ${error.message}`);
    process.exit(2);
  }
  // A bug crashes with its stack; an environment problem (a busy port, an unreadable data
  // directory) gets one clear line.
  if (error instanceof AssertionFailure || !(error instanceof Error)) throw error;
  console.error(`synod: failed to start: ${error.message}`);
  process.exit(1);
});
