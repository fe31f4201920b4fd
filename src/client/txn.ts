/**
 * Txn, fluently: `client.txn().if(...compares).then(...ops).else(...ops).commit()`. Compares and
 * operations are plain values built by `compare` and `op`, so recipes can assemble them as data.
 *
 * ```ts
 * const { succeeded } = await client.txn()
 *   .if(compare.createRevision('lock/a', '==', 0n))
 *   .then(op.put('lock/a', 'me', { lease }))
 *   .else(op.get('lock/a'))
 *   .commit();
 * ```
 */

import { invalidArgument } from './errors.js';
import {
  deleteRequestOf, deleteResultOf, headerOf, keyRangeOf, putRequestOf, putResultOf, rangeRequestOf,
  rangeResultOf, toBuffer, type Bytes, type DeleteOptions, type DeleteResult, type KeyRange,
  type PutOptions, type PutResult, type RangeOptions, type RangeResult, type ResponseHeader,
  type WireHeader,
} from './kv-types.js';
import type { CallOptions, Transport } from './transport.js';

/** How a compare relates the key's field to the operand. */
export type CompareOperator = '==' | '!=' | '>' | '<';

/** One condition of a Txn (etcdserverpb.Compare). */
export interface Compare {
  readonly wire: object;
}

/** One operation of a Txn branch (etcdserverpb.RequestOp). */
export interface Op {
  readonly wire: object;
}

const results: Readonly<Record<CompareOperator, string>> = {
  '==': 'EQUAL', '!=': 'NOT_EQUAL', '>': 'GREATER', '<': 'LESS',
};

function compareOf(
  target: 'VERSION' | 'CREATE' | 'MOD' | 'VALUE' | 'LEASE', field: string, operand: unknown,
  key: Bytes, operator: CompareOperator, range?: KeyRange,
): Compare {
  const result = results[operator];
  if (result === undefined) throw invalidArgument(`compare operator must be one of ==, !=, >, <`);
  return { wire: { ...keyRangeOf(key, range), result, target, [field]: operand } };
}

function revisionOperand(name: string, value: bigint): string {
  if (typeof value !== 'bigint' || value < 0n) throw invalidArgument(`${name} must be a non-negative bigint`);
  return value.toString();
}

/** Builders of Txn conditions; each may cover a range of keys (all must satisfy it). */
export const compare = {
  /** The key's version (0 when absent). */
  version: (key: Bytes, operator: CompareOperator, version: bigint, range?: KeyRange): Compare =>
    compareOf('VERSION', 'version', revisionOperand('version', version), key, operator, range),
  /** The key's create revision (0 when absent). */
  createRevision: (key: Bytes, operator: CompareOperator, revision: bigint, range?: KeyRange): Compare =>
    compareOf('CREATE', 'create_revision', revisionOperand('createRevision', revision), key, operator, range),
  /** The key's last modification revision. */
  modRevision: (key: Bytes, operator: CompareOperator, revision: bigint, range?: KeyRange): Compare =>
    compareOf('MOD', 'mod_revision', revisionOperand('modRevision', revision), key, operator, range),
  /** The key's value, compared bytewise. */
  value: (key: Bytes, operator: CompareOperator, value: Bytes, range?: KeyRange): Compare =>
    compareOf('VALUE', 'value', toBuffer(value), key, operator, range),
  /** The key's lease ID (0 when none). */
  lease: (key: Bytes, operator: CompareOperator, lease: bigint, range?: KeyRange): Compare =>
    compareOf('LEASE', 'lease', revisionOperand('lease', lease), key, operator, range),
} as const;

/** Builders of Txn operations. */
export const op = {
  get: (key: Bytes, options?: RangeOptions): Op => ({ wire: { request_range: rangeRequestOf(key, options) } }),
  put: (key: Bytes, value: Bytes, options?: PutOptions): Op =>
    ({ wire: { request_put: putRequestOf(key, value, options) } }),
  delete: (key: Bytes, options?: DeleteOptions): Op =>
    ({ wire: { request_delete_range: deleteRequestOf(key, options) } }),
  /** A nested transaction (etcd ≥ 3.3). */
  txn: (compares: readonly Compare[], success: readonly Op[], failure: readonly Op[] = []): Op =>
    ({ wire: { request_txn: txnRequestOf(compares, success, failure) } }),
} as const;

