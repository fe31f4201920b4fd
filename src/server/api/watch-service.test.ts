import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  credentials, status as GrpcStatus, type Client, type ClientDuplexStream, type Server,
  type ServiceError,
} from '@grpc/grpc-js';
import { Etcd3, type IKeyValue } from 'etcd3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { assert, SeededRandom } from '../../base/index.js';
import { KvStateMachine, WatchHub, type WatchHubOptions } from '../../kv/index.js';
import { RaftLogStore } from '../../storage/index.js';
import { loadEtcdProto } from '../grpc/proto.js';
import { RaftNode, type TickScheduler } from '../node/raft-node.js';
import { bindInsecure, createGrpcServer, shutdownServer } from './grpc-server.js';
import { createKvService } from './kv-service.js';
import { createWatchService, watchChannelNames } from './watch-service.js';
import type { WireWatchResponse } from './watch-wire.js';

const proto = loadEtcdProto();
const clusterId = 0xcafe_f00d_1234_5678n;
const memberId = 0xfeed_beef_0000_0001n;
const streamsMax = 4;

type Cleanups = (() => Promise<void> | void)[];

/** A progress timer the test fires by hand. */
class ManualScheduler implements TickScheduler {
  readonly #ticks = new Set<() => void>();

  schedule(onTick: () => void): () => void {
    this.#ticks.add(onTick);
    return () => this.#ticks.delete(onTick);
  }

  get scheduled(): number {
    return this.#ticks.size;
  }

  fire(): void {
    for (const tick of this.#ticks) tick();
  }
}

/** The single-member test kit's leader, with a watch hub fed by its applies. */
async function startWatchLeader(cleanups: Cleanups, hubOptions: WatchHubOptions) {
  const directory = await mkdtemp(join(tmpdir(), 'synod-watch-service-'));
  cleanups.push(() => rm(directory, { recursive: true, force: true }));
  const store = await RaftLogStore.open({
    path: directory, bootstrapConfState: { voters: [1], learners: [] },
  });
  const stateMachine = KvStateMachine.open();
  const hub = new WatchHub(stateMachine.store, hubOptions);
  const node = new RaftNode({
    id: 1, store, stateMachine, watchHub: hub, transport: { send: () => {} },
    random: new SeededRandom(7), tickIntervalMs: 100, electionTicks: 10, ticker: 'manual',
  });
  cleanups.push(async () => {
    await node.stop();
    await store.close();
  });
  node.start();
  node.campaign();
  await node.idle();
  assert(node.isLeader, 'a single voter leads after campaigning');
  return { node, hub };
}

/** Resolves with the next message published on `name` that `accept` takes. */
function nextPublished(name: string, accept: (streamId: number) => boolean = () => true) {
  return new Promise<number>((resolve) => {
    const handler = (message: unknown): void => {
      const { streamId } = message as { streamId: number };
      if (!accept(streamId)) return;
      unsubscribe(name, handler);
      resolve(streamId);
    };
    subscribe(name, handler);
  });
}

type WatchClient = Client & { Watch(): ClientDuplexStream<object, WireWatchResponse> };

function rawWatchClient(port: number): WatchClient {
  const etcdserverpb = proto.packageObject['etcdserverpb'] as unknown as {
    Watch: new (address: string, creds: unknown, options: object) => Client;
  };
  // A channel of its own, so a paused stream cannot stall another client's connection.
  return new etcdserverpb.Watch(`127.0.0.1:${port}`, credentials.createInsecure(),
    { 'grpc.use_local_subchannel_pool': 1 }) as WatchClient;
}

/** One raw Watch call; responses are awaited in order with `next`. */
class RawWatch {
  readonly call: ClientDuplexStream<object, WireWatchResponse>;
  readonly #responses: WireWatchResponse[] = [];
  readonly #waiters: { resolve: (r: WireWatchResponse) => void; reject: (e: unknown) => void }[]
    = [];
  #error: ServiceError | null = null;
  /** Settles with the call's error status (never resolves while the call is healthy). */
  readonly failed: Promise<ServiceError>;

