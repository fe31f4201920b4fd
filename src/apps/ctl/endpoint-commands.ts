/**
 * `endpoint status|health|hashkv [--cluster]` (command/ep_command.go at v3.4.23): one call to
 * each endpoint in turn, no failover, since the point is to ask that endpoint. `--cluster` first
 * asks MemberList and uses every member's client URLs. `endpointsOf` is shared with `defrag`.
 */

import { status } from '@grpc/grpc-js';
import {
  CtlCommandError, booleanFlag, exitCodes, integerFlag,
  type CommandContext, type CommandSpec, type ParsedCommand,
} from './command.js';
import { isServiceError, serviceErrorMessage } from './connection.js';
import {
  endpointHashKvShape, endpointHealthShape, endpointStatusShape, goJsonList,
} from './json-output.js';
import { goDuration, humanizeBytes, memberIdHex, renderTable } from './simple-output.js';
import type { WireHashKvResponse, WireMemberResponse, WireStatusResponse } from './wire.js';

/** The endpoints a per-endpoint command visits: `--endpoints`, or with `--cluster` the members'. */
export async function endpointsOf(
  context: CommandContext, parsed: ParsedCommand,
): Promise<readonly string[]> {
  if (!booleanFlag(parsed.values, 'cluster')) return context.config.endpoints;
  let response: WireMemberResponse;
  try {
    response = await context.connection.unary<WireMemberResponse>({
      service: 'Cluster', method: 'MemberList', request: {}, kind: 'read',
    });
  } catch (error) {
    throw new CtlCommandError(
      `failed to fetch endpoints from etcd cluster member list: ${messageOf(error)}`);
  }
  return response.members.flatMap((member) => member.clientURLs);
}

/** The text of an error from one endpoint. */
export function messageOf(error: unknown): string {
  if (isServiceError(error)) return serviceErrorMessage(error);
  if (error instanceof CtlCommandError) return error.message;
  throw error;
}

/** One endpoint's Status. */
export interface EndpointStatus {
  readonly endpoint: string;
  readonly status: WireStatusResponse;
}

/** etcdctl's makeEndpointStatusTable columns. */
export const endpointStatusHeader: readonly string[] = [
  'endpoint', 'ID', 'version', 'db size', 'is leader', 'is learner', 'raft term', 'raft index',
  'raft applied index', 'errors',
];

/** The status table's rows. */
export function endpointStatusRows(statuses: readonly EndpointStatus[]): string[][] {
  return statuses.map(({ endpoint, status: response }) => [
    endpoint,
    memberIdHex(response.header?.member_id ?? '0'),
    response.version,
    humanizeBytes(Number(response.dbSize)),
    String(response.leader === (response.header?.member_id ?? '0')),
    String(response.isLearner),
    String(BigInt(response.raftTerm)),
    String(BigInt(response.raftIndex)),
    String(BigInt(response.raftAppliedIndex)),
    response.errors.join(', '),
  ]);
}

/** Prints `rows` in the chosen format; `json` prints `list` as etcdctl's slice of structs. */
function printRows(context: CommandContext, output: {
  readonly header: readonly string[];
  readonly rows: readonly string[][];
  readonly json: () => string;
}): void {
  const { writeOut } = context.config;
  context.io.stdout.write(writeOut === 'json' ? `${output.json()}\n`
    : writeOut === 'table' ? renderTable(output.header, output.rows)
      : output.rows.map((row) => `${row.join(', ')}\n`).join(''));
}

async function runStatus(context: CommandContext, parsed: ParsedCommand): Promise<number> {
  const statuses: EndpointStatus[] = [];
  let failed = false;
  for (const endpoint of await endpointsOf(context, parsed)) {
    try {
      const response = await context.connection.unary<WireStatusResponse>({
        service: 'Maintenance', method: 'Status', request: {}, kind: 'read', endpoint,
      });
      statuses.push({ endpoint, status: response });
    } catch (error) {
      failed = true;
      const message = messageOf(error);
      context.io.stderr.write(`Failed to get the status of endpoint ${endpoint} (${message})\n`);
    }
  }
  printRows(context, {
    header: endpointStatusHeader, rows: endpointStatusRows(statuses),
    json: () => goJsonList(statuses, endpointStatusShape),
  });
  return failed ? exitCodes.error : exitCodes.success;
}

