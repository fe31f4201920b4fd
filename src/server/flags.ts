/**
 * The server's command line: etcd's flags and `ETCD_*` environment variables, with etcd 3.4's
 * defaults, so a script written for etcd starts Synod unchanged. Parsed once into a validated,
 * frozen `ServerConfig`; problems are reported as SYNOD_INVALID_CONFIG with the flag's name.
 *
 * TLS flags (`--cert-file`, `--peer-cert-file`, …) are checked for shape here (an https:// URL
 * needs its side's certificate, --client-cert-auth needs a CA); the files themselves are read and
 * validated when the member starts (tls/tls-material.ts). So are `--auth-token`'s key files: the
 * flag's syntax is checked here (auth/auth-token-option.ts), the keys at start (auth/jwt-keys.ts).
 *
 * Precedence follows etcd: a flag beats its environment variable. Flags etcd has and Synod does not
 * act on (logging and profiling switches) are accepted and listed in `ignoredFlags`, so the caller
 * can warn instead of refusing to start.
 */

import { parseArgs } from 'node:util';
import { SynodError } from '../base/index.js';
import { parseAuthTokenOption, type AuthTokenOption } from './auth/auth-token-option.js';
import type { TlsFiles } from './tls/index.js';

/** One member of `--initial-cluster`: its name and peer URLs. */
export interface InitialMember {
  readonly name: string;
  readonly peerUrls: readonly URL[];
}

/** How automatic compaction picks the revision to compact to (etcd's two modes). */
export type AutoCompaction =
  | { readonly mode: 'off' }
  /** Keep `retentionMs` of history (etcd's `periodic`). */
  | { readonly mode: 'periodic'; readonly retentionMs: number }
  /** Keep the last `retentionRevisions` revisions (etcd's `revision`). */
  | { readonly mode: 'revision'; readonly retentionRevisions: number };

/** A validated server configuration. */
export interface ServerConfig {
  readonly name: string;
  readonly dataDir: string;
  readonly listenClientUrls: readonly URL[];
  readonly advertiseClientUrls: readonly URL[];
  readonly listenPeerUrls: readonly URL[];
  /**
   * Whether --listen-peer-urls was given. A single member listens for peers only then (or when it
   * joins), so that it can grow into a cluster; otherwise it leaves etcd's default port alone.
   */
  readonly listenPeerUrlsGiven: boolean;
  /** Where /health and /version are served over HTTP/1.1 (etcd's --listen-metrics-urls); may be empty. */
  readonly listenMetricsUrls: readonly URL[];
  readonly initialAdvertisePeerUrls: readonly URL[];
  readonly initialCluster: readonly InitialMember[];
  readonly initialClusterState: 'new' | 'existing';
  readonly initialClusterToken: string;
  /** Raft's tick: a leader heartbeats every tick. */
  readonly heartbeatIntervalMs: number;
  readonly electionTimeoutMs: number;
  /** Applied entries between two snapshots of the state machine. */
  readonly snapshotCount: number;
  /** Entries kept in the log behind a snapshot (etcd's --experimental-snapshot-catchup-entries). */
  readonly snapshotCatchUpEntries: number;
  /** The backend size at which writes are refused with "database space exceeded". */
  readonly quotaBackendBytes: number;
  readonly autoCompaction: AutoCompaction;
  /** Largest client request accepted. */
  readonly maxRequestBytes: number;
  /** Most operations in one Txn branch. */
  readonly maxTxnOps: number;
  /** `--auth-token`: Synod's signed tokens (`simple`, the default) or etcd's JWT with its keys. */
  readonly authToken: AuthTokenOption;
  /**
   * The client port's TLS files (--cert-file, --key-file, --trusted-ca-file, --client-cert-auth),
   * or null without --cert-file. Used by https:// client URLs; every https:// one needs it.
   */
  readonly clientTls: TlsFiles | null;
  /** The peer port's (--peer-cert-file, …), or null; every https:// peer URL needs it. */
  readonly peerTls: TlsFiles | null;
  /** etcd flags given that Synod accepts but does not act on. */
  readonly ignoredFlags: readonly string[];
}

/** etcd 3.4's defaults for a quota of 0 and for the request limits. */
export const quotaBackendBytesDefault = 2 * 1024 * 1024 * 1024;
/** etcd refuses quotas above 8 GiB. */
export const quotaBackendBytesMax = 8 * 1024 * 1024 * 1024;
export const maxRequestBytesDefault = 1.5 * 1024 * 1024;
export const electionTimeoutMsMax = 50_000;

