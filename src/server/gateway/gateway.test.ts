/**
 * The JSON gateway over a whole member from `startServer`, as `synod server` runs it: curl-style
 * requests on the client port, answered in etcd's JSON; plus /livez and /readyz on the client and
 * metrics URLs. A second HTTP endpoint with a small --max-request-bytes, dialling the same member,
 * exercises the body bounds.
 */

import { request as httpRequest, type Server as HttpServer } from 'node:http';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createGrpcServer } from '../api/grpc-server.js';
import { parseServerFlags } from '../flags.js';
import { loadEtcdProto } from '../grpc/proto.js';
import { createHttpEndpoints } from '../http-endpoints.js';
import { startServer, type RunningServer } from '../server.js';
import { etcdServices } from '../services.js';
import {
  Gateway, gatewayBodyBytesMax, gatewayMetadataOf, httpStatusOfGrpcCode,
} from './gateway.js';

const proto = loadEtcdProto();
const base64 = (text: string): string => Buffer.from(text).toString('base64');
const text = (encoded: string): string => Buffer.from(encoded, 'base64').toString('utf8');

/** A port free a moment ago (the metrics URL has no way to report a port 0 binding). */
function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const probe = createServer().listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as { port: number };
      probe.close(() => resolve(port));
    });
  });
}

interface Answer {
  readonly status: number;
  readonly body: Record<string, unknown>;
}

/** Reads newline-delimited JSON from a streamed answer, one line at a time. */
function lineReader(body: ReadableStream<Uint8Array>): () => Promise<Record<string, unknown>> {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let buffered = '';
  return async () => {
    while (!buffered.includes('\n')) {
      const { value, done } = await reader.read();
      if (done) throw new Error(`stream ended; left: ${JSON.stringify(buffered)}`);
      buffered += decoder.decode(value, { stream: true });
    }
    const end = buffered.indexOf('\n');
    const line = buffered.slice(0, end);
    buffered = buffered.slice(end + 1);
    return JSON.parse(line) as Record<string, unknown>;
  };
}

/** POSTs `body` with node:http (no Content-Length when `chunked`), resolving the answer. */
function rawPost(
  url: string, body: Buffer, options: { chunked: boolean },
): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const outgoing = httpRequest(url, {
      method: 'POST',
      headers: options.chunked
        ? { 'transfer-encoding': 'chunked' }
        : { 'content-length': body.length },
    }, (incoming) => {
      let received = '';
      incoming.setEncoding('utf8').on('data', (chunk: string) => (received += chunk));
      incoming.on('end', () => resolve({ status: incoming.statusCode ?? 0, text: received }));
    });
    outgoing.on('error', reject);
    outgoing.end(body);
  });
}

/** Sends `first` as a chunk, waits for the answer, then sends `then` and ends the body. */
function answerThenSendMore(url: string, first: string, then: string): Promise<{ status: number }> {
  return new Promise((resolve, reject) => {
    const outgoing = httpRequest(url, {
      method: 'POST', headers: { 'transfer-encoding': 'chunked' },
    }, (incoming) => {
      outgoing.on('error', () => {}); // The server may close once it has answered.
      outgoing.end(then);
      incoming.resume();
      incoming.on('end', () => resolve({ status: incoming.statusCode ?? 0 }));
    });
    outgoing.on('error', reject);
    outgoing.write(first);
  });
}