/** One endpoint's health: a linearizable Range of key `health` that answered (or was denied). */
export interface EndpointHealth {
  readonly endpoint: string;
  readonly health: boolean;
  /** Go duration text of the round trip; empty when the endpoint could not be reached. */
  readonly took: string;
  readonly error: string;
}

async function healthOf(context: CommandContext, endpoint: string): Promise<EndpointHealth> {
  try {
    await context.connection.connect(endpoint);
  } catch (error) {
    return { endpoint, health: false, took: '', error: messageOf(error) };
  }
  const startedNs = process.hrtime.bigint();
  try {
    await context.connection.unary({
      service: 'KV', method: 'Range', request: { key: Buffer.from('health') }, kind: 'read',
      endpoint,
    });
  } catch (error) {
    const took = goDuration(process.hrtime.bigint() - startedNs);
    // etcdctl counts PermissionDenied as healthy: the member answered, auth refused the key.
    if (isServiceError(error) && error.code === status.PERMISSION_DENIED) {
      return { endpoint, health: true, took, error: '' };
    }
    return { endpoint, health: false, took, error: messageOf(error) };
  }
  const took = goDuration(process.hrtime.bigint() - startedNs);
  return { endpoint, health: true, took, error: '' };
}

async function runHealth(context: CommandContext, parsed: ParsedCommand): Promise<number> {
  const endpoints = await endpointsOf(context, parsed);
  const healths = await Promise.all(endpoints.map((endpoint) => healthOf(context, endpoint)));
  if (context.config.writeOut === 'simple') {
    // etcdctl prints these lines on stderr.
    for (const each of healths) {
      context.io.stderr.write(each.health
        ? `${each.endpoint} is healthy: successfully committed proposal: took = ${each.took}\n`
        : `${each.endpoint} is unhealthy: failed to commit proposal: ${each.error}\n`);
    }
  } else {
    printRows(context, {
      header: ['endpoint', 'health', 'took', 'error'],
      rows: healths.map((each) => [each.endpoint, String(each.health), each.took, each.error]),
      json: () => goJsonList(healths, endpointHealthShape),
    });
  }
  if (healths.some((each) => !each.health)) throw new CtlCommandError('unhealthy cluster');
  return exitCodes.success;
}

async function runHashKv(context: CommandContext, parsed: ParsedCommand): Promise<number> {
  const revision = integerFlag(parsed.values, 'rev');
  const hashes: { endpoint: string; hashKv: WireHashKvResponse }[] = [];
  let lastError: string | null = null;
  for (const endpoint of await endpointsOf(context, parsed)) {
    try {
      const hashKv = await context.connection.unary<WireHashKvResponse>({
        service: 'Maintenance', method: 'HashKV', request: { revision }, kind: 'read', endpoint,
      });
      hashes.push({ endpoint, hashKv });
    } catch (error) {
      lastError = messageOf(error);
      context.io.stderr.write(`Failed to get the hash of endpoint ${endpoint} (${lastError})\n`);
    }
  }
  printRows(context, {
    header: ['endpoint', 'hash'],
    rows: hashes.map((each) => [each.endpoint, String(each.hashKv.hash)]),
    json: () => goJsonList(hashes, endpointHashKvShape),
  });
  if (lastError !== null) throw new CtlCommandError(lastError);
  return exitCodes.success;
}

const tableFormats = ['simple', 'json', 'table'] as const;
const cluster = { cluster: { type: 'boolean' } } as const;

/** The endpoint commands. */
export const endpointCommands: readonly CommandSpec[] = [
  {
    path: ['endpoint', 'status'], synopsis: '[--cluster]', options: cluster, formats: tableFormats,
    run: runStatus,
  },
  {
    path: ['endpoint', 'health'], synopsis: '[--cluster]', options: cluster, formats: tableFormats,
    run: runHealth,
  },
  {
    path: ['endpoint', 'hashkv'], synopsis: '[--cluster] [--rev N]',
    options: { ...cluster, rev: { type: 'string' } }, formats: tableFormats, run: runHashKv,
  },
];