  constructor(client: WatchClient) {
    this.call = client.Watch();
    this.failed = new Promise((resolve) => {
      this.call.on('error', (error: ServiceError) => {
        this.#error = error;
        for (const waiter of this.#waiters.splice(0)) waiter.reject(error);
        resolve(error);
      });
    });
    this.call.on('data', (response: WireWatchResponse) => {
      const waiter = this.#waiters.shift();
      if (waiter === undefined) this.#responses.push(response);
      else waiter.resolve(response);
    });
  }

  send(request: object): void {
    this.call.write(request);
  }

  next(): Promise<WireWatchResponse> {
    const ready = this.#responses.shift();
    if (ready !== undefined) return Promise.resolve(ready);
    if (this.#error !== null) return Promise.reject(this.#error);
    return new Promise((resolve, reject) => this.#waiters.push({ resolve, reject }));
  }

  async take(count: number): Promise<WireWatchResponse[]> {
    const responses: WireWatchResponse[] = [];
    while (responses.length < count) responses.push(await this.next());
    return responses;
  }

  /** Sends a progress request and returns every response up to its answer (watch_id -1). */
  async untilProgress(): Promise<WireWatchResponse[]> {
    this.send({ progress_request: {} });
    const responses: WireWatchResponse[] = [];
    for (;;) {
      const response = await this.next();
      if (response.watch_id === '-1') return responses;
      responses.push(response);
    }
  }
}

/** `PUT a=1@2 prev=0` / `DELETE a@3`: one wire event, spelled compactly. */
function describeEvents(responses: readonly WireWatchResponse[]): string[] {
  return responses.flatMap((response) => response.events.map((event) => {
    const value = event.type === 'PUT' ? `=${event.kv.value.toString()}` : '';
    const prev = event.prev_kv == null ? '' : ` prev=${event.prev_kv.value.toString()}`;
    return `${event.type} ${event.kv.key.toString()}${value}@${event.kv.mod_revision}${prev}`;
  }));
}

interface Harness {
  readonly node: RaftNode;
  readonly hub: WatchHub;
  readonly port: number;
  readonly client: Etcd3;
  readonly progress: ManualScheduler;
  readonly raw: () => RawWatch;
}

describe('Watch service over a single-member RaftNode', () => {
  const cleanups: Cleanups = [];
  let harness: Harness;

  async function start(hubOptions: WatchHubOptions = {}): Promise<Harness> {
    const { node, hub } = await startWatchLeader(cleanups, { streamsMax, ...hubOptions });
    const server: Server = createGrpcServer({ proto });
    server.addService(proto.services.KV, createKvService({
      node, definition: proto.services.KV, clusterId, memberId,
    }));
    const progress = new ManualScheduler();
    server.addService(proto.services.Watch, createWatchService({
      node, clusterId, memberId, progressScheduler: progress,
    }));
    const port = await bindInsecure(server, '127.0.0.1:0');
    cleanups.push(() => shutdownServer(server));
    const client = new Etcd3({ hosts: `127.0.0.1:${port}` });
    cleanups.push(() => client.close());
    const raw = (): RawWatch => {
      const grpcClient = rawWatchClient(port);
      cleanups.push(() => grpcClient.close());
      const watch = new RawWatch(grpcClient);
      cleanups.push(() => watch.call.cancel());
      return watch;
    };
    return { node, hub, port, client, progress, raw };
  }

  beforeEach(async () => {
    harness = await start();
  });

  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  it('streams puts and deletes with prev_kv and full headers', async () => {
    const { client } = harness;
    const watch = harness.raw();
    watch.send({ create_request: { key: Buffer.from('a'), prev_kv: true } });
    const created = await watch.next();
    expect(created).toMatchObject({
      watch_id: '0', created: true, canceled: false,
      header: { cluster_id: clusterId.toString(), member_id: memberId.toString(),
        revision: '1', raft_term: harness.node.term.toString() },
    });
    await client.put('a').value('1').exec();
    await client.put('b').value('x').exec();
    await client.put('a').value('2').exec();
    await client.delete().key('a').exec();
    const events = await watch.take(3);
    expect(describeEvents(events)).toEqual(['PUT a=1@2', 'PUT a=2@4 prev=1', 'DELETE a@5 prev=2']);
    expect(events.map((response) => response.header.revision)).toEqual(['2', '4', '5']);
    expect(events.every((response) => response.watch_id === '0'
      && response.header.member_id === memberId.toString())).toBe(true);
    expect(events[2]!.events[0]!.kv).toMatchObject({ version: '0', create_revision: '0' });
  });

  it('replays from start_revision, then continues live without a gap', async () => {
    const { client } = harness;
    await client.put('k').value('1').exec();
    await client.put('k').value('2').exec();
    await client.delete().key('k').exec();
    const watch = harness.raw();
    watch.send({ create_request: { key: Buffer.from('k'), start_revision: '3' } });
    expect(await watch.next()).toMatchObject({ created: true, header: { revision: '4' } });
    await client.put('k').value('3').exec();
    expect(describeEvents(await watch.take(3))).toEqual(['PUT k=2@3', 'DELETE k@4', 'PUT k=3@5']);
  });

  it('applies NOPUT and NODELETE filters per watcher, with ids assigned from 0', async () => {
    const { client } = harness;
    const watch = harness.raw();
    const prefix = { key: Buffer.from('p/'), range_end: Buffer.from('p0') };
    watch.send({ create_request: { ...prefix, filters: ['NOPUT'] } });
    // An unknown filter value is ignored, as etcd ignores it.
    watch.send({ create_request: { ...prefix, filters: ['NODELETE', 7] } });
    expect((await watch.take(2)).map((response) => response.watch_id)).toEqual(['0', '1']);
    await client.put('p/1').value('a').exec();
    await client.delete().key('p/1').exec();
    const responses = await watch.untilProgress();
    expect(describeEvents(responses.filter((response) => response.watch_id === '0')))
      .toEqual(['DELETE p/1@3']);
    expect(describeEvents(responses.filter((response) => response.watch_id === '1')))
      .toEqual(['PUT p/1=a@2']);
  });

  it('cancels a watcher: a canceled reply, then nothing more for it', async () => {
    const { client } = harness;
    const watch = harness.raw();
    watch.send({ create_request: { key: Buffer.from('a') } });
    watch.send({ create_request: { key: Buffer.from('b') } });
    await watch.take(2);
    watch.send({ cancel_request: { watch_id: '0' } });
    // A cancel of an id that no watcher has does nothing, as in etcd.
    watch.send({ cancel_request: { watch_id: '42' } });
    expect(await watch.next()).toMatchObject({ watch_id: '0', canceled: true, created: false });
    await client.put('a').value('1').exec();
    await client.put('b').value('2').exec();
    const rest = await watch.untilProgress();
    expect(rest.map((response) => response.watch_id)).toEqual(['1']);
    expect(describeEvents(rest)).toEqual(['PUT b=2@3']);
  });

  it('a compacted start revision is created, then canceled with compact_revision', async () => {
    const { client } = harness;
    for (const value of ['1', '2', '3', '4']) await client.put('c').value(value).exec();
    await client.kv.compact({ revision: '4', physical: true });
    const watch = harness.raw();
    watch.send({ create_request: { key: Buffer.from('c'), start_revision: '2' } });
    const [created, canceled] = await watch.take(2);
    expect(created).toMatchObject({ watch_id: '0', created: true, canceled: false });
    expect(canceled).toMatchObject({
      watch_id: '0', canceled: true, compact_revision: '4', cancel_reason: '',
      header: { revision: '5', cluster_id: clusterId.toString() },
    });
  });

  it('answers progress requests with watch_id -1 and the current revision', async () => {
    const { client } = harness;
    await client.put('x').value('1').exec();
    const watch = harness.raw();
    watch.send({ progress_request: {} });
    expect(await watch.next()).toMatchObject({
      watch_id: '-1', created: false, canceled: false, events: [],
      header: { revision: '2', raft_term: harness.node.term.toString() },
    });
  });

  it('sends periodic progress to idle progress_notify watchers, with their own ids', async () => {
    const { client, progress } = harness;
    const watch = harness.raw();
    watch.send({ create_request: { key: Buffer.from('a'), progress_notify: true } });
    watch.send({ create_request: { key: Buffer.from('b'), progress_notify: true } });
    watch.send({ create_request: { key: Buffer.from('c') } });
    await watch.take(3);
    await client.put('a').value('1').exec();
    expect(describeEvents([await watch.next()])).toEqual(['PUT a=1@2']);
    expect(progress.scheduled).toBe(1);
    progress.fire();
    // Watcher 0 had events since the last interval, so only watcher 1 is told of progress.
    expect(await watch.next()).toMatchObject({ watch_id: '1', events: [],
      header: { revision: '2' } });
    progress.fire();
    expect((await watch.take(2)).map((response) => response.watch_id).sort()).toEqual(['0', '1']);
  });

  it('ends the stream with INVALID_ARGUMENT on a negative start_revision or watch_id', async () => {
    for (const create of [{ start_revision: '-1' }, { watch_id: '-3' }]) {
      const watch = harness.raw();
      // A request with no member set is skipped, as etcd skips it.
      watch.send({});
      watch.send({ create_request: { key: Buffer.from('a'), ...create } });
      const error = await watch.failed;
      expect(error.code).toBe(GrpcStatus.INVALID_ARGUMENT);
      expect(error.details).toMatch(/is negative/);
    }
  });

  it('refuses streams beyond the hub bound with RESOURCE_EXHAUSTED', async () => {
    const opened: Promise<number>[] = [];
    const watches: RawWatch[] = [];
    for (let index = 0; index < streamsMax; index++) {
      opened.push(nextPublished(watchChannelNames.streamOpened));
      watches.push(harness.raw());
      await opened.at(-1);
    }
    const refused = harness.raw();
    const error = await refused.failed;
    expect(error.code).toBe(GrpcStatus.RESOURCE_EXHAUSTED);
    expect(error.details).toMatch(/too many watch streams/);
    // The open streams still serve.
    watches[0]!.send({ progress_request: {} });
    expect(await watches[0]!.next()).toMatchObject({ watch_id: '-1' });
  });

  it('closes the hub stream and stops the progress timer when the client cancels', async () => {
    const { client, hub, progress } = harness;
    const opened = nextPublished(watchChannelNames.streamOpened);
    const watcher = await client.watch().key('a').create();
    const streamId = await opened;
    expect(progress.scheduled).toBe(1);
    const closed = nextPublished(watchChannelNames.streamClosed, (id) => id === streamId);
    // etcd3 cancels its gRPC stream once its last watcher is gone.
    await watcher.cancel();
    await closed;
    expect(progress.scheduled).toBe(0);
    // Every stream slot is free again: the session left nothing open in the hub.
    const ids = Array.from({ length: streamsMax }, () => hub.openStream());
    expect(() => hub.openStream()).toThrow(/too many watch streams/);
    for (const id of ids) hub.closeStream(id);
  });

  it('serves the npm etcd3 client: put/delete events, prev_kv, only(put), progress', async () => {
    const { client, progress } = harness;
    const watcher = await client.watch().key('a').withPreviousKV().create();
    const putsOnly = await client.watch().prefix('a').only('put').create();
    const seen: string[] = [];
    const seenPutsOnly: string[] = [];
    const deleted = new Promise<void>((resolve) => {
      watcher.on('put', (kv: IKeyValue, prev?: IKeyValue) => {
        seen.push(`put ${kv.value.toString()} prev=${prev?.value.toString() ?? '-'}`);
      });
      watcher.on('delete', (kv: IKeyValue, prev?: IKeyValue) => {
        seen.push(`delete ${kv.key.toString()}@${kv.mod_revision} prev=${prev?.value.toString()}`);
        resolve();
      });
    });
    putsOnly.on('put', (kv: IKeyValue) => seenPutsOnly.push(kv.key.toString()));
    await client.put('a').value('1').exec();
    await client.put('a').value('2').exec();
    await client.put('ab').value('3').exec();
    await client.delete().key('a').exec();
    await deleted;
    expect(seen).toEqual(['put 1 prev=-', 'put 2 prev=1', 'delete a@5 prev=2']);
    // etcd3 always asks for progress_notify; a periodic progress reaches it as empty data. The
    // first interval had events, so it is skipped; the second, quiet one is reported.
    const quiet = new Promise<{ events: unknown[] }>((resolve) => watcher.once('data', resolve));
    progress.fire();
    progress.fire();
    expect((await quiet).events).toEqual([]);
    // The only('put') watcher (filter NODELETE, sent as the number 1) saw the puts only, in order.
    expect(seenPutsOnly).toEqual(['a', 'a', 'ab']);
  });

  it('answers a Put before it delivers the Put\'s event to a watcher on the same connection, as etcd', async () => {
    const { client } = harness;
    const watcher = await client.watch().key('order').create();
    const order: string[] = [];
    watcher.on('put', (kv: IKeyValue) => order.push(`event ${kv.value.toString()}`));
    for (let i = 0; i < 20; i++) {
      const seen = new Promise<void>((resolve) => watcher.once('put', () => resolve()));
      await client.put('order').value(String(i)).exec();
      order.push(`answer ${i}`);
      await seen;
    }
    const expected = Array.from({ length: 20 }, (_, i) => [`answer ${i}`, `event ${i}`]).flat();
    expect(order).toEqual(expected);
  });

  it('an etcd3 watcher starting at a past revision replays it', async () => {
    const { client } = harness;
    await client.put('r').value('1').exec();
    await client.put('r').value('2').exec();
    const replayed: string[] = [];
    const done = new Promise<void>((resolve) => {
      void client.watch().key('r').startRevision('2').create().then((watcher) => {
        watcher.on('put', (kv: IKeyValue) => {
          replayed.push(`${kv.value.toString()}@${kv.mod_revision}`);
          if (replayed.length === 2) resolve();
        });
      });
    });
    await done;
    expect(replayed).toEqual(['1@2', '2@3']);
  });
});

describe('Watch service under back-pressure', () => {
  const cleanups: Cleanups = [];

  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  it('a client that stops reading does not hold up another stream, then catches up', async () => {
    const { node, hub } = await startWatchLeader(cleanups, { watchBufferBytesMax: 256 * 1024 });
    const server: Server = createGrpcServer({ proto });
    server.addService(proto.services.KV, createKvService({
      node, definition: proto.services.KV, clusterId, memberId,
    }));
    server.addService(proto.services.Watch, createWatchService({ node, clusterId, memberId }));
    const port = await bindInsecure(server, '127.0.0.1:0');
    cleanups.push(() => shutdownServer(server));
    const client = new Etcd3({ hosts: `127.0.0.1:${port}` });
    cleanups.push(() => client.close());

    const slowClient = rawWatchClient(port);
    cleanups.push(() => slowClient.close());
    const opened = nextPublished(watchChannelNames.streamOpened);
    const slow = new RawWatch(slowClient);
    cleanups.push(() => slow.call.cancel());
    const slowId = await opened;
    slow.send({ create_request: { key: Buffer.from('big') } });
    expect(await slow.next()).toMatchObject({ created: true });
    slow.call.pause();
    const blocked = nextPublished(watchChannelNames.streamBlocked, (id) => id === slowId);

    const writes = 80;
    const fastSeen: number[] = [];
    const fast = await client.watch().key('big').create();
    const fastDone = new Promise<void>((resolve) => {
      fast.on('put', (kv: IKeyValue) => {
        fastSeen.push(Number(kv.mod_revision));
        if (fastSeen.length === writes) resolve();
      });
    });
    const value = Buffer.alloc(64 * 1024, 'v');
    const revisions: number[] = [];
    for (let index = 0; index < writes; index++) {
      const response = await client.put('big').value(value).exec();
      revisions.push(Number(response.header.revision));
    }
    await blocked;
    await fastDone;
    expect(fastSeen).toEqual(revisions);
    // The slow watcher's buffer stayed within its bound while its client read nothing.
    expect(hub.bufferedBytes(slowId, 0)).toBeLessThanOrEqual(256 * 1024);

    slow.call.resume();
    const slowSeen = (await slow.take(writes)).map((response) => {
      expect(response.events).toHaveLength(1);
      return Number(response.events[0]!.kv.mod_revision);
    });
    expect(slowSeen).toEqual(revisions);
  }, 30_000);

  it('ends its streams with UNAVAILABLE when the member swaps its hub', async () => {
    const listeners = new Set<(appliedIndex: number) => void>();
    const node = {
      watchHub: new WatchHub(KvStateMachine.open().store) as WatchHub | null, term: 3,
      onApplied(listener: (appliedIndex: number) => void) {
        listeners.add(listener);
        return () => {
          listeners.delete(listener);
        };
      },
    };
    const server: Server = createGrpcServer({ proto });
    server.addService(proto.services.Watch, createWatchService({ node, clusterId, memberId }));
    const port = await bindInsecure(server, '127.0.0.1:0');
    cleanups.push(() => shutdownServer(server));
    const grpcClient = rawWatchClient(port);
    cleanups.push(() => grpcClient.close());
    const watch = new RawWatch(grpcClient);
    watch.send({ create_request: { key: Buffer.from('a') } });
    expect(await watch.next()).toMatchObject({ created: true, header: { raft_term: '3' } });
    expect(listeners.size).toBe(1);
    node.watchHub = new WatchHub(KvStateMachine.open().store);
    for (const listener of listeners) listener(1);
    const error = await watch.failed;
    expect(error.code).toBe(GrpcStatus.UNAVAILABLE);
    expect(error.details).toMatch(/reconnect/);
    // The session let go of the node: nothing is left to wake.
    expect(listeners.size).toBe(0);
  });

  it('answers UNAVAILABLE when the member runs no watch hub', async () => {
    const server: Server = createGrpcServer({ proto });
    server.addService(proto.services.Watch, createWatchService({
      node: { watchHub: null, term: 1, onApplied: () => () => {} }, clusterId, memberId,
    }));
    const port = await bindInsecure(server, '127.0.0.1:0');
    cleanups.push(() => shutdownServer(server));
    const grpcClient = rawWatchClient(port);
    cleanups.push(() => grpcClient.close());
    const watch = new RawWatch(grpcClient);
    const error = await watch.failed;
    expect(error.code).toBe(GrpcStatus.UNAVAILABLE);
    expect(error.details).toMatch(/runs no watch hub/);
  });
});
