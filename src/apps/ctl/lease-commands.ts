/**
 * `lease grant|revoke|timetolive|list|keep-alive` (command/lease_command.go at v3.4.23). Lease
 * IDs are read and printed in hex (`%016x`), as etcdctl does.
 */

import type { ClientDuplexStream } from '@grpc/grpc-js';
import {
  CtlCommandError, CtlUsageError, booleanFlag, expectArguments, exitCodes,
  type CommandContext, type CommandSpec, type ParsedCommand,
} from './command.js';
import { isServiceError, serviceErrorMessage } from './connection.js';
import {
  goJson, headerOnlyShape, leaseGrantShape, leaseKeepAliveShape, leaseLeasesShape,
  leaseTimeToLiveShape,
} from './json-output.js';
import { leaseIdHex, parseHexId } from './simple-output.js';
import type { Int64, WireHeader } from './wire.js';

interface LeaseKeepAliveResponse {
  readonly header: WireHeader | null;
  readonly ID: Int64;
  readonly TTL: Int64;
}
interface LeaseGrantResponse extends LeaseKeepAliveResponse {
  readonly error: string;
}
interface LeaseTimeToLiveResponse {
  readonly header: WireHeader | null;
  readonly ID: Int64;
  readonly TTL: Int64;
  readonly grantedTTL: Int64;
  readonly keys: readonly Buffer[];
}
interface LeaseLeasesResponse {
  readonly header: WireHeader | null;
  readonly leases: readonly { readonly ID: Int64 }[];
}

/** etcdctl's leaseFromArgs: a hex lease ID argument. */
export function leaseIdArgument(parsed: ParsedCommand, usage: string): bigint {
  expectArguments(parsed, { min: 1, max: 1 }, usage);
  const text = parsed.positionals[0]!;
  const id = parseHexId(text, { signed: true });
  if (id === null) throw new CtlUsageError(`bad lease ID arg (${text}), expecting ID in Hex`);
  return id;
}

/** etcdctl's simple TimeToLive. */
export function timeToLiveSimple(response: LeaseTimeToLiveResponse, keys: boolean): string {
  const id = leaseIdHex(response.ID);
  if (BigInt(response.grantedTTL) === 0n && BigInt(response.TTL) === -1n) {
    return `lease ${id} already expired\n`;
  }
  // Go's %v of a []string: `[a b c]`.
  const names = response.keys.map((key) => key.toString('utf8')).join(' ');
  const attached = keys ? `, attached keys([${names}])` : '';
  const granted = `granted with TTL(${response.grantedTTL}s), remaining(${response.TTL}s)`;
  return `lease ${id} ${granted}${attached}\n`;
}

/** Rethrows a server error as etcdctl words it for this command: `failed to grant lease (…)`. */
function reworded(action: string): (error: unknown) => never {
  return (error) => {
    if (!isServiceError(error)) throw error;
    throw new CtlCommandError(`failed to ${action} lease (${serviceErrorMessage(error)})`);
  };
}

function print(context: CommandContext, json: () => string, simple: () => string): void {
  context.io.stdout.write(context.config.writeOut === 'json' ? `${json()}\n` : simple());
}

async function runGrant(context: CommandContext, parsed: ParsedCommand): Promise<number> {
  expectArguments(parsed, { min: 1, max: 1 }, 'lease grant command needs TTL argument');
  const ttl = parsed.positionals[0]!;
  if (!/^-?\d+$/.test(ttl)) throw new CtlUsageError(`bad TTL (${ttl} is not a number)`);
  const response = await context.connection.unary<LeaseGrantResponse>({
    service: 'Lease', method: 'LeaseGrant', request: { TTL: ttl, ID: '0' }, kind: 'write',
  }).catch(reworded('grant'));
  print(context, () => goJson(response, leaseGrantShape),
    () => `lease ${leaseIdHex(response.ID)} granted with TTL(${response.TTL}s)\n`);
  return exitCodes.success;
}

async function runRevoke(context: CommandContext, parsed: ParsedCommand): Promise<number> {
  const id = leaseIdArgument(parsed, 'lease revoke command needs 1 argument');
  const response = await context.connection.unary<{ header: WireHeader | null }>({
    service: 'Lease', method: 'LeaseRevoke', request: { ID: id.toString() }, kind: 'write',
  }).catch(reworded('revoke'));
  print(context, () => goJson(response, headerOnlyShape),
    () => `lease ${leaseIdHex(id)} revoked\n`);
  return exitCodes.success;
}

