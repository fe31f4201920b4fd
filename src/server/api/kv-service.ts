/**
 * etcdserverpb.KV on a `RaftNode` (etcd server/etcdserver/api/v3rpc/key.go and v3_server.go).
 *
 * - Range is linearizable by default: it waits for a ReadIndex (thesis §6.4) and then reads this
 *   member's state machine; `serializable` reads the local state machine at once.
 * - Put, DeleteRange, Txn and Compact are proposed through Raft. Each request is checked before it
 *   is proposed (key present, txn shape, size), so a malformed command never reaches the log.
 * - A Put, or a Txn holding a Put, first asks the optional `quota` (quota.ts), as etcd's
 *   quotaKVServer does, so a full backend refuses it before it reaches the log.
 * - Errors leave as etcd's status and exact message (status.ts). An `AssertionFailure` answers the
 *   call with INTERNAL and is then handed to `onFatal`, which by default crashes the process.
 */

import type { ServiceDefinition, UntypedServiceImplementation } from '@grpc/grpc-js';
import { assert, SynodError } from '../../base/index.js';
import {
  checkDeleteRangeRequest, checkPutRequest, checkRangeRequest, checkTxnRequest, txnOpsMaxDefault,
  type Command, type CommandResponse,
} from '../../kv/index.js';
// Deep import: src/kv/index.ts is outside this change; re-export from there when integrating.
import { txnHasPut } from '../../kv/command.js';
import { maxRequestBytesDefault } from '../flags.js';
import type { ServerPlantedBug } from '../planted-bugs.js';
import type { RaftNode } from '../node/raft-node.js';
import {
  decodeDeleteRangeRequest, decodePutRequest, decodeRangeRequest, decodeTxnRequest,
  safeIntegerOf,
  type WireCompactionRequest, type WireDeleteRangeRequest, type WirePutRequest,
  type WireRangeRequest, type WireTxnRequest,
} from './kv-decode.js';
import {
  encodeDeleteRangeResponse, encodeHeader, encodePutResponse, encodeRangeResponse,
  encodeTxnResponse, type HeaderSource,
} from './kv-encode.js';
import { ApiStatusError, requestTooLargeStatus } from './status.js';
import { rethrowLater, unaryHandler } from './unary.js';

const uint64Max = (1n << 64n) - 1n;

/** Options of `createKvService`. */
export interface KvServiceOptions {
  readonly node: RaftNode;
  /** `services.KV` from `loadEtcdProto()`: its serializers measure request sizes. */
  readonly definition: ServiceDefinition;
  /** Sent in every header; a stable non-zero uint64. */
  readonly clusterId: bigint;
  /** This member's id in every header; a stable non-zero uint64. */
  readonly memberId: bigint;
  /** etcd's --max-request-bytes: the largest encoded write request (default 1.5 MiB). */
  readonly maxRequestBytes?: number;
  /** etcd's --max-txn-ops (default 128); must match the state machine's bound. */
  readonly txnOpsMax?: number;
  /** Receives an `AssertionFailure` met while serving. Default: rethrow asynchronously (crash). */
  readonly onFatal?: (error: unknown) => void;
  /**
   * Asked with the encoded request's size before a Put or a Txn holding a Put is proposed
   * (etcd's quotaKVServer; `createQuota` in quota.ts). Default: no quota.
   */
  readonly quota?: { check(requestBytes: number): Promise<void> };
  /** A deliberate bug for the chaos harness's tests (planted-bugs.ts); never set otherwise. */
  readonly plantedBug?: ServerPlantedBug | null;
}

interface KvServiceConfig {
  readonly node: RaftNode;
  readonly definition: ServiceDefinition;
  readonly clusterId: bigint;
  readonly memberId: bigint;
  readonly maxRequestBytes: number;
  readonly txnOpsMax: number;
  readonly onFatal: (error: unknown) => void;
  readonly quota: { check(requestBytes: number): Promise<void> } | undefined;
  readonly plantedBug: ServerPlantedBug | null;
}

/** The KV implementation for `server.addService(proto.services.KV, …)`. */
export function createKvService(options: KvServiceOptions): UntypedServiceImplementation {
  const config = validateOptions(options);
  const handlers = kvHandlers(config);
  const unary = <Request>(handle: (request: Request) => Promise<object>) => unaryHandler<Request>(config.onFatal, handle);
  return {
    Range: unary(handlers.range),
    Put: unary(handlers.put),
    DeleteRange: unary(handlers.deleteRange),
    Txn: unary(handlers.txn),
    Compact: unary(handlers.compact),
  };
}