const valueFlags = [
  'name',
  'data-dir',
  'listen-client-urls',
  'advertise-client-urls',
  'listen-peer-urls',
  'listen-metrics-urls',
  'initial-advertise-peer-urls',
  'initial-cluster',
  'initial-cluster-state',
  'initial-cluster-token',
  'heartbeat-interval',
  'election-timeout',
  'snapshot-count',
  'quota-backend-bytes',
  'auto-compaction-mode',
  'auto-compaction-retention',
  'max-request-bytes',
  'max-txn-ops',
  'experimental-snapshot-catchup-entries',
  'auth-token',
] as const;

/** The TLS files' flags, for the client port and (with `peer-`) for peers. */
const tlsValueFlags = [
  'cert-file', 'key-file', 'trusted-ca-file',
  'peer-cert-file', 'peer-key-file', 'peer-trusted-ca-file',
] as const;
/** Boolean flags read as Go's flag package does: `--flag`, `--flag=true`, `--flag=false`. */
const switchFlags = ['client-cert-auth', 'peer-client-cert-auth'] as const;

/**
 * Accepted for compatibility, without effect. `--cipher-suites` takes Go's names; Node's
 * OpenSSL defaults (TLS 1.2 and 1.3 with AEAD ciphers) apply instead.
 */
const ignoredValueFlags = [
  'logger', 'log-level', 'log-outputs', 'metrics', 'max-snapshots', 'max-wals', 'cipher-suites',
] as const;
const ignoredSwitches = ['debug', 'enable-pprof', 'enable-v2', 'force-new-cluster'] as const;

type ValueFlag = (typeof valueFlags)[number] | (typeof tlsValueFlags)[number];
type SwitchFlag = (typeof switchFlags)[number];

function invalid(message: string): never {
  throw new SynodError('SYNOD_INVALID_CONFIG', message);
}

/** The environment variable etcd reads for a flag: `--data-dir` → `ETCD_DATA_DIR`. */
export function envName(flag: string): string {
  return `ETCD_${flag.toUpperCase().replaceAll('-', '_')}`;
}

/** Parses `argv` (without the program and subcommand) and `env` into a config. */
export function parseServerFlags(argv: readonly string[], env: Readonly<Record<string, string | undefined>>): ServerConfig {
  const options: Record<string, { type: 'string' | 'boolean' }> = {};
  for (const flag of [...valueFlags, ...tlsValueFlags, ...ignoredValueFlags]) {
    options[flag] = { type: 'string' };
  }
  for (const flag of [...ignoredSwitches, ...switchFlags]) options[flag] = { type: 'boolean' };
  const { args, switches } = takeSwitchValues(argv);
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({ args, options, strict: true, allowPositionals: false }));
  } catch (error) {
    invalid((error as Error).message);
  }
  const read = (flag: ValueFlag): string | undefined => (values[flag] as string | undefined) ?? env[envName(flag)];
  const readSwitch = (flag: SwitchFlag): boolean => {
    const given = switches.get(flag) ?? (values[flag] as boolean | undefined);
    if (given !== undefined) return given;
    const text = env[envName(flag)];
    return text === undefined || text === '' ? false : goBool(envName(flag), text);
  };
  const ignoredFlags = [...ignoredValueFlags, ...ignoredSwitches].filter((flag) => values[flag] !== undefined);
  const config = buildConfig(read, ignoredFlags);
  const clientTls = tlsFilesOf({ read, readSwitch, prefix: '' });
  const peerTls = tlsFilesOf({ read, readSwitch, prefix: 'peer-' });
  checkHttpsUrls(config, { clientTls, peerTls });
  return Object.freeze({ ...config, clientTls, peerTls });
}

type TlsLessConfig = Omit<ServerConfig, 'clientTls' | 'peerTls'>;

