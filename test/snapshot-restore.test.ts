/**
 * Backup and restore as an operator does it, with real processes: a single member takes writes
 * (some under a lease, some deleted, some overwritten), its Maintenance.Snapshot stream is saved
 * to a file, `synod snapshot status` reads it, and `synod snapshot restore` builds the data
 * directories of a NEW 3-member cluster (new peer URLs, new token) from it. The new cluster must
 * serve exactly the snapshot's keys, revisions and lease, identically on every member (HashKV),
 * under new member and cluster ids, and take new writes.
 */

import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import { credentials, type Client } from '@grpc/grpc-js';
import type { Etcd3, IRangeResponse } from 'etcd3';
import { afterEach, describe, expect, it } from 'vitest';
import { decodeSnapshotFile } from '../src/server/api/snapshot-stream.js';
import { loadEtcdProto } from '../src/server/grpc/proto.js';
import { ProcessCluster } from './support/synod-processes.js';

const cli = join(import.meta.dirname, '../src/apps/synod.ts');
const timing = { heartbeatIntervalMs: 100, electionTimeoutMs: 1000 };
const proto = loadEtcdProto();
const newToken = 'restored-cluster';

type Callback = (error: Error | null, response: never) => void;
type MaintenanceClient = Client & {
  HashKV(request: { revision: string }, callback: Callback): void;
  Snapshot(request: object): NodeJS.ReadableStream;
};

/** A raw Maintenance client: the npm etcd3 client's protos predate HashKV. */
function maintenanceClient(port: number): MaintenanceClient {
  const etcdserverpb = proto.packageObject['etcdserverpb'] as unknown as Record<
    string, new (address: string, creds: unknown) => Client
  >;
  const Maintenance = etcdserverpb['Maintenance']!;
  return new Maintenance(`127.0.0.1:${port}`, credentials.createInsecure()) as MaintenanceClient;
}

interface HashKvResponse {
  readonly hash: number;
  readonly header: { readonly revision: string };
}

function hashKv(client: MaintenanceClient, revision: string): Promise<HashKvResponse> {
  return new Promise((resolve, reject) => {
    client.HashKV({ revision }, (error, response) => {
      if (error === null) resolve(response);
      else reject(error);
    });
  });
}

/** The whole Snapshot stream: body blobs then the SHA-256, i.e. the file etcdctl would save. */
function saveSnapshot(client: MaintenanceClient): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const blobs: Buffer[] = [];
    const stream = client.Snapshot({});
    stream.on('data', (message: { blob: Buffer }) => blobs.push(message.blob));
    stream.on('error', reject);
    stream.on('end', () => resolve(Buffer.concat(blobs)));
  });
}