function validateOptions(options: KvServiceOptions): KvServiceConfig {
  const invalid = (what: string): never => {
    throw new SynodError('SYNOD_INVALID_CONFIG', what);
  };
  for (const [name, id] of [['clusterId', options.clusterId], ['memberId', options.memberId]]) {
    if (typeof id !== 'bigint' || id <= 0n || id > uint64Max) {
      invalid(`${name} must be a uint64 > 0`);
    }
  }
  const maxRequestBytes = options.maxRequestBytes ?? maxRequestBytesDefault;
  if (!Number.isSafeInteger(maxRequestBytes) || maxRequestBytes <= 0) invalid('maxRequestBytes');
  const txnOpsMax = options.txnOpsMax ?? txnOpsMaxDefault;
  if (!Number.isSafeInteger(txnOpsMax) || txnOpsMax <= 0) invalid('txnOpsMax');
  return Object.freeze({
    node: options.node,
    definition: options.definition,
    clusterId: options.clusterId,
    memberId: options.memberId,
    maxRequestBytes,
    txnOpsMax,
    onFatal: options.onFatal ?? rethrowLater,
    plantedBug: options.plantedBug ?? null,
    quota: options.quota,
  });
}

function kvHandlers(config: KvServiceConfig) {
  const { node } = config;
  const header = (): HeaderSource => ({
    clusterId: config.clusterId,
    memberId: config.memberId,
    raftTerm: node.term,
  });
  /** Refuses a request above `maxRequestBytes`; returns its encoded size. */
  const guardSize = (method: string, wire: unknown): number => {
    const serialize = config.definition[method]?.requestSerialize;
    assert(serialize !== undefined, `KV.${method} has no serializer`);
    // etcd bounds the marshalled raft request; the client's message is that within a few bytes.
    const requestBytes = serialize(wire).length;
    if (requestBytes > config.maxRequestBytes) {
      throw new ApiStatusError(requestTooLargeStatus);
    }
    return requestBytes;
  };
  const apply = async <T extends CommandResponse['type']>(
    command: Command & { type: T },
  ): Promise<Extract<CommandResponse, { type: T }>> => {
    const result = await node.propose(command);
    if (!result.ok) throw result.error;
    assert(result.result.type === command.type, 'apply answered another command type');
    return result.result as Extract<CommandResponse, { type: T }>;
  };

  return {
    async range(wire: WireRangeRequest): Promise<object> {
      const request = decodeRangeRequest(wire);
      checkRangeRequest(request);
      const readIndexSkipped = config.plantedBug === 'read-without-read-index';
      if (!wire.serializable && !readIndexSkipped) await node.linearizableRead();
      return encodeRangeResponse(header(), node.stateMachine.store.range(request));
    },
    async put(wire: WirePutRequest): Promise<object> {
      const request = decodePutRequest(wire);
      checkPutRequest(request);
      // Measured outside `quota?.` so that the size bound holds without a quota as well.
      const requestBytes = guardSize('Put', wire);
      await config.quota?.check(requestBytes);
      if (config.plantedBug === 'ack-before-commit') {
        // Planted bug: answer at once; the proposal may still be lost with its leader.
        apply({ type: 'put', request }).catch(() => undefined);
        return encodePutResponse(header(), { header: { revision: node.stateMachine.store.currentRevision } });
      }
      const { response } = await apply({ type: 'put', request });
      return encodePutResponse(header(), response);
    },
    async deleteRange(wire: WireDeleteRangeRequest): Promise<object> {
      const request = decodeDeleteRangeRequest(wire);
      checkDeleteRangeRequest(request);
      guardSize('DeleteRange', wire);
      const { response } = await apply({ type: 'deleteRange', request });
      return encodeDeleteRangeResponse(header(), response);
    },
    async txn(wire: WireTxnRequest): Promise<object> {
      const request = decodeTxnRequest(wire);
      checkTxnRequest(request, config.txnOpsMax);
      const requestBytes = guardSize('Txn', wire);
      // As etcd's capped applier, read-only and delete-only txns pass a full backend.
      if (txnHasPut(request)) await config.quota?.check(requestBytes);
      const { response } = await apply({ type: 'txn', request });
      return encodeTxnResponse(header(), response);
    },
    async compact(wire: WireCompactionRequest): Promise<object> {
      // Compaction runs to completion when applied, so `physical` is always honoured.
      const revision = safeIntegerOf(wire.revision, 'revision');
      const { response } = await apply({ type: 'compact', revision });
      return { header: encodeHeader(header(), response.header.revision) };
    },
  };
}
