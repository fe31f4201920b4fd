import { connect } from 'node:net';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { isSynodError, SynodError } from '../../base/index.js';
import { newMessage, type Message, type NodeId } from '../../raft/index.js';
import { deferred } from '../node/deferred.js';
import { encodeFrame, frameKinds } from './frame.js';
import { encodeHello } from './hello.js';
import { PeerTransport } from './peer-transport.js';

const logger = pino({ level: 'silent' });
const clusterId = 0xabcdefn;
const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

interface Member {
  readonly transport: PeerTransport;
  readonly received: Message[];
  readonly unreachable: NodeId[];
  readonly snapshotOutcomes: string[];
  /** Resolves at the first snapshot outcome reported. */
  readonly snapshotReported: Promise<void>;
  /** Resolves when `count` messages have arrived in total. */
  readonly arrived: (count: number) => Promise<void>;
}

/** Transports for members 1..n on loopback, each knowing the others' ports. */
async function cluster(n: number, ports?: number[]): Promise<{ members: Member[]; ports: number[] }> {
  const chosen = ports ?? (await freePorts(n));
  const members: Member[] = [];
  for (let id = 1; id <= n; id++) {
    const peers = new Map<NodeId, { host: string; port: number }>();
    for (let peer = 1; peer <= n; peer++) {
      if (peer !== id) peers.set(peer, { host: '127.0.0.1', port: chosen[peer - 1]! });
    }
    const received: Message[] = [];
    const waiters: { count: number; resolve: () => void }[] = [];
    const unreachable: NodeId[] = [];
    const snapshotOutcomes: string[] = [];
    const snapshotReported = deferred<void>();
    const transport = new PeerTransport({
      selfId: id, clusterId, peers, logger,
      onMessages: (messages) => {
        received.push(...messages);
        for (const waiter of waiters.filter((w) => received.length >= w.count)) waiter.resolve();
      },
      onUnreachable: (peer) => unreachable.push(peer),
      onSnapshotStatus: (peer, outcome) => {
        snapshotOutcomes.push(`${peer}:${outcome}`);
        snapshotReported.resolve();
      },
      requestTimeoutMs: 2_000,
    });
    await transport.listen('127.0.0.1', chosen[id - 1]!);
    cleanups.push(() => transport.close());
    const arrived = (count: number) => {
      if (received.length >= count) return Promise.resolve();
      const waiter = deferred<void>();
      waiters.push({ count, resolve: () => waiter.resolve() });
      return waiter.promise;
    };
    members.push({
      transport, received, unreachable, snapshotOutcomes, arrived,
      snapshotReported: snapshotReported.promise,
    });
  }
  return { members, ports: chosen };
}

async function freePorts(n: number): Promise<number[]> {
  const ports: number[] = [];
  for (let i = 0; i < n; i++) {
    const probe = new PeerTransport({
      selfId: 1, clusterId, peers: new Map(), logger, onMessages: () => {}, onUnreachable: () => {},
      onSnapshotStatus: () => {},
    });
    ports.push(await probe.listen('127.0.0.1', 0));
    await probe.close();
  }
  return ports;
}

