/**
 * etcdserverpb.Watch on a member's watch hub (etcd server/etcdserver/api/v3rpc/watch.go).
 *
 * Each gRPC Watch call is one hub stream. Requests are fed to the hub as they arrive; responses are
 * pulled from it after each request and on every `onApplied` wake-up of the node, and written with
 * the full header {cluster_id, member_id, revision (the hub's), raft_term}. A watch is served from
 * this member's own state machine, leader or follower, as etcd serves it: no forwarding.
 *
 * Memory stays bounded by back-pressure, never by queues in this file: when `call.write` returns
 * false the session stops pulling from the hub and stops reading requests until the call drains.
 * Meanwhile the hub parks the stream's watchers in its unsynced group (bounded buffers), and they
 * catch up from history once the client reads again, so a slow client never holds up `notify` or
 * another stream.
 *
 * A client's half-close does not end the stream, as in etcd (whose recvLoop returns on EOF while
 * the send loop runs on until the call's context ends); the stream ends when the client cancels,
 * the connection goes, or a request is refused (the call then ends with that status).
 */

import { channel } from 'node:diagnostics_channel';
import {
  Metadata, status as GrpcStatus, type ServerDuplexStream, type UntypedServiceImplementation,
} from '@grpc/grpc-js';
import { AssertionFailure, assert, isSynodError, SynodError } from '../../base/index.js';
import type { WatchHub } from '../../kv/index.js';
import { intervalTickScheduler, type TickScheduler } from '../node/raft-node.js';
import type { HeaderSource } from './kv-encode.js';
import { ApiStatusError, internalStatus, statusOf, type EtcdStatus } from './status.js';
import { rethrowLater, type FatalHandler } from './unary.js';
import {
  decodeWatchRequest, encodeWatchResponse, type WireWatchRequest, type WireWatchResponse,
} from './watch-wire.js';

/** etcd's default progress-notify interval (10 minutes; etcd adds up to 10 % jitter). */
export const progressNotifyIntervalMsDefault = 10 * 60 * 1000;
/**
 * Responses taken from the hub per `drain`: the object-mode high-water mark of a grpc-js server
 * stream, so one batch fills the call's write buffer and the next write reports back-pressure.
 */
export const drainResponsesMax = 16;
/**
 * Responses written in one pump before yielding to the event loop, in case writes keep being
 * accepted (a fast client): a long catch-up then cannot starve other calls and the Raft loop.
 */
export const pumpResponsesMax = 8 * drainResponsesMax;

/**
 * diagnostics_channel names the service publishes on, each with `{ streamId }`; free when no one
 * subscribes. `streamBlocked` fires when a write reports back-pressure and the stream pauses.
 */
export const watchChannelNames = Object.freeze({
  streamOpened: 'synod:watch:stream-opened',
  streamClosed: 'synod:watch:stream-closed',
  streamBlocked: 'synod:watch:stream-blocked',
});

/** What the service needs of a member; `RaftNode` provides it. */
export interface WatchNode {
  /** The hub fed by this member's applies; null while none runs. */
  readonly watchHub: WatchHub | null;
  /** The current Raft term, stamped on every response. */
  readonly term: number;
  /** Subscribes to "entries or a snapshot were applied"; returns the unsubscribe function. */
  onApplied(listener: (appliedIndex: number) => void): () => void;
}

/** Options of `createWatchService`. */
export interface WatchServiceOptions {
  readonly node: WatchNode;
  /** Sent in every header; a stable non-zero uint64. */
  readonly clusterId: bigint;
  /** This member's id in every header; a stable non-zero uint64. */
  readonly memberId: bigint;
  /** How often `progress_notify` watchers get a progress response (default 10 minutes). */
  readonly progressNotifyIntervalMs?: number;
  /** Runs the progress timer (default `setInterval`); tests pass one they fire by hand. */
  readonly progressScheduler?: TickScheduler;
  /** Receives an `AssertionFailure` met while serving. Default: rethrow asynchronously (crash). */
  readonly onFatal?: FatalHandler;
}

interface WatchServiceConfig {
  readonly node: WatchNode;
  readonly header: () => HeaderSource;
  readonly progressNotifyIntervalMs: number;
  readonly progressScheduler: TickScheduler;
  readonly onFatal: FatalHandler;
}

type WatchCall = ServerDuplexStream<WireWatchRequest, WireWatchResponse>;

const uint64Max = (1n << 64n) - 1n;

