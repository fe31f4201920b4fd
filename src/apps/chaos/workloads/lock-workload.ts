/**
 * The lock workload: clients take one lock with the server-side Lock service (v3lockpb.Lock,
 * served by Synod and etcd alike, so both run the server's recipe rather than a client library's)
 * under a lease each keeps alive. The fencing token is the lock key's create revision, read right
 * after Lock returns: keys under the lock name are served in create-revision order, so tokens
 * grow with acquisition. Inside the critical section each write to the protected resource is a
 * Txn that stores the token only if the stored one is not larger:
 *
 *   if value(<name>-token) < pad(token + 1) then put(<name>-token, pad(token)), put(resource)
 *   else range(<name>-token)
 *
 * Tokens are zero-padded to 20 digits so etcd's byte comparison is numeric. The token key is
 * written once before the clients start, because a value compare on a missing key always fails.
 */

import { assert } from '../../../base/index.js';
import type { EtcdProto } from '../../../server/grpc/proto.js';
import type {
  LockHistory, LockSectionRecord, LockWriteRecord,
} from '../checkers/lock-checker.js';
import {
  connectEtcd, deadlineAfter, keepAliveLoop, outcomeOfError, pause, revisionOf, unary,
  type EtcdClients, type EtcdEndpoint,
} from './lease-etcd-client.js';

/** Options of `runLockWorkload`. */
export interface LockWorkloadOptions {
  readonly proto: EtcdProto;
  readonly endpoints: readonly EtcdEndpoint[];
  /** Ms since the run started; every recorded time comes from it. */
  readonly nowMs: () => number;
  /** How long clients keep acquiring. */
  readonly durationMs: number;
  /**
   * The lock's name. `${lockName}-token` and `${lockName}-resource` are written too: outside the
   * lock's own prefix `${lockName}/`, whose every key the Lock recipe waits on.
   */
  readonly lockName: string;
  readonly clients: number;
  /** TTL of each client's lease. Default 3. */
  readonly leaseTtlSeconds?: number;
  /** Resource writes per critical section. Default 2. */
  readonly writesPerSection?: number;
  /** Pause between writes inside a section. Default 5 ms. */
  readonly holdPauseMs?: number;
  /** Deadline of a Lock call (it waits for the holder). Default 5000 ms. */
  readonly acquireTimeoutMs?: number;
  /** Deadline of every other unary request. Default 2000 ms. */
  readonly requestTimeoutMs?: number;
  readonly signal?: AbortSignal;
}

interface Settings {
  readonly proto: EtcdProto;
  readonly endpoints: readonly EtcdEndpoint[];
  readonly nowMs: () => number;
  readonly lockName: string;
  readonly tokenKey: Buffer;
  readonly resourceKey: Buffer;
  readonly leaseTtlSeconds: number;
  readonly writesPerSection: number;
  readonly holdPauseMs: number;
  readonly acquireTimeoutMs: number;
  readonly requestTimeoutMs: number;
}

interface Tally {
  readonly sections: LockSectionRecord[];
  acquiresFailed: number;
  acquiresUnknown: number;
}

const tokenDigits = 20;

/** A token as the fixed-width decimal the Txn compares bytewise. */
export function lockTokenText(token: number): string {
  assert(Number.isSafeInteger(token) && token >= 0, 'token is a safe integer');
  return String(token).padStart(tokenDigits, '0');
}

/** Runs the workload and returns what it recorded. */
export async function runLockWorkload(options: LockWorkloadOptions): Promise<LockHistory> {
  assert(options.endpoints.length > 0 && options.clients > 0, 'endpoints and clients');
  const settings: Settings = {
    proto: options.proto, endpoints: options.endpoints, nowMs: options.nowMs,
    lockName: options.lockName, tokenKey: Buffer.from(`${options.lockName}-token`),
    resourceKey: Buffer.from(`${options.lockName}-resource`),
    leaseTtlSeconds: options.leaseTtlSeconds ?? 3, writesPerSection: options.writesPerSection ?? 2,
    holdPauseMs: options.holdPauseMs ?? 5, acquireTimeoutMs: options.acquireTimeoutMs ?? 5000,
    requestTimeoutMs: options.requestTimeoutMs ?? 2000,
  };
  const setup = connectTo(settings, 0);
  try {
    await unary(setup.kv, 'Put', { key: settings.tokenKey, value: Buffer.from(lockTokenText(0)) },
      settings.requestTimeoutMs);
  } finally {
    setup.close();
  }
  const done = deadlineAfter(options.durationMs, options.signal);
  const tally: Tally = { sections: [], acquiresFailed: 0, acquiresUnknown: 0 };
  await Promise.all(Array.from({ length: options.clients },
    (_, clientId) => clientLoop(settings, clientId, tally, done.signal)));
  done.clear();
  return { lockName: options.lockName, ...tally };
}

function connectTo(settings: Settings, index: number): EtcdClients {
  const endpoint = settings.endpoints[index % settings.endpoints.length];
  assert(endpoint !== undefined, 'endpoint exists');
  return connectEtcd(settings.proto, endpoint);
}

/**
 * One client: a lease kept alive in the background and critical sections in a loop. Anything
 * unknown about the lock (Lock, Unlock) ends the session: the lease is revoked, which deletes any
 * lock key it may hold, and the next session starts on the next member.
 */