describe('the JSON gateway on a running member', () => {
  let server: RunningServer;
  let base: string;
  let metricsBase: string;
  let dataDir: string;
  let smallGateway: Gateway;
  let smallEndpoints: HttpServer;
  let smallBase: string;

  const post = async (
    path: string, body: unknown, headers: Record<string, string> = {},
  ): Promise<Answer> => {
    const response = await fetch(`${base}${path}`, {
      method: 'POST', headers, body: typeof body === 'string' ? body : JSON.stringify(body),
    });
    return { status: response.status, body: await response.json() as Record<string, unknown> };
  };

  beforeAll(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'synod-gateway-'));
    const metricsPort = await freePort();
    const config = parseServerFlags([
      '--data-dir', dataDir, '--listen-client-urls', 'http://127.0.0.1:0',
      '--listen-metrics-urls', `http://127.0.0.1:${metricsPort}`,
    ], {});
    server = await startServer({
      config, logger: pino({ level: 'silent' }), grpc: createGrpcServer({ proto }),
      registerServices: etcdServices(proto), synodVersion: '0.0.0-test',
    });
    base = `http://127.0.0.1:${server.clientPort}`;
    metricsBase = `http://127.0.0.1:${metricsPort}`;
    smallGateway = new Gateway({
      target: () => `127.0.0.1:${server.clientPort}`, maxRequestBytes: 1024, proto,
    });
    smallEndpoints = createHttpEndpoints({
      health: server.node, synodVersion: 'x', gateway: smallGateway,
    });
    smallEndpoints.once('close', () => smallGateway.close());
    await new Promise<void>((resolve) => smallEndpoints.listen(0, '127.0.0.1', resolve));
    smallBase = `http://127.0.0.1:${(smallEndpoints.address() as { port: number }).port}`;
    // A single member campaigns at once; wait for its win, not for time.
    const node = server.node;
    await new Promise<void>((resolve) => {
      if (node.leaderId !== 0) return resolve();
      const stop = node.onSoftState(() => {
        if (node.leaderId === 0) return;
        stop();
        resolve();
      });
    });
  });

  afterAll(async () => {
    smallEndpoints.closeAllConnections();
    await new Promise((resolve) => smallEndpoints.close(resolve));
    await server.close();
    await rm(dataDir, { recursive: true, force: true });
  });

  it('puts, then ranges: base64 bytes, revisions as strings, zero values omitted', async () => {
    const put = await post('/v3/kv/put', { key: base64('greeting'), value: base64('hello') });
    expect(put.status).toBe(200);
    const header = put.body.header as Record<string, string>;
    expect(header).toEqual({
      cluster_id: expect.stringMatching(/^\d+$/), member_id: expect.stringMatching(/^\d+$/),
      revision: expect.stringMatching(/^\d+$/), raft_term: expect.stringMatching(/^\d+$/),
    });
    const range = await post('/v3/kv/range', { key: base64('greeting') });
    expect(range).toEqual({
      status: 200,
      body: {
        header: { ...header, revision: header.revision },
        kvs: [{
          key: base64('greeting'), value: base64('hello'), version: '1',
          create_revision: header.revision, mod_revision: header.revision,
        }],
        count: '1',
      },
    });
    // camelCase on input, as jsonpb accepts it; a count-only range has no kvs.
    const counted = await post('/v3/kv/range', {
      key: base64('greeting'), rangeEnd: base64('greetinh'), countOnly: true,
    });
    expect(counted.body).toEqual({ header: expect.any(Object), count: '1' });
  });

  it('runs a txn whose compare decides the branch', async () => {
    await post('/v3/kv/put', { key: base64('txn/k'), value: base64('v1') });
    const txn = (value: string) => post('/v3/kv/txn', {
      compare: [{ key: base64('txn/k'), result: 'EQUAL', target: 'VALUE', value: base64(value) }],
      success: [{ request_put: { key: base64('txn/k'), value: base64('v2') } }],
      failure: [{ request_range: { key: base64('txn/k') } }],
    });
    const taken = await txn('v1');
    expect(taken.status).toBe(200);
    expect(taken.body).toMatchObject({
      succeeded: true, responses: [{ response_put: { header: { revision: expect.any(String) } } }],
    });
    const other = await txn('v1');
    expect(other.body.succeeded).toBeUndefined();
    expect(other.body.responses).toEqual([{
      response_range: expect.objectContaining({
        kvs: [expect.objectContaining({ key: base64('txn/k'), value: base64('v2'), version: '2' })],
        count: '1',
      }),
    }]);
  });

  it('deletes a range and returns the previous pairs', async () => {
    await post('/v3/kv/put', { key: base64('del/a'), value: base64('1') });
    await post('/v3/kv/put', { key: base64('del/b'), value: base64('2') });
    const deleted = await post('/v3/kv/deleterange', {
      key: base64('del/'), range_end: base64('del0'), prev_kv: true,
    });
    expect(deleted.status).toBe(200);
    expect(deleted.body.deleted).toBe('2');
    const previous = deleted.body.prev_kvs as { key: string; value: string }[];
    expect(previous.map((kv) => [text(kv.key), text(kv.value)]))
      .toEqual([['del/a', '1'], ['del/b', '2']]);
    const none = await post('/v3/kv/deleterange', { key: base64('del/a') });
    expect(none.body).toEqual({ header: expect.any(Object) });
  });

  it('grants a lease and reports its time to live; an unknown lease is 404', async () => {
    const grant = await post('/v3/lease/grant', { TTL: 60 });
    expect(grant.status).toBe(200);
    expect(grant.body).toEqual({
      header: expect.any(Object), ID: expect.stringMatching(/^[1-9]\d*$/), TTL: '60',
    });
    const id = grant.body.ID as string;
    await post('/v3/kv/put', { key: base64('leased'), value: base64('x'), lease: id });
    for (const path of ['/v3/lease/timetolive', '/v3/kv/lease/timetolive']) {
      const ttl = await post(path, { ID: id, keys: true });
      expect(ttl.body).toEqual({
        header: expect.any(Object), ID: id, TTL: expect.stringMatching(/^\d+$/), grantedTTL: '60',
        keys: [base64('leased')],
      });
    }
    const leases = await post('/v3/kv/lease/leases', {});
    expect(leases.body.leases).toContainEqual({ ID: id });
    expect(await post('/v3/lease/revoke', { ID: '999' })).toEqual({
      status: 404,
      body: {
        error: 'etcdserver: requested lease not found', code: 5,
        message: 'etcdserver: requested lease not found',
      },
    });
    expect((await post('/v3/kv/lease/revoke', { ID: id })).status).toBe(200);
  });

  it('keeps a lease alive over a stream that ends with the body', async () => {
    const id = (await post('/v3/lease/grant', { TTL: 30 })).body.ID as string;
    const response = await fetch(`${base}/v3/lease/keepalive`, {
      method: 'POST', body: JSON.stringify({ ID: id }),
    });
    expect(response.status).toBe(200);
    const lines = (await response.text()).trim().split('\n').map((line) => JSON.parse(line));
    expect(lines).toEqual([{ result: { header: expect.any(Object), ID: id, TTL: '30' } }]);
  });

  it('streams watch events as newline-delimited results', async () => {
    const controller = new AbortController();
    const response = await fetch(`${base}/v3/watch`, {
      method: 'POST', signal: controller.signal,
      body: JSON.stringify({ create_request: { key: base64('watched'), prev_kv: true } }),
    });
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toBe('application/json');
    const next = lineReader(response.body!);
    expect(await next()).toEqual({ result: { header: expect.any(Object), created: true } });
    const put = await post('/v3/kv/put', { key: base64('watched'), value: base64('1') });
    await post('/v3/kv/deleterange', { key: base64('watched') });
    const revision = (put.body.header as { revision: string }).revision;
    expect(await next()).toEqual({
      result: {
        header: expect.objectContaining({ revision }),
        events: [{ kv: { key: base64('watched'), value: base64('1'), version: '1',
          create_revision: revision, mod_revision: revision } }],
      },
    });
    const deletion = await next();
    expect((deletion.result as { events: unknown[] }).events).toEqual([{
      type: 'DELETE', kv: { key: base64('watched'), mod_revision: expect.any(String) },
      prev_kv: expect.objectContaining({ value: base64('1') }),
    }]);
    controller.abort();
  });

  it('answers errors as etcd: a compacted revision is 400 with code 11', async () => {
    const first = await post('/v3/kv/put', { key: base64('compact/k'), value: base64('1') });
    const old = (first.body.header as { revision: string }).revision;
    const second = await post('/v3/kv/put', { key: base64('compact/k'), value: base64('2') });
    const revision = (second.body.header as { revision: string }).revision;
    expect((await post('/v3/kv/compaction', { revision })).status).toBe(200);
    const message = 'etcdserver: mvcc: required revision has been compacted';
    expect(await post('/v3/kv/range', { key: base64('compact/k'), revision: old }))
      .toEqual({ status: 400, body: { error: message, code: 11, message } });
    const future = await post('/v3/kv/range', { key: base64('compact/k'), revision: '999999' });
    expect(future.body).toMatchObject({
      code: 11, message: 'etcdserver: mvcc: required revision is a future revision',
    });
    expect(await post('/v3/kv/range', '')).toEqual({
      status: 400,
      body: {
        error: 'etcdserver: key is not provided', code: 3,
        message: 'etcdserver: key is not provided',
      },
    });
  });

  it('serves /v3beta/ as /v3/', async () => {
    await post('/v3/kv/put', { key: base64('beta'), value: base64('b') });
    const response = await fetch(`${base}/v3beta/kv/range`, {
      method: 'POST', body: JSON.stringify({ key: base64('beta') }),
    });
    expect(response.status).toBe(200);
    const body = (await response.json()) as { kvs: { value: string }[] };
    expect(body.kvs[0]!.value).toBe(base64('b'));
  });

  it('rejects bodies that are not JSON, or not the message, with 400 and code 3', async () => {
    expect(await post('/v3/kv/range', 'garbage')).toEqual({
      status: 400,
      body: {
        error: "invalid character 'g' looking for beginning of value", code: 3,
        message: "invalid character 'g' looking for beginning of value",
      },
    });
    const bodies = [
      '{"key":', '[1,2]', '{"key":"!!!"}', '{"key":5}', '{"limit":"x"}', '"text"', '\u0000',
    ];
    for (const body of bodies) {
      const answer = await post('/v3/kv/range', body);
      expect(answer.status, body).toBe(400);
      expect(answer.body.code, body).toBe(3);
    }
    const watch = await fetch(`${base}/v3/watch`, { method: 'POST', body: 'garbage' });
    expect(watch.status).toBe(400);
    expect(await watch.json()).toMatchObject({ code: 3 });
    // More of a streamed body after its answer is drained, not parsed.
    expect(await answerThenSendMore(`${base}/v3/watch`, 'garbage', '{"create_request":{}}'))
      .toMatchObject({ status: 400 });
    expect(await answerThenSendMore(`${smallBase}/v3/watch`, `{"a":"${'x'.repeat(70_000)}`, '"}'))
      .toMatchObject({ status: 413 });
    expect((await post('/v3/kv/range', { key: base64('alive') })).status).toBe(200);
    const unknownField = await post('/v3/kv/range', { key: base64('still'), unknown_field: 1 });
    expect(unknownField.status).toBe(200);
  });

  it('bounds bodies by --max-request-bytes as base64 JSON, with 413', async () => {
    const bound = gatewayBodyBytesMax(1024);
    expect(smallGateway.bodyBytesMax).toBe(bound);
    const big = Buffer.from(JSON.stringify({ key: base64('big'), value: 'A'.repeat(bound) }));
    for (const chunked of [false, true]) {
      const answer = await rawPost(`${smallBase}/v3/kv/put`, big, { chunked });
      expect(answer.status, `chunked ${chunked}`).toBe(413);
      expect(JSON.parse(answer.text))
        .toMatchObject({ code: 8, message: expect.stringMatching(/larger than \d+ bytes/) });
    }
    const watch = await rawPost(`${smallBase}/v3/watch`, Buffer.from(JSON.stringify({
      create_request: { key: base64('w'), range_end: 'A'.repeat(bound) },
    })), { chunked: true });
    expect(watch.status).toBe(413);
    // Within the bound the member itself answers, here with the default --max-request-bytes.
    const fits = await fetch(`${smallBase}/v3/kv/put`, {
      method: 'POST', body: JSON.stringify({ key: base64('fits'), value: base64('x'.repeat(700)) }),
    });
    expect(fits.status).toBe(200);
    await expect.poll(() => smallGateway.requestsInflight).toBe(0);
  });

  it('routes as grpc-gateway: 404 and 405 in plain text, OPTIONS with CORS headers', async () => {
    const unknown = await fetch(`${base}/v3/kv/nothing`, { method: 'POST', body: '{}' });
    expect(unknown.status).toBe(404);
    expect(await unknown.text()).toBe('Not Found\n');
    const get = await fetch(`${base}/v3/kv/range`);
    expect(get.status).toBe(405);
    expect(await get.text()).toBe('Method Not Allowed\n');
    const preflight = await fetch(`${base}/v3/kv/put`, { method: 'OPTIONS' });
    expect(preflight.status).toBe(200);
    expect(preflight.headers.get('access-control-allow-origin')).toBe('*');
    expect(preflight.headers.get('access-control-allow-headers'))
      .toBe('accept, content-type, authorization');
    // The metrics URL serves no gateway, as etcd's does not.
    const onMetrics = await fetch(`${metricsBase}/v3/kv/range`, { method: 'POST', body: '{}' });
    expect(onMetrics.status).toBe(405);
    const members = await post('/v3/cluster/member/list', '', { authorization: 'some-token' });
    expect(members.status).toBe(200);
    // Client URLs appear once the member has published them through Raft; the route is the point.
    expect(members.body.members).toEqual([expect.objectContaining({
      ID: expect.stringMatching(/^\d+$/), peerURLs: [expect.any(String)],
    })]);
  });

  it('answers /livez and /readyz as etcd 3.5.11, on the client and metrics URLs', async () => {
    for (const url of [base, metricsBase]) {
      const livez = await fetch(`${url}/livez`);
      expect(livez.status).toBe(200);
      expect(livez.headers.get('content-type')).toBe('text/plain; charset=utf-8');
      expect(await livez.text()).toBe('ok\n');
      const readyz = await fetch(`${url}/readyz?verbose`);
      expect(await readyz.text()).toBe(
        '[+]data_corruption ok\n[+]no_space ok\n[+]serializable_read ok\n' +
        '[+]linearizable_read ok\nok\n',
      );
    }
    const status = await post('/v3/maintenance/status', '');
    const memberID = (status.body.header as { member_id: string }).member_id;
    const alarm = (action: string) =>
      post('/v3/maintenance/alarm', { action, memberID, alarm: 'NOSPACE' });
    expect((await alarm('ACTIVATE')).body.alarms).toEqual([{ memberID, alarm: 'NOSPACE' }]);
    const notReady = await fetch(`${base}/readyz`);
    expect(notReady.status).toBe(503);
    expect(await notReady.text()).toBe(
      '[+]data_corruption ok\n[-]no_space failed: alarm activated: NOSPACE\n' +
      '[+]serializable_read ok\n[+]linearizable_read ok\n\n',
    );
    expect((await fetch(`${metricsBase}/readyz`)).status).toBe(503);
    expect((await fetch(`${base}/readyz?exclude=no_space`)).status).toBe(200);
    expect((await fetch(`${base}/readyz/data_corruption`)).status).toBe(200);
    expect((await fetch(`${base}/livez`)).status).toBe(200);
    await alarm('DEACTIVATE');
    expect((await fetch(`${base}/readyz`)).status).toBe(200);
    expect((await fetch(`${base}/readyz/nothing`)).status).toBe(404);
  });
});

describe('gateway edges', () => {
  it('passes Authorization as the token metadata, and Grpc-Metadata-* headers by their key', () => {
    const metadata = gatewayMetadataOf({
      headers: {
        authorization: 'abc.def', 'grpc-metadata-hasleader': 'true', 'grpc-metadata-x-bin': 'AA==',
        'grpc-metadata-grpc-timeout': '1S', 'x-other': 'no',
      },
    });
    expect(metadata.getMap()).toEqual({ 'synod-gateway': '1', token: 'abc.def', hasleader: 'true' });
  });

  it('maps gRPC codes to grpc-gateway v1.16 statuses', () => {
    const statuses = Array.from({ length: 17 }, (_, code) => httpStatusOfGrpcCode(code));
    expect(statuses).toEqual([
      200, 408, 500, 400, 504, 404, 409, 403, 429, 400, 409, 400, 501, 500, 503, 500, 401,
    ]);
  });
});