function buildConfig(read: (flag: ValueFlag) => string | undefined, ignoredFlags: string[]): TlsLessConfig {
  const name = read('name') ?? 'default';
  if (name === '') invalid('--name must not be empty');
  const initialAdvertisePeerUrls = urls('initial-advertise-peer-urls', read('initial-advertise-peer-urls') ?? 'http://localhost:2380');
  const heartbeatIntervalMs = integer('heartbeat-interval', read('heartbeat-interval') ?? '100', 1);
  const electionTimeoutMs = integer('election-timeout', read('election-timeout') ?? '1000', 1);
  if (electionTimeoutMs < 5 * heartbeatIntervalMs) {
    invalid(`--election-timeout[${electionTimeoutMs}ms] should be at least as 5 times as --heartbeat-interval[${heartbeatIntervalMs}ms]`);
  }
  if (electionTimeoutMs > electionTimeoutMsMax) {
    invalid(`--election-timeout[${electionTimeoutMs}ms] is too long, and should be set less than ${electionTimeoutMsMax}ms`);
  }
  const initialCluster = parseInitialCluster(read('initial-cluster') ?? `${name}=${initialAdvertisePeerUrls.map((u) => u.href.replace(/\/$/, '')).join(',')}`);
  const initialClusterState = read('initial-cluster-state') ?? 'new';
  if (initialClusterState !== 'new' && initialClusterState !== 'existing') {
    invalid(`--initial-cluster-state must be "new" or "existing", got "${initialClusterState}"`);
  }
  if (initialClusterState === 'new' && !initialCluster.some((member) => member.name === name)) {
    invalid(`couldn't find local name "${name}" in the initial cluster configuration`);
  }
  const quota = integer('quota-backend-bytes', read('quota-backend-bytes') ?? '0', 0);
  if (quota > quotaBackendBytesMax) invalid(`--quota-backend-bytes ${quota} exceeds the maximum of ${quotaBackendBytesMax}`);
  return {
    name,
    dataDir: read('data-dir') ?? `${name}.etcd`,
    listenClientUrls: urls('listen-client-urls', read('listen-client-urls') ?? 'http://localhost:2379'),
    advertiseClientUrls: urls('advertise-client-urls', read('advertise-client-urls') ?? 'http://localhost:2379'),
    listenPeerUrls: urls('listen-peer-urls', read('listen-peer-urls') ?? 'http://localhost:2380'),
    listenPeerUrlsGiven: read('listen-peer-urls') !== undefined,
    listenMetricsUrls: read('listen-metrics-urls') === undefined ? [] : urls('listen-metrics-urls', read('listen-metrics-urls')!),
    initialAdvertisePeerUrls,
    initialCluster,
    initialClusterState,
    initialClusterToken: read('initial-cluster-token') ?? 'etcd-cluster',
    heartbeatIntervalMs,
    electionTimeoutMs,
    snapshotCount: integer('snapshot-count', read('snapshot-count') ?? '100000', 1),
    snapshotCatchUpEntries: integer(
      'experimental-snapshot-catchup-entries',
      read('experimental-snapshot-catchup-entries') ?? '5000',
      1,
    ),
    quotaBackendBytes: quota === 0 ? quotaBackendBytesDefault : quota,
    autoCompaction: parseAutoCompaction(read('auto-compaction-mode') ?? 'periodic', read('auto-compaction-retention') ?? '0'),
    maxRequestBytes: integer('max-request-bytes', read('max-request-bytes') ?? String(maxRequestBytesDefault), 1),
    maxTxnOps: integer('max-txn-ops', read('max-txn-ops') ?? '128', 1),
    authToken: parseAuthTokenOption(read('auth-token') ?? 'simple'),
    ignoredFlags,
  };
}

/**
 * Takes `--client-cert-auth=true|false` (and the peer one) out of `argv`, which Node's parseArgs
 * refuses for a boolean; the bare `--client-cert-auth` is left to parseArgs.
 */
function takeSwitchValues(
  argv: readonly string[],
): { args: string[]; switches: Map<SwitchFlag, boolean> } {
  const switches = new Map<SwitchFlag, boolean>();
  const args: string[] = [];
  for (const arg of argv) {
    const match = /^--([a-z-]+)=(.*)$/.exec(arg);
    const flag = switchFlags.find((name) => name === match?.[1]);
    if (match === null || flag === undefined) {
      args.push(arg);
      continue;
    }
    switches.set(flag, goBool(`--${flag}`, match[2]!));
  }
  return { args, switches };
}

/** Go's strconv.ParseBool, which etcd's boolean flags and variables go through. */
function goBool(name: string, text: string): boolean {
  if (['1', 't', 'T', 'TRUE', 'true', 'True'].includes(text)) return true;
  if (['0', 'f', 'F', 'FALSE', 'false', 'False'].includes(text)) return false;
  return invalid(`${name} must be true or false, got "${text}"`);
}

/** One side's TLS files from its flags, or null when it has no certificate; checked for shape. */
function tlsFilesOf(options: {
  read: (flag: ValueFlag) => string | undefined;
  readSwitch: (flag: SwitchFlag) => boolean;
  prefix: '' | 'peer-';
}): TlsFiles | null {
  const { prefix } = options;
  const given = (flag: ValueFlag): string | null => {
    const value = options.read(flag);
    return value === undefined || value === '' ? null : value;
  };
  const certFile = given(`${prefix}cert-file`);
  const keyFile = given(`${prefix}key-file`);
  const trustedCaFile = given(`${prefix}trusted-ca-file`);
  const clientCertAuth = options.readSwitch(`${prefix}client-cert-auth`);
  if (certFile === null && keyFile === null) {
    if (clientCertAuth || trustedCaFile !== null) {
      const what = clientCertAuth ? `--${prefix}client-cert-auth` : `--${prefix}trusted-ca-file`;
      invalid(`${what} needs TLS: give --${prefix}cert-file and --${prefix}key-file too`);
    }
    return null;
  }
  if (certFile === null || keyFile === null) {
    invalid(`--${prefix}cert-file and --${prefix}key-file must be given together`);
  }
  if (clientCertAuth && trustedCaFile === null) {
    invalid(
      `--${prefix}client-cert-auth needs --${prefix}trusted-ca-file: the CA that signs the certificates accepted`,
    );
  }
  return Object.freeze({ certFile, keyFile, trustedCaFile, clientCertAuth, flagPrefix: prefix });
}

