/**
 * `synod ids --endpoints URL[,URL…] [--listen-http HOST:PORT] [--listen-grpc HOST:PORT]
 * [--listen-cert-file FILE --listen-key-file FILE [--listen-trusted-ca-file FILE]
 * [--listen-client-cert-auth]] [--prefix KEY] [--step N] [--tags-max N] [--batch-max N]
 * [--datacenter-id N] [--cacert FILE] [--cert FILE] [--key FILE] [--user NAME]`: the ID service
 * (src/services/ids/service) in front of a running Synod cluster. Segment tags are created on
 * their first request, each a SegmentGenerator over one SynodSegmentStore, up to --tags-max of
 * them. The `snowflake` tag is a Snowflake generator on a worker id leased from the cluster (in
 * --datacenter-id), leased anew if the lease is lost; `/v1/decode` decodes its ids. Towards the
 * cluster it speaks TLS (--cacert, --cert, --key, or an https:// endpoint) and authenticates as
 * --user, whose password comes from the SYNOD_IDS_PASSWORD environment variable: a password on
 * the command line would show in `ps` and shell history. Its own listeners speak TLS with the
 * --listen-*-file flags (etcd's client-port flags, prefixed), and with --listen-client-cert-auth
 * serve only clients whose certificate the trusted CA signed. SIGTERM or SIGINT stops the
 * listeners, closes the generators, then the client. Exits 0 after a clean shutdown, 1 when it
 * could not start or stop cleanly, 2 on bad usage (unreadable or mismatched PEM files included).
 */

import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { pino, type Logger } from 'pino';
import { AssertionFailure, SynodError } from '../base/index.js';
import { SynodClient, type ClientAuthOptions, type ClientTlsOptions } from '../client/index.js';
import { tlsMaterialOf, type TlsFiles } from '../server/tls/index.js';
import { SegmentGenerator, segmentStepDefault } from '../services/ids/segment.js';
import { segmentStepMax } from '../services/ids/segment-store.js';
import {
  SynodSegmentStore, synodSegmentPrefixDefault,
} from '../services/ids/segment-synod-store.js';
import { idBatchMax } from '../services/ids/id-generator.js';
import { RenewingSnowflakeGenerator } from '../services/ids/renewing-snowflake.js';
import { snowflakeLayoutDefault } from '../services/ids/snowflake-layout.js';
import {
  TagRegistry, batchCountMaxDefault, createdTagsMaxDefault, createdTagsMaxLimit, startIdServer,
  type IdDecoder, type IdServer, type IdServerTls, type ServedGenerator,
} from '../services/ids/service/index.js';

const usage = `usage: synod ids --endpoints URL[,URL…]
  [--listen-http HOST:PORT] [--listen-grpc HOST:PORT]
  [--listen-cert-file FILE --listen-key-file FILE [--listen-trusted-ca-file FILE]
   [--listen-client-cert-auth]]
  [--prefix KEY] [--step N] [--tags-max N] [--batch-max N] [--datacenter-id N]
  [--cacert FILE] [--cert FILE] [--key FILE] [--user NAME]   (password: SYNOD_IDS_PASSWORD)`;

/** Where each protocol listens unless told otherwise (beside etcd's 2379/2380/2381). */
export const idsListenHttpDefault = '127.0.0.1:2390';
/** See `idsListenHttpDefault`. */
export const idsListenGrpcDefault = '127.0.0.1:2391';
/** How long /readyz waits for the cluster's Maintenance.Status. */
const readinessTimeoutMs = 1_000;

/** Tags a request may not create as segment tags: they belong to generators wired in by name. */
export const reservedTags: readonly string[] = Object.freeze(['snowflake']);

