/**
 * The ID service's core, below both protocols: validate a request, find the tag's generator,
 * draw the ids, turn them into strings, count the outcome. HTTP (http-api.ts) and gRPC
 * (grpc-api.ts) only translate; so a tag, a bound or a failure means the same on both, and one
 * `requestsInFlightMax` bounds them together.
 *
 * Ids leave the service as strings: a numeric id as its decimal text (a JSON number loses
 * precision above 2^53, and Snowflake ids are 63-bit), a UUID as its canonical text.
 */

import { SynodError, assert, isSynodError } from '../../../base/index.js';
import { idBatchMax } from '../id-generator.js';
import { segmentWaitersMaxDefault } from '../segment.js';
import { IdServiceMetrics, type RequestMode, type RequestProtocol } from './id-metrics.js';
import {
  IdRequestError, failureOf, requestStatuses, tagUnknownCode, type RequestFailure,
  type RequestOutcome,
} from './request-status.js';
import {
  batchCountMaxDefault, parseIdText, validateCount, validateTag, type IdsRequest,
} from './requests.js';
import type { IdGeneratorSource, ServedGenerator } from './tag-registry.js';

/** The parts of a Snowflake id, as its layout's decoder reads them. */
export interface DecodedId {
  /** Milliseconds since the Unix epoch (the layout's epoch already added). */
  readonly timestampMs: number;
  readonly datacenterId: number;
  readonly workerId: number;
  /** The sequence number within the millisecond. */
  readonly sequence: number;
}

/**
 * Reads an id back into its parts. Throws SynodError SYNOD_INVALID_ARGUMENT for an id its layout
 * cannot have produced (e.g. wider than the layout's bits).
 */
export interface IdDecoder {
  decode(id: bigint): DecodedId;
}

/** A monotonic clock in milliseconds; request latencies are read from it. */
export interface ServiceClock {
  nowMs(): number;
}

/** The logger the service reports unexpected failures to (a pino logger fits). */
export interface ServiceLogger {
  error(object: object, message: string): void;
}

/** Options of an IdService. */
export interface IdServiceOptions {
  /** Generators by tag; an unknown tag is answered 404 / NOT_FOUND. The caller owns it. */
  readonly source: IdGeneratorSource;
  /** Decodes ids for `/v1/decode` and `Decode`; without it they answer 404 / UNIMPLEMENTED. */
  readonly decoder?: IdDecoder;
  /** The largest `count` of one request, in [1, idBatchMax]; default 1 000. */
  readonly batchCountMax?: number;
  /** Requests (HTTP and gRPC together) waiting for an answer at once; default 1 024. */
  readonly requestsInFlightMax?: number;
  /** Tags with metric series of their own; default 10 000. */
  readonly tagSeriesMax?: number;
  /** Why the service cannot serve now (e.g. its Synod cluster has no leader), or null. */
  readonly readiness?: () => Promise<string | null>;
  /** Default `performance.now()`. */
  readonly clock?: ServiceClock;
  readonly logger?: ServiceLogger;
}

/** The default of `requestsInFlightMax`. */
export const requestsInFlightMaxDefault = 1_024;
/**
 * The largest `requestsInFlightMax`: SegmentGenerator's default waiter bound, so a segment tag
 * with default options never refuses a request the service admitted.
 */
export const requestsInFlightMaxLimit = segmentWaitersMaxDefault;

/** The validated, defaulted, frozen configuration. */
interface Config {
  readonly batchCountMax: number;
  readonly requestsInFlightMax: number;
}

const performanceClock: ServiceClock = { nowMs: () => performance.now() };

function resolveConfig(options: IdServiceOptions): Config {
  const config: Config = Object.freeze({
    batchCountMax: options.batchCountMax ?? batchCountMaxDefault,
    requestsInFlightMax: options.requestsInFlightMax ?? requestsInFlightMaxDefault,
  });
  if (!Number.isSafeInteger(config.batchCountMax) || config.batchCountMax < 1
    || config.batchCountMax > idBatchMax) {
    throw new SynodError('SYNOD_INVALID_CONFIG', `batchCountMax must be in [1, ${idBatchMax}]`);
  }
  if (!Number.isSafeInteger(config.requestsInFlightMax) || config.requestsInFlightMax < 1
    || config.requestsInFlightMax > requestsInFlightMaxLimit) {
    throw new SynodError('SYNOD_INVALID_CONFIG',
      `requestsInFlightMax must be in [1, ${requestsInFlightMaxLimit}]`);
  }
  return config;
}

/** Serves ids and decodes for both protocols; see the file comment. */
export class IdService {
  readonly metrics: IdServiceMetrics;
  readonly batchCountMax: number;
  readonly #options: IdServiceOptions;
  readonly #config: Config;
  readonly #clock: ServiceClock;
  #requestsInFlight = 0;
  #readinessCheck: Promise<string | null> | null = null;
  #closed = false;

  constructor(options: IdServiceOptions) {
    this.#config = resolveConfig(options);
    this.#options = options;
    this.#clock = options.clock ?? performanceClock;
    this.batchCountMax = this.#config.batchCountMax;
    this.metrics = new IdServiceMetrics({
      source: options.source,
      requestsInFlight: () => this.#requestsInFlight,
      tagSeriesMax: options.tagSeriesMax,
    });
  }

  /** Requests admitted and not yet answered. */
  get requestsInFlight(): number {
    return this.#requestsInFlight;
  }

