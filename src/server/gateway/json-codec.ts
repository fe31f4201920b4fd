/**
 * etcd's gateway JSON (grpc-gateway's `JSONPb{OrigName: true}`, i.e. golang/protobuf's jsonpb)
 * converted to and from the message objects Synod's gRPC stubs use (grpc/proto.ts
 * `protoLoaderOptions`: proto field names, int64 as decimal strings, enums as names, bytes as
 * Buffers). The conversion is driven by the message descriptors proto-loader already holds, so it
 * covers every message of the loaded protos without a second copy of the schema.
 *
 * Output, as jsonpb writes it: proto field names (`range_end`, `prev_kv`, `TTL`, `memberID`) in
 * declaration order; bytes as standard base64; 64-bit integers as strings, 32-bit ones as numbers;
 * enums by name; fields holding their zero value (0, "", false, empty bytes, empty lists, the enum
 * value numbered 0 such as PUT or NONE) omitted; a set message always written, even when empty.
 *
 * Input, as jsonpb reads it: either the proto name or the lowerCamelCase JSON name (`rangeEnd`);
 * unknown fields ignored (grpc-gateway v1 allows them); `null` meaning unset; 64-bit integers as
 * strings or numbers; enums by name or number; bytes in standard or URL-safe base64, padded or
 * not. Anything else is an error worded like jsonpb's, which the gateway answers with HTTP 400.
 */

import type { PackageDefinition } from '@grpc/proto-loader';
import { assert } from '../../base/index.js';

/**
 * How deep messages may nest in one request (a Txn inside a Txn counts three: TxnRequest,
 * RequestOp, TxnRequest). Bounds the converter's recursion; etcd's own decoder stops at 10,000,
 * far beyond any real request and beyond what a JavaScript stack takes safely.
 */
export const messageNestingDepthMax = 256;

type ScalarKind = 'int64' | 'uint64' | 'int32' | 'uint32' | 'float' | 'bool' | 'string' | 'bytes';
type FieldKind = ScalarKind | 'enum' | 'message';

interface FieldSchema {
  /** The proto name, used by the stubs and written on output. */
  readonly name: string;
  readonly kind: FieldKind;
  readonly repeated: boolean;
  /** The full name of the field's message or enum type; '' for scalars. */
  readonly typeName: string;
}

interface MessageSchema {
  readonly fullName: string;
  /** The Go type name jsonpb names in its errors (`etcdserverpb.RangeRequest`). */
  readonly goName: string;
  /** In declaration order, which is jsonpb's output order. */
  readonly fields: readonly FieldSchema[];
  /** By proto name and by JSON name. */
  readonly fieldsByJsonKey: ReadonlyMap<string, FieldSchema>;
}

interface EnumSchema {
  readonly goName: string;
  readonly nameByNumber: ReadonlyMap<number, string>;
  readonly numberByName: ReadonlyMap<string, number>;
}

/** The parts of a protobuf DescriptorProto (as proto-loader returns it) read here. */
interface FieldDescriptor {
  readonly name: string;
  readonly label: string;
  readonly type: string;
  readonly typeName: string;
}

interface EnumDescriptor {
  readonly name: string;
  readonly value: readonly { readonly name: string; readonly number: number }[];
}

interface MessageDescriptor {
  readonly field: readonly FieldDescriptor[];
  readonly nestedType: readonly unknown[];
  readonly enumType: readonly EnumDescriptor[];
}

const scalarKinds: Readonly<Record<string, ScalarKind>> = Object.freeze({
  TYPE_INT64: 'int64', TYPE_SINT64: 'int64', TYPE_SFIXED64: 'int64',
  TYPE_UINT64: 'uint64', TYPE_FIXED64: 'uint64',
  TYPE_INT32: 'int32', TYPE_SINT32: 'int32', TYPE_SFIXED32: 'int32',
  TYPE_UINT32: 'uint32', TYPE_FIXED32: 'uint32',
  TYPE_DOUBLE: 'float', TYPE_FLOAT: 'float',
  TYPE_BOOL: 'bool', TYPE_STRING: 'string', TYPE_BYTES: 'bytes',
});