async function runTimeToLive(context: CommandContext, parsed: ParsedCommand): Promise<number> {
  const id = leaseIdArgument(parsed, 'lease timetolive command needs lease ID as argument');
  const keys = booleanFlag(parsed.values, 'keys');
  const response = await context.connection.unary<LeaseTimeToLiveResponse>({
    service: 'Lease', method: 'LeaseTimeToLive', request: { ID: id.toString(), keys }, kind: 'read',
  });
  print(context, () => goJson(response, leaseTimeToLiveShape),
    () => timeToLiveSimple(response, keys));
  return exitCodes.success;
}

async function runList(context: CommandContext, parsed: ParsedCommand): Promise<number> {
  expectArguments(parsed, { min: 0, max: 0 }, 'lease list command accepts no arguments');
  const response = await context.connection.unary<LeaseLeasesResponse>({
    service: 'Lease', method: 'LeaseLeases', request: {}, kind: 'read',
  });
  const ids = response.leases.map((lease) => `${leaseIdHex(lease.ID)}\n`).join('');
  print(context, () => goJson(response, leaseLeasesShape),
    () => `found ${response.leases.length} leases\n${ids}`);
  return exitCodes.success;
}

type KeepAliveStream = ClientDuplexStream<object, LeaseKeepAliveResponse>;

const leaseNotFound = 'etcdserver: requested lease not found';

/**
 * Sends a keep-alive now and again a third of the TTL after each answer (clientv3's schedule),
 * printing each answer, until the lease is gone (TTL ≤ 0), `once` is set, or SIGINT.
 */
function keepAlive(
  context: CommandContext, stream: KeepAliveStream, options: { id: bigint; once: boolean },
): Promise<number> {
  const { interrupt } = context.io;
  return new Promise<number>((resolve, reject) => {
    let timer: NodeJS.Timeout | undefined;
    let done = false;
    const finish = (settle: () => void): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      interrupt.removeEventListener('abort', onInterrupt);
      stream.cancel();
      settle();
    };
    const onInterrupt = (): void => finish(() => resolve(exitCodes.interrupted));
    const send = (): void => void stream.write({ ID: options.id.toString() });
    interrupt.addEventListener('abort', onInterrupt, { once: true });
    stream.on('data', (response: LeaseKeepAliveResponse) => {
      const ttlSeconds = Number(response.TTL);
      if (ttlSeconds <= 0) {
        // clientv3's KeepAliveOnce reports a gone lease as ErrLeaseNotFound.
        if (options.once) return finish(() => reject(new CtlCommandError(leaseNotFound)));
        if (context.config.writeOut === 'simple') {
          context.io.stdout.write(`lease ${leaseIdHex(options.id)} expired or revoked.\n`);
        }
        return finish(() => resolve(exitCodes.success));
      }
      print(context, () => goJson(response, leaseKeepAliveShape),
        () => `lease ${leaseIdHex(response.ID)} keepalived with TTL(${response.TTL})\n`);
      context.io.onStarted?.();
      if (options.once) return finish(() => resolve(exitCodes.success));
      timer = setTimeout(send, (ttlSeconds * 1000) / 3);
    });
    stream.on('error', (error: Error) => finish(() => reject(error)));
    stream.on('end', () => finish(() => resolve(exitCodes.success)));
    if (interrupt.aborted) onInterrupt();
    else send();
  });
}

async function runKeepAlive(context: CommandContext, parsed: ParsedCommand): Promise<number> {
  const id = leaseIdArgument(parsed, 'lease keep-alive command needs lease ID as argument');
  const stream = await context.connection.bidiStream<object, LeaseKeepAliveResponse>({
    service: 'Lease', method: 'LeaseKeepAlive',
  });
  return keepAlive(context, stream, { id, once: booleanFlag(parsed.values, 'once') });
}

/** The lease commands. */
export const leaseCommands: readonly CommandSpec[] = [
  { path: ['lease', 'grant'], synopsis: 'TTL', options: {}, run: runGrant },
  { path: ['lease', 'revoke'], synopsis: 'ID', options: {}, run: runRevoke },
  {
    path: ['lease', 'timetolive'], synopsis: 'ID [--keys]', options: { keys: { type: 'boolean' } },
    run: runTimeToLive,
  },
  { path: ['lease', 'list'], synopsis: '', options: {}, run: runList },
  {
    path: ['lease', 'keep-alive'], synopsis: 'ID [--once]  (until SIGINT or the lease ends)',
    options: { once: { type: 'boolean' } }, run: runKeepAlive,
  },
];
