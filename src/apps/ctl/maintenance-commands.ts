/**
 * `snapshot save`, `alarm list|disarm`, `defrag` and `move-leader` (command/{snapshot,alarm,
 * defrag,move_leader}_command.go and clientv3/snapshot at v3.4.23).
 */

import { createHash } from 'node:crypto';
import { open, rename, rm } from 'node:fs/promises';
import {
  CtlCommandError, CtlUsageError, expectArguments, exitCodes,
  type CommandContext, type CommandSpec, type ParsedCommand,
} from './command.js';
import { endpointsOf, messageOf } from './endpoint-commands.js';
import { alarmShape, goJson, headerOnlyShape } from './json-output.js';
import { memberIdHex, parseHexId } from './simple-output.js';
import type { WireAlarmMember, WireAlarmResponse, WireHeader, WireStatusResponse } from './wire.js';

/** The trailing SHA-256 of a snapshot stream, and the page size its body is a multiple of. */
const snapshotHashBytes = 32;
const snapshotPageBytes = 512;

/**
 * Checks a snapshot stream's trailer incrementally: every byte but the last 32 is hashed, and
 * the last 32 must be that hash (etcd appends it; Synod's stream does too).
 */
class SnapshotDigest {
  readonly #hash = createHash('sha256');
  #tail = Buffer.alloc(0);
  #bytes = 0;

