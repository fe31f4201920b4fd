/**
 * Peer transports over TLS (https:// peer URLs): messages and a snapshot between members whose
 * certificates chain to the cluster's CA, with --peer-client-cert-auth; a member whose
 * certificate comes from another CA neither delivers nor receives; the join invitation listens
 * over TLS too and ignores such a dialer.
 */

import { pino, type Logger } from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { newMessage, type Message, type NodeId } from '../../raft/index.js';
import { deferred } from '../node/deferred.js';
import { fixedTlsMaterial, readTlsMaterial } from '../tls/index.js';
import { makeTestCertificates, type CertificateFiles, type TestCertificates } from '../tls/certificate-test-kit.js';
import { awaitInvitation } from './invitation.js';
import { PeerTransport, type PeerAddress, type PeerTls } from './peer-transport.js';

const silent = pino({ level: 'silent' });
const clusterId = 0x7157n;
let certs: TestCertificates;
beforeAll(async () => {
  certs = await makeTestCertificates();
});
afterAll(async () => certs.remove());
const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** Peer TLS from `identity`, trusting the cluster's CA and requiring client certificates. */
async function peerTls(identity: CertificateFiles): Promise<PeerTls> {
  const material = await readTlsMaterial({
    certFile: identity.cert, keyFile: identity.key, trustedCaFile: certs.ca,
    clientCertAuth: true, flagPrefix: 'peer-',
  });
  return { source: fixedTlsMaterial(material), clientCertAuth: true };
}

/** A logger whose lines land in `lines` (parsed). */
function capturingLogger(lines: Record<string, unknown>[]): Logger {
  return pino({ level: 'debug' }, { write: (line: string) => lines.push(JSON.parse(line) as Record<string, unknown>) });
}

interface TlsMember {
  readonly transport: PeerTransport;
  readonly received: Message[];
  readonly unreachable: NodeId[];
  readonly arrived: (count: number) => Promise<void>;
  /** The first snapshot outcome reported, as `peer:outcome`. */
  readonly snapshotOutcome: Promise<string>;
}

async function member(options: {
  id: NodeId; port: number; peers: Map<NodeId, PeerAddress>; tls: PeerTls; logger?: Logger;
}): Promise<TlsMember> {
  const received: Message[] = [];
  const unreachable: NodeId[] = [];
  const waiters: { count: number; resolve: () => void }[] = [];
  const snapshotOutcome = deferred<string>();
  const transport = new PeerTransport({
    selfId: options.id, clusterId, peers: options.peers, logger: options.logger ?? silent, tls: options.tls,
    onMessages: (messages) => {
      received.push(...messages);
      for (const waiter of waiters.filter((w) => received.length >= w.count)) waiter.resolve();
    },
    onUnreachable: (peer) => unreachable.push(peer),
    onSnapshotStatus: (peer, outcome) => snapshotOutcome.resolve(`${peer}:${outcome}`),
  });
  await transport.listen('127.0.0.1', options.port, { secure: true });
  cleanups.push(() => transport.close());
  const arrived = (count: number): Promise<void> => {
    if (received.length >= count) return Promise.resolve();
    const waiter = deferred<void>();
    waiters.push({ count, resolve: () => waiter.resolve() });
    return waiter.promise;
  };
  return { transport, received, unreachable, arrived, snapshotOutcome: snapshotOutcome.promise };
}

async function freePort(): Promise<number> {
  const probe = new PeerTransport({
    selfId: 1, clusterId, peers: new Map(), logger: silent,
    onMessages: () => {}, onUnreachable: () => {}, onSnapshotStatus: () => {},
  });
  const port = await probe.listen('127.0.0.1', 0);
  await probe.close();
  return port;
}

const at = (port: number): PeerAddress => ({ host: '127.0.0.1', port, tls: true });

