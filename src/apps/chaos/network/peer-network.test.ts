/**
 * The peer network over real sockets on 127.0.0.1, with each member a small child process so the
 * proxies identify dialers by pid exactly as they will identify Synod and etcd servers. A member
 * listens on its peer port, dials on command, sends on command, and reports what it receives.
 */

import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createServer, connect, type AddressInfo, type Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import { createInterface } from 'node:readline';
import { afterEach, describe, expect, it } from 'vitest';
import { PeerNetwork, type NetworkMember } from './peer-network.js';

/** Every wait gives up after this long; waits end on events, this only bounds a broken test. */
const waitMsMax = 5_000;

const memberScript = `
const net = require('node:net');
const sockets = new Map();
let acceptedCount = 0;
const emit = (event) => process.stdout.write(JSON.stringify(event) + '\\n');
function track(id, socket) {
  sockets.set(id, socket);
  socket.on('data', (data) => emit({ event: 'data', id, data: data.toString('latin1') }));
  socket.on('error', (error) => emit({ event: 'error', id, code: error.code }));
  socket.on('close', () => { sockets.delete(id); emit({ event: 'closed', id }); });
}
const server = net.createServer((socket) => {
  const id = 'accepted-' + ++acceptedCount;
  track(id, socket);
  emit({ event: 'accepted', id });
});
const onListening = () => emit({ event: 'listening', port: server.address().port });
server.listen(Number(process.argv[1] ?? 0), '127.0.0.1', onListening);
require('node:readline').createInterface({ input: process.stdin }).on('line', (line) => {
  const command = JSON.parse(line);
  if (command.cmd === 'dial') {
    const onConnect = () => emit({ event: 'connected', id: command.id });
    const socket = net.connect(command.port, '127.0.0.1', onConnect);
    track(command.id, socket);
  } else if (command.cmd === 'send') {
    sockets.get(command.id).write(command.data.repeat(command.count ?? 1));
  } else if (command.cmd === 'end') {
    sockets.get(command.id).end();
  }
});
process.stdin.on('end', () => process.exit(0));
`;

interface MemberEvent {
  readonly event: 'listening' | 'accepted' | 'connected' | 'data' | 'error' | 'closed';
  readonly id?: string;
  readonly port?: number;
  readonly data?: string;
}

