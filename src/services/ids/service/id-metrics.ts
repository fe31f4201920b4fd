/**
 * The ID service's Prometheus metrics, per tag. Written as text by hand with the member's
 * formatter (server/client-port/metrics.ts), for the same reason: prom-client is not a
 * dependency, and the segment figures are read from the generators when scraped, so a registry
 * would hold nothing but what this file already counts.
 *
 * Cardinality is bounded: a tag gets its own series only once a generator answered for it (the
 * source bounds those, `TagRegistry.createdTagsMax`) and at most `tagSeriesMax` times; requests
 * for a tag that is invalid, unknown, or past the bound count under `tag=""`.
 */

import { Histogram, assert, exponentialBuckets } from '../../../base/index.js';
import { formatFamily, type Family, type Sample } from '../../../server/client-port/metrics.js';
import { SegmentGenerator } from '../segment.js';
import type { RequestOutcome } from './request-status.js';
import type { IdGeneratorSource } from './tag-registry.js';

export { metricsContentType } from '../../../server/client-port/metrics.js';

/** Which API a request came in on. */
export type RequestProtocol = 'http' | 'grpc';
/** `single`: one id (`GET /v1/ids/{tag}`, or gRPC count 0); `batch`: a list of `count`. */
export type RequestMode = 'single' | 'batch';

/**
 * Latency bounds: 50 µs doubling to about 1.6 s. A request answered from a segment in memory
 * takes tens of microseconds; one that waits for a store round trip, milliseconds; beyond a
 * second it waited out retries.
 */
export const requestBucketBoundsSeconds: readonly number[] = Object.freeze(
  exponentialBuckets(0.00005, 2, 16));
/** The default of `tagSeriesMax`. */
export const tagSeriesMaxDefault = 10_000;

/** What one finished request for ids contributes. */
export interface IdsRequestRecord {
  /** The served tag, or null when no generator answered (invalid or unknown tag, refusal). */
  readonly tag: string | null;
  readonly protocol: RequestProtocol;
  readonly mode: RequestMode;
  readonly outcome: RequestOutcome;
  /** Ids handed to the client (0 unless the outcome is ok). */
  readonly issued: number;
  readonly durationSeconds: number;
}

/** The counters of one tag (or of `tag=""`). */
interface TagSeries {
  issued: number;
  /** Requests by `protocol|mode|outcome`: at most 2 × 2 × 7 keys. */
  readonly requests: Map<string, number>;
  readonly latency: Histogram;
}

/** Options of IdServiceMetrics. */
export interface IdServiceMetricsOptions {
  /** Read on each scrape for the tags served and the segment generators' figures. */
  readonly source: IdGeneratorSource;
  /** Requests waiting for an answer now. */
  readonly requestsInFlight: () => number;
  /** Tags with series of their own; default 10 000. */
  readonly tagSeriesMax?: number;
}

/** Counts requests as they finish; `render` writes every family. */
export class IdServiceMetrics {
  readonly #options: IdServiceMetricsOptions;
  readonly #tagSeriesMax: number;
  readonly #tags = new Map<string, TagSeries>();
  /** Requests no served tag answered. */
  readonly #untagged: TagSeries = newSeries();
  /** Decode requests by `protocol|outcome`. */
  readonly #decodes = new Map<string, number>();

  constructor(options: IdServiceMetricsOptions) {
    const tagSeriesMax = options.tagSeriesMax ?? tagSeriesMaxDefault;
    assert(Number.isSafeInteger(tagSeriesMax) && tagSeriesMax >= 0, 'tagSeriesMax is a count');
    this.#options = options;
    this.#tagSeriesMax = tagSeriesMax;
  }

  /** Counts one request for ids. */
  recordIds(record: IdsRequestRecord): void {
    assert(record.issued === 0 || record.outcome === 'ok', 'metrics: ids issued only when ok');
    const series = this.#seriesOf(record.tag);
    const key = `${record.protocol}|${record.mode}|${record.outcome}`;
    series.requests.set(key, (series.requests.get(key) ?? 0) + 1);
    series.issued += record.issued;
    series.latency.observe(record.durationSeconds);
  }

  /** Counts one decode request. */
  recordDecode(protocol: RequestProtocol, outcome: RequestOutcome): void {
    const key = `${protocol}|${outcome}`;
    this.#decodes.set(key, (this.#decodes.get(key) ?? 0) + 1);
  }

