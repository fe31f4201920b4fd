/**
 * The gateway's JSON conversion against etcd's gateway output (shapes captured from etcd 3.4.23 and
 * grpc-gateway's jsonpb rules), and that no JSON input makes it throw.
 */

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { loadEtcdProto } from '../grpc/proto.js';
import {
  decodeBase64, GatewayJsonCodec, jsonNameOf, messageNestingDepthMax,
} from './json-codec.js';

const proto = loadEtcdProto();
const codec = GatewayJsonCodec.of(proto.packageDefinition);

/** A message as the stubs decode it (protoLoaderOptions: defaults, oneofs, Buffers, strings). */
function stubDecoded(typeName: string, message: object): object {
  const definition = proto.packageDefinition[typeName];
  if (definition === undefined || !('format' in definition)) throw new Error(typeName);
  const { serialize, deserialize } = definition as unknown as {
    serialize(value: object): Buffer; deserialize(bytes: Buffer): object;
  };
  return deserialize(serialize(message));
}

function decoded(typeName: string, json: unknown): Record<string, unknown> {
  const result = codec.decodeRequest(typeName, json);
  if (!result.ok) throw new Error(`expected ${JSON.stringify(json)} to decode: ${result.message}`);
  return result.message;
}

function rejection(typeName: string, json: unknown): string {
  const result = codec.decodeRequest(typeName, json);
  if (result.ok) throw new Error(`expected ${JSON.stringify(json)} to be rejected`);
  return result.message;
}

describe('gateway JSON: responses as etcd writes them', () => {
  it('writes a range response with base64 bytes, string revisions and zero values omitted', () => {
    const wire = stubDecoded('etcdserverpb.RangeResponse', {
      header: { cluster_id: '15875391935852295136', member_id: '1', revision: '2', raft_term: '2' },
      kvs: [{ key: Buffer.from('foo'), create_revision: '2', mod_revision: '2', version: '1',
        value: Buffer.from('bar'), lease: '0' }],
      more: false,
      count: '1',
    });
    // Byte for byte what etcd 3.4.23 answered to the same range.
    expect(JSON.stringify(codec.encodeResponse('etcdserverpb.RangeResponse', wire))).toBe(
      '{"header":{"cluster_id":"15875391935852295136","member_id":"1","revision":"2",' +
      '"raft_term":"2"},"kvs":[{"key":"Zm9v","create_revision":"2","mod_revision":"2",' +
      '"version":"1","value":"YmFy"}],"count":"1"}',
    );
  });

  it('omits the zero enum (PUT) but names the others, and keeps an empty set message', () => {
    const wire = stubDecoded('etcdserverpb.WatchResponse', {
      header: {}, watch_id: '0', created: false,
      events: [
        { type: 'PUT', kv: { key: Buffer.from('k'), mod_revision: '6' } },
        { type: 'DELETE', kv: { key: Buffer.from('k'), mod_revision: '7' } },
      ],
    });
    expect(codec.encodeResponse('etcdserverpb.WatchResponse', wire)).toEqual({
      header: {},
      events: [
        { kv: { key: 'aw==', mod_revision: '6' } },
        { type: 'DELETE', kv: { key: 'aw==', mod_revision: '7' } },
      ],
    });
  });

  it('writes a txn response: oneof members by their field name, no virtual oneof property', () => {
    const wire = stubDecoded('etcdserverpb.TxnResponse', {
      header: { revision: '4' }, succeeded: true,
      responses: [
        { response_put: { header: { revision: '4' } } },
        { response_range: { header: { revision: '4' }, kvs: [], count: '0' } },
      ],
    });
    expect(codec.encodeResponse('etcdserverpb.TxnResponse', wire)).toEqual({
      header: { revision: '4' }, succeeded: true,
      responses: [
        { response_put: { header: { revision: '4' } } },
        { response_range: { header: { revision: '4' } } },
      ],
    });
  });

  it('keeps proto names (TTL, ID, grantedTTL, memberID) and 32-bit integers as numbers', () => {
    const ttl = stubDecoded('etcdserverpb.LeaseTimeToLiveResponse', {
      header: { revision: '3' }, ID: '1234', TTL: '59', grantedTTL: '60', keys: [],
    });
    expect(codec.encodeResponse('etcdserverpb.LeaseTimeToLiveResponse', ttl))
      .toEqual({ header: { revision: '3' }, ID: '1234', TTL: '59', grantedTTL: '60' });
    const hash = stubDecoded('etcdserverpb.HashKVResponse', {
      hash: 2603808026, compact_revision: '3',
    });
    expect(codec.encodeResponse('etcdserverpb.HashKVResponse', hash))
      .toEqual({ hash: 2603808026, compact_revision: '3' });
    const alarms = stubDecoded('etcdserverpb.AlarmResponse', {
      alarms: [{ memberID: '18446744073709551615', alarm: 'NOSPACE' }],
    });
    expect(codec.encodeResponse('etcdserverpb.AlarmResponse', alarms))
      .toEqual({ alarms: [{ memberID: '18446744073709551615', alarm: 'NOSPACE' }] });
  });
});

