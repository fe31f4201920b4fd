/**
 * Which generator answers which tag. The ID service asks an `IdGeneratorSource`; `TagRegistry`
 * is the one the `synod ids` command uses: a few generators under fixed tags (the Snowflake tag
 * the lead wires in), plus generators created on a tag's first request (segment tags), bounded by
 * `createdTagsMax` because the tags come from clients. The registry owns every generator it
 * serves and closes them all in `close()`.
 */

import { SynodError, assert } from '../../../base/index.js';
import type { IdGenerator } from '../id-generator.js';
import { IdRequestError, requestStatuses, tagsExhaustedCode } from './request-status.js';
import { validateTag } from './requests.js';

/** A generator the service can serve: numeric ids go out as decimal strings, UUIDs as they are. */
export type ServedGenerator = IdGenerator<bigint> | IdGenerator<string>;

/** Where the service finds the generator of a tag. */
export interface IdGeneratorSource {
  /**
   * The generator of `tag` (already validated by the service), or null when the tag is not
   * served, which the service answers with 404 / NOT_FOUND. A source that makes tags on demand
   * may refuse with a SynodError instead (IdRequestError `tagsExhaustedCode` when full). A
   * promise lets a source create a generator that must first lease or connect.
   */
  generatorFor(tag: string): ServedGenerator | null | Promise<ServedGenerator | null>;
  /** The tags served now and their generators, which /metrics reads on each scrape. */
  generators(): Iterable<readonly [string, ServedGenerator]>;
}

/** Options of a TagRegistry. */
export interface TagRegistryOptions {
  /** Generators under fixed tags, e.g. `snowflake`; the registry takes ownership. */
  readonly fixed?: Readonly<Record<string, ServedGenerator>>;
  /**
   * Makes the generator of a tag on its first request, or returns null to leave the tag
   * unserved (a name reserved for a fixed tag not wired yet). Without it only fixed tags exist.
   */
  readonly create?: (tag: string) => ServedGenerator | null;
  /** Tags `create` may make over the registry's life; default 1 000. */
  readonly createdTagsMax?: number;
}

/** The default of `createdTagsMax`. */
export const createdTagsMaxDefault = 1_000;
/**
 * The largest `createdTagsMax`: each tag holds a generator, two segments, and a set of metric
 * series (about twenty lines of /metrics), so the table must stay far below what a scrape reads.
 */
export const createdTagsMaxLimit = 100_000;

/** Generators by tag: fixed ones and ones created on first use, bounded. */
export class TagRegistry implements IdGeneratorSource {
  readonly #generators = new Map<string, ServedGenerator>();
  readonly #create: ((tag: string) => ServedGenerator | null) | null;
  readonly #createdTagsMax: number;
  #created = 0;
  #closed = false;

  constructor(options: TagRegistryOptions) {
    const createdTagsMax = options.createdTagsMax ?? createdTagsMaxDefault;
    if (!Number.isSafeInteger(createdTagsMax) || createdTagsMax < 0
      || createdTagsMax > createdTagsMaxLimit) {
      throw new SynodError('SYNOD_INVALID_CONFIG',
        `createdTagsMax must be a whole number in [0, ${createdTagsMaxLimit}]`);
    }
    this.#createdTagsMax = createdTagsMax;
    this.#create = options.create ?? null;
    for (const [tag, generator] of Object.entries(options.fixed ?? {})) {
      validateTag(tag);
      this.#generators.set(tag, generator);
    }
  }

  /** Tags created on demand so far (fixed tags not included). */
  get createdTags(): number {
    return this.#created;
  }

  generatorFor(tag: string): ServedGenerator | null {
    if (this.#closed) {
      throw new SynodError('SYNOD_ID_GENERATOR_CLOSED', 'the ID service is closing');
    }
    const known = this.#generators.get(tag);
    if (known !== undefined) return known;
    if (this.#create === null) return null;
    if (this.#created >= this.#createdTagsMax) {
      throw new IdRequestError(tagsExhaustedCode,
        `tag ${tag}: this service already created ${this.#createdTagsMax} tags`,
        requestStatuses.spaceExhausted);
    }
    const generator = this.#create(tag);
    if (generator === null) return null;
    this.#created += 1;
    this.#generators.set(tag, generator);
    // Invariant: the table holds the fixed tags plus at most createdTagsMax more.
    assert(this.#created <= this.#createdTagsMax, 'tag registry: within createdTagsMax');
    return generator;
  }

  generators(): Iterable<readonly [string, ServedGenerator]> {
    return this.#generators.entries();
  }

  /** Closes every generator; later requests are refused with SYNOD_ID_GENERATOR_CLOSED. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    const closing = [...this.#generators.values()].map((generator) => generator.close());
    const outcomes = await Promise.allSettled(closing);
    const failed = outcomes.find((outcome) => outcome.status === 'rejected');
    if (failed !== undefined) throw failed.reason;
  }
}