/** One operation's answer, tagged by its kind. */
export type OpResult =
  | { readonly kind: 'range'; readonly range: RangeResult }
  | { readonly kind: 'put'; readonly put: PutResult }
  | { readonly kind: 'delete'; readonly delete: DeleteResult }
  | { readonly kind: 'txn'; readonly txn: TxnResult };

/** The answer to a Txn. */
export interface TxnResult {
  readonly header: ResponseHeader;
  /** Whether every compare held (the `then` branch ran). */
  readonly succeeded: boolean;
  /** The answers of the branch that ran, in order. */
  readonly responses: readonly OpResult[];
}

/** The wire TxnRequest. */
export function txnRequestOf(compares: readonly Compare[], success: readonly Op[], failure: readonly Op[]): object {
  return { compare: compares.map((each) => each.wire), success: success.map((each) => each.wire), failure: failure.map((each) => each.wire) };
}

interface WireResponseOp {
  readonly response: 'response_range' | 'response_put' | 'response_delete_range' | 'response_txn';
  readonly [field: string]: unknown;
}

/** Decodes a TxnResponse. */
export function txnResultOf(wire: { header: WireHeader; succeeded: boolean; responses: WireResponseOp[] }): TxnResult {
  return {
    header: headerOf(wire.header),
    succeeded: wire.succeeded,
    responses: wire.responses.map((each): OpResult => {
      const body = each[each.response] as never;
      switch (each.response) {
        case 'response_range': return { kind: 'range', range: rangeResultOf(body) };
        case 'response_put': return { kind: 'put', put: putResultOf(body) };
        case 'response_delete_range': return { kind: 'delete', delete: deleteResultOf(body) };
        case 'response_txn': return { kind: 'txn', txn: txnResultOf(body) };
      }
    }),
  };
}

/** A Txn being built; `commit()` sends it. Each clause may be given once. */
export class TxnBuilder {
  readonly #transport: Transport;
  #compares: readonly Compare[] = [];
  #success: readonly Op[] = [];
  #failure: readonly Op[] = [];
  readonly #given = new Set<'if' | 'then' | 'else'>();

  constructor(transport: Transport) {
    this.#transport = transport;
  }

  /** Conditions that must all hold for `then` to run. */
  if(...compares: Compare[]): this {
    this.#once('if');
    this.#compares = compares;
    return this;
  }

  /** Operations run when every condition holds. */
  then(...ops: Op[]): this {
    this.#once('then');
    this.#success = ops;
    return this;
  }

  /** Operations run otherwise. */
  else(...ops: Op[]): this {
    this.#once('else');
    this.#failure = ops;
    return this;
  }

  /**
   * Sends the transaction. One that writes is never resent once its outcome is unknown, unless
   * the caller vouches with `idempotent: true` that applying it twice equals applying it once
   * (a create-if-absent guarded by `createRevision == 0`, a delete guarded by a create revision),
   * as the lock recipes do; then it is retried like a read.
   */
  async commit(options: CallOptions & { readonly idempotent?: boolean } = {}): Promise<TxnResult> {
    const request = txnRequestOf(this.#compares, this.#success, this.#failure);
    const readOnly = [...this.#success, ...this.#failure].every((each) => 'request_range' in each.wire);
    const wire = await this.#transport.unary<Parameters<typeof txnResultOf>[0]>(
      { service: 'KV', method: 'Txn', request, idempotent: readOnly || options.idempotent === true }, options,
    );
    return txnResultOf(wire);
  }

  #once(clause: 'if' | 'then' | 'else'): void {
    if (this.#given.has(clause)) throw invalidArgument(`txn: ${clause} given twice`);
    this.#given.add(clause);
  }
}
