// A child process of ids-uniqueness.chaos.test.ts: draws ids from a Synod cluster with one
// segment generator (a tag every child shares) and one Snowflake generator (a worker id leased
// from the cluster), and appends every id it draws to a file per generator instance as 8-byte
// big-endian records, written synchronously, so a SIGKILL leaves every record before the last
// whole. A generator that fails for good (its worker lease lost in a failover) is replaced by a
// new one writing a new file: "increasing" is checked per file, uniqueness over all of them.
//
// argv: endpoints (comma-separated), output directory, child name, ids to draw per generator kind,
// pause in ms between batches (pacing, so that the run lasts long enough to meet its faults), and
// the Snowflake datacenter id (one per child slot: its 32 worker ids outlast the leases that
// killed predecessors leave behind until they expire).
import { closeSync, openSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { SynodClient, isSynodError } from '../../src/client/index.js';
import type { IdGenerator } from '../../src/services/ids/id-generator.js';
import { SegmentGenerator } from '../../src/services/ids/segment.js';
import { SynodSegmentStore } from '../../src/services/ids/segment-synod-store.js';
import { leaseSnowflakeGenerator } from '../../src/services/ids/leased-snowflake.js';
import { MemorySegmentStore } from '../../src/services/ids/segment-store.js';
import { SnowflakeGenerator } from '../../src/services/ids/snowflake.js';
import { staticWorkerGrant } from '../../src/services/ids/worker-grant.js';

const [endpointList, outputDirectory, childName, quotaText, pauseText, datacenterText] =
  process.argv.slice(2);
const quota = Number(quotaText);
const pauseMs = Number(pauseText);
const datacenterId = Number(datacenterText);
const batchIds = 2_000;
/**
 * Codes a draw rides out: the cluster is electing, a lease went with a failover, or every worker
 * id is still held by leases of killed or failed-over predecessors (they expire within a TTL).
 */
const transientCodes = [
  'SYNOD_CLIENT_UNAVAILABLE', 'SYNOD_CLIENT_DEADLINE', 'SYNOD_ID_STORE_UNAVAILABLE',
  'SYNOD_NO_LEADER', 'SYNOD_ID_WORKER_LEASE_LOST', 'SYNOD_LEASE_LOST',
  'SYNOD_ID_WORKER_IDS_EXHAUSTED',
] as const;

/**
 * The planted bug of the checker's own test (SYNOD_IDS_CHILD_PLANTED=unshared-stores): segments
 * from a store of this process alone, Snowflake on worker id 0 without a lease. Two children then
 * hand out the same ids, which the parent's check must report.
 */
const planted = process.env.SYNOD_IDS_CHILD_PLANTED === 'unshared-stores';

const client = new SynodClient({ endpoints: endpointList!.split(','), callTimeoutMs: 5_000 });

/** One generator instance and the file its ids go to. */
interface Drawer {
  generator: IdGenerator<bigint>;
  file: number;
}

let instances = 0;

async function openDrawer(kind: 'segment' | 'snowflake'): Promise<Drawer> {
  let generator: IdGenerator<bigint>;
  if (kind === 'segment') {
    const store = planted ? new MemorySegmentStore() : new SynodSegmentStore({ client });
    generator = new SegmentGenerator({
      store, tag: 'chaos', step: 1_000, stepMax: 20_000, segmentTargetMs: 2_000,
    });
  } else {
    generator = planted
      ? new SnowflakeGenerator({ grant: staticWorkerGrant({ datacenterId: 0, workerId: 0 }) })
      : await leaseSnowflakeGenerator({ client, datacenterId });
  }
  instances += 1;
  const file = openSync(join(outputDirectory!, `${childName}-${kind}-${instances}.bin`), 'w');
  return { generator, file };
}

function isTransient(error: unknown): boolean {
  return transientCodes.some((code) => isSynodError(error, code));
}

function write(file: number, ids: readonly bigint[]): void {
  const records = Buffer.allocUnsafe(ids.length * 8);
  ids.forEach((id, index) => records.writeBigInt64BE(id, index * 8));
  writeSync(file, records);
}

/** Draws `quota` ids of one kind, replacing the generator whenever it fails. */
async function drawAll(kind: 'segment' | 'snowflake'): Promise<void> {
  let drawer: Drawer | null = null;
  for (let drawn = 0; drawn < quota;) {
    try {
      drawer ??= await openDrawer(kind);
      const ids = await drawer.generator.nextBatch(Math.min(batchIds, quota - drawn));
      write(drawer.file, ids);
      drawn += ids.length;
      await new Promise((resolve) => setTimeout(resolve, pauseMs));
    } catch (error) {
      if (!isTransient(error)) throw error;
      if (drawer !== null && (kind === 'snowflake' || isSynodError(error, 'SYNOD_ID_GENERATOR_CLOSED'))) {
        await drawer.generator.close().catch(() => undefined);
        closeSync(drawer.file);
        drawer = null;
      }
      console.error(`${childName} ${kind}: ${(error as Error).message.split('\n')[0]}`);
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
  }
  if (drawer !== null) {
    await drawer.generator.close().catch(() => undefined);
    closeSync(drawer.file);
  }
}

/** Planted runs start drawing together, so their Snowflake ids share milliseconds. */
function startSignal(): Promise<void> {
  if (!planted) return Promise.resolve();
  return new Promise((resolve) => {
    process.on('message', (message: { go?: boolean }) => {
      if (message.go === true) resolve();
    });
    process.send!({ ready: true });
  });
}

async function main(): Promise<void> {
  await startSignal();
  await Promise.all([drawAll('segment'), drawAll('snowflake')]);
  client.close();
  process.send!({ done: true });
  process.disconnect();
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
