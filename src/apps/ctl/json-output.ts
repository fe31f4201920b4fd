/**
 * `-w json`: the same bytes etcdctl 3.4 prints, which is Go's encoding/json applied to the
 * gogoproto structs (command/printer_json.go). That means, per field: the proto field name as
 * the key, in declaration order; `omitempty` (zero numbers, false, "", empty lists and absent
 * messages are left out); 64-bit integers as JSON numbers at full precision (never rounded
 * through a double); bytes as standard base64; enums as their numbers; a oneof as
 * `{"Response":{"ResponsePut":{…}}}`. Where etcdctl prints a clientv3 wrapper struct instead
 * (leases, watch), the shape below spells that struct's fields, which have no `omitempty`.
 */

import { assert } from '../../base/index.js';

/** How one field's value is written. */
export type FieldKind =
  | 'int'
  | 'bool'
  | 'string'
  | 'bytes'
  | { readonly enum: readonly string[] }
  | { readonly message: () => Shape }
  | { readonly list: FieldKind }
  /** The fields of a Go embedded struct pointer, inlined into the parent (`*pb.ResponseHeader`). */
  | { readonly embed: () => Shape }
  /** A oneof: the source property names the member set, each printed under its Go name. */
  | { readonly oneof: string; readonly members: Readonly<Record<string, OneofMember>> };

/** A oneof member: its Go wrapper field name (`ResponsePut`) and its message's shape. */
export type OneofMember = readonly [goName: string, shape: () => Shape];

/** One field: its JSON key, where it is read from (`from`, default the key), how it prints. */
export interface Field {
  readonly name: string;
  readonly from?: string;
  readonly kind: FieldKind;
  /** The literal printed for an empty value; without it the field is omitted (`omitempty`). */
  readonly zero?: string;
}

/** A message's fields in declaration order. */
export type Shape = readonly Field[];

type Source = Readonly<Record<string, unknown>>;

/** Encodes `value` as Go would print a struct of `shape`. */
export function goJson(value: object, shape: Shape): string {
  const members: string[] = [];
  for (const field of shape) appendField(members, value as Source, field);
  return `{${members.join(',')}}`;
}

/** Encodes a list of structs, as etcdctl prints `endpoint status`'s `[]epStatus`. */
export function goJsonList(values: readonly object[], shape: Shape): string {
  return values.length === 0 ? '[]' : `[${values.map((each) => goJson(each, shape)).join(',')}]`;
}

function appendField(members: string[], source: Source, field: Field): void {
  const raw = source[field.from ?? field.name];
  if (typeof field.kind === 'object' && 'embed' in field.kind) {
    if (raw !== null && raw !== undefined) {
      for (const inner of field.kind.embed()) appendField(members, raw as Source, inner);
    }
    return;
  }
  if (typeof field.kind === 'object' && 'oneof' in field.kind) {
    const member = source[field.kind.oneof];
    const spec = typeof member === 'string' ? field.kind.members[member] : undefined;
    if (spec === undefined) return;
    const [goName, shape] = spec;
    const inner = goJson(source[member as string] as Source, shape());
    members.push(`${goString(field.name)}:{${goString(goName)}:${inner}}`);
    return;
  }
  const encoded = isEmpty(raw, field.kind) ? field.zero : encodeValue(raw, field.kind);
  if (encoded !== undefined) members.push(`${goString(field.name)}:${encoded}`);
}

function isEmpty(value: unknown, kind: FieldKind): boolean {
  if (value === null || value === undefined) return true;
  if (kind === 'int') return BigInt(value as string) === 0n;
  if (kind === 'bool') return value === false;
  if (kind === 'string' || kind === 'bytes') return (value as { length: number }).length === 0;
  if (typeof kind === 'object' && 'enum' in kind) return enumNumber(value, kind.enum) === 0;
  if (typeof kind === 'object' && 'list' in kind) return (value as unknown[]).length === 0;
  return false;
}

function encodeValue(value: unknown, kind: FieldKind): string {
  if (kind === 'int') return integerText(value);
  if (kind === 'bool') return value === true ? 'true' : 'false';
  if (kind === 'string') return goString(value as string);
  if (kind === 'bytes') return `"${Buffer.from(value as Uint8Array).toString('base64')}"`;
  if ('enum' in kind) return String(enumNumber(value, kind.enum));
  if ('message' in kind) return goJson(value as Source, kind.message());
  if ('list' in kind) {
    return `[${(value as unknown[]).map((each) => encodeValue(each, kind.list)).join(',')}]`;
  }
  assert(false, 'embedded structs and oneofs are inlined by appendField');
}

