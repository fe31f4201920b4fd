// The ID service end to end: real HTTP and gRPC on loopback, segment tags kept in a Synod member
// running in this process, and fake generators where a test must hold a request still.
import {
  credentials, makeClientConstructor, status as GrpcStatus, type Client, type ServiceError,
} from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SynodError, assert } from '../../../base/index.js';
import type { SynodClient } from '../../../client/index.js';
import { startInProcessSynod, type ClientTarget } from '../../../../test/client/targets.js';
import type { IdGenerator } from '../id-generator.js';
import { SegmentGenerator } from '../segment.js';
import type { Segment, SegmentStore } from '../segment-store.js';
import { SynodSegmentStore } from '../segment-synod-store.js';
import {
  TagRegistry, loadIdsServiceDefinition, startIdServer, synodCodeMetadataKey, tagUnknownCode,
  tagsExhaustedCode, type DecodedId, type IdServer, type IdServerOptions,
} from './index.js';

// ---- clients of the two protocols ----

interface HttpAnswer {
  readonly status: number;
  readonly body: Record<string, unknown>;
  readonly headers: Headers;
}

async function httpGet(server: IdServer, path: string, method = 'GET'): Promise<HttpAnswer> {
  const response = await fetch(`http://127.0.0.1:${server.httpPort}${path}`, { method });
  const text = await response.text();
  const json = response.headers.get('content-type')?.startsWith('application/json') === true;
  const body = json && text !== '' ? JSON.parse(text) : { text };
  return { status: response.status, body, headers: response.headers };
}

/** Asserts an HTTP failure with `status` and Synod `code`. */
async function expectHttpError(
  server: IdServer, path: string, status: number, code: string | null,
): Promise<void> {
  const answer = await httpGet(server, path);
  expect({ status: answer.status, code: answer.body['code'] }).toEqual({ status, code });
  expect(typeof answer.body['message']).toBe('string');
}

const IdsClient = makeClientConstructor(loadIdsServiceDefinition(), 'Ids');

interface GrpcAnswer<T> {
  readonly value?: T;
  readonly error?: ServiceError;
}

function grpcClient(server: IdServer): Client {
  return new IdsClient(`127.0.0.1:${server.grpcPort}`, credentials.createInsecure());
}

function grpcCall<T>(
  client: Client, method: 'Next' | 'Decode', request: object,
): Promise<GrpcAnswer<T>> {
  type Callback = (error: ServiceError | null, value: T) => void;
  type Method = (request: object, callback: Callback) => void;
  const methods = client as unknown as Record<string, Method>;
  return new Promise((resolve) => {
    methods[method]!.call(client, request, (error, value) => {
      resolve(error === null ? { value } : { error });
    });
  });
}

interface NextResponse {
  readonly tag: string;
  readonly ids: string[];
}

/** Asserts a gRPC failure with `code` and the Synod code in the trailers. */
async function expectGrpcError(
  client: Client, method: 'Next' | 'Decode', request: object, code: GrpcStatus, synodCode: string,
): Promise<void> {
  const { error } = await grpcCall(client, method, request);
  expect(error?.code).toBe(code);
  expect(error?.metadata.get(synodCodeMetadataKey)).toEqual([synodCode]);
}

// ---- metrics text ----

/** The value of the sample written exactly as `name{labels}`, or undefined. */
function sampleOf(
  text: string, name: string, labels: Record<string, string> = {},
): number | undefined {
  const pairs = Object.entries(labels).map(([key, value]) => `${key}="${value}"`).join(',');
  const prefix = pairs === '' ? `${name} ` : `${name}{${pairs}} `;
  const line = text.split('\n').find((each) => each.startsWith(prefix));
  return line === undefined ? undefined : Number(line.slice(prefix.length));
}

async function metricsOf(server: IdServer): Promise<string> {
  const answer = await httpGet(server, '/metrics');
  expect(answer.status).toBe(200);
  return String(answer.body['text']);
}

// ---- fake generators and stores ----

/** A generator whose every call waits until the test releases it; ids count up from 1. */
class GatedGenerator implements IdGenerator<bigint> {
  readonly kind = 'ringbuffer' as const;
  readonly #gates: (() => void)[] = [];
  readonly #arrivals: { count: number; resolve: () => void }[] = [];
  #last = 0n;

  get pending(): number {
    return this.#gates.length;
  }

