/**
 * What MemberList reports for each member: its ids, name, peer URLs and client URLs. Names and
 * peer URLs come from `--initial-cluster`; a member's client URLs are its own
 * `--advertise-client-urls`, which only it knows, so each member answers a peer request for them
 * (etcd publishes them through Raft instead). A member that cannot be asked keeps the URLs it
 * last gave, or none, as etcd shows a member that has not started yet.
 */

import type { ClusterLayout } from './cluster-layout.js';
import type { PeerTransport } from './peer/peer-transport.js';

const clientUrlsMethod = 'member.clientUrls';
/** How long MemberList waits for a peer's client URLs before listing what it knows. */
export const clientUrlsTimeoutMs = 500;

/** One member as MemberList describes it. */
export interface MemberRecord {
  readonly memberId: bigint;
  readonly name: string;
  readonly peerUrls: readonly URL[];
  readonly clientUrls: readonly URL[];
}

/** The members' descriptions, asking peers for their client URLs. */
export class MemberDirectory {
  readonly #layout: ClusterLayout;
  readonly #transport: PeerTransport;
  readonly #known = new Map<number, readonly URL[]>();

  constructor(options: { layout: ClusterLayout; selfClientUrls: readonly URL[]; transport: PeerTransport }) {
    this.#layout = options.layout;
    this.#transport = options.transport;
    this.#known.set(options.layout.self.raftId, options.selfClientUrls);
    const answer = new TextEncoder().encode(options.selfClientUrls.map((url) => url.href).join('\n'));
    options.transport.handle(clientUrlsMethod, async () => answer);
  }

  /** Every member, in Raft id order. */
  async list(): Promise<MemberRecord[]> {
    const peers = this.#layout.members.filter((member) => member !== this.#layout.self);
    await Promise.all(peers.map((member) => this.#refresh(member.raftId)));
    return this.#layout.members.map((member) => ({
      memberId: member.memberId,
      name: member.name,
      peerUrls: member.peerUrls,
      clientUrls: this.#known.get(member.raftId) ?? [],
    }));
  }

  async #refresh(raftId: number): Promise<void> {
    const timeout = new Promise<null>((resolve) => setTimeout(() => resolve(null), clientUrlsTimeoutMs).unref());
    const asked = this.#transport.request(raftId, clientUrlsMethod, new Uint8Array(0)).catch(() => null);
    const answer = await Promise.race([asked, timeout]);
    if (answer === null) return;
    const urls = parseUrls(new TextDecoder().decode(answer));
    if (urls !== null) this.#known.set(raftId, urls);
  }
}

function parseUrls(text: string): URL[] | null {
  if (text === '') return [];
  try {
    return text.split('\n').map((line) => new URL(line));
  } catch {
    return null;
  }
}