/** A decimal integer (string, number or bigint) as a JSON number literal, digits unchanged. */
function integerText(value: unknown): string {
  const text = typeof value === 'string' ? value : String(value);
  assert(/^-?\d+$/.test(text), `an integer field holds ${text}`);
  return BigInt(text).toString();
}

function enumNumber(value: unknown, names: readonly string[]): number {
  if (typeof value === 'number') return value;
  const index = names.indexOf(value as string);
  assert(index >= 0, `enum value ${String(value)} is one of ${names.join(', ')}`);
  return index;
}

/** A JSON string as Go escapes it: HTML-sensitive characters as \u escapes. */
export function goString(text: string): string {
  return JSON.stringify(text)
    .replaceAll('<', '\\u003c').replaceAll('>', '\\u003e').replaceAll('&', '\\u0026')
    .replaceAll('\u2028', '\\u2028').replaceAll('\u2029', '\\u2029');
}

const message = (shape: () => Shape): FieldKind => ({ message: shape });
const list = (kind: FieldKind): FieldKind => ({ list: kind });

/** etcdserverpb.ResponseHeader. */
export const headerShape: Shape = [
  { name: 'cluster_id', kind: 'int' },
  { name: 'member_id', kind: 'int' },
  { name: 'revision', kind: 'int' },
  { name: 'raft_term', kind: 'int' },
];
const header: Field = { name: 'header', kind: message(() => headerShape) };

/** mvccpb.KeyValue. */
export const keyValueShape: Shape = [
  { name: 'key', kind: 'bytes' },
  { name: 'create_revision', kind: 'int' },
  { name: 'mod_revision', kind: 'int' },
  { name: 'version', kind: 'int' },
  { name: 'value', kind: 'bytes' },
  { name: 'lease', kind: 'int' },
];
const keyValue = message(() => keyValueShape);

/** RangeResponse. */
export const rangeShape: Shape = [
  header,
  { name: 'kvs', kind: list(keyValue) },
  { name: 'more', kind: 'bool' },
  { name: 'count', kind: 'int' },
];

/** PutResponse. */
export const putShape: Shape = [header, { name: 'prev_kv', kind: keyValue }];

/** DeleteRangeResponse. */
export const deleteRangeShape: Shape = [
  header,
  { name: 'deleted', kind: 'int' },
  { name: 'prev_kvs', kind: list(keyValue) },
];

/** ResponseOp: `{"Response":{"ResponsePut":{…}}}`, Go's encoding of the oneof wrapper. */
export const responseOpShape: Shape = [{
  name: 'Response',
  kind: {
    oneof: 'response',
    members: {
      response_range: ['ResponseRange', () => rangeShape],
      response_put: ['ResponsePut', () => putShape],
      response_delete_range: ['ResponseDeleteRange', () => deleteRangeShape],
      response_txn: ['ResponseTxn', () => txnShape],
    },
  },
}];

/** TxnResponse. */
export const txnShape: Shape = [
  header,
  { name: 'succeeded', kind: 'bool' },
  { name: 'responses', kind: list(message(() => responseOpShape)) },
];

/** mvccpb.Event: `type` is a number, omitted for PUT (0). */
export const eventShape: Shape = [
  { name: 'type', kind: { enum: ['PUT', 'DELETE'] } },
  { name: 'kv', kind: keyValue },
  { name: 'prev_kv', kind: keyValue },
];

/** clientv3.WatchResponse (no json tags, no omitempty). */
export const watchShape: Shape = [
  { name: 'Header', from: 'header', kind: message(() => headerShape), zero: 'null' },
  { name: 'Events', from: 'events', kind: list(message(() => eventShape)), zero: 'null' },
  { name: 'CompactRevision', from: 'compact_revision', kind: 'int', zero: '0' },
  { name: 'Canceled', from: 'canceled', kind: 'bool', zero: 'false' },
  { name: 'Created', from: 'created', kind: 'bool', zero: 'false' },
];

const embeddedHeader: Field = { name: 'header', kind: { embed: () => headerShape } };

/** clientv3.LeaseGrantResponse: the header inlined, then ID, TTL and Error, always printed. */
export const leaseGrantShape: Shape = [
  embeddedHeader,
  { name: 'ID', kind: 'int', zero: '0' },
  { name: 'TTL', kind: 'int', zero: '0' },
  { name: 'Error', from: 'error', kind: 'string', zero: '""' },
];

/** LeaseRevokeResponse. */
export const headerOnlyShape: Shape = [header];