  /** Resolves once `count` calls wait. */
  waitingFor(count: number): Promise<void> {
    if (this.#gates.length >= count) return Promise.resolve();
    return new Promise((resolve) => this.#arrivals.push({ count, resolve }));
  }

  releaseAll(): void {
    for (const release of this.#gates.splice(0)) release();
  }

  next(): Promise<bigint> {
    return this.nextBatch(1).then((ids) => ids[0]!);
  }

  nextBatch(count: number): Promise<bigint[]> {
    return new Promise((resolve) => {
      this.#gates.push(() => resolve(Array.from({ length: count }, () => (this.#last += 1n))));
      for (const arrival of this.#arrivals.filter((each) => this.#gates.length >= each.count)) {
        this.#arrivals.splice(this.#arrivals.indexOf(arrival), 1);
        arrival.resolve();
      }
    });
  }

  async close(): Promise<void> {}

  async [Symbol.asyncDispose](): Promise<void> {}
}

/** A UUID-like generator: string ids, answered synchronously. */
class TextGenerator implements IdGenerator<string> {
  readonly kind = 'uuidv7' as const;
  #last = 0;

  next(): string {
    this.#last += 1;
    return `00000000-0000-7000-8000-${String(this.#last).padStart(12, '0')}`;
  }

  async nextBatch(count: number): Promise<string[]> {
    return Array.from({ length: count }, () => this.next());
  }

  async close(): Promise<void> {}

  async [Symbol.asyncDispose](): Promise<void> {}
}

/** A store whose backend is down. */
class DownStore implements SegmentStore {
  async allocate(): Promise<Segment> {
    throw new SynodError('SYNOD_ID_STORE_UNAVAILABLE', 'the store is down');
  }

  async close(): Promise<void> {}
}

const decodedFake: DecodedId = Object.freeze({
  timestampMs: 1_700_000_000_123, datacenterId: 3, workerId: 17, sequence: 42,
});

/** Decodes 1234 into `decodedFake`; refuses anything else as its layout would. */
const fakeDecoder = {
  decode(id: bigint): DecodedId {
    if (id !== 1234n) {
      throw new SynodError('SYNOD_INVALID_ARGUMENT', `id ${id} is not of this layout`);
    }
    return decodedFake;
  },
};

// ---- the service over a Synod member ----

describe('ID service over segments in Synod', () => {
  let target: ClientTarget;
  let synod: SynodClient;
  let registry: TagRegistry;
  let server: IdServer;
  let grpc: Client;

  beforeAll(async () => {
    target = await startInProcessSynod();
    synod = target.client();
    const store = new SynodSegmentStore({ client: synod, prefix: 'test/ids-service' });
    registry = new TagRegistry({
      fixed: { uuid: new TextGenerator() },
      createdTagsMax: 8,
      create: (tag) => (tag === 'snowflake'
        ? null : new SegmentGenerator({ store, tag, step: 10 })),
    });
    server = await startIdServer({ source: registry, decoder: fakeDecoder });
    grpc = grpcClient(server);
  });
  afterAll(async () => {
    grpc?.close();
    await server?.close();
    await registry?.close();
    synod?.close();
    await target?.stop();
  });

  it('issues single and batch ids over HTTP and gRPC, unique and increasing per tag', async () => {
    const issued: bigint[] = [];
    for (let round = 0; round < 4; round++) {
      const single = await httpGet(server, '/v1/ids/orders');
      expect(single.status).toBe(200);
      expect(single.headers.get('cache-control')).toBe('no-store');
      expect(Object.keys(single.body).sort()).toEqual(['id', 'tag']);
      expect(single.body['tag']).toBe('orders');
      issued.push(BigInt(single.body['id'] as string));
      const batch = await httpGet(server, '/v1/ids/orders?count=7');
      expect(batch.body['ids']).toHaveLength(7);
      issued.push(...(batch.body['ids'] as string[]).map(BigInt));
      const one = await grpcCall<NextResponse>(grpc, 'Next', { tag: 'orders' });
      expect(one.value).toEqual({ tag: 'orders', ids: [expect.any(String)] });
      issued.push(BigInt(one.value!.ids[0]!));
      const many = await grpcCall<NextResponse>(grpc, 'Next', { tag: 'orders', count: 13 });
      expect(many.value?.ids).toHaveLength(13);
      issued.push(...many.value!.ids.map(BigInt));
    }
    // Increasing across both protocols; and a segment tag starts at 1 and skips nothing while
    // one process serves it alone.
    expect(issued).toEqual(Array.from({ length: 4 * (1 + 7 + 1 + 13) }, (_, i) => BigInt(i + 1)));
    // Another tag has its own sequence, and a string generator's ids pass through as they are.
    expect((await httpGet(server, '/v1/ids/invoices')).body['id']).toBe('1');
    const uuid = await grpcCall<NextResponse>(grpc, 'Next', { tag: 'uuid', count: 2 });
    expect(uuid.value?.ids).toEqual([
      '00000000-0000-7000-8000-000000000001', '00000000-0000-7000-8000-000000000002',
    ]);
  });

  it('percent-decodes the tag of the path', async () => {
    const answer = await httpGet(server, `/v1/ids/${encodeURIComponent('café au lait')}`);
    expect(answer.body).toEqual({ tag: 'café au lait', id: '1' });
  });

  it('refuses an unknown tag with 404 and NOT_FOUND', async () => {
    await expectHttpError(server, '/v1/ids/snowflake', 404, tagUnknownCode);
    await expectGrpcError(grpc, 'Next', { tag: 'snowflake' }, GrpcStatus.NOT_FOUND, tagUnknownCode);
  });

  it('refuses bad counts with 400 and INVALID_ARGUMENT', async () => {
    for (const query of ['count=0', 'count=1001', 'count=-1', 'count=abc', 'count=01',
      'count=1e3', 'count=', 'count=1&count=2', 'size=2']) {
      await expectHttpError(server, `/v1/ids/orders?${query}`, 400, 'SYNOD_INVALID_ARGUMENT');
    }
    await expectGrpcError(grpc, 'Next', { tag: 'orders', count: 1001 },
      GrpcStatus.INVALID_ARGUMENT, 'SYNOD_INVALID_ARGUMENT');
  });

  it('refuses bad tags with 400 and INVALID_ARGUMENT', async () => {
    const long = 'x'.repeat(129);
    for (const tag of [long, 'a%2Fb', '%E0%A4%A', 'é'.repeat(65)]) {
      await expectHttpError(server, `/v1/ids/${tag}`, 400, 'SYNOD_INVALID_ARGUMENT');
    }
    await expectHttpError(server, '/v1/ids/a/b', 400, 'SYNOD_INVALID_ARGUMENT');
    await expectHttpError(server, '/v1/ids/', 400, 'SYNOD_INVALID_ARGUMENT');
    for (const tag of ['', 'a/b', long]) {
      await expectGrpcError(grpc, 'Next', { tag },
        GrpcStatus.INVALID_ARGUMENT, 'SYNOD_INVALID_ARGUMENT');
    }
    // 128 bytes exactly is a tag.
    expect((await httpGet(server, `/v1/ids/${'x'.repeat(128)}`)).status).toBe(200);
  });

  it('decodes through the decoder it was given, and refuses bad ids', async () => {
    const answer = await httpGet(server, '/v1/decode/1234');
    expect(answer).toMatchObject({ status: 200, body: { id: '1234', ...decodedFake } });
    const decoded = await grpcCall(grpc, 'Decode', { id: '1234' });
    expect(decoded.value).toEqual({
      timestamp_ms: '1700000000123', datacenter_id: 3, worker_id: 17, sequence: 42,
    });
    for (const id of ['abc', '01', '-1', '1.5', '18446744073709551616', '1234?x=1']) {
      await expectHttpError(server, `/v1/decode/${id}`, 400, 'SYNOD_INVALID_ARGUMENT');
    }
    // The largest 64-bit id is well-formed; this decoder refuses it as not of its layout.
    await expectHttpError(server, '/v1/decode/18446744073709551615', 400, 'SYNOD_INVALID_ARGUMENT');
    for (const id of ['', 'x', '99999999999999999999']) {
      await expectGrpcError(grpc, 'Decode', { id },
        GrpcStatus.INVALID_ARGUMENT, 'SYNOD_INVALID_ARGUMENT');
    }
  });

  it('answers bad paths, methods and overlong targets with their statuses', async () => {
    await expectHttpError(server, '/v2/ids/orders', 404, 'SYNOD_INVALID_ARGUMENT');
    const post = await httpGet(server, '/v1/ids/orders', 'POST');
    expect({ status: post.status, allow: post.headers.get('allow') })
      .toEqual({ status: 405, allow: 'GET' });
    // A HEAD would issue ids nobody reads: refused.
    expect((await httpGet(server, '/v1/ids/orders', 'HEAD')).status).toBe(405);
    await expectHttpError(server, `/v1/ids/orders?count=1&pad=${'p'.repeat(1_024)}`,
      414, 'SYNOD_INVALID_ARGUMENT');
  });

  it('serves probes', async () => {
    expect(await httpGet(server, '/livez')).toMatchObject({ status: 200, body: { text: 'ok\n' } });
    expect(await httpGet(server, '/readyz')).toMatchObject({ status: 200, body: { text: 'ok\n' } });
  });

  it('exports per-tag series that move with requests', async () => {
    const before = await metricsOf(server);
    const tag = { tag: 'metered' };
    expect(sampleOf(before, 'synod_ids_issued_total', tag)).toBeUndefined();
    await httpGet(server, '/v1/ids/metered?count=25');
    await grpcCall(grpc, 'Next', { tag: 'metered' });
    await httpGet(server, '/v1/ids/metered?count=5000');
    await httpGet(server, '/v1/decode/1234');
    const generator = [...registry.generators()].find(([name]) => name === 'metered')![1];
    assert(generator instanceof SegmentGenerator);
    // Let the preload in flight land, so the figures below are exact.
    while (generator.fetching) await new Promise((resolve) => setImmediate(resolve));
    const after = await metricsOf(server);
    expect(sampleOf(after, 'synod_ids_issued_total', tag)).toBe(26);
    const requests = (protocol: string, mode: string, outcome: string) =>
      sampleOf(after, 'synod_ids_requests_total', { tag: 'metered', protocol, mode, outcome });
    expect(requests('http', 'batch', 'ok')).toBe(1);
    expect(requests('grpc', 'single', 'ok')).toBe(1);
    // A refused count never reached a generator: it counts under tag="".
    const refused = { tag: '', protocol: 'http', mode: 'batch', outcome: 'invalid_argument' };
    expect(sampleOf(after, 'synod_ids_requests_total', refused))
      .toBe((sampleOf(before, 'synod_ids_requests_total', refused) ?? 0) + 1);
    expect(sampleOf(after, 'synod_ids_request_duration_seconds_count', tag)).toBe(2);
    expect(sampleOf(after, 'synod_ids_request_duration_seconds_bucket', { ...tag, le: '+Inf' }))
      .toBe(2);
    expect(sampleOf(after, 'synod_ids_generator_info', { ...tag, kind: 'segment' })).toBe(1);
    expect(sampleOf(after, 'synod_ids_generator_info', { tag: 'uuid', kind: 'uuidv7' })).toBe(1);
    // Steps 10, 20, 40 (doubling: segments last far below the target). 26 ids used the first
    // and 16 of the second; the third is preloaded. Only the first batch waited.
    expect(sampleOf(after, 'synod_ids_segments_fetched_total', tag)).toBe(3);
    expect(sampleOf(after, 'synod_ids_segment_ids_remaining', tag)).toBe(4 + 40);
    expect(generator.remaining).toBe(44n);
    expect(sampleOf(after, 'synod_ids_segment_step', tag)).toBe(generator.step);
    expect(sampleOf(after, 'synod_ids_segment_waits_total', tag)).toBe(1);
    expect(sampleOf(after, 'synod_ids_segment_fetch_failures_total', tag)).toBe(0);
    const decoded = { protocol: 'http', outcome: 'ok' };
    expect(sampleOf(after, 'synod_ids_decode_requests_total', decoded))
      .toBe((sampleOf(before, 'synod_ids_decode_requests_total', decoded) ?? 0) + 1);
    expect(sampleOf(after, 'synod_ids_requests_in_flight')).toBe(0);
    expect(after).toContain('# TYPE synod_ids_request_duration_seconds histogram\n');
  });
});

// ---- the service over fake generators ----

describe('ID service bounds and failures', () => {
  let server: IdServer | null = null;
  let grpc: Client | null = null;

  async function start(options: IdServerOptions): Promise<{ server: IdServer; grpc: Client }> {
    server = await startIdServer(options);
    grpc = grpcClient(server);
    return { server, grpc };
  }

  afterAll(async () => {
    grpc?.close();
    await server?.close();
  });

  it('bounds the requests waiting at once across both protocols', async () => {
    const gated = new GatedGenerator();
    const { server, grpc } = await start({
      source: new TagRegistry({ fixed: { slow: gated } }), requestsInFlightMax: 2,
    });
    const first = httpGet(server, '/v1/ids/slow');
    // One at a time, so the gate releases them in a known order.
    await gated.waitingFor(1);
    const second = grpcCall<NextResponse>(grpc, 'Next', { tag: 'slow', count: 3 });
    await gated.waitingFor(2);
    expect(server.service.requestsInFlight).toBe(2);
    await expectHttpError(server, '/v1/ids/slow', 429, 'SYNOD_ID_WAITERS_EXHAUSTED');
    await expectGrpcError(grpc, 'Next', { tag: 'slow' },
      GrpcStatus.RESOURCE_EXHAUSTED, 'SYNOD_ID_WAITERS_EXHAUSTED');
    expect(gated.pending).toBe(2);
    const metrics = await metricsOf(server);
    expect(sampleOf(metrics, 'synod_ids_requests_in_flight')).toBe(2);
    gated.releaseAll();
    expect((await first).body).toEqual({ tag: 'slow', id: '1' });
    expect((await second).value).toEqual({ tag: 'slow', ids: ['2', '3', '4'] });
    expect(server.service.requestsInFlight).toBe(0);
    // The bound freed: the next request is admitted.
    const third = httpGet(server, '/v1/ids/slow?count=2');
    await gated.waitingFor(1);
    gated.releaseAll();
    expect((await third).body).toEqual({ tag: 'slow', ids: ['5', '6'] });
    await closeStarted();
  });

  it('answers a store that is down with 503 and UNAVAILABLE', async () => {
    const store = new DownStore();
    const registry = new TagRegistry({
      create: (tag) => new SegmentGenerator({ store, tag, retryDelayMs: 1, retryDelayMsMax: 1 }),
    });
    const { server, grpc } = await start({ source: registry });
    await expectHttpError(server, '/v1/ids/down', 503, 'SYNOD_ID_STORE_UNAVAILABLE');
    await expectGrpcError(grpc, 'Next', { tag: 'down', count: 2 },
      GrpcStatus.UNAVAILABLE, 'SYNOD_ID_STORE_UNAVAILABLE');
    const metrics = await metricsOf(server);
    expect(sampleOf(metrics, 'synod_ids_segment_fetch_failures_total', { tag: 'down' }))
      .toBeGreaterThanOrEqual(2);
    expect(sampleOf(metrics, 'synod_ids_requests_total',
      { tag: 'down', protocol: 'grpc', mode: 'batch', outcome: 'unavailable' })).toBe(1);
    await closeStarted();
    await registry.close();
  });

  it('refuses a tag beyond the created-tags bound, and decoding without a decoder', async () => {
    const registry = new TagRegistry({ createdTagsMax: 2, create: () => new TextGenerator() });
    const { server, grpc } = await start({ source: registry });
    expect((await httpGet(server, '/v1/ids/a')).status).toBe(200);
    expect((await grpcCall(grpc, 'Next', { tag: 'b' })).value).toBeDefined();
    await expectHttpError(server, '/v1/ids/c', 507, tagsExhaustedCode);
    await expectGrpcError(grpc, 'Next', { tag: 'c' },
      GrpcStatus.RESOURCE_EXHAUSTED, tagsExhaustedCode);
    // Tags already made keep being served.
    expect((await httpGet(server, '/v1/ids/a')).status).toBe(200);
    expect(registry.createdTags).toBe(2);
    await expectHttpError(server, '/v1/decode/1234', 404, 'SYNOD_INVALID_ARGUMENT');
    await expectGrpcError(grpc, 'Decode', { id: '1234' },
      GrpcStatus.UNIMPLEMENTED, 'SYNOD_INVALID_ARGUMENT');
    await closeStarted();
  });

  it('reports not ready with the reason its readiness check gives', async () => {
    let reason: string | null = 'the Synod cluster has no leader';
    const { server } = await start({
      source: new TagRegistry({}), grpc: null, readiness: async () => reason,
    });
    expect(server.grpcPort).toBeNull();
    expect(await httpGet(server, '/readyz')).toMatchObject({
      status: 503, body: { text: 'not ready: the Synod cluster has no leader\n' },
    });
    reason = null;
    expect((await httpGet(server, '/readyz')).status).toBe(200);
    await closeStarted();
  });

  it('stops listening on close and refuses what is still asked of it', async () => {
    const gated = new GatedGenerator();
    const { server, grpc } = await start({ source: new TagRegistry({ fixed: { slow: gated } }) });
    const waiting = httpGet(server, '/v1/ids/slow');
    await gated.waitingFor(1);
    await server.close();
    // The waiting request's connection was cut, not left hanging.
    await expect(waiting).rejects.toThrow();
    await expect(httpGet(server, '/livez')).rejects.toThrow();
    const { error } = await grpcCall(grpc, 'Next', { tag: 'slow' });
    expect(error?.code).toBe(GrpcStatus.UNAVAILABLE);
    await expect(server.service.issue({ tag: 'slow', count: null }, 'http'))
      .rejects.toMatchObject({ code: 'SYNOD_ID_GENERATOR_CLOSED' });
    expect(await server.service.readyFailure()).toBe('the service is closing');
    gated.releaseAll();
    await closeStarted();
  });

  async function closeStarted(): Promise<void> {
    grpc?.close();
    await server?.close();
    grpc = null;
    server = null;
  }
});
