/**
 * Maintenance.Defragment on a running member: after many deletes and a compaction the backend
 * file shrinks, the data and its HashKV hash are unchanged, a write sent during the defragmentation
 * is applied, and everything survives a restart.
 */

import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Etcd3 } from 'etcd3';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { createGrpcServer } from './api/grpc-server.js';
import { hashKeyBucket } from './api/maintenance-service.js';
import { parseServerFlags } from './flags.js';
import { loadEtcdProto } from './grpc/proto.js';
import { startServer, type RunningServer } from './server.js';
import { etcdServices } from './services.js';

const proto = loadEtcdProto();

describe('Maintenance.Defragment on a running member', () => {
  const cleanups: (() => Promise<unknown>)[] = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  async function start(dataDir: string): Promise<{ server: RunningServer; client: Etcd3 }> {
    const config = parseServerFlags(['--data-dir', dataDir, '--listen-client-urls', 'http://127.0.0.1:0'], {});
    const server = await startServer({
      config, logger: pino({ level: 'silent' }), grpc: createGrpcServer({ proto }),
      registerServices: etcdServices(proto), synodVersion: '0.0.0-test',
    });
    const client = new Etcd3({ hosts: `127.0.0.1:${server.clientPort}` });
    return { server, client };
  }

  it('shrinks the file, keeps data and hash, applies a write sent meanwhile, and survives a restart', async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'synod-defragment-'));
    cleanups.push(() => rm(dataDir, { recursive: true, force: true }));
    let { server, client } = await start(dataDir);
    cleanups.push(async () => {
      client.close();
      await server.close();
    });
    const value = 'v'.repeat(1024);
    for (let batch = 0; batch < 30; batch++) {
      const puts = Array.from({ length: 100 }, (_, i) => client.put(`doomed/${batch}/${i}`).value(value));
      await client.if('nothing', 'Version', '==', 0).then(...puts).commit();
    }
    await client.put('kept').value('yes');
    await client.delete().prefix('doomed/');
    const { header } = await client.maintenance.status();
    await client.kv.compact({ revision: header.revision, physical: true });
    const before = await client.maintenance.status();
    const hashAt = (member: RunningServer) => hashKeyBucket(member.node.stateMachine.store.backend, Number(header.revision));
    const hashBefore = hashAt(server);

    const [, written] = await Promise.all([
      client.maintenance.defragment(),
      client.put('during').value('defrag'),
    ]);
    expect(written.header.revision).toBe(String(Number(header.revision) + 1));

    const after = await client.maintenance.status();
    expect(Number(after.dbSize)).toBeLessThan(Number(before.dbSize) / 4);
    expect(hashAt(server)).toBe(hashBefore);
    expect(await client.getAll().strings()).toEqual({ during: 'defrag', kept: 'yes' });

    client.close();
    await server.close();
    ({ server, client } = await start(dataDir));
    expect(await client.getAll().strings()).toEqual({ during: 'defrag', kept: 'yes' });
    expect(hashAt(server)).toBe(hashBefore);
  });
});