  add(chunk: Buffer): void {
    const pending = Buffer.concat([this.#tail, chunk]);
    const hashedBytes = Math.max(0, pending.length - snapshotHashBytes);
    this.#hash.update(pending.subarray(0, hashedBytes));
    this.#tail = pending.subarray(hashedBytes);
    this.#bytes += chunk.length;
  }

  /** Throws a CtlCommandError unless the stream ended with the hash of what came before. */
  verify(): void {
    if (this.#bytes % snapshotPageBytes !== snapshotHashBytes) {
      throw new CtlCommandError(`sha256 checksum not found [bytes: ${this.#bytes}]`);
    }
    if (!this.#hash.digest().equals(this.#tail)) {
      throw new CtlCommandError('snapshot sha256 checksum mismatch');
    }
  }
}

async function runSnapshotSave(context: CommandContext, parsed: ParsedCommand): Promise<number> {
  expectArguments(parsed, { min: 1, max: 1 }, 'snapshot save expects one argument');
  const path = parsed.positionals[0]!;
  const partPath = `${path}.part`;
  const { config } = context;
  // etcdctl gives the snapshot a deadline only when --command-timeout is set explicitly.
  const deadline = config.commandTimeoutExplicit
    ? { deadline: new Date(Date.now() + config.commandTimeoutMs) } : {};
  const stream = await context.connection.serverStream<{ blob: Buffer }>({
    service: 'Maintenance', method: 'Snapshot', request: {}, ...deadline,
  });
  const file = await open(partPath, 'w', 0o600);
  try {
    const digest = new SnapshotDigest();
    for await (const message of stream as AsyncIterable<{ blob: Buffer }>) {
      digest.add(message.blob);
      await file.write(message.blob);
    }
    digest.verify();
    await file.sync();
  } catch (error) {
    await file.close();
    await rm(partPath, { force: true });
    throw error;
  }
  await file.close();
  await rename(partPath, path);
  context.io.stdout.write(`Snapshot saved at ${path}\n`);
  return exitCodes.success;
}

/** etcd 3.4's AlarmMember.String() (proto compact text, trailing space kept). */
export function alarmSimple(alarm: WireAlarmMember): string {
  return `memberID:${BigInt(alarm.memberID)} alarm:${alarm.alarm} \n`;
}

function printAlarms(context: CommandContext, response: Partial<WireAlarmResponse>): void {
  const alarms = response.alarms ?? [];
  context.io.stdout.write(context.config.writeOut === 'json'
    ? `${goJson({ header: null, ...response, alarms }, alarmShape)}\n`
    : alarms.map(alarmSimple).join(''));
}

function listAlarms(context: CommandContext): Promise<WireAlarmResponse> {
  return context.connection.unary<WireAlarmResponse>({
    service: 'Maintenance', method: 'Alarm', kind: 'read',
    request: { action: 'GET', memberID: '0', alarm: 'NONE' },
  });
}

async function runAlarmList(context: CommandContext, parsed: ParsedCommand): Promise<number> {
  expectArguments(parsed, { min: 0, max: 0 }, 'alarm list command accepts no arguments');
  printAlarms(context, await listAlarms(context));
  return exitCodes.success;
}

/** clientv3's AlarmDisarm of every alarm: list them, then deactivate each. */
async function runAlarmDisarm(context: CommandContext, parsed: ParsedCommand): Promise<number> {
  expectArguments(parsed, { min: 0, max: 0 }, 'alarm disarm command accepts no arguments');
  const disarmed: WireAlarmMember[] = [];
  for (const alarm of (await listAlarms(context)).alarms) {
    const response = await context.connection.unary<WireAlarmResponse>({
      service: 'Maintenance', method: 'Alarm', kind: 'write',
      request: { action: 'DEACTIVATE', memberID: alarm.memberID, alarm: alarm.alarm },
    });
    disarmed.push(...response.alarms);
  }
  printAlarms(context, { alarms: disarmed });
  return exitCodes.success;
}

async function runDefrag(context: CommandContext, parsed: ParsedCommand): Promise<number> {
  expectArguments(parsed, { min: 0, max: 0 }, 'defrag command accepts no arguments');
  let failed = false;
  for (const endpoint of await endpointsOf(context, parsed)) {
    try {
      await context.connection.unary({
        service: 'Maintenance', method: 'Defragment', request: {}, kind: 'write', endpoint,
      });
      context.io.stdout.write(`Finished defragmenting etcd member[${endpoint}]\n`);
    } catch (error) {
      failed = true;
      const message = messageOf(error);
      context.io.stderr.write(`Failed to defragment etcd member[${endpoint}] (${message})\n`);
    }
  }
  return failed ? exitCodes.error : exitCodes.success;
}

/** etcdctl's move-leader: find the endpoint that leads (Status), ask it to transfer. */
async function runMoveLeader(context: CommandContext, parsed: ParsedCommand): Promise<number> {
  expectArguments(parsed, { min: 1, max: 1 }, 'move-leader command needs 1 argument');
  const target = parseHexId(parsed.positionals[0]!, { signed: false });
  if (target === null) {
    throw new CtlUsageError(`bad member ID arg (${parsed.positionals[0]}), expecting ID in Hex`);
  }
  const { endpoints } = context.config;
  for (const endpoint of endpoints) {
    const status = await context.connection.unary<WireStatusResponse>({
      service: 'Maintenance', method: 'Status', request: {}, kind: 'read', endpoint,
    });
    const leader = status.leader;
    if (status.header === null || status.header.member_id !== leader) continue;
    const response = await context.connection.unary<{ header: WireHeader | null }>({
      service: 'Maintenance', method: 'MoveLeader', request: { targetID: target.toString() },
      kind: 'write', endpoint,
    });
    context.io.stdout.write(context.config.writeOut === 'json'
      ? `${goJson(response, headerOnlyShape)}\n`
      : `Leadership transferred from ${memberIdHex(leader)} to ${memberIdHex(target)}\n`);
    return exitCodes.success;
  }
  throw new CtlUsageError(`no leader endpoint given at [${endpoints.join(' ')}]`);
}

const cluster = { cluster: { type: 'boolean' } } as const;

/** The maintenance commands. */
export const maintenanceCommands: readonly CommandSpec[] = [
  {
    path: ['snapshot', 'save'], synopsis: 'FILE', options: {}, formats: ['simple', 'json'],
    run: runSnapshotSave,
  },
  { path: ['alarm', 'list'], synopsis: '', options: {}, run: runAlarmList },
  { path: ['alarm', 'disarm'], synopsis: '', options: {}, run: runAlarmDisarm },
  { path: ['defrag'], synopsis: '[--cluster]', options: cluster, run: runDefrag },
  { path: ['move-leader'], synopsis: 'ID', options: {}, run: runMoveLeader },
];