  /** The exposition text, read now. */
  render(): string {
    return [...this.#requestFamilies(), ...this.#generatorFamilies()].map(formatFamily).join('');
  }

  #seriesOf(tag: string | null): TagSeries {
    if (tag === null) return this.#untagged;
    const known = this.#tags.get(tag);
    if (known !== undefined) return known;
    if (this.#tags.size >= this.#tagSeriesMax) return this.#untagged;
    const series = newSeries();
    this.#tags.set(tag, series);
    return series;
  }

  /** Every tag with series, then `""` for the rest. */
  #allSeries(): [string, TagSeries][] {
    return [...this.#tags.entries(), ['', this.#untagged]];
  }

  #requestFamilies(): Family[] {
    const all = this.#allSeries();
    const requests: Sample[] = [];
    for (const [tag, series] of all) {
      for (const [key, value] of series.requests) {
        const [protocol, mode, outcome] = key.split('|') as [string, string, string];
        requests.push({ labels: { tag, protocol, mode, outcome }, value });
      }
    }
    const decodes = [...this.#decodes].map(([key, value]): Sample => {
      const [protocol, outcome] = key.split('|') as [string, string];
      return { labels: { protocol, outcome }, value };
    });
    return [
      {
        name: 'synod_ids_issued_total', help: 'Ids handed to clients, by tag.', type: 'counter',
        samples: all.map(([tag, series]) => ({ labels: { tag }, value: series.issued })),
      },
      {
        name: 'synod_ids_requests_total', type: 'counter', samples: requests,
        help: 'Requests for ids, by tag, protocol, mode (single or batch) and outcome.',
      },
      latencyFamily(all),
      {
        name: 'synod_ids_decode_requests_total', type: 'counter', samples: decodes,
        help: 'Decode requests, by protocol and outcome.',
      },
      {
        name: 'synod_ids_requests_in_flight', type: 'gauge',
        help: 'Requests for ids or decodes waiting for their answer.',
        samples: [{ value: this.#options.requestsInFlight() }],
      },
    ];
  }

  #generatorFamilies(): Family[] {
    const kinds: Sample[] = [];
    const fetched: Sample[] = [];
    const remaining: Sample[] = [];
    const waits: Sample[] = [];
    const failures: Sample[] = [];
    const steps: Sample[] = [];
    for (const [tag, generator] of this.#options.source.generators()) {
      kinds.push({ labels: { tag, kind: generator.kind }, value: 1 });
      if (!(generator instanceof SegmentGenerator)) continue;
      const labels = { tag };
      fetched.push({ labels, value: generator.stats.segmentsFetched });
      // Below 2 × stepMax ≤ 2^32: exact as a Number.
      remaining.push({ labels, value: Number(generator.remaining) });
      waits.push({ labels, value: generator.stats.waits });
      failures.push({ labels, value: generator.stats.fetchFailures });
      steps.push({ labels, value: generator.step });
    }
    const family = (name: string, type: Family['type'], help: string, samples: Sample[]): Family =>
      ({ name, type, help, samples });
    return [
      family('synod_ids_generator_info', 'gauge',
        'The generator serving each tag (1 per tag).', kinds),
      family('synod_ids_segments_fetched_total', 'counter',
        'Segments a segment tag fetched from its store.', fetched),
      family('synod_ids_segment_ids_remaining', 'gauge',
        'Ids left in the current and the preloaded segment of a tag.', remaining),
      family('synod_ids_segment_waits_total', 'counter',
        'Calls that had to wait for a segment to arrive.', waits),
      family('synod_ids_segment_fetch_failures_total', 'counter',
        'Segment fetches that failed (each one is retried after a pause).', failures),
      family('synod_ids_segment_step', 'gauge',
        'Ids the next segment fetch of a tag asks for (the adaptive step).', steps),
    ];
  }
}

function newSeries(): TagSeries {
  return { issued: 0, requests: new Map(), latency: new Histogram(requestBucketBoundsSeconds) };
}

function latencyFamily(all: readonly (readonly [string, TagSeries])[]): Family {
  const samples: Sample[] = [];
  for (const [tag, series] of all) {
    const { bounds, cumulativeCounts, sum, count } = series.latency.snapshot();
    bounds.forEach((bound, index) => samples.push({
      suffix: '_bucket', labels: { tag, le: String(bound) }, value: cumulativeCounts[index]!,
    }));
    samples.push(
      { suffix: '_bucket', labels: { tag, le: '+Inf' }, value: count },
      { suffix: '_sum', labels: { tag }, value: sum },
      { suffix: '_count', labels: { tag }, value: count },
    );
  }
  return {
    name: 'synod_ids_request_duration_seconds', type: 'histogram', samples,
    help: 'Time from a request for ids arriving to its answer being ready, by tag.',
  };
}