/** Every https:// URL needs its side's certificate (etcd's message). */
function checkHttpsUrls(
  config: TlsLessConfig, tls: { clientTls: TlsFiles | null; peerTls: TlsFiles | null },
): void {
  if (tls.clientTls === null) {
    const url = config.listenClientUrls.find((candidate) => candidate.protocol === 'https:');
    if (url !== undefined) {
      invalid(
        `TLS key/cert (--cert-file, --key-file) must be provided for client url ${url.href} with HTTPS scheme`,
      );
    }
  }
  if (tls.peerTls === null) {
    const peerUrls = [
      ...config.listenPeerUrls, ...config.initialAdvertisePeerUrls,
      ...config.initialCluster.flatMap((member) => member.peerUrls),
    ];
    const url = peerUrls.find((candidate) => candidate.protocol === 'https:');
    if (url !== undefined) {
      invalid(
        `TLS key/cert (--peer-cert-file, --peer-key-file) must be provided for peer url ${url.href} with HTTPS scheme`,
      );
    }
  }
}

function integer(flag: string, text: string, min: number): number {
  const value = Number(text);
  if (text.trim() === '' || !Number.isSafeInteger(value) || value < min) invalid(`--${flag} must be an integer ≥ ${min}, got "${text}"`);
  return value;
}

function urls(flag: string, text: string): URL[] {
  const list = text.split(',').map((part) => part.trim()).filter((part) => part !== '');
  if (list.length === 0) invalid(`--${flag} must list at least one URL`);
  return list.map((part) => {
    let url: URL;
    try {
      url = new URL(part);
    } catch {
      invalid(`--${flag}: "${part}" is not a URL`);
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:' && url.protocol !== 'unix:' && url.protocol !== 'unixs:') {
      invalid(`--${flag}: URL scheme must be http, https, unix or unixs, got "${part}"`);
    }
    if (url.pathname !== '/' && url.pathname !== '' && (url.protocol === 'http:' || url.protocol === 'https:')) {
      invalid(`--${flag}: URL must not have a path, got "${part}"`);
    }
    return url;
  });
}

/** `n1=http://a:2380,n1=http://b:2380,n2=http://c:2380` → members with their URLs, in order. */
function parseInitialCluster(text: string): InitialMember[] {
  const byName = new Map<string, URL[]>();
  for (const part of text.split(',').map((p) => p.trim()).filter((p) => p !== '')) {
    const equals = part.indexOf('=');
    if (equals <= 0) invalid(`--initial-cluster: "${part}" is not name=url`);
    const name = part.slice(0, equals);
    const [url] = urls('initial-cluster', part.slice(equals + 1));
    byName.set(name, [...(byName.get(name) ?? []), url!]);
  }
  if (byName.size === 0) invalid('--initial-cluster must name at least one member');
  return [...byName].map(([name, peerUrls]) => ({ name, peerUrls }));
}

const durationUnitsMs: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** etcd: periodic retention is hours as a bare number, or a Go duration ("30m", "1h30m"). */
function parseAutoCompaction(mode: string, retention: string): AutoCompaction {
  if (mode !== 'periodic' && mode !== 'revision') invalid(`--auto-compaction-mode must be "periodic" or "revision", got "${mode}"`);
  if (mode === 'revision') {
    const revisions = integer('auto-compaction-retention', retention, 0);
    return revisions === 0 ? { mode: 'off' } : { mode: 'revision', retentionRevisions: revisions };
  }
  let retentionMs: number;
  if (/^\d+$/.test(retention)) {
    retentionMs = Number(retention) * durationUnitsMs.h!;
  } else {
    const parts = [...retention.matchAll(/(\d+(?:\.\d+)?)(ms|s|m|h)/g)];
    if (parts.length === 0 || parts.map((p) => p[0]).join('') !== retention) {
      invalid(`--auto-compaction-retention: "${retention}" is neither hours nor a duration like 30m or 1h30m`);
    }
    retentionMs = parts.reduce((sum, p) => sum + Number(p[1]) * durationUnitsMs[p[2]!]!, 0);
  }
  return retentionMs === 0 ? { mode: 'off' } : { mode: 'periodic', retentionMs };
}