describe('gateway JSON: requests as etcd reads them', () => {
  it('accepts proto and JSON names, both base64 alphabets, integers as strings or numbers', () => {
    expect(decoded('etcdserverpb.RangeRequest', {
      key: 'Zm9v', rangeEnd: 'Zm9w', limit: 10, revision: '-1', sort_order: 'DESCEND',
      sortTarget: 2, keysOnly: true,
    })).toEqual({
      key: Buffer.from('foo'), range_end: Buffer.from('fop'), limit: '10', revision: '-1',
      sort_order: 'DESCEND', sort_target: 'CREATE', keys_only: true,
    });
    expect(decoded('etcdserverpb.PutRequest', { key: '-_8', value: '+/8=' }))
      .toEqual({ key: Buffer.from([0xfb, 0xff]), value: Buffer.from([0xfb, 0xff]) });
    expect(decoded('etcdserverpb.LeaseGrantRequest', { TTL: 60, ID: '9223372036854775807' }))
      .toEqual({ TTL: '60', ID: '9223372036854775807' });
  });

  it('decodes a txn with compares and nested ops, either casing', () => {
    expect(decoded('etcdserverpb.TxnRequest', {
      compare: [{ key: 'Zm9v', result: 'EQUAL', target: 'VERSION', version: '0' }],
      success: [{ request_put: { key: 'Zm9v', value: 'cXV4' } }, { requestRange: { key: 'Zm9v' } }],
      failure: [{ requestDeleteRange: { key: 'Zm9v', prevKv: true } }],
    })).toEqual({
      compare: [{ key: Buffer.from('foo'), result: 'EQUAL', target: 'VERSION', version: '0' }],
      success: [
        { request_put: { key: Buffer.from('foo'), value: Buffer.from('qux') } },
        { request_range: { key: Buffer.from('foo') } },
      ],
      failure: [{ request_delete_range: { key: Buffer.from('foo'), prev_kv: true } }],
    });
  });

  it('ignores unknown fields and nulls; an empty body is an empty request', () => {
    expect(decoded('etcdserverpb.RangeRequest', { key: 'Zm9v', bogus: 1, limit: null }))
      .toEqual({ key: Buffer.from('foo') });
    expect(decoded('etcdserverpb.StatusRequest', null)).toEqual({});
  });

  it('rejects what jsonpb rejects, in its words', () => {
    expect(rejection('etcdserverpb.RangeRequest', { key: '!!!' }))
      .toBe('illegal base64 data at input byte 0');
    expect(rejection('etcdserverpb.RangeRequest', { key: 123 }))
      .toBe('json: cannot unmarshal number into Go value of type []uint8');
    expect(rejection('etcdserverpb.RangeRequest', { key: 'Zm9v', sort_order: 'FOO' }))
      .toBe('unknown value "FOO" for enum etcdserverpb.RangeRequest_SortOrder');
    expect(rejection('etcdserverpb.RangeRequest', []))
      .toBe('json: cannot unmarshal array into Go value of type etcdserverpb.RangeRequest');
    expect(rejection('etcdserverpb.RangeRequest', { limit: 'abc' })).toMatch(/invalid value "abc"/);
    expect(rejection('etcdserverpb.RangeRequest', { limit: '9223372036854775808' }))
      .toMatch(/overflows int64/);
    expect(rejection('etcdserverpb.LeaseRevokeRequest', { ID: 1.5 })).toMatch(/invalid value 1.5/);
    expect(rejection('etcdserverpb.RangeRequest', { keys_only: 'true' }))
      .toBe('json: cannot unmarshal string into Go value of type bool');
    expect(rejection('etcdserverpb.TxnRequest', { success: {} }))
      .toBe('json: cannot unmarshal object into Go value of type []*etcdserverpb.RequestOp');
  });

  it('bounds how deep messages nest', () => {
    let txn: object = {};
    for (let depth = 0; depth < messageNestingDepthMax; depth++) {
      txn = { success: [{ request_txn: txn }] };
    }
    expect(rejection('etcdserverpb.TxnRequest', txn)).toMatch(/nest deeper than/);
    const shallow = codec.decodeRequest('etcdserverpb.TxnRequest', {
      success: [{ request_txn: {} }],
    });
    expect(shallow.ok).toBe(true);
  });

  it('never throws, whatever JSON arrives', () => {
    const types = [
      'etcdserverpb.RangeRequest', 'etcdserverpb.TxnRequest', 'etcdserverpb.WatchRequest',
      'etcdserverpb.AlarmRequest', 'v3electionpb.ProclaimRequest',
    ];
    fc.assert(fc.property(fc.constantFrom(...types), fc.jsonValue(), (type, json) => {
      codec.decodeRequest(type, json);
    }), { numRuns: 500 });
    const shaped = fc.record({
      key: fc.oneof(fc.string(), fc.integer(), fc.constant(null)),
      success: fc.array(fc.record({
        request_put: fc.record({ key: fc.string(), lease: fc.jsonValue() }),
      })),
      compare: fc.array(fc.dictionary(
        fc.constantFrom('target', 'result', 'version', 'value'), fc.jsonValue(),
      )),
    });
    fc.assert(fc.property(shaped, (json) => {
      codec.decodeRequest('etcdserverpb.TxnRequest', json);
    }), { numRuns: 500 });
  });
});

describe('gateway JSON: helpers', () => {
  it('names fields as protoc does', () => {
    expect(jsonNameOf('range_end')).toBe('rangeEnd');
    expect(jsonNameOf('TTL')).toBe('TTL');
    expect(jsonNameOf('memberID')).toBe('memberID');
    expect(jsonNameOf('request_delete_range')).toBe('requestDeleteRange');
  });

  it('decodes base64 strictly: padded or not, either alphabet, line breaks skipped', () => {
    expect(decodeBase64('Zm9vYg==')).toEqual(Buffer.from('foob'));
    expect(decodeBase64('Zm9vYg')).toEqual(Buffer.from('foob'));
    expect(decodeBase64('Zm9v\nYmFy')).toEqual(Buffer.from('foobar'));
    expect(decodeBase64('')).toEqual(Buffer.alloc(0));
    expect(() => decodeBase64('Zm9vY')).toThrow('illegal base64 data at input byte 5');
    expect(() => decodeBase64('Zm9vYg=')).toThrow('illegal base64 data at input byte 6');
    expect(() => decodeBase64('Zm 9v')).toThrow('illegal base64 data at input byte 2');
  });
});
