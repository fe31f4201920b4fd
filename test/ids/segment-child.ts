// A child process of segment-processes.test.ts: draws ids of one tag from the Synod at argv[2]
// and sends them to the parent in chunks, as decimal strings (IPC has no bigint).
import { SynodClient, isSynodError } from '../../src/client/index.js';
import { SegmentGenerator } from '../../src/services/ids/segment.js';
import { SynodSegmentStore } from '../../src/services/ids/segment-synod-store.js';

const [endpoint, tag, countText] = process.argv.slice(2);
const chunkIds = 10_000;
/** Failed draws (the store unreachable) a child rides out before it gives up. */
const drawFailuresMax = 20;

/** A batch, retried while the store is unreachable: the generator refetches with backoff. */
async function drawBatch(generator: SegmentGenerator, count: number): Promise<bigint[]> {
  for (let failures = 0; ; failures++) {
    try {
      return await generator.nextBatch(count);
    } catch (error) {
      if (!isSynodError(error, 'SYNOD_CLIENT_UNAVAILABLE') || failures >= drawFailuresMax) throw error;
    }
  }
}

async function main(): Promise<void> {
  const client = new SynodClient({ endpoints: [endpoint!] });
  const store = new SynodSegmentStore({ client });
  const generator = new SegmentGenerator({ store, tag: tag!, step: 500, stepMax: 8_000 });
  const count = Number(countText);
  for (let sent = 0; sent < count; sent += chunkIds) {
    const ids = await drawBatch(generator, Math.min(chunkIds, count - sent));
    await new Promise<void>((resolve, reject) => {
      process.send!({ ids: ids.map(String) }, (error: Error | null) => (error ? reject(error) : resolve()));
    });
  }
  await generator.close();
  client.close();
  process.send!({ done: true });
  process.disconnect();
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
