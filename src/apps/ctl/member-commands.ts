/**
 * `member list|add|remove|update|promote` (command/member_command.go at v3.4.23). Member IDs are
 * hex. Synod answers the membership changes UNIMPLEMENTED until runtime reconfiguration lands;
 * the server's message is printed as any other error.
 */

import {
  CtlUsageError, booleanFlag, expectArguments, exitCodes, stringFlag,
  type CommandContext, type CommandSpec, type ParsedCommand,
} from './command.js';
import { goJson, memberResponseShape } from './json-output.js';
import { memberIdHex, parseHexId, renderTable } from './simple-output.js';
import type { WireMemberResponse } from './wire.js';

/** etcdctl's makeMemberListTable columns. */
export const memberListHeader: readonly string[] = [
  'ID', 'Status', 'Name', 'Peer Addrs', 'Client Addrs', 'Is Learner',
];

/** The member list's rows; a member without a name has not started yet. */
export function memberListRows(response: WireMemberResponse): string[][] {
  return response.members.map((member) => [
    memberIdHex(member.ID),
    member.name === '' ? 'unstarted' : 'started',
    member.name,
    member.peerURLs.join(','),
    member.clientURLs.join(','),
    String(member.isLearner),
  ]);
}

/** `%16x`: hex, right-aligned in 16 columns (space padded). */
function paddedHex(id: string | bigint): string {
  return memberIdHex(id).padStart(16, ' ');
}

function memberIdArgument(parsed: ParsedCommand): bigint {
  expectArguments(parsed, { min: 1, max: 1 }, 'member ID is not provided');
  const text = parsed.positionals[0]!;
  const id = parseHexId(text, { signed: false });
  if (id === null) throw new CtlUsageError(`bad member ID arg (${text}), expecting ID in Hex`);
  return id;
}

function peerUrlsOf(parsed: ParsedCommand): string[] {
  const text = stringFlag(parsed.values, 'peer-urls');
  if (text === '') throw new CtlUsageError('member peer urls not provided');
  return text.split(',');
}

function clusterId(response: WireMemberResponse): string {
  return paddedHex(response.header?.cluster_id ?? '0');
}

async function runList(context: CommandContext, parsed: ParsedCommand): Promise<number> {
  expectArguments(parsed, { min: 0, max: 0 }, 'member list command accepts no arguments');
  const response = await context.connection.unary<WireMemberResponse>({
    service: 'Cluster', method: 'MemberList', request: {}, kind: 'read',
  });
  const rows = memberListRows(response);
  const { writeOut } = context.config;
  context.io.stdout.write(writeOut === 'json' ? `${goJson(response, memberResponseShape)}\n`
    : writeOut === 'table' ? renderTable(memberListHeader, rows)
      : rows.map((row) => `${row.join(', ')}\n`).join(''));
  return exitCodes.success;
}

/** etcdctl's environment block after `member add`, for starting the new member. */
function initialClusterLines(response: WireMemberResponse, name: string, peerUrls: string): string {
  const newId = response.member?.ID;
  const cluster = response.members.flatMap((member) =>
    member.peerURLs.map((url) => `${member.ID === newId ? name : member.name}=${url}`));
  return `\nETCD_NAME=${JSON.stringify(name)}\n` +
    `ETCD_INITIAL_CLUSTER=${JSON.stringify(cluster.join(','))}\n` +
    `ETCD_INITIAL_ADVERTISE_PEER_URLS=${JSON.stringify(peerUrls)}\n` +
    'ETCD_INITIAL_CLUSTER_STATE="existing"\n';
}

async function runAdd(context: CommandContext, parsed: ParsedCommand): Promise<number> {
  const [name, ...extra] = parsed.positionals;
  if (name === undefined) throw new CtlUsageError('member name not provided');
  if (extra.length > 0) {
    const hints = parsed.positionals.filter((each) => each.toLowerCase().startsWith('http'))
      .map((each) => `, did you mean --peer-urls=${each}`);
    throw new CtlUsageError(`too many arguments${hints.join('')}`);
  }
  const peerURLs = peerUrlsOf(parsed);
  const response = await context.connection.unary<WireMemberResponse>({
    service: 'Cluster', method: 'MemberAdd', kind: 'write',
    request: { peerURLs, isLearner: booleanFlag(parsed.values, 'learner') },
  });
  context.io.stdout.write(context.config.writeOut === 'json'
    ? `${goJson(response, memberResponseShape)}\n`
    : `Member ${paddedHex(response.member?.ID ?? '0')} added to cluster ${clusterId(response)}\n` +
      initialClusterLines(response, name, peerURLs.join(',')));
  return exitCodes.success;
}

/** remove, update and promote: one member ID, one RPC, one `Member … <verb> cluster …` line. */
function changeCommand(options: {
  readonly verb: 'remove' | 'update' | 'promote';
  readonly method: string;
  readonly done: string;
}): CommandSpec['run'] {
  return async (context, parsed) => {
    const id = memberIdArgument(parsed);
    const request = options.verb === 'update'
      ? { ID: id.toString(), peerURLs: peerUrlsOf(parsed) } : { ID: id.toString() };
    const response = await context.connection.unary<WireMemberResponse>({
      service: 'Cluster', method: options.method, request, kind: 'write',
    });
    context.io.stdout.write(context.config.writeOut === 'json'
      ? `${goJson(response, memberResponseShape)}\n`
      : `Member ${paddedHex(id)} ${options.done} cluster ${clusterId(response)}\n`);
    return exitCodes.success;
  };
}

/** The member commands. */
export const memberCommands: readonly CommandSpec[] = [
  {
    path: ['member', 'list'], synopsis: '', options: {}, formats: ['simple', 'json', 'table'],
    run: runList,
  },
  {
    path: ['member', 'add'], synopsis: 'NAME --peer-urls URL[,URL…] [--learner]',
    options: { 'peer-urls': { type: 'string' }, learner: { type: 'boolean' } }, run: runAdd,
  },
  {
    path: ['member', 'remove'], synopsis: 'ID', options: {},
    run: changeCommand({ verb: 'remove', method: 'MemberRemove', done: 'removed from' }),
  },
  {
    path: ['member', 'update'], synopsis: 'ID --peer-urls URL[,URL…]',
    options: { 'peer-urls': { type: 'string' } },
    run: changeCommand({ verb: 'update', method: 'MemberUpdate', done: 'updated in' }),
  },
  {
    path: ['member', 'promote'], synopsis: 'ID', options: {},
    run: changeCommand({ verb: 'promote', method: 'MemberPromote', done: 'promoted in' }),
  },
];
