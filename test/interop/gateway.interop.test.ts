/**
 * Differential interop of the HTTP/JSON gateway: the same curl-style requests against real etcd
 * (3.4, Debian's etcd-server) and against Synod, both started from the same etcd command line,
 * must answer the same HTTP status and the same JSON once the values that legitimately differ are
 * masked (cluster and member ids, the raft term). Revisions are compared as they are: both stores
 * start empty at revision 1 and see the same writes. Known differences between etcd 3.4's
 * grpc-gateway and the 3.5 one Synod follows are asserted as such, not masked. INTEROP_DUMP=1
 * prints both answers of every request.
 */

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTarget, stopTarget, type Target } from '../support/etcdctl-harness.js';

const base64 = (text: string): string => Buffer.from(text).toString('base64');
const dump = process.env.INTEROP_DUMP === '1';

interface Answer {
  readonly status: number;
  readonly body: unknown;
}

/** Masks the values that differ between two members of different clusters. */
function masked(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(masked);
  if (typeof value !== 'object' || value === null) return value;
  const entries = Object.entries(value).map(([key, field]) => {
    if (key === 'cluster_id' || key === 'member_id') return [key, '<id>'];
    if (key === 'raft_term') return [key, '<term>'];
    return [key, masked(field)];
  });
  return Object.fromEntries(entries);
}

async function send(target: Target, path: string, body: string): Promise<Answer> {
  const url = `http://127.0.0.1:${target.clientPort}${path}`;
  const response = await fetch(url, { method: 'POST', body });
  const text = await response.text();
  const json = response.headers.get('content-type') === 'application/json';
  return { status: response.status, body: json ? masked(JSON.parse(text)) : text };
}

/** The first line of a stream (a watch's "created" answer, a keep-alive's only one). */
async function firstLine(target: Target, path: string, body: string): Promise<unknown> {
  const controller = new AbortController();
  const response = await fetch(`http://127.0.0.1:${target.clientPort}${path}`, {
    method: 'POST', body, signal: controller.signal,
  });
  const reader = response.body!.getReader();
  let text = '';
  while (!text.includes('\n')) {
    const { value, done } = await reader.read();
    if (done) break;
    text += Buffer.from(value).toString('utf8');
  }
  controller.abort();
  return masked(JSON.parse(text.slice(0, text.indexOf('\n'))));
}

/** Requests whose answers must be identical; each is [path, JSON body as sent]. */
const script: readonly (readonly [string, string])[] = [
  ['/v3/kv/put', JSON.stringify({ key: base64('foo'), value: base64('bar') })],
  ['/v3/kv/range', JSON.stringify({ key: base64('foo') })],
  ['/v3/kv/put', JSON.stringify({ key: base64('foo'), value: base64('baz'), prev_kv: true })],
  ['/v3/kv/put', JSON.stringify({ key: base64('fop'), value: base64('qux') })],
  ['/v3/kv/range', JSON.stringify({ key: base64('fo'), rangeEnd: base64('fp'), countOnly: true })],
  ['/v3/kv/range', JSON.stringify({
    key: base64('fo'), range_end: base64('fp'), keys_only: true, limit: 1,
  })],
  ['/v3/kv/range', JSON.stringify({ key: base64('nothing') })],
  ['/v3/kv/txn', JSON.stringify({
    compare: [{ key: base64('foo'), result: 'EQUAL', target: 'VALUE', value: base64('baz') }],
    success: [
      { request_put: { key: base64('foo'), value: base64('t1') } },
      { requestRange: { key: base64('foo') } },
    ],
    failure: [],
  })],
  ['/v3/kv/txn', JSON.stringify({
    compare: [{ key: base64('foo'), target: 'VERSION', version: '0' }],
    success: [],
    failure: [{ request_delete_range: { key: base64('fop'), prev_kv: true } }],
  })],
  ['/v3/kv/deleterange', JSON.stringify({ key: base64('foo'), prev_kv: true })],
  ['/v3/kv/deleterange', JSON.stringify({ key: base64('foo') })],
  ['/v3/kv/compaction', JSON.stringify({ revision: '3' })],
  ['/v3/kv/range', JSON.stringify({ key: base64('foo'), revision: '2' })],
  ['/v3/kv/range', JSON.stringify({ key: base64('foo'), revision: '99' })],
  ['/v3/kv/range', ''],
  ['/v3/kv/range', JSON.stringify({ key: '!!!' })],
  ['/v3/kv/range', JSON.stringify({ key: 123 })],
  ['/v3/kv/range', JSON.stringify({ key: base64('foo'), sort_order: 'FOO' })],
  ['/v3/kv/range', 'garbage'],
  ['/v3/kv/range', JSON.stringify({ key: base64('foo'), bogus: 1 })],
  ['/v3beta/kv/range', JSON.stringify({ key: base64('fop') })],
  ['/v3/kv/nothing', '{}'],
  ['/v3/lease/grant', JSON.stringify({ TTL: 60, ID: 1234 })],
  ['/v3/kv/lease/leases', '{}'],
  ['/v3/lease/revoke', JSON.stringify({ ID: '999' })],
  ['/v3/kv/lease/revoke', JSON.stringify({ ID: '1234' })],
  ['/v3/kv/lease/timetolive', JSON.stringify({ ID: '999' })],
];

describe('the JSON gateway: Synod answers as etcd', () => {
  let etcd: Target | undefined;
  let synod: Target | undefined;

  beforeAll(async () => {
    etcd = await startTarget('etcd');
    synod = await startTarget('synod');
  });

  afterAll(async () => {
    for (const target of [etcd, synod]) if (target !== undefined) await stopTarget(target);
  });

  it('answers every request of the script with the same status and JSON', async () => {
    for (const [path, body] of script) {
      const expected = await send(etcd!, path, body);
      const actual = await send(synod!, path, body);
      if (dump) {
        const both = [JSON.stringify(expected), JSON.stringify(actual)];
        console.log(path, body, '\n  etcd ', both[0], '\n  synod', both[1]);
      }
      expect(actual, `${path} ${body}`).toEqual(expected);
    }
  });

  it('streams a watch and a keep-alive in the same shape', async () => {
    const watch = JSON.stringify({ create_request: { key: base64('w'), prev_kv: true } });
    expect(await firstLine(synod!, '/v3/watch', watch))
      .toEqual(await firstLine(etcd!, '/v3/watch', watch));
    const lease = JSON.stringify({ TTL: 30, ID: 777 });
    for (const target of [etcd!, synod!]) {
      expect((await send(target, '/v3/lease/grant', lease)).status).toBe(200);
    }
    const keepAlive = JSON.stringify({ ID: '777' });
    expect(await firstLine(synod!, '/v3/lease/keepalive', keepAlive))
      .toEqual(await firstLine(etcd!, '/v3/lease/keepalive', keepAlive));
  });

  it('differs where 3.4 and 3.5 differ: FailedPrecondition is 412 in 3.4, 400 in 3.5', async () => {
    const lease = JSON.stringify({ TTL: 60, ID: 4321 });
    for (const target of [etcd!, synod!]) await send(target, '/v3/lease/grant', lease);
    const expected = await send(etcd!, '/v3/lease/grant', lease);
    const actual = await send(synod!, '/v3/lease/grant', lease);
    expect(expected.status).toBe(412);
    expect(actual).toEqual({ status: 400, body: expected.body });
  });
});
