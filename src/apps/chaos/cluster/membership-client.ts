/**
 * Cluster.MemberList, MemberAdd and MemberRemove over raw grpc-js with Synod's proto definitions,
 * for the nemesis's membership fault. Works the same against Synod and etcd.
 */

import { credentials, type Client, type ServiceError } from '@grpc/grpc-js';
import { loadEtcdProto, type EtcdProto } from '../../../server/grpc/proto.js';

/** A member as MemberList reports it. */
export interface ListedMember {
  /** The member id (decimal). */
  readonly id: string;
  /** Empty until the member has started and published its name. */
  readonly name: string;
  readonly peerUrls: readonly string[];
}

type UnaryMethod = (
  request: object,
  options: { deadline: number },
  callback: (error: ServiceError | null, response: unknown) => void,
) => void;

interface WireMember {
  readonly ID: string;
  readonly name: string;
  readonly peerURLs: readonly string[];
}

let proto: EtcdProto | null = null;

/** A Cluster client for one member's client URL. */
export class MembershipClient {
  readonly #client: Client;

  constructor(clientUrl: string) {
    proto ??= loadEtcdProto();
    const services = proto.packageObject.etcdserverpb as Record<string, unknown>;
    const Cluster = services.Cluster as new (
      address: string, creds: ReturnType<typeof credentials.createInsecure>,
    ) => Client;
    this.#client = new Cluster(clientUrl.replace('http://', ''), credentials.createInsecure());
  }

  async list(timeoutMs: number): Promise<ListedMember[]> {
    const response = await this.#call<{ members: WireMember[] }>('MemberList', { linearizable: true }, timeoutMs);
    return response.members.map((member) => ({ id: member.ID, name: member.name, peerUrls: member.peerURLs }));
  }

  /** Adds a voting member at `peerUrl`; resolves with its new id. */
  async add(peerUrl: string, timeoutMs: number): Promise<string> {
    const response = await this.#call<{ member: WireMember }>('MemberAdd', { peerURLs: [peerUrl] }, timeoutMs);
    return response.member.ID;
  }

  async remove(id: string, timeoutMs: number): Promise<void> {
    await this.#call('MemberRemove', { ID: id }, timeoutMs);
  }

  close(): void {
    this.#client.close();
  }

  #call<Response>(method: string, request: object, timeoutMs: number): Promise<Response> {
    const call = (this.#client as unknown as Record<string, UnaryMethod>)[method]!.bind(this.#client);
    return new Promise((resolve, reject) => {
      call(request, { deadline: Date.now() + timeoutMs }, (error, response) => {
        if (error !== null) reject(error);
        else resolve(response as Response);
      });
    });
  }
}