/** clientv3.LeaseKeepAliveResponse. */
export const leaseKeepAliveShape: Shape = [
  embeddedHeader,
  { name: 'ID', kind: 'int', zero: '0' },
  { name: 'TTL', kind: 'int', zero: '0' },
];

/** clientv3.LeaseTimeToLiveResponse (json tags `id`, `ttl`, `granted-ttl`, `keys`). */
export const leaseTimeToLiveShape: Shape = [
  embeddedHeader,
  { name: 'id', from: 'ID', kind: 'int', zero: '0' },
  { name: 'ttl', from: 'TTL', kind: 'int', zero: '0' },
  { name: 'granted-ttl', from: 'grantedTTL', kind: 'int', zero: '0' },
  { name: 'keys', kind: list('bytes'), zero: 'null' },
];

/** clientv3.LeaseLeasesResponse: `leases` is a made slice, so `[]` when empty. */
export const leaseLeasesShape: Shape = [
  embeddedHeader,
  {
    name: 'leases',
    kind: list(message(() => [{ name: 'id', from: 'ID', kind: 'int', zero: '0' }])),
    zero: '[]',
  },
];

/** etcdserverpb.Member. */
export const memberShape: Shape = [
  { name: 'ID', kind: 'int' },
  { name: 'name', kind: 'string' },
  { name: 'peerURLs', kind: list('string') },
  { name: 'clientURLs', kind: list('string') },
  { name: 'isLearner', kind: 'bool' },
];

/** MemberAddResponse; the other Member* responses have no `member`. */
export const memberResponseShape: Shape = [
  header,
  { name: 'member', kind: message(() => memberShape) },
  { name: 'members', kind: list(message(() => memberShape)) },
];

/** StatusResponse. */
export const statusShape: Shape = [
  header,
  { name: 'version', kind: 'string' },
  { name: 'dbSize', kind: 'int' },
  { name: 'leader', kind: 'int' },
  { name: 'raftIndex', kind: 'int' },
  { name: 'raftTerm', kind: 'int' },
  { name: 'raftAppliedIndex', kind: 'int' },
  { name: 'errors', kind: list('string') },
  { name: 'dbSizeInUse', kind: 'int' },
  { name: 'isLearner', kind: 'bool' },
];

/** etcdctl's epStatus: `{"Endpoint":…,"Status":{…}}`. */
export const endpointStatusShape: Shape = [
  { name: 'Endpoint', from: 'endpoint', kind: 'string', zero: '""' },
  { name: 'Status', from: 'status', kind: message(() => statusShape), zero: 'null' },
];

/** HashKVResponse. */
export const hashKvShape: Shape = [
  header,
  { name: 'hash', kind: 'int' },
  { name: 'compact_revision', kind: 'int' },
];

/** etcdctl's epHashKV: `{"Endpoint":…,"HashKV":{…}}`. */
export const endpointHashKvShape: Shape = [
  { name: 'Endpoint', from: 'endpoint', kind: 'string', zero: '""' },
  { name: 'HashKV', from: 'hashKv', kind: message(() => hashKvShape), zero: 'null' },
];

/** etcdctl's epHealth (`error` is the only omitempty field). */
export const endpointHealthShape: Shape = [
  { name: 'endpoint', kind: 'string', zero: '""' },
  { name: 'health', kind: 'bool', zero: 'false' },
  { name: 'took', kind: 'string', zero: '""' },
  { name: 'error', kind: 'string' },
];

/** AlarmResponse. */
export const alarmShape: Shape = [
  header,
  {
    name: 'alarms',
    kind: list(message(() => [
      { name: 'memberID', kind: 'int' },
      { name: 'alarm', kind: { enum: ['NONE', 'NOSPACE', 'CORRUPT'] } },
    ])),
  },
];

/** authpb.Permission: `permType` a number, omitted for READ (0). */
export const permissionShape: Shape = [
  { name: 'permType', kind: { enum: ['READ', 'WRITE', 'READWRITE'] } },
  { name: 'key', kind: 'bytes' },
  { name: 'range_end', kind: 'bytes' },
];

/** AuthRoleGetResponse. */
export const roleGetShape: Shape = [
  header,
  { name: 'perm', kind: list(message(() => permissionShape)) },
];

/** AuthUserGetResponse and AuthRoleListResponse. */
export const rolesShape: Shape = [header, { name: 'roles', kind: list('string') }];

/** AuthUserListResponse. */
export const userListShape: Shape = [header, { name: 'users', kind: list('string') }];

/** AuthStatusResponse (etcdctl 3.5's `auth status -w json`). */
export const authStatusShape: Shape = [
  header,
  { name: 'enabled', kind: 'bool' },
  { name: 'authRevision', kind: 'int' },
];