async function clientLoop(
  settings: Settings,
  clientId: number,
  tally: Tally,
  done: AbortSignal,
): Promise<void> {
  for (let session = 0; !done.aborted; session += 1) {
    const clients = connectTo(settings, clientId + session);
    const sessionEnded = new AbortController();
    try {
      const grantInvokedAtMs = settings.nowMs();
      const granted = await unary<{ ID: string }>(clients.lease, 'LeaseGrant',
        { TTL: String(settings.leaseTtlSeconds), ID: '0' }, settings.requestTimeoutMs);
      // What the checker needs to tell a double grant from a lease that expired under its holder.
      const lease = { ttlMs: settings.leaseTtlSeconds * 1000, confirmedInvokedAtMs: [grantInvokedAtMs] };
      const keepingAlive = keepAliveLoop({ clients, leaseId: granted.ID,
        intervalMs: Math.ceil((settings.leaseTtlSeconds * 1000) / 3), nowMs: settings.nowMs,
        signal: sessionEnded.signal,
        onRecord: (record) => {
          if (record.outcome === 'ok') lease.confirmedInvokedAtMs.push(record.invokedAtMs);
        } });
      while (!done.aborted && await criticalSection(settings, clients, { clientId, tally,
        leaseId: granted.ID, lease })) {
        await pause(settings.holdPauseMs, done);
      }
      sessionEnded.abort();
      await keepingAlive;
      await unary(clients.lease, 'LeaseRevoke', { ID: granted.ID }, settings.requestTimeoutMs)
        .catch(() => undefined);
    } catch {
      await pause(100, done);
    } finally {
      sessionEnded.abort();
      clients.close();
    }
  }
}

interface SectionContext {
  readonly clientId: number;
  readonly tally: Tally;
  readonly leaseId: string;
  readonly lease: LockSectionRecord['lease'];
}

/** Lock, token, writes, Unlock. Returns whether the session may go on with its lease. */
async function criticalSection(
  settings: Settings,
  clients: EtcdClients,
  context: SectionContext,
): Promise<boolean> {
  const { nowMs } = settings;
  const acquireInvokedAtMs = nowMs();
  let lockKey: Buffer;
  try {
    const response = await unary<{ key: Buffer }>(clients.lock, 'Lock',
      { name: Buffer.from(settings.lockName), lease: context.leaseId }, settings.acquireTimeoutMs);
    lockKey = response.key;
  } catch (error) {
    if (outcomeOfError(error) === 'failed') context.tally.acquiresFailed += 1;
    else context.tally.acquiresUnknown += 1;
    return false;
  }
  const acquiredAtMs = nowMs();
  const token = await createRevision(settings, clients, lockKey);
  const writes: LockWriteRecord[] = [];
  for (let index = 0; token !== null && index < settings.writesPerSection; index += 1) {
    if (index > 0) await pause(settings.holdPauseMs, new AbortController().signal);
    const target = { token, clientId: context.clientId, index };
    writes.push(await writeResource(settings, clients, target));
  }
  const releaseInvokedAtMs = nowMs();
  let releaseOutcome: LockSectionRecord['releaseOutcome'] = 'ok';
  try {
    await unary(clients.lock, 'Unlock', { key: lockKey }, settings.requestTimeoutMs);
  } catch (error) {
    releaseOutcome = outcomeOfError(error);
  }
  if (token !== null) {
    context.tally.sections.push({ clientId: context.clientId, member: clients.member,
      lockKey: lockKey.toString(), token, acquireInvokedAtMs, acquiredAtMs, writes,
      releaseInvokedAtMs, releaseCompletedAtMs: nowMs(), releaseOutcome, lease: context.lease });
  }
  return token !== null && releaseOutcome === 'ok';
}

/** The lock key's create revision, or null when it is already gone (the lease expired). */
async function createRevision(
  settings: Settings,
  clients: EtcdClients,
  lockKey: Buffer,
): Promise<number | null> {
  try {
    const response = await unary<{ kvs: { create_revision: string }[] }>(clients.kv, 'Range',
      { key: lockKey }, settings.requestTimeoutMs);
    const kv = response.kvs[0];
    return kv === undefined ? null : revisionOf(kv.create_revision);
  } catch {
    return null;
  }
}

/** One fenced write of the protected resource. */
async function writeResource(
  settings: Settings,
  clients: EtcdClients,
  write: { token: number; clientId: number; index: number },
): Promise<LockWriteRecord> {
  const invokedAtMs = settings.nowMs();
  const request = {
    compare: [{ key: settings.tokenKey, target: 'VALUE', result: 'LESS',
      value: Buffer.from(lockTokenText(write.token + 1)) }],
    success: [
      { request_put: { key: settings.tokenKey, value: Buffer.from(lockTokenText(write.token)) } },
      { request_put: { key: settings.resourceKey,
        value: Buffer.from(`${write.clientId}:${write.token}:${write.index}`) } },
    ],
    failure: [{ request_range: { key: settings.tokenKey } }],
  };
  try {
    const response = await unary<{
      succeeded: boolean; responses: { response_range?: { kvs: { value: Buffer }[] } }[];
    }>(clients.kv, 'Txn', request, settings.requestTimeoutMs);
    const completedAtMs = settings.nowMs();
    if (response.succeeded) return { invokedAtMs, completedAtMs, outcome: 'ok' };
    const stored = response.responses[0]?.response_range?.kvs[0]?.value.toString();
    return { invokedAtMs, completedAtMs, outcome: 'fenced',
      ...(stored === undefined ? {} : { storedToken: Number(stored) }) };
  } catch (error) {
    return { invokedAtMs, completedAtMs: settings.nowMs(), outcome: outcomeOfError(error) };
  }
}
