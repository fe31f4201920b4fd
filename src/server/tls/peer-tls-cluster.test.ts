/**
 * Three members in this process, bootstrapped over https:// peer URLs with
 * --peer-client-cert-auth: they elect a leader and replicate a write. Then a cluster in which
 * the third member's certificate comes from another CA: the other two carry on without it, and
 * it never learns a leader nor receives the write.
 */

import { createServer } from 'node:net';
import { Etcd3 } from 'etcd3';
import { pino, type Logger } from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { RunningServer } from '../server.js';
import { makeTestCertificates, type CertificateFiles, type TestCertificates } from './certificate-test-kit.js';
import { startTlsMember } from './tls-test-kit.js';

let certs: TestCertificates;
beforeAll(async () => {
  certs = await makeTestCertificates();
});
afterAll(async () => certs.remove());
const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function freePort(): Promise<number> {
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', () => resolve()));
  const { port } = probe.address() as { port: number };
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  return port;
}

/** Starts members m1…m3 over peer TLS, `identities[i]` being m(i+1)'s certificate. */
async function startCluster(identities: readonly CertificateFiles[], loggers: readonly Logger[] = []): Promise<RunningServer[]> {
  const peerPorts = await Promise.all(identities.map(() => freePort()));
  const initialCluster = peerPorts.map((port, i) => `m${i + 1}=https://127.0.0.1:${port}`).join(',');
  return Promise.all(identities.map(async (identity, i) => {
    const peerUrl = `https://127.0.0.1:${peerPorts[i]}`;
    const { server, stop } = await startTlsMember({
      flags: [
        '--name', `m${i + 1}`, '--listen-client-urls', 'http://127.0.0.1:0',
        '--listen-peer-urls', peerUrl, '--initial-advertise-peer-urls', peerUrl,
        '--initial-cluster', initialCluster, '--initial-cluster-token', 'tls-test',
        '--heartbeat-interval', '50', '--election-timeout', '500',
        '--peer-cert-file', identity.cert, '--peer-key-file', identity.key,
        '--peer-trusted-ca-file', certs.ca, '--peer-client-cert-auth',
      ],
      ...(loggers[i] === undefined ? {} : { logger: loggers[i] }),
    });
    cleanups.push(stop);
    return server;
  }));
}

function valueOn(server: RunningServer, key: string): string | null {
  const { kvs } = server.node.stateMachine.store.range({ key: Buffer.from(key) });
  return kvs[0] === undefined ? null : Buffer.from(kvs[0].value).toString();
}

async function putThroughLeader(members: readonly RunningServer[], key: string, value: string): Promise<RunningServer> {
  await expect.poll(() => members.some((member) => member.node.isLeader), { timeout: 10_000 }).toBe(true);
  const leader = members.find((member) => member.node.isLeader)!;
  const client = new Etcd3({ hosts: `127.0.0.1:${leader.clientPort}` });
  try {
    await client.put(key).value(value);
  } finally {
    client.close();
  }
  return leader;
}

describe('peer TLS (https:// peer URLs)', () => {
  it('bootstraps three members that elect a leader and replicate a write', async () => {
    const members = await startCluster([certs.server, certs.server2, certs.server]);
    await putThroughLeader(members, 'replicated', 'over tls');
    for (const member of members) {
      await expect.poll(() => valueOn(member, 'replicated'), { timeout: 10_000 }).toBe('over tls');
    }
    const leaderId = members[0]!.node.leaderId;
    expect(members.map((member) => member.node.leaderId)).toEqual([leaderId, leaderId, leaderId]);
  });

  it('keeps out a member whose certificate another CA signed', async () => {
    const lines: Record<string, unknown>[] = [];
    const watched = pino({ level: 'warn' }, { write: (line: string) => lines.push(JSON.parse(line) as Record<string, unknown>) });
    const members = await startCluster([certs.server, certs.server2, certs.intruder], [watched, watched]);
    const intruder = members[2]!;
    const leader = await putThroughLeader(members.slice(0, 2), 'kept', 'among us');
    await expect.poll(() => members.slice(0, 2).map((member) => valueOn(member, 'kept')), { timeout: 10_000 })
      .toEqual(['among us', 'among us']);
    // The intruder dials the others (it campaigns, hearing no leader) and is refused.
    await expect.poll(() => lines.some((line) => line.msg === 'peer TLS handshake refused'), { timeout: 10_000 })
      .toBe(true);
    expect(leader.transport.isConnected(intruder.node.id)).toBe(false);
    expect(intruder.node.leaderId).toBe(0);
    expect(valueOn(intruder, 'kept')).toBeNull();
  });
});