const goTypeOfScalar: Readonly<Record<ScalarKind, string>> = Object.freeze({
  int64: 'int64', uint64: 'uint64', int32: 'int32', uint32: 'uint32', float: 'float64',
  bool: 'bool', string: 'string', bytes: '[]uint8',
});

const int64Min = -(2n ** 63n);
const int64Max = 2n ** 63n - 1n;
const uint64Max = 2n ** 64n - 1n;
const int32Min = -(2n ** 31n);
const int32Max = 2n ** 31n - 1n;
const uint32Max = 2n ** 32n - 1n;

/** A JSON object as written on output. */
export type JsonObject = { [field: string]: JsonValue };
/** A JSON value as written on output. */
export type JsonValue = string | number | boolean | JsonObject | JsonValue[];

/** A request decoded for a stub, or why the JSON does not fit the message. */
export type DecodedRequest =
  | { readonly ok: true; readonly message: Record<string, unknown> }
  | { readonly ok: false; readonly message: string };

/** Thrown inside the decoder only; `decodeRequest` turns it into a result. */
class JsonInputMismatch extends Error {}

/** Converts between etcd's gateway JSON and stub messages, for every message of one proto load. */
export class GatewayJsonCodec {
  readonly #messages: ReadonlyMap<string, MessageSchema>;
  readonly #enums: ReadonlyMap<string, EnumSchema>;

  private constructor(messages: Map<string, MessageSchema>, enums: Map<string, EnumSchema>) {
    this.#messages = messages;
    this.#enums = enums;
  }

  /** Reads the descriptors of `packageDefinition` (from `loadEtcdProto`). */
  static of(packageDefinition: PackageDefinition): GatewayJsonCodec {
    const descriptors = new Map<string, MessageDescriptor>();
    const enums = new Map<string, EnumSchema>();
    for (const [fullName, definition] of Object.entries(packageDefinition)) {
      if (!('format' in definition)) continue;
      if (definition.format === 'Protocol Buffer 3 EnumDescriptorProto') {
        enums.set(fullName, enumSchemaOf(fullName, definition.type as EnumDescriptor));
      } else {
        assert(definition.format === 'Protocol Buffer 3 DescriptorProto', `format of ${fullName}`);
        const descriptor = definition.type as MessageDescriptor;
        // etcd's protos nest enums in messages but never messages (map fields would be such).
        assert(descriptor.nestedType.length === 0, `${fullName} nests no message types`);
        descriptors.set(fullName, descriptor);
        for (const nested of descriptor.enumType) {
          const enumName = `${fullName}.${nested.name}`;
          enums.set(enumName, enumSchemaOf(enumName, nested));
        }
      }
    }
    const known = new Set([...descriptors.keys(), ...enums.keys()]);
    const messages = new Map<string, MessageSchema>();
    for (const [fullName, descriptor] of descriptors) {
      messages.set(fullName, messageSchemaOf(fullName, descriptor, known));
    }
    for (const message of messages.values()) {
      for (const field of message.fields) {
        if (field.kind === 'message') assert(messages.has(field.typeName), field.typeName);
        if (field.kind === 'enum') assert(enums.has(field.typeName), field.typeName);
      }
    }
    return new GatewayJsonCodec(messages, enums);
  }

  /** Whether `typeName` (e.g. `etcdserverpb.RangeRequest`) is a known message. */
  hasMessage(typeName: string): boolean {
    return this.#messages.has(typeName);
  }