const hubMissingStatus: EtcdStatus = Object.freeze({
  code: GrpcStatus.UNAVAILABLE,
  message: 'synod: watch is not served on this member: it runs no watch hub',
});
const hubReplacedStatus: EtcdStatus = Object.freeze({
  code: GrpcStatus.UNAVAILABLE,
  message: 'synod: watch streams were reset when this member replaced its watch hub; reconnect',
});
const streamsExhaustedStatus: EtcdStatus = Object.freeze({
  code: GrpcStatus.RESOURCE_EXHAUSTED,
  message: 'synod: too many watch streams on this member; close unused ones or use another member',
});
const streamBusyStatus: EtcdStatus = Object.freeze({
  code: GrpcStatus.RESOURCE_EXHAUSTED,
  message: 'synod: too many watch replies waiting on this stream; read responses before sending',
});

/** The Watch implementation for `server.addService(proto.services.Watch, …)`. One per hub. */
export function createWatchService(options: WatchServiceOptions): UntypedServiceImplementation {
  const config = validateOptions(options);
  const sessions = new Set<WatchSession>();
  let cancelTimer: (() => void) | null = null;
  const onProgressTick = (): void => {
    const hub = config.node.watchHub;
    if (hub === null) return;
    try {
      hub.notifyProgress();
    } catch (error) {
      // notifyProgress has no expected failure: whatever it throws is a bug.
      config.onFatal(error);
      return;
    }
    for (const session of sessions) session.pump();
  };
  // The timer runs only while some stream is open, so an idle service holds nothing to stop.
  const registry: SessionRegistry = {
    add(session) {
      assert(!sessions.has(session), 'watch session registered twice');
      sessions.add(session);
      cancelTimer ??= config.progressScheduler.schedule(onProgressTick,
        config.progressNotifyIntervalMs);
    },
    remove(session) {
      assert(sessions.delete(session), 'watch session removed but never registered');
      if (sessions.size > 0 || cancelTimer === null) return;
      cancelTimer();
      cancelTimer = null;
    },
  };
  return {
    Watch: (call: WatchCall) => openSession(call, config, registry),
  };
}

function validateOptions(options: WatchServiceOptions): WatchServiceConfig {
  const invalid = (what: string): never => {
    throw new SynodError('SYNOD_INVALID_CONFIG', `watch service: ${what}`);
  };
  for (const [name, id] of [['clusterId', options.clusterId], ['memberId', options.memberId]]) {
    if (typeof id !== 'bigint' || id <= 0n || id > uint64Max) {
      invalid(`${name} must be a uint64 > 0`);
    }
  }
  const progressNotifyIntervalMs = options.progressNotifyIntervalMs
    ?? progressNotifyIntervalMsDefault;
  if (!Number.isSafeInteger(progressNotifyIntervalMs) || progressNotifyIntervalMs <= 0) {
    invalid('progressNotifyIntervalMs must be a positive integer');
  }
  const { node, clusterId, memberId } = options;
  return Object.freeze({
    node,
    header: (): HeaderSource => ({ clusterId, memberId, raftTerm: node.term }),
    progressNotifyIntervalMs,
    progressScheduler: options.progressScheduler ?? intervalTickScheduler,
    onFatal: options.onFatal ?? rethrowLater,
  });
}

interface SessionRegistry {
  add(session: WatchSession): void;
  remove(session: WatchSession): void;
}

/** Starts serving one call, or ends it at once with UNAVAILABLE or RESOURCE_EXHAUSTED. */
function openSession(call: WatchCall, config: WatchServiceConfig, registry: SessionRegistry): void {
  const hub = config.node.watchHub;
  if (hub === null) {
    endWithStatus(call, hubMissingStatus);
    return;
  }
  let streamId: number;
  try {
    streamId = hub.openStream();
  } catch (error) {
    if (!isSynodError(error, 'SYNOD_WATCH_STREAMS_EXHAUSTED')) throw error;
    endWithStatus(call, streamsExhaustedStatus);
    return;
  }
  const session = new WatchSession({ call, config, hub, streamId, registry });
  registry.add(session);
  publish(watchChannelNames.streamOpened, streamId);
  session.start();
}

/** Ends `call` with `status`; grpc-js turns an emitted error into the call's final status. */
function endWithStatus(call: WatchCall, status: EtcdStatus): void {
  call.emit('error', { code: status.code, details: status.message, metadata: new Metadata() });
}

function publish(name: string, streamId: number): void {
  const target = channel(name);
  if (target.hasSubscribers) target.publish({ streamId });
}

/** The status a refused request ends its stream with. */
function watchStatusOf(error: unknown): EtcdStatus {
  if (isSynodError(error, 'SYNOD_WATCH_STREAM_BUSY')) return streamBusyStatus;
  return statusOf(error);
}