/** The command line, validated. */
export interface IdsConfig {
  readonly endpoints: readonly string[];
  readonly listenHttp: { readonly host: string; readonly port: number };
  readonly listenGrpc: { readonly host: string; readonly port: number };
  readonly prefix: string;
  readonly step: number;
  readonly tagsMax: number;
  readonly batchMax: number;
  readonly datacenterId: number;
  /** TLS towards the cluster: PEM file contents, read at parse time. */
  readonly tls?: ClientTlsOptions;
  /** TLS on the service's own listeners: PEM file contents, read and checked at parse time. */
  readonly listenTls?: IdServerTls;
  readonly auth?: ClientAuthOptions;
}

/** The environment variable `--user`'s password is read from. */
export const idsPasswordVariable = 'SYNOD_IDS_PASSWORD';

function usageError(message: string): SynodError {
  return new SynodError('SYNOD_INVALID_CONFIG', message);
}

/** `host:port` or `[v6]:port`, port 0 to 65535 (0 picks one). */
export function parseListenAddress(flag: string, text: string): IdsConfig['listenHttp'] {
  const match = /^(?:\[([0-9a-fA-F:]+)\]|([^\s:/[\]]+)):(\d{1,5})$/.exec(text);
  const port = Number(match?.[3]);
  if (match === null || port > 65_535) throw usageError(`--${flag} ${text}: expected HOST:PORT`);
  return Object.freeze({ host: match[1] ?? match[2]!, port });
}

function wholeNumber(flag: string, text: string, range: { min: number; max: number }): number {
  const value = /^[0-9]{1,10}$/.test(text) ? Number(text) : Number.NaN;
  if (!(value >= range.min && value <= range.max)) {
    throw usageError(`--${flag} ${text}: expected a whole number in [${range.min}, ${range.max}]`);
  }
  return value;
}

/** The contents of the file a flag names, or undefined without the flag. */
function readFlagFile(flag: string, path: string | undefined): Buffer | undefined {
  if (path === undefined) return undefined;
  try {
    return readFileSync(path);
  } catch (error) {
    throw usageError(`--${flag} ${path}: ${(error as Error).message}`);
  }
}

/** The PEM files named by --cacert, --cert and --key, read now so a bad path fails at start. */
function tlsOf(files: { cacert?: string; cert?: string; key?: string }): { tls?: ClientTlsOptions } {
  if (files.cacert === undefined && files.cert === undefined && files.key === undefined) return {};
  if ((files.cert === undefined) !== (files.key === undefined)) {
    throw usageError('--cert and --key go together');
  }
  return {
    tls: Object.freeze({
      ca: readFlagFile('cacert', files.cacert),
      cert: readFlagFile('cert', files.cert),
      key: readFlagFile('key', files.key),
    }),
  };
}

/** The flags of the service's own TLS, as parseArgs gives them. */
interface ListenTlsFlags {
  readonly 'listen-cert-file'?: string;
  readonly 'listen-key-file'?: string;
  readonly 'listen-trusted-ca-file'?: string;
  readonly 'listen-client-cert-auth'?: boolean;
}

/**
 * TLS on the listeners from the --listen-* flags: the files read now and checked as the member
 * checks its own (a bad file is named with its flag), so a wrong path or a key of another
 * certificate is bad usage at start, not a failure on the first connection.
 */
function listenTlsOf(flags: ListenTlsFlags): { listenTls?: IdServerTls } {
  const certFile = flags['listen-cert-file'];
  const keyFile = flags['listen-key-file'];
  const trustedCaFile = flags['listen-trusted-ca-file'] ?? null;
  const clientCertAuth = flags['listen-client-cert-auth'] ?? false;
  const anyFlag = certFile !== undefined || keyFile !== undefined || trustedCaFile !== null;
  if (!anyFlag && !clientCertAuth) return {};
  if (certFile === undefined || keyFile === undefined) {
    throw usageError(certFile === keyFile
      ? '--listen-trusted-ca-file and --listen-client-cert-auth need --listen-cert-file and ' +
        '--listen-key-file'
      : '--listen-cert-file and --listen-key-file go together');
  }
  if (clientCertAuth && trustedCaFile === null) {
    throw usageError('--listen-client-cert-auth needs --listen-trusted-ca-file, the CA client ' +
      'certificates must be signed by');
  }
  const files: TlsFiles = {
    certFile, keyFile, trustedCaFile, clientCertAuth, flagPrefix: 'listen-',
  };
  const material = tlsMaterialOf(files, {
    cert: readFlagFile('listen-cert-file', certFile)!,
    key: readFlagFile('listen-key-file', keyFile)!,
    ca: trustedCaFile === null ? null : readFlagFile('listen-trusted-ca-file', trustedCaFile)!,
  });
  const { cert, key, ca } = material;
  return {
    listenTls: Object.freeze({ cert, key, ...(ca === null ? {} : { ca }), clientCertAuth }),
  };
}