  /** Converts parsed request JSON to the stub message of type `typeName`. */
  decodeRequest(typeName: string, json: unknown): DecodedRequest {
    try {
      return { ok: true, message: this.#decodeMessage(this.#message(typeName), json, 1) };
    } catch (error) {
      if (!(error instanceof JsonInputMismatch)) throw error;
      return { ok: false, message: error.message };
    }
  }

  /** Converts a stub message of type `typeName` (as a stub decoded it) to etcd's JSON. */
  encodeResponse(typeName: string, message: object): JsonObject {
    return this.#encodeMessage(this.#message(typeName), message as Record<string, unknown>);
  }

  #message(typeName: string): MessageSchema {
    const schema = this.#messages.get(typeName);
    assert(schema !== undefined, `message type ${typeName} is loaded`);
    return schema;
  }

  #enum(typeName: string): EnumSchema {
    const schema = this.#enums.get(typeName);
    assert(schema !== undefined, `enum type ${typeName} is loaded`);
    return schema;
  }

  #decodeMessage(schema: MessageSchema, json: unknown, depth: number): Record<string, unknown> {
    if (depth > messageNestingDepthMax) {
      throw new JsonInputMismatch(`messages nest deeper than ${messageNestingDepthMax} levels`);
    }
    const message: Record<string, unknown> = {};
    if (json === null) return message;
    if (typeof json !== 'object' || Array.isArray(json)) throw mismatch(json, schema.goName);
    for (const [key, value] of Object.entries(json)) {
      const field = schema.fieldsByJsonKey.get(key);
      // Unknown fields are ignored, as grpc-gateway v1 does; null leaves a field unset.
      if (field === undefined || value === null) continue;
      message[field.name] = field.repeated
        ? this.#decodeRepeated(field, value, depth)
        : this.#decodeSingle(field, value, depth);
    }
    return message;
  }

  #decodeRepeated(field: FieldSchema, json: unknown, depth: number): unknown[] {
    if (!Array.isArray(json)) throw mismatch(json, `[]${this.#goTypeOf(field)}`);
    return json.map((element: unknown) => this.#decodeSingle(field, element, depth));
  }

  #decodeSingle(field: FieldSchema, json: unknown, depth: number): unknown {
    switch (field.kind) {
      case 'message':
        return this.#decodeMessage(this.#message(field.typeName), json, depth + 1);
      case 'enum':
        return decodeEnum(this.#enum(field.typeName), json);
      default:
        return decodeScalar(field.kind, json);
    }
  }

  #goTypeOf(field: FieldSchema): string {
    if (field.kind === 'message') return `*${this.#message(field.typeName).goName}`;
    if (field.kind === 'enum') return this.#enum(field.typeName).goName;
    return goTypeOfScalar[field.kind];
  }

  #encodeMessage(schema: MessageSchema, message: Record<string, unknown>): JsonObject {
    const json: JsonObject = {};
    for (const field of schema.fields) {
      const value = message[field.name];
      if (value === null || value === undefined) continue;
      if (field.repeated) {
        assert(Array.isArray(value), `${schema.fullName}.${field.name} is a list`);
        if (value.length === 0) continue;
        json[field.name] = value.map((element: unknown) => this.#encodeSingle(field, element));
      } else if (!this.#isZero(field, value)) {
        json[field.name] = this.#encodeSingle(field, value);
      }
    }
    return json;
  }

  #encodeSingle(field: FieldSchema, value: unknown): JsonValue {
    switch (field.kind) {
      case 'message':
        assert(typeof value === 'object' && value !== null, `${field.name} is a message`);
        return this.#encodeMessage(this.#message(field.typeName), value as Record<string, unknown>);
      case 'enum':
        assert(typeof value === 'string' || typeof value === 'number', `${field.name} is an enum`);
        if (typeof value === 'string') return value;
        return this.#enum(field.typeName).nameByNumber.get(value) ?? value;
      default:
        return encodeScalar(field.kind, value);
    }
  }

  #isZero(field: FieldSchema, value: unknown): boolean {
    switch (field.kind) {
      case 'message':
        return false;
      case 'enum':
        return value === 0 || this.#enum(field.typeName).numberByName.get(value as string) === 0;
      case 'bytes':
        return (value as Uint8Array).length === 0;
      case 'int64':
      case 'uint64':
        return value === '0' || value === 0;
      default:
        return value === 0 || value === '' || value === false;
    }
  }
}