/** Retries `attempt` every 25 ms until it returns a value; throws after `deadlineMs`. */
async function eventually<T>(
  what: string, deadlineMs: number, attempt: () => Promise<T | undefined>,
): Promise<T> {
  const deadline = performance.now() + deadlineMs;
  let lastError: unknown = null;
  while (performance.now() < deadline) {
    try {
      const value = await attempt();
      if (value !== undefined) return value;
    } catch (error) {
      lastError = error;
    }
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  throw new Error(`${what}: not within ${deadlineMs} ms (last error: ${String(lastError)})`);
}

/** Keys, values, revisions, versions and leases of a range, as comparable text. */
function rows(response: IRangeResponse): string[] {
  return response.kvs.map((kv) =>
    `${kv.key.toString()}=${kv.value.toString()} create=${kv.create_revision} ` +
    `mod=${kv.mod_revision} version=${kv.version} lease=${kv.lease}`);
}

/** How a `synod` process ended. */
interface Finished {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** A member's clients: etcd3 for KV, lease and Status; raw grpc-js for HashKV and Snapshot. */
interface Connected {
  readonly client: Etcd3;
  readonly maintenance: MaintenanceClient;
}

describe('synod snapshot restore (processes)', () => {
  const clusters: ProcessCluster[] = [];
  const clients: Etcd3[] = [];
  const raw: Client[] = [];
  const children = new Set<ChildProcess>();
  let scratch: string | null = null;
  afterEach(async () => {
    for (const client of clients.splice(0)) client.close();
    for (const client of raw.splice(0)) client.close();
    for (const child of children) child.kill('SIGKILL');
    children.clear();
    for (const cluster of clusters.splice(0)) await cluster.destroy();
    if (scratch !== null) await rm(scratch, { recursive: true, force: true });
    scratch = null;
  });

  /** `synod …args` as a process; resolves with its exit code and output. */
  function synod(...args: string[]): Promise<Finished> {
    const child = spawn(process.execPath, ['--import', 'tsx', cli, ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    children.add(child);
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    return new Promise((resolve) => child.once('close', (code) => {
      children.delete(child);
      resolve({ code, stdout, stderr });
    }));
  }

  function connect(cluster: ProcessCluster, name: string): Connected {
    const client = cluster.client(name);
    const maintenance = maintenanceClient(cluster.member(name).clientPort);
    clients.push(client);
    raw.push(maintenance);
    return { client, maintenance };
  }

  it('restores into a new 3-member cluster serving the same state under new ids', async () => {
    scratch = await mkdtemp(join(tmpdir(), 'synod-snapshot-restore-'));
    const original = await ProcessCluster.create(1, timing);
    clusters.push(original);
    await original.start('m1');
    const source = connect(original, 'm1');
    const lease = source.client.lease(600, { autoKeepAlive: false });
    const leaseId = await lease.grant();
    await lease.put('lease/1').value('held');
    await lease.put('lease/2').value('held too');
    for (let i = 1; i <= 5; i++) await source.client.put(`k${i}`).value(`v${i}`);
    await source.client.put('k2').value('v2 again');
    await source.client.put('k2').value('v2 third');
    await source.client.delete().key('k3');
    await source.client.put('gone/a').value('x');
    await source.client.put('gone/b').value('y');
    await source.client.delete().prefix('gone/');
    const before = await source.client.getAll().exec();
    const sourceStatus = await source.client.maintenance.status();
    const revision = sourceStatus.header.revision;
    const sourceHash = (await hashKv(source.maintenance, revision)).hash;
    expect(rows(before)).toHaveLength(6);

    const snapshotPath = join(scratch, 'backup.db');
    const file = await saveSnapshot(source.maintenance);
    await writeFile(snapshotPath, file);
    // The original is no longer needed: its ids and state are recorded above.
    expect(await original.stop('m1')).toBe(0);

    const status = await synod('snapshot', 'status', snapshotPath, '-w', 'json');
    expect(status.code, status.stderr).toBe(0);
    expect(await readFile(snapshotPath)).toEqual(file);
    expect(JSON.parse(status.stdout)).toMatchObject({
      hash: crc32(decodeSnapshotFile(file)), revision: Number(revision), totalSize: file.length,
    });

    const restored = await ProcessCluster.create(3, {
      ...timing, extraFlags: ['--initial-cluster-token', newToken],
    });
    clusters.push(restored);
    const initialCluster = restored.members
      .map((m) => `${m.name}=http://127.0.0.1:${m.peerPort}`).join(',');
    const restores = await Promise.all(restored.members.map((member) => synod(
      'snapshot', 'restore', snapshotPath, '--name', member.name,
      '--initial-cluster', initialCluster, '--initial-cluster-token', newToken,
      '--initial-advertise-peer-urls', `http://127.0.0.1:${member.peerPort}`,
      '--data-dir', member.dataDir,
    )));
    for (const result of restores) expect(result.code, result.stderr).toBe(0);

    await restored.startAll();
    const members = restored.members
      .map((member) => ({ name: member.name, ...connect(restored, member.name) }));
    await eventually('an agreed leader', 10_000, async () => {
      const statuses = await Promise.all(members.map((m) => m.client.maintenance.status()));
      const leaders = statuses.map((status) => status.leader);
      return new Set(leaders).size === 1 && leaders[0] !== '0' ? leaders[0] : undefined;
    });

    const statuses = await Promise.all(members.map((m) => m.client.maintenance.status()));
    const clusterIds = new Set(statuses.map((s) => s.header.cluster_id));
    const memberIds = new Set(statuses.map((s) => s.header.member_id));
    expect(clusterIds.size).toBe(1);
    expect(clusterIds.has(sourceStatus.header.cluster_id)).toBe(false);
    expect(memberIds.size).toBe(3);
    expect(memberIds.has(sourceStatus.header.member_id)).toBe(false);
    // The member table is the new cluster's: the original member is not in it.
    const listed = (await members[0]!.client.cluster.memberList({})).members;
    expect(new Set(listed.map((member) => member.ID))).toEqual(memberIds);
    expect(listed.flatMap((member) => member.peerURLs).sort()).toEqual(restored.members
      .map((member) => `http://127.0.0.1:${member.peerPort}`).sort());

    for (const member of members) {
      // Each member's own state (serializable), then through the leader (linearizable).
      const local = await member.client.getAll().serializable(true).exec();
      expect(rows(local), member.name).toEqual(rows(before));
      expect(local.header.revision, member.name).toBe(revision);
      expect(rows(await member.client.getAll().exec()), member.name).toEqual(rows(before));
      expect((await hashKv(member.maintenance, revision)).hash, member.name).toBe(sourceHash);
      const ttl = await member.client.leaseClient.leaseTimeToLive({ ID: leaseId, keys: true });
      expect(ttl.grantedTTL, member.name).toBe('600');
      expect(Number(ttl.TTL), member.name).toBeGreaterThan(0);
      expect(ttl.keys.map(String).sort(), member.name).toEqual(['lease/1', 'lease/2']);
    }

    await members[1]!.client.put('after/restore').value('yes');
    const next = String(Number(revision) + 1);
    const hashes = new Set<number>();
    for (const member of members) {
      expect(await member.client.get('after/restore').string(), member.name).toBe('yes');
      const hashed = await hashKv(member.maintenance, next);
      expect(hashed.header.revision).toBe(next);
      hashes.add(hashed.hash);
    }
    expect(hashes.size).toBe(1);
  }, 60_000);
});