describe('peer transport over TLS', () => {
  it('carries messages, a snapshot and requests between members of the same CA', async () => {
    const [port1, port2] = [await freePort(), await freePort()];
    const one = await member({ id: 1, port: port1, peers: new Map([[2, at(port2)]]), tls: await peerTls(certs.server) });
    const two = await member({ id: 2, port: port2, peers: new Map([[1, at(port1)]]), tls: await peerTls(certs.server2) });
    two.transport.send([newMessage({ type: 'heartbeat-resp', from: 2, to: 1, term: 3 })]);
    const data = new Uint8Array(256 * 1024).fill(7);
    one.transport.send([
      newMessage({ type: 'heartbeat', from: 1, to: 2, term: 3 }),
      newMessage({
        type: 'snap', from: 1, to: 2, term: 3,
        snapshot: { metadata: { index: 5, term: 3, confState: { voters: [1, 2], learners: [] } }, data },
      }),
    ]);
    await Promise.all([one.arrived(1), two.arrived(2)]);
    expect(two.received.map((m) => [m.type, m.from]).sort()).toEqual([['heartbeat', 1], ['snap', 1]]);
    expect(one.received.map((m) => [m.type, m.from])).toEqual([['heartbeat-resp', 2]]);
    expect(Buffer.compare(two.received.find((m) => m.type === 'snap')!.snapshot!.data, data)).toBe(0);
    expect(await one.snapshotOutcome).toBe('2:finish');
    two.transport.handle('echo', async (payload, from) => new Uint8Array([...payload, from]));
    expect([...await one.transport.request(2, 'echo', new Uint8Array([9]))]).toEqual([9, 1]);
    expect(one.transport.isConnected(2) && two.transport.isConnected(1)).toBe(true);
  });

  it('neither delivers to nor accepts from a member whose certificate another CA signed', async () => {
    const [port1, port2] = [await freePort(), await freePort()];
    const lines: Record<string, unknown>[] = [];
    const one = await member({
      id: 1, port: port1, peers: new Map([[2, at(port2)]]), tls: await peerTls(certs.server),
      logger: capturingLogger(lines),
    });
    const intruder = await member({ id: 2, port: port2, peers: new Map([[1, at(port1)]]), tls: await peerTls(certs.intruder) });
    const refused = (): boolean => lines.some((line) => line.msg === 'peer TLS handshake refused');

    // The intruder dials member 1, which refuses its client certificate.
    intruder.transport.send([newMessage({ type: 'heartbeat', from: 2, to: 1, term: 9 })]);
    await expect.poll(refused).toBe(true);
    // Member 1 dials the intruder and refuses its server certificate: the link goes down.
    one.transport.send([newMessage({ type: 'heartbeat', from: 1, to: 2, term: 3 })]);
    await expect.poll(() => lines.some((line) => line.msg === 'peer link down' && line.peer === 2)).toBe(true);
    expect(one.transport.isConnected(2)).toBe(false);
    expect(one.received).toEqual([]);
    expect(intruder.received).toEqual([]);
    expect(one.unreachable).toContain(2);
  });

  it('waits for a trusted member to invite it, over TLS', async () => {
    const joinerPort = await freePort();
    const controller = new AbortController();
    const invitation = awaitInvitation({
      host: '127.0.0.1', port: joinerPort, logger: silent, signal: controller.signal,
      secure: true, tls: await peerTls(certs.server2),
    });
    cleanups.push(async () => {
      controller.abort();
      await invitation.catch(() => {});
    });
    // An intruder's hello never arrives: the handshake fails first. A trusted leader's does.
    const intruder = await member({ id: 7, port: await freePort(), peers: new Map([[4, at(joinerPort)]]), tls: await peerTls(certs.intruder) });
    intruder.transport.send([newMessage({ type: 'heartbeat', from: 7, to: 4, term: 1 })]);
    await expect.poll(() => intruder.unreachable.includes(4)).toBe(true);
    const leader = await member({ id: 1, port: await freePort(), peers: new Map([[4, at(joinerPort)]]), tls: await peerTls(certs.server) });
    leader.transport.send([newMessage({ type: 'heartbeat', from: 1, to: 4, term: 2 })]);
    expect(await invitation).toMatchObject({ clusterId, memberId: 4, from: 1 });
  });

  it('still waits over plain TCP for an http:// peer URL', async () => {
    const joinerPort = await freePort();
    const invitation = awaitInvitation({ host: '127.0.0.1', port: joinerPort, logger: silent });
    const leader = new PeerTransport({
      selfId: 1, clusterId, logger: silent, peers: new Map([[4, { host: '127.0.0.1', port: joinerPort }]]),
      onMessages: () => {}, onUnreachable: () => {}, onSnapshotStatus: () => {},
    });
    cleanups.push(() => leader.close());
    leader.send([newMessage({ type: 'heartbeat', from: 1, to: 4, term: 2 })]);
    expect(await invitation).toMatchObject({ clusterId, memberId: 4, from: 1 });
  });
});