function enumSchemaOf(fullName: string, descriptor: EnumDescriptor): EnumSchema {
  assert(descriptor.value.some((value) => value.number === 0), `${fullName} has a zero value`);
  return {
    goName: goNameOf(fullName),
    nameByNumber: new Map(descriptor.value.map((value) => [value.number, value.name])),
    numberByName: new Map(descriptor.value.map((value) => [value.name, value.number])),
  };
}

function messageSchemaOf(
  fullName: string, descriptor: MessageDescriptor, known: ReadonlySet<string>,
): MessageSchema {
  const fields: FieldSchema[] = [];
  const fieldsByJsonKey = new Map<string, FieldSchema>();
  for (const field of descriptor.field) {
    const repeated = field.label === 'LABEL_REPEATED';
    let schema: FieldSchema;
    if (field.type === 'TYPE_MESSAGE' || field.type === 'TYPE_ENUM') {
      const kind = field.type === 'TYPE_MESSAGE' ? 'message' : 'enum';
      const typeName = resolve(fullName, field.typeName, known);
      schema = { name: field.name, kind, repeated, typeName };
    } else {
      const kind = scalarKinds[field.type];
      assert(kind !== undefined, `${fullName}.${field.name}: type ${field.type} is supported`);
      schema = { name: field.name, kind, repeated, typeName: '' };
    }
    fields.push(schema);
    fieldsByJsonKey.set(field.name, schema);
    fieldsByJsonKey.set(jsonNameOf(field.name), schema);
  }
  return { fullName, goName: goNameOf(fullName), fields, fieldsByJsonKey };
}

/** Resolves a type name as protoc does: innermost scope first (`SortOrder` in RangeRequest). */
function resolve(scope: string, typeName: string, known: ReadonlySet<string>): string {
  if (typeName.startsWith('.')) return typeName.slice(1);
  const parts = scope.split('.');
  for (let length = parts.length; length >= 0; length--) {
    const candidate = [...parts.slice(0, length), typeName].join('.');
    if (known.has(candidate)) return candidate;
  }
  assert(false, `type ${typeName} referenced from ${scope} is loaded`);
}

/** protoc's default JSON name: underscores dropped, the letter after each capitalised. */
export function jsonNameOf(protoName: string): string {
  return protoName.replace(/_([a-z0-9])/g, (_match, letter: string) => letter.toUpperCase())
    .replace(/_/g, '');
}

/**
 * Go's type name for a proto type: the package, then nested names joined by `_`. Synod's protos
 * have lower-case packages and capitalised types, which tells them apart.
 */
function goNameOf(fullName: string): string {
  const parts = fullName.split('.');
  const firstType = parts.findIndex((part) => /^[A-Z]/.test(part));
  assert(firstType > 0, `${fullName} has a package and a type`);
  return `${parts[firstType - 1]}.${parts.slice(firstType).join('_')}`;
}

function jsonTypeOf(json: unknown): string {
  if (Array.isArray(json)) return 'array';
  if (json === null) return 'null';
  if (typeof json === 'boolean') return 'bool';
  return typeof json;
}

function mismatch(json: unknown, goType: string): JsonInputMismatch {
  const jsonType = jsonTypeOf(json);
  const message = `json: cannot unmarshal ${jsonType} into Go value of type ${goType}`;
  return new JsonInputMismatch(message);
}

function decodeEnum(schema: EnumSchema, json: unknown): string | number {
  if (typeof json === 'string') {
    if (schema.numberByName.has(json)) return json;
    throw new JsonInputMismatch(`unknown value ${JSON.stringify(json)} for enum ${schema.goName}`);
  }
  if (typeof json === 'number' && Number.isInteger(json) && Math.abs(json) < 2 ** 31) {
    return schema.nameByNumber.get(json) ?? json;
  }
  throw mismatch(json, schema.goName);
}