describe('PeerTransport', () => {
  it('delivers batches to each peer in order', async () => {
    const { members } = await cluster(3);
    const [one, two, three] = members as [Member, Member, Member];
    const batch: Message[] = [];
    for (let i = 1; i <= 50; i++) {
      batch.push(newMessage({ type: 'app', from: 1, to: 2 + (i % 2), term: 3, index: i }));
    }
    one.transport.send(batch);
    await Promise.all([two.arrived(25), three.arrived(25)]);
    expect(two.received.map((m) => m.index)).toEqual(batch.filter((m) => m.to === 2).map((m) => m.index));
    expect(three.received.every((m) => m.to === 3 && m.from === 1)).toBe(true);
  });

  it('sends a snapshot on its own connection and reports it finished once acknowledged', async () => {
    const { members } = await cluster(2);
    const data = new Uint8Array(3 * 1024 * 1024).fill(5);
    const snap = newMessage({
      type: 'snap', from: 1, to: 2, term: 2,
      snapshot: { metadata: { index: 10, term: 2, confState: { voters: [1, 2], learners: [] } }, data },
    });
    members[0]!.transport.send([snap, newMessage({ type: 'heartbeat', from: 1, to: 2, term: 2 })]);
    await members[1]!.arrived(2);
    await members[0]!.snapshotReported;
    expect(members[0]!.snapshotOutcomes).toEqual(['2:finish']);
    const received = members[1]!.received.find((m) => m.type === 'snap')!;
    // Compared as one buffer: an element-wise deep equality of 3 MiB takes seconds.
    expect(Buffer.compare(received.snapshot!.data, data)).toBe(0);
  });

  it('reports a snapshot to a dead peer as failed and the peer as unreachable', async () => {
    const { members } = await cluster(2);
    await members[1]!.transport.close();
    const outcome = deferred<string>();
    const sender = new PeerTransport({
      selfId: 1, clusterId, logger,
      peers: new Map([[2, { host: '127.0.0.1', port: 1 }]]),
      onMessages: () => {}, onUnreachable: () => {},
      onSnapshotStatus: (peer, result) => outcome.resolve(`${peer}:${result}`),
    });
    cleanups.push(() => sender.close());
    sender.send([newMessage({
      type: 'snap', from: 1, to: 2,
      snapshot: { metadata: { index: 1, term: 1, confState: { voters: [1], learners: [] } }, data: new Uint8Array(1) },
    })]);
    expect(await outcome.promise).toBe('2:failure');
  });

  it('forwards requests and passes the peer error code back', async () => {
    const { members } = await cluster(2);
    members[1]!.transport.handle('echo', async (payload, from) => new Uint8Array([...payload, from]));
    members[1]!.transport.handle('fail', async () => {
      throw new SynodError('SYNOD_LEASE_NOT_FOUND');
    });
    const answer = await members[0]!.transport.request(2, 'echo', new Uint8Array([7]));
    expect([...answer]).toEqual([7, 1]);
    const failure = await members[0]!.transport.request(2, 'fail', new Uint8Array(0)).catch((e: unknown) => e);
    expect(isSynodError(failure, 'SYNOD_LEASE_NOT_FOUND')).toBe(true);
    const unknown = await members[0]!.transport.request(2, 'nope', new Uint8Array(0)).catch((e: unknown) => e);
    expect(isSynodError(unknown, 'SYNOD_PEER_UNAVAILABLE')).toBe(true);
  });

  it('fails a request to an unreachable peer with SYNOD_PEER_UNAVAILABLE', async () => {
    const { members } = await cluster(2);
    await members[1]!.transport.close();
    const error = await members[0]!.transport.request(2, 'echo', new Uint8Array(0)).catch((e: unknown) => e);
    expect(isSynodError(error, 'SYNOD_PEER_UNAVAILABLE')).toBe(true);
    expect(members[0]!.unreachable).toContain(2);
  });

  it('reconnects after the peer restarts on the same port', async () => {
    const { members, ports } = await cluster(2);
    members[0]!.transport.send([newMessage({ type: 'heartbeat', from: 1, to: 2, term: 1 })]);
    await members[1]!.arrived(1);
    await members[1]!.transport.close();
    const restarted = await restartMember2(ports);
    // Keep sending, as Raft's heartbeats do, until the link is back after its backoff.
    const ticker = setInterval(() => {
      members[0]!.transport.send([newMessage({ type: 'heartbeat', from: 1, to: 2, term: 2 })]);
    }, 20);
    await restarted.arrived;
    clearInterval(ticker);
    expect(restarted.received[0]!.term).toBe(2);
  });

  it('closes connections whose hello names another cluster or a stranger', async () => {
    const { members, ports } = await cluster(2);
    for (const hello of [
      { clusterId: 0x1n, from: 1, to: 2 },
      { clusterId, from: 9, to: 2 },
      { clusterId, from: 1, to: 3 },
    ]) {
      const socket = connect({ host: '127.0.0.1', port: ports[1]! });
      const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
      socket.on('error', () => {});
      socket.write(encodeFrame(frameKinds.hello, encodeHello({ ...hello, purpose: 'messages' })));
      socket.write(encodeFrame(frameKinds.raft, new Uint8Array(4)));
      await closed;
    }
    expect(members[1]!.received).toEqual([]);
  });
});

async function restartMember2(ports: number[]): Promise<{ received: Message[]; arrived: Promise<void> }> {
  const received: Message[] = [];
  const arrived = deferred<void>();
  const transport = new PeerTransport({
    selfId: 2, clusterId, logger, peers: new Map([[1, { host: '127.0.0.1', port: ports[0]! }]]),
    onMessages: (messages) => {
      received.push(...messages);
      arrived.resolve();
    },
    onUnreachable: () => {}, onSnapshotStatus: () => {},
  });
  await transport.listen('127.0.0.1', ports[1]!);
  cleanups.push(() => transport.close());
  return { received, arrived: arrived.promise };
}