  /**
   * The ids of one request: one for the single mode (`count` null), else `count`, in the order
   * the generator made them. Rejects with a SynodError a protocol maps through `failureOf`.
   */
  async issue(request: IdsRequest, protocol: RequestProtocol): Promise<string[]> {
    const startedMs = this.#clock.nowMs();
    const mode = request.count === null ? 'single' : 'batch';
    let servedTag: string | null = null;
    let outcome: RequestOutcome = 'internal';
    let issued = 0;
    try {
      validateTag(request.tag);
      if (request.count !== null) validateCount(request.count, this.#config.batchCountMax);
      this.#admit();
      try {
        const generator = await this.#generatorOf(request.tag);
        servedTag = request.tag;
        const ids = await draw(generator, request.count);
        issued = ids.length;
        outcome = 'ok';
        return ids;
      } finally {
        this.#requestsInFlight -= 1;
      }
    } catch (error) {
      outcome = this.#outcomeOf(error);
      throw error;
    } finally {
      const durationSeconds = (this.#clock.nowMs() - startedMs) / 1_000;
      this.metrics.recordIds({ tag: servedTag, protocol, mode, outcome, issued, durationSeconds });
    }
  }

  /** The parts of the id written as `text`; throws a SynodError as `issue` rejects. */
  decode(text: string, protocol: RequestProtocol): DecodedId {
    try {
      const decoder = this.#options.decoder;
      if (decoder === undefined) {
        throw new IdRequestError('SYNOD_INVALID_ARGUMENT', 'this ID service decodes no ids',
          requestStatuses.unimplemented);
      }
      if (this.#closed) throw closingError();
      const parts = decoder.decode(parseIdText(text));
      for (const value of Object.values(parts)) {
        assert(Number.isSafeInteger(value) && value >= 0, 'decode: parts are whole numbers');
      }
      this.metrics.recordDecode(protocol, 'ok');
      return parts;
    } catch (error) {
      this.metrics.recordDecode(protocol, this.#outcomeOf(error));
      throw error;
    }
  }

  /**
   * Counts a request its protocol could not parse (a bad path segment or query) and returns
   * what to answer, so such refusals show in the metrics like those the service makes itself.
   */
  refuse(
    error: unknown,
    request: { readonly protocol: RequestProtocol; readonly mode: RequestMode | 'decode' },
  ): RequestFailure {
    const failure = failureOf(error);
    const { protocol, mode } = request;
    if (mode === 'decode') {
      this.metrics.recordDecode(protocol, failure.status.outcome);
    } else {
      const outcome = failure.status.outcome;
      this.metrics.recordIds({ tag: null, protocol, mode, outcome, issued: 0, durationSeconds: 0 });
    }
    return failure;
  }

  /**
   * Why the service is not ready, or null when it is. Concurrent probes share one check, so a
   * hung dependency does not pile up checks.
   */
  readyFailure(): Promise<string | null> {
    if (this.#closed) return Promise.resolve('the service is closing');
    const readiness = this.#options.readiness;
    if (readiness === undefined) return Promise.resolve(null);
    if (this.#readinessCheck === null) {
      const check = Promise.resolve().then(readiness).catch((error: unknown) =>
        (error instanceof Error ? error.message : String(error)));
      this.#readinessCheck = check.finally(() => {
        this.#readinessCheck = null;
      });
    }
    return this.#readinessCheck;
  }

  /** Refuses every later request (503, SYNOD_ID_GENERATOR_CLOSED); the source stays open. */
  close(): void {
    this.#closed = true;
  }

  /** Counts the request in, or refuses it: closing, or `requestsInFlightMax` reached. */
  #admit(): void {
    if (this.#closed) throw closingError();
    if (this.#requestsInFlight >= this.#config.requestsInFlightMax) {
      throw new IdRequestError('SYNOD_ID_WAITERS_EXHAUSTED',
        `${this.#config.requestsInFlightMax} requests already wait for ids`,
        requestStatuses.tooManyRequests);
    }
    this.#requestsInFlight += 1;
    assert(this.#requestsInFlight <= this.#config.requestsInFlightMax, 'admit: within bound');
  }

  async #generatorOf(tag: string): Promise<ServedGenerator> {
    const found = this.#options.source.generatorFor(tag);
    const generator = found instanceof Promise ? await found : found;
    if (generator === null) {
      throw new IdRequestError(tagUnknownCode, `tag ${tag} is not served here`,
        requestStatuses.notFound);
    }
    return generator;
  }

  /** The outcome label of `error`; logs what no client should have met. */
  #outcomeOf(error: unknown): RequestOutcome {
    const failure = failureOf(error);
    if (!isSynodError(error)) this.#options.logger?.error({ err: error }, 'id request failed');
    return failure.status.outcome;
  }
}

function closingError(): SynodError {
  return new SynodError('SYNOD_ID_GENERATOR_CLOSED', 'the ID service is closing');
}

/** `count` ids (one when null) from `generator`, as strings. */
async function draw(generator: ServedGenerator, count: number | null): Promise<string[]> {
  const wanted = count ?? 1;
  const ids: (bigint | string)[] = count === null
    ? [await generator.next()]
    : await generator.nextBatch(count);
  assert(ids.length === wanted, 'draw: the generator gave as many ids as asked');
  return ids.map(textOf);
}

function textOf(id: bigint | string): string {
  if (typeof id === 'bigint') {
    assert(id >= 0n, 'an id is not negative');
    return id.toString();
  }
  assert(typeof id === 'string' && id.length > 0, 'a string id is not empty');
  return id;
}
