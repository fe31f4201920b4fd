// TagRegistry's bounds and ownership, and the metrics' bound on per-tag series.
import { describe, expect, it } from 'vitest';
import { isSynodError } from '../../../base/index.js';
import type { IdGenerator } from '../id-generator.js';
import { IdServiceMetrics } from './id-metrics.js';
import { IdService } from './id-service.js';
import { IdRequestError, tagsExhaustedCode } from './request-status.js';
import { TagRegistry } from './tag-registry.js';

/** Counts up from 1; remembers whether it was closed. */
class CountingGenerator implements IdGenerator<bigint> {
  readonly kind = 'ticket' as const;
  closed = false;
  #last = 0n;

  next(): bigint {
    return (this.#last += 1n);
  }

  async nextBatch(count: number): Promise<bigint[]> {
    return Array.from({ length: count }, () => this.next());
  }

  async close(): Promise<void> {
    this.closed = true;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}

describe('TagRegistry', () => {
  it('creates tags on first use up to its bound, and leaves reserved names unserved', () => {
    const made: string[] = [];
    const registry = new TagRegistry({
      fixed: { fixed: new CountingGenerator() },
      createdTagsMax: 2,
      create: (tag) => {
        if (tag === 'reserved') return null;
        made.push(tag);
        return new CountingGenerator();
      },
    });
    expect(registry.generatorFor('reserved')).toBeNull();
    const a = registry.generatorFor('a');
    expect(registry.generatorFor('a')).toBe(a);
    registry.generatorFor('b');
    expect(() => registry.generatorFor('c')).toThrow(IdRequestError);
    try {
      registry.generatorFor('c');
    } catch (error) {
      expect(isSynodError(error, tagsExhaustedCode)).toBe(true);
      expect((error as IdRequestError).status.httpStatus).toBe(507);
    }
    // Fixed tags do not count against the bound and stay served.
    expect(registry.generatorFor('fixed')).not.toBeNull();
    expect(made).toEqual(['a', 'b']);
    expect(registry.createdTags).toBe(2);
    expect([...registry.generators()].map(([tag]) => tag).sort()).toEqual(['a', 'b', 'fixed']);
  });

  it('serves only fixed tags without a create function', () => {
    const registry = new TagRegistry({ fixed: { only: new CountingGenerator() } });
    expect(registry.generatorFor('other')).toBeNull();
    expect(registry.generatorFor('only')).not.toBeNull();
  });

  it('refuses a fixed tag a request could not name', () => {
    expect(() => new TagRegistry({ fixed: { 'a/b': new CountingGenerator() } }))
      .toThrow(/without "\/"/);
    expect(() => new TagRegistry({ createdTagsMax: -1 })).toThrow(/createdTagsMax/);
  });

  it('closes every generator it holds and refuses later lookups', async () => {
    const fixed = new CountingGenerator();
    const created = new CountingGenerator();
    const registry = new TagRegistry({ fixed: { fixed }, create: () => created });
    registry.generatorFor('made');
    await registry.close();
    expect([fixed.closed, created.closed]).toEqual([true, true]);
    expect(() => registry.generatorFor('made')).toThrow(/closing/);
  });
});

describe('IdServiceMetrics', () => {
  it('gives at most tagSeriesMax tags series of their own; the rest count under tag=""', () => {
    const registry = new TagRegistry({ create: () => new CountingGenerator() });
    const metrics = new IdServiceMetrics({
      source: registry, requestsInFlight: () => 0, tagSeriesMax: 2,
    });
    for (const tag of ['a', 'b', 'c', 'd']) {
      metrics.recordIds({
        tag, protocol: 'http', mode: 'single', outcome: 'ok', issued: 1, durationSeconds: 0.001,
      });
    }
    const text = metrics.render();
    expect(text).toContain('synod_ids_issued_total{tag="a"} 1\n');
    expect(text).toContain('synod_ids_issued_total{tag="b"} 1\n');
    expect(text).not.toContain('tag="c"');
    expect(text).toContain('synod_ids_issued_total{tag=""} 2\n');
    expect(text).toContain('synod_ids_request_duration_seconds_bucket{tag="a",le="0.0016"} 1\n');
    expect(text).toContain('synod_ids_request_duration_seconds_bucket{tag="a",le="0.0008"} 0\n');
  });

  it('escapes a tag in its label', async () => {
    const registry = new TagRegistry({ create: () => new CountingGenerator() });
    const service = new IdService({ source: registry });
    expect(await service.issue({ tag: 'say "hi"\\', count: 2 }, 'grpc')).toEqual(['1', '2']);
    expect(service.metrics.render())
      .toContain('synod_ids_issued_total{tag="say \\"hi\\"\\\\"} 2\n');
  });
});