/** Resolves when `condition` holds, checking after every event and on a short poll. */
async function waitUntil(condition: () => boolean, what: string): Promise<void> {
  const deadline = performance.now() + waitMsMax;
  while (!condition()) {
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/** A member process: a peer listener plus a dialer, driven over stdin, reporting on stdout. */
class FakeMember {
  readonly events: MemberEvent[] = [];
  readonly #child: ChildProcess;

  private constructor(readonly name: string, child: ChildProcess) {
    this.#child = child;
    createInterface({ input: child.stdout! }).on('line', (line) => {
      this.events.push(JSON.parse(line) as MemberEvent);
    });
  }

  /** Starts a member listening on `port` (0: any free port). */
  static async spawn(name: string, port = 0): Promise<FakeMember> {
    const child = spawn(process.execPath, ['-e', memberScript, String(port)], {
      stdio: ['pipe', 'pipe', 'inherit'],
    });
    const member = new FakeMember(name, child);
    await member.next((event) => event.event === 'listening', 'listening');
    return member;
  }

  /** The process's pid, or null once it has exited. */
  get pid(): number | null {
    const running = this.#child.exitCode === null && this.#child.signalCode === null;
    return running ? this.#child.pid! : null;
  }

  get port(): number {
    return this.events.find((event) => event.event === 'listening')!.port!;
  }

  async next(predicate: (event: MemberEvent) => boolean, what: string): Promise<MemberEvent> {
    await waitUntil(() => this.events.some(predicate), `${this.name}: ${what}`);
    return this.events.find(predicate)!;
  }

  /** Everything received on connection `id`, in order. */
  received(id: string): string {
    return this.events
      .filter((event) => event.event === 'data' && event.id === id)
      .map((event) => event.data)
      .join('');
  }

  async receivedIncludes(id: string, text: string): Promise<void> {
    await waitUntil(() => this.received(id).includes(text), `${this.name} ${id} receives ${text}`);
  }

  /** The id of the accepted connection on which `text` arrived. */
  async acceptedWith(text: string): Promise<string> {
    const event = await this.next(
      (candidate) =>
        candidate.event === 'data' &&
        candidate.id!.startsWith('accepted-') &&
        this.received(candidate.id!).includes(text),
      `accepted connection carrying ${text}`,
    );
    return event.id!;
  }

  async closed(id: string): Promise<void> {
    await this.next((event) => event.event === 'closed' && event.id === id, `${id} closed`);
  }

  isClosed(id: string): boolean {
    return this.events.some((event) => event.event === 'closed' && event.id === id);
  }

  /** Dials `port` as connection `id`; returns once it connected or (reset early) closed. */
  async dial(id: string, port: number): Promise<void> {
    this.#command({ cmd: 'dial', id, port });
    await this.next(
      (event) => (event.event === 'connected' || event.event === 'closed') && event.id === id,
      `${id} connected`,
    );
  }

  send(id: string, data: string, count = 1): void {
    this.#command({ cmd: 'send', id, data, count });
  }

  /** Half-closes connection `id` (sends FIN). */
  end(id: string): void {
    this.#command({ cmd: 'end', id });
  }

  async stop(): Promise<void> {
    if (this.#child.exitCode !== null) return;
    const exited = once(this.#child, 'exit');
    this.#child.stdin!.end();
    await exited;
  }

  #command(command: object): void {
    this.#child.stdin!.write(`${JSON.stringify(command)}\n`);
  }
}

async function freePort(): Promise<number> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

let cleanups: (() => Promise<void>)[] = [];

afterEach(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
  cleanups = [];
});

interface Cluster {
  readonly network: PeerNetwork;
  readonly members: Record<string, FakeMember>;
  readonly proxyPorts: Record<string, number>;
  readonly listenPorts: Record<string, number>;
}

async function startCluster(
  names: readonly string[],
  options: Parameters<typeof PeerNetwork.start>[1] = {},
): Promise<Cluster> {
  const members: Record<string, FakeMember> = {};
  const proxyPorts: Record<string, number> = {};
  const listenPorts: Record<string, number> = {};
  const networkMembers: NetworkMember[] = [];
  for (const name of names) {
    const member = await FakeMember.spawn(name);
    cleanups.push(() => member.stop());
    members[name] = member;
    proxyPorts[name] = await freePort();
    listenPorts[name] = member.port;
    networkMembers.push({
      name,
      peerListenPort: member.port,
      peerProxyPort: proxyPorts[name],
      pid: () => members[name]!.pid, // Follows restarts: the cluster's entry is replaced.
    });
  }
  const network = await PeerNetwork.start(networkMembers, options);
  cleanups.push(() => network.close());
  return { network, members, proxyPorts, listenPorts };
}

/** `from` dials `to`'s proxy as connection `id`; returns the id `to` accepted it as. */
async function link(cluster: Cluster, from: string, to: string, id: string): Promise<string> {
  const dialer = cluster.members[from]!;
  await dialer.dial(id, cluster.proxyPorts[to]!);
  dialer.send(id, `hello:${id}`);
  const acceptedId = await cluster.members[to]!.acceptedWith(`hello:${id}`);
  cluster.members[to]!.send(acceptedId, `welcome:${id}`);
  await dialer.receivedIncludes(id, `welcome:${id}`);
  return acceptedId;
}

async function stalled(network: PeerNetwork, bytes: number): Promise<void> {
  await waitUntil(() => network.stats().bytesStalled >= bytes, `${bytes} bytes stalled`);
}

describe('PeerNetwork', () => {
  it('forwards both ways and identifies the dialing member', async () => {
    const cluster = await startCluster(['a', 'b']);
    await link(cluster, 'a', 'b', 'ab');
    await link(cluster, 'b', 'a', 'ba');
    expect(cluster.network.describeConnections()).toEqual(['a→b', 'b→a']);
    const stats = cluster.network.stats();
    expect(stats.connections).toBe(2);
    expect(stats.bytesStalled).toBe(0);
    expect(stats.bytesForwarded).toBeGreaterThanOrEqual('hello:ab'.length * 4);
  });

  it('cuts one way on connections either side dialed, then heal resets them', async () => {
    const cluster = await startCluster(['a', 'b']);
    const { network, members } = cluster;
    const { a, b } = members as { a: FakeMember; b: FakeMember };
    const bAcceptedFromA = await link(cluster, 'a', 'b', 'ab');
    const aAcceptedFromB = await link(cluster, 'b', 'a', 'ba');

    network.cut('a', 'b');
    a.send('ab', 'request'); // a → b on a connection a dialed: stalls.
    a.send(aAcceptedFromB, 'answer'); // a → b on a connection b dialed: stalls.
    await stalled(network, 'request'.length + 'answer'.length);
    b.send(bAcceptedFromA, 'reply'); // b → a still flows on both.
    b.send('ba', 'query');
    await a.receivedIncludes('ab', 'reply');
    await a.receivedIncludes(aAcceptedFromB, 'query');
    expect(b.received(bAcceptedFromA)).not.toContain('request');
    expect(b.received('ba')).not.toContain('answer');

    network.heal();
    await Promise.all([a.closed('ab'), b.closed(bAcceptedFromA), b.closed('ba')]);
    await a.closed(aAcceptedFromB);
    expect(b.received(bAcceptedFromA)).not.toContain('request');
    expect(network.stats()).toMatchObject({ connections: 0, bytesStalled: 0 });
    await link(cluster, 'a', 'b', 'ab-again');
  });

  it('partitions both ways, stalls new connections, and keeps the majority flowing', async () => {
    const cluster = await startCluster(['a', 'b', 'c']);
    const { network, members } = cluster;
    const { a, b, c } = members as { a: FakeMember; b: FakeMember; c: FakeMember };
    const bAcceptedFromA = await link(cluster, 'a', 'b', 'ab');
    const cAcceptedFromB = await link(cluster, 'b', 'c', 'bc');

    network.partition([['a'], ['b', 'c']]);
    a.send('ab', 'to-b');
    b.send(bAcceptedFromA, 'to-a');
    await a.dial('ac-new', cluster.proxyPorts['c']!); // Accepted by the proxy, then stalled.
    a.send('ac-new', 'to-c');
    await stalled(network, 'to-b'.length + 'to-a'.length + 'to-c'.length);
    b.send('bc', 'majority');
    c.send(cAcceptedFromB, 'majority-reply');
    await c.receivedIncludes(cAcceptedFromB, 'majority');
    await b.receivedIncludes('bc', 'majority-reply');
    expect(b.received(bAcceptedFromA)).not.toContain('to-b');
    expect(a.received('ab')).not.toContain('to-a');

    // A dialer that gives up on a stalled connection frees it at once, not at heal.
    a.end('ac-new');
    await a.closed('ac-new');
    expect(network.stats().connections).toBe(2);

    network.heal();
    await Promise.all([a.closed('ab'), b.closed(bAcceptedFromA)]);
    expect(b.isClosed('bc')).toBe(false); // Never cut, so never reset.
    b.send('bc', 'after-heal');
    await c.receivedIncludes(cAcceptedFromB, 'after-heal');
    await link(cluster, 'a', 'c', 'ac-again');
  });

  it('delays each direction by at least mean − jitter and keeps order', async () => {
    const cluster = await startCluster(['a', 'b']);
    const { network, members } = cluster;
    const { a, b } = members as { a: FakeMember; b: FakeMember };
    const bAcceptedFromA = await link(cluster, 'a', 'b', 'ab');
    const latency = { meanMs: 120, jitterMs: 40 };
    network.setLatency(latency);
    const lowestMs = latency.meanMs - latency.jitterMs;

    let startedAtMs = performance.now();
    a.send('ab', 'slow-out');
    await b.receivedIncludes(bAcceptedFromA, 'slow-out');
    expect(performance.now() - startedAtMs).toBeGreaterThanOrEqual(lowestMs);
    startedAtMs = performance.now();
    b.send(bAcceptedFromA, 'slow-in');
    await a.receivedIncludes('ab', 'slow-in');
    expect(performance.now() - startedAtMs).toBeGreaterThanOrEqual(lowestMs);

    const messages = Array.from({ length: 40 }, (_, index) => `m${index};`);
    for (const message of messages) a.send('ab', message);
    await b.receivedIncludes(bAcceptedFromA, 'm39;');
    expect(b.received(bAcceptedFromA)).toContain(messages.join(''));
  });

  it('resets every connection at once, and peers can redial', async () => {
    const cluster = await startCluster(['a', 'b']);
    const { network, members } = cluster;
    const bAcceptedFromA = await link(cluster, 'a', 'b', 'ab');
    await link(cluster, 'b', 'a', 'ba');
    network.resetAll();
    expect(network.stats().connections).toBe(0);
    await Promise.all([members['a']!.closed('ab'), members['b']!.closed(bAcceptedFromA)]);
    await members['b']!.closed('ba');
    await link(cluster, 'a', 'b', 'ab-again');
  });

  it('resets dialers of a member that is down, and knows it by its new pid', async () => {
    const cluster = await startCluster(['a', 'b']);
    const { members } = cluster;
    await members['b']!.stop();
    await members['a']!.dial('to-down', cluster.proxyPorts['b']!);
    await members['a']!.closed('to-down'); // The proxy could not reach b's listener.
    expect(cluster.network.stats().connections).toBe(0);

    const restarted = await FakeMember.spawn('b', cluster.listenPorts['b']);
    cleanups.push(() => restarted.stop());
    members['b'] = restarted;
    await link(cluster, 'b', 'a', 'ba');
    expect(cluster.network.describeConnections()).toEqual(['b→a']);
  });

  it('passes unknown clients through every cut', async () => {
    const cluster = await startCluster(['a', 'b']);
    const { network, members } = cluster;
    network.partition([['a'], ['b']]);
    const client = connect(cluster.proxyPorts['b']!, '127.0.0.1');
    cleanups.push(async () => {
      client.destroy();
    });
    await once(client, 'connect');
    client.write('from-a-stranger');
    const acceptedId = await members['b']!.acceptedWith('from-a-stranger');
    members['b']!.send(acceptedId, 'to-the-stranger');
    await receiveOn(client, 'to-the-stranger');
    expect(network.describeConnections()).toEqual(['?→b']);
    network.heal();
    expect(network.stats().connections).toBe(1); // Never cut, so heal leaves it open.
  });

  it('bounds connections and the bytes held per direction', async () => {
    const cluster = await startCluster(['a', 'b'], {
      connectionsMax: 2,
      directionQueueBytesMax: 4096,
    });
    const { network, members } = cluster;
    await link(cluster, 'a', 'b', 'ab');
    await link(cluster, 'b', 'a', 'ba');
    network.cut('a', 'b');
    const sentBytes = 4 * 1024 * 1024;
    members['a']!.send('ab', 'x', sentBytes);
    await stalled(network, 4096);
    // The queue stops at its bound (plus the chunk that crossed it); the kernel holds the rest.
    expect(network.stats().bytesStalled).toBeLessThan(4096 + 256 * 1024);

    await members['a']!.dial('third', cluster.proxyPorts['b']!);
    await members['a']!.closed('third'); // Over connectionsMax: reset on accept.
    expect(network.stats().connections).toBe(2);
  });
});

async function receiveOn(socket: Socket, text: string): Promise<void> {
  let received = '';
  socket.on('data', (data: Buffer) => {
    received += data.toString('latin1');
  });
  await waitUntil(() => received.includes(text), `client receives ${text}`);
}