function decodeScalar(kind: ScalarKind, json: unknown): unknown {
  switch (kind) {
    case 'int64':
      return decodeInteger(json, { min: int64Min, max: int64Max, goType: 'int64' }).toString();
    case 'uint64':
      return decodeInteger(json, { min: 0n, max: uint64Max, goType: 'uint64' }).toString();
    case 'int32':
      return Number(decodeInteger(json, { min: int32Min, max: int32Max, goType: 'int32' }));
    case 'uint32':
      return Number(decodeInteger(json, { min: 0n, max: uint32Max, goType: 'uint32' }));
    case 'float':
      return decodeFloat(json);
    case 'bool':
      if (typeof json !== 'boolean') throw mismatch(json, 'bool');
      return json;
    case 'string':
      if (typeof json !== 'string') throw mismatch(json, 'string');
      return json;
    case 'bytes':
      if (typeof json !== 'string') throw mismatch(json, '[]uint8');
      return decodeBase64(json);
  }
}

function decodeInteger(
  json: unknown, range: { min: bigint; max: bigint; goType: string },
): bigint {
  let value: bigint;
  if (typeof json === 'number' && Number.isInteger(json)) {
    value = BigInt(json);
  } else if (typeof json === 'string' && /^-?[0-9]{1,20}$/.test(json)) {
    value = BigInt(json);
  } else if (typeof json === 'string' || typeof json === 'number') {
    throw new JsonInputMismatch(`invalid value ${JSON.stringify(json)} for type ${range.goType}`);
  } else {
    throw mismatch(json, range.goType);
  }
  if (value < range.min || value > range.max) {
    throw new JsonInputMismatch(`value ${json} overflows ${range.goType}`);
  }
  return value;
}

function decodeFloat(json: unknown): number {
  if (typeof json === 'number') return json;
  if (json === 'NaN') return Number.NaN;
  if (json === 'Infinity') return Number.POSITIVE_INFINITY;
  if (json === '-Infinity') return Number.NEGATIVE_INFINITY;
  if (typeof json === 'string' && json.trim() !== '' && Number.isFinite(Number(json))) {
    return Number(json);
  }
  throw mismatch(json, 'float64');
}

const base64Alphabet = /[^A-Za-z0-9+/_-]/;

/**
 * Standard or URL-safe base64, with or without padding (golang/protobuf's jsonpb tries both
 * alphabets); line breaks are skipped as Go's decoder skips them. Node's decoder would silently
 * drop invalid characters, so they are found first, and reported at their byte offset as Go does.
 * Throws the decoder's internal mismatch error (an Error with that message) on bad input.
 */
export function decodeBase64(text: string): Buffer {
  const compact = text.replace(/[\r\n]/g, '');
  const body = compact.replace(/={1,2}$/, '');
  const invalid = base64Alphabet.exec(body);
  if (invalid !== null) {
    throw new JsonInputMismatch(`illegal base64 data at input byte ${invalid.index}`);
  }
  const padded = body.length !== compact.length;
  if (body.length % 4 === 1 || (padded && compact.length % 4 !== 0)) {
    throw new JsonInputMismatch(`illegal base64 data at input byte ${body.length}`);
  }
  return Buffer.from(body, 'base64');
}

function encodeScalar(kind: ScalarKind, value: unknown): JsonValue {
  switch (kind) {
    case 'int64':
    case 'uint64':
      assert(typeof value === 'string' || typeof value === 'number', 'int64 arrives as a string');
      return String(value);
    case 'bytes':
      assert(value instanceof Uint8Array, 'bytes arrive as Buffers');
      return Buffer.from(value.buffer, value.byteOffset, value.length).toString('base64');
    case 'float':
      assert(typeof value === 'number', 'floats arrive as numbers');
      return Number.isFinite(value) ? value : String(value);
    default:
      assert(['number', 'string', 'boolean'].includes(typeof value), `${kind} arrives as a scalar`);
      return value as number | string | boolean;
  }
}