/** One Watch call bound to one hub stream. Every method runs to completion on the event loop. */
class WatchSession {
  readonly #call: WatchCall;
  readonly #config: WatchServiceConfig;
  readonly #hub: WatchHub;
  readonly #streamId: number;
  readonly #registry: SessionRegistry;
  #unsubscribe: (() => void) | null = null;
  /** A wake-up after an apply is pending (`#pumpNextTurn`). */
  #pumpScheduled = false;
  /** True from a write that reported back-pressure until the call's 'drain'. */
  #blocked = false;
  #closed = false;

  constructor(fields: { call: WatchCall; config: WatchServiceConfig; hub: WatchHub;
    streamId: number; registry: SessionRegistry; }) {
    this.#call = fields.call;
    this.#config = fields.config;
    this.#hub = fields.hub;
    this.#streamId = fields.streamId;
    this.#registry = fields.registry;
  }

  /**
   * Subscribes to the node and the call. An apply wakes the pump on the next turn (setImmediate),
   * once the responses to the writes just applied have gone out: etcd's order (a client sees its
   * Put answered, then the event), which clients time against (the npm etcd3 client's election
   * recipe races on the reverse order). Several applies in one turn wake it once.
   */
  start(): void {
    this.#unsubscribe = this.#config.node.onApplied(() => this.#pumpNextTurn());
    const close = (): void => this.#close();
    this.#call.on('data', (wire: WireWatchRequest) => this.#onRequest(wire));
    this.#call.on('cancelled', close);
    this.#call.on('error', close);
    this.#call.on('finish', close);
    this.#call.on('close', close);
    this.#call.on('drain', () => this.#onDrain());
  }

  #pumpNextTurn(): void {
    if (this.#pumpScheduled) return;
    this.#pumpScheduled = true;
    setImmediate(() => {
      this.#pumpScheduled = false;
      this.pump();
    });
  }

  /** Writes what the hub has for this stream, until it has nothing or the call pushes back. */
  pump(): void {
    if (this.#closed || this.#blocked) return;
    try {
      this.#checkHub();
      this.#writeResponses();
    } catch (error) {
      this.#fail(error);
    }
  }

  #onRequest(wire: WireWatchRequest): void {
    if (this.#closed) return;
    try {
      this.#checkHub();
      const command = decodeWatchRequest(wire);
      if (command.type === 'create') this.#hub.create(this.#streamId, command.request);
      else if (command.type === 'cancel') this.#hub.cancel(this.#streamId, command.watchId);
      else if (command.type === 'progress') this.#hub.requestProgress(this.#streamId);
    } catch (error) {
      this.#fail(error);
      return;
    }
    this.pump();
  }

  #writeResponses(): void {
    assert(!this.#closed && !this.#blocked, 'watch: writing on a closed or blocked stream');
    let written = 0;
    while (written < pumpResponsesMax) {
      const responses = this.#hub.drain(this.#streamId, { responsesMax: drainResponsesMax });
      const header = this.#config.header();
      // Everything drained is written, even past back-pressure: the hub has let go of it, and a
      // batch is bounded, so the call's buffer exceeds its mark by one batch at most.
      for (const response of responses) {
        assert(response.header.revision <= this.#hub.revision, 'watch: response ahead of the hub');
        if (!this.#call.write(encodeWatchResponse(header, response))) this.#blocked = true;
      }
      written += responses.length;
      if (this.#blocked) {
        this.#block();
        return;
      }
      if (responses.length < drainResponsesMax) return;
    }
    setImmediate(() => this.pump());
  }

  #block(): void {
    // Reading no requests while blocked keeps the hub's pending replies bounded as well.
    this.#call.pause();
    publish(watchChannelNames.streamBlocked, this.#streamId);
  }

  #onDrain(): void {
    if (this.#closed || !this.#blocked) return;
    this.#blocked = false;
    this.#call.resume();
    this.pump();
  }

  /** A hub replaced under the call (a snapshot install) no longer knows this stream. */
  #checkHub(): void {
    if (this.#config.node.watchHub !== this.#hub) throw new ApiStatusError(hubReplacedStatus);
  }

  #fail(error: unknown): void {
    if (this.#closed) return;
    const fatal = error instanceof AssertionFailure;
    const status = fatal ? internalStatus : watchStatusOf(error);
    this.#close();
    endWithStatus(this.#call, status);
    if (fatal) this.#config.onFatal(error);
  }

  #close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#unsubscribe?.();
    this.#unsubscribe = null;
    this.#hub.closeStream(this.#streamId);
    this.#registry.remove(this);
    publish(watchChannelNames.streamClosed, this.#streamId);
  }
}