function authOf(user: string | undefined, password: string | undefined): { auth?: ClientAuthOptions } {
  if (user === undefined) return {};
  if (user === '') throw usageError('--user names no user');
  if (password === undefined || password === '') {
    throw usageError(`--user ${user} needs its password in ${idsPasswordVariable}`);
  }
  return { auth: Object.freeze({ username: user, password }) };
}

/** Parses the flags; 'help' for --help. Throws SYNOD_INVALID_CONFIG on bad usage. */
export function parseIdsFlags(
  argv: readonly string[], env: Readonly<Record<string, string | undefined>> = {},
): IdsConfig | 'help' {
  let values;
  try {
    ({ values } = parseArgs({
      args: [...argv],
      options: {
        endpoints: { type: 'string' },
        'listen-http': { type: 'string', default: idsListenHttpDefault },
        'listen-grpc': { type: 'string', default: idsListenGrpcDefault },
        'listen-cert-file': { type: 'string' },
        'listen-key-file': { type: 'string' },
        'listen-trusted-ca-file': { type: 'string' },
        'listen-client-cert-auth': { type: 'boolean' },
        prefix: { type: 'string', default: synodSegmentPrefixDefault },
        step: { type: 'string', default: String(segmentStepDefault) },
        'tags-max': { type: 'string', default: String(createdTagsMaxDefault) },
        'batch-max': { type: 'string', default: String(batchCountMaxDefault) },
        'datacenter-id': { type: 'string', default: '0' },
        cacert: { type: 'string' },
        cert: { type: 'string' },
        key: { type: 'string' },
        user: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (error) {
    throw usageError((error as Error).message);
  }
  if (values.help === true) return 'help';
  if (values.endpoints === undefined) throw usageError('--endpoints is required');
  const endpoints = values.endpoints.split(',').map((each) => each.trim())
    .filter((each) => each !== '');
  if (endpoints.length === 0) throw usageError('--endpoints names no endpoint');
  return Object.freeze({
    endpoints: Object.freeze(endpoints),
    listenHttp: parseListenAddress('listen-http', values['listen-http']),
    listenGrpc: parseListenAddress('listen-grpc', values['listen-grpc']),
    prefix: values.prefix,
    step: wholeNumber('step', values.step, { min: 1, max: segmentStepMax }),
    tagsMax: wholeNumber('tags-max', values['tags-max'], { min: 0, max: createdTagsMaxLimit }),
    batchMax: wholeNumber('batch-max', values['batch-max'], { min: 1, max: idBatchMax }),
    datacenterId: wholeNumber('datacenter-id', values['datacenter-id'], {
      min: 0, max: 2 ** snowflakeLayoutDefault.datacenterBits - 1,
    }),
    ...tlsOf(values),
    ...listenTlsOf(values),
    ...authOf(values.user, env[idsPasswordVariable]),
  });
}

/** A started `synod ids`: its listeners, its tags and its client. */
export interface RunningIds {
  readonly server: IdServer;
  readonly registry: TagRegistry;
  readonly client: SynodClient;
  /** Listeners first (no new requests), then the generators, then the client. */
  close(): Promise<void>;
}

/**
 * The generators served under fixed tags, and the decoder of `/v1/decode` and `Decode`: Snowflake
 * with the default layout on a worker id leased through `client`.
 */
async function fixedGenerators(client: SynodClient, config: IdsConfig): Promise<{
  readonly generators: Readonly<Record<string, ServedGenerator>>;
  readonly decoder: IdDecoder;
}> {
  const snowflake = await RenewingSnowflakeGenerator.start({
    client, datacenterId: config.datacenterId, generator: { layout: snowflakeLayoutDefault },
  });
  return { generators: { snowflake }, decoder: snowflakeLayoutDefault };
}

/** Connects to the cluster and starts serving; the caller closes what it returns. */
export async function startIds(config: IdsConfig, logger: Logger): Promise<RunningIds> {
  const client = new SynodClient({ endpoints: config.endpoints, tls: config.tls, auth: config.auth });
  const store = new SynodSegmentStore({ client, prefix: config.prefix });
  let registry: TagRegistry | null = null;
  try {
    const fixed = await fixedGenerators(client, config);
    registry = new TagRegistry({
      fixed: fixed.generators,
      createdTagsMax: config.tagsMax,
      create: (tag) => {
        if (reservedTags.includes(tag)) return null;
        logger.info({ tag }, 'serving a new segment tag');
        return new SegmentGenerator({ store, tag, step: config.step });
      },
    });
    const server = await startIdServer({
      source: registry,
      decoder: fixed.decoder,
      batchCountMax: config.batchMax,
      http: config.listenHttp,
      grpc: config.listenGrpc,
      tls: config.listenTls,
      logger,
      readiness: async () => {
        const status = await client.status({ timeoutMs: readinessTimeoutMs });
        return status.leader === 0n ? 'the Synod cluster has no leader' : null;
      },
    });
    const created = registry;
    return {
      server, registry: created, client,
      close: async () => {
        try {
          await server.close();
          await created.close();
          await store.close();
        } finally {
          client.close();
        }
      },
    };
  } catch (error) {
    await registry?.close();
    client.close();
    throw error;
  }
}

/** `synod ids …`: serves until SIGTERM or SIGINT; returns the exit code. */
export async function idsMain(argv: readonly string[]): Promise<number> {
  let config: IdsConfig | 'help';
  try {
    config = parseIdsFlags(argv, process.env);
  } catch (error) {
    if (error instanceof AssertionFailure || !(error instanceof Error)) throw error;
    console.error(`synod ids: ${error.message}\n${usage}`);
    return 2;
  }
  if (config === 'help') {
    console.log(usage);
    return 0;
  }
  const logger = pino({ name: 'synod-ids' }, pino.destination(2));
  let running: RunningIds;
  try {
    running = await startIds(config, logger);
  } catch (error) {
    // A bug crashes with its stack; a busy port or a bad endpoint gets one clear line.
    if (error instanceof AssertionFailure || !(error instanceof Error)) throw error;
    logger.error({ err: error }, `failed to start: ${error.message}`);
    return 1;
  }
  const { httpPort, grpcPort } = running.server;
  const http = `${config.listenHttp.host}:${httpPort}`;
  const grpc = `${config.listenGrpc.host}:${grpcPort}`;
  // Whether TLS is on, never the material.
  const tls = config.listenTls === undefined ? 'off'
    : config.listenTls.clientCertAuth === true ? 'client-cert-auth' : 'on';
  logger.info({ httpPort, grpcPort, tls, endpoints: config.endpoints, prefix: config.prefix },
    `serving ids on ${tls === 'off' ? 'http' : 'https'} ${http}, grpc ${grpc} (TLS ${tls})`);
  const signal = await new Promise<string>((resolve) => {
    const onSignal = (name: string) => {
      process.off('SIGTERM', onSignal);
      process.off('SIGINT', onSignal);
      resolve(name);
    };
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
  });
  logger.info({ signal }, 'shutting down');
  try {
    await running.close();
    return 0;
  } catch (error) {
    if (error instanceof AssertionFailure) throw error;
    logger.error({ err: error }, 'shutdown failed');
    return 1;
  }
}
