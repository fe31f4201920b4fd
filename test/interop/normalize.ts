/**
 * What legitimately differs between two correct servers answering the same etcdctl command, and
 * the masks that hide exactly that. Each mask states why the value may differ; anything not masked
 * must match byte for byte.
 */

/** Masks ids, terms, ports, raft indexes, sizes, versions, hashes and latencies. */
export function normalize(output: string): string {
  return output
    .replace(/"cluster_id":\d+/g, '"cluster_id":ID')
    .replace(/"member_id":\d+/g, '"member_id":ID')
    .replace(/"raft_term":\d+/g, '"raft_term":T')
    // Member ids (MemberList's ID, Status's leader) are hashes of different functions (SHA-1 in
    // etcd, SHA-256 in Synod). Only non-zero ids are masked, so "no leader" (0) still shows.
    .replace(/"(ID|leader)":[1-9]\d*/g, '"$1":ID')
    .replace(/"raftTerm":\d+/g, '"raftTerm":T')
    // Each target listens on its own free ports; the URLs and endpoints are otherwise the same.
    .replace(/127\.0\.0\.1:\d+/g, '127.0.0.1:PORT')
    // Raft indexes count entries etcd proposes for itself (member attributes, cluster version)
    // that Synod does not, so they differ by a constant for the same client history.
    .replace(/"(raftIndex|raftAppliedIndex)":\d+/g, '"$1":N')
    // bbolt and LMDB files differ in size; etcd reports its own version, Synod reports 3.5.0.
    .replace(/"(dbSize|dbSizeInUse)":\d+/g, '"$1":BYTES')
    .replace(/"version":"3\.\d+\.\d+"/g, '"version":"3.x"')
    // HashKV hashes each server's own storage layout (bbolt vs Synod's records); only agreement
    // among members of one implementation is meaningful.
    .replace(/"hash":\d+/g, '"hash":H')
    // endpoint health's latency: "took = 1.2ms" in text (on stderr, read only on failure) and
    // "took":"1.2ms" with -w json; it is wall-clock time, never equal between two runs.
    .replace(/took = [\d.]+(ns|µs|ms|s)/g, 'took = T')
    .replace(/"took":"[^"]*"/g, '"took":"T"')
    // The simple (comma-separated) forms of the same fields, for the same reasons: `member list`
    // starts with the member id in hex; `endpoint status` prints endpoint, member id, version,
    // db size, is-leader, is-learner, raft term, raft index, applied index, errors; `endpoint
    // hashkv` prints endpoint and hash. Leader and learner flags and errors stay unmasked.
    // etcdctl prints these ids with %x, so they are 16 hex digits or fewer.
    .replace(/^[0-9a-f]{1,16}, (started|unstarted), /gm, 'ID, $1, ')
    .replace(
      /^(127\.0\.0\.1:PORT), [0-9a-f]{1,16}, 3\.\d+\.\d+, [\d.]+ [kMG]?B, (true|false), (true|false), \d+, \d+, \d+,/gm,
      '$1, ID, 3.x, BYTES, $2, $3, T, N, N,',
    )
    .replace(/^(127\.0\.0\.1:PORT), \d+$/gm, '$1, H');
}

/**
 * Lease ids: etcd derives them from the member id and a clock, Synod counts from 1. A scenario
 * names each id by order of first appearance (`<lease A>`, `<lease B>`), so a step still shows
 * that the id `lease list` prints, or the one a lock key ends in, is the one granted earlier.
 */
export class LeaseNames {
  readonly #labels = new Map<bigint, string>();

  /** The label of `id`, assigning the next letter on first sight. */
  label(id: bigint): string {
    let label = this.#labels.get(id);
    if (label === undefined) {
      label = `<lease ${String.fromCharCode(65 + this.#labels.size)}>`;
      this.#labels.set(id, label);
    }
    return label;
  }

  /**
   * Replaces lease ids where etcdctl prints them: `lease %016x …`, `found N leases` lines,
   * `"id"`/`"ID"` in JSON (decimal), and after each of `keyPrefixes` in lock and election keys
   * (`name/%x`, unpadded hex, as the Go concurrency recipes build them).
   */
  mask(text: string, keyPrefixes: readonly string[]): string {
    const hex = (digits: string) => this.label(BigInt(`0x${digits}`));
    let masked = text
      .replace(/\blease ([0-9a-f]{16})\b/g, (_, digits: string) => `lease ${hex(digits)}`)
      .replace(/^([0-9a-f]{16})$/gm, (_, digits: string) => hex(digits))
      .replace(/"(id|ID)":(\d+)/g, (_, field: string, digits: string) => `"${field}":${this.label(BigInt(digits))}`);
    for (const prefix of keyPrefixes) {
      const escaped = prefix.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
      masked = masked.replace(new RegExp(`${escaped}([0-9a-f]+)\\b`, 'g'), (_, digits: string) => prefix + hex(digits));
    }
    return masked;
  }
}
