/**
 * Maintenance.Status over raw grpc-js with Synod's proto definitions, for the harness's own view
 * of the cluster (readiness, who leads). Works the same against Synod and etcd.
 */

import { credentials, type Client, type ServiceError } from '@grpc/grpc-js';
import { loadEtcdProto, type EtcdProto } from '../../../server/grpc/proto.js';

/** What the harness reads from Status. */
export interface MemberStatus {
  /** The answering member's id (decimal). */
  readonly memberId: string;
  /** The leader's member id (decimal), "0" when none is known. */
  readonly leaderId: string;
  readonly raftTerm: number;
}

type StatusMethod = (
  request: object,
  options: { deadline: number },
  callback: (error: ServiceError | null, response: WireStatus) => void,
) => void;

interface WireStatus {
  readonly header: { readonly member_id: string };
  readonly leader: string;
  readonly raftTerm: string;
}

let proto: EtcdProto | null = null;

/** A Status client for one member's client URL. */
export class StatusClient {
  readonly #client: Client;

  constructor(clientUrl: string) {
    proto ??= loadEtcdProto();
    const services = proto.packageObject.etcdserverpb as Record<string, new (...args: never[]) => Client>;
    const Maintenance = services.Maintenance as unknown as new (
      address: string, creds: ReturnType<typeof credentials.createInsecure>,
    ) => Client;
    this.#client = new Maintenance(clientUrl.replace('http://', ''), credentials.createInsecure());
  }

  /** Status, or a rejection after `timeoutMs`. */
  status(timeoutMs: number): Promise<MemberStatus> {
    const call = (this.#client as unknown as { Status: StatusMethod }).Status.bind(this.#client);
    return new Promise((resolve, reject) => {
      call({}, { deadline: Date.now() + timeoutMs }, (error, response) => {
        if (error !== null) {
          reject(error);
          return;
        }
        resolve({
          memberId: response.header.member_id,
          leaderId: response.leader,
          raftTerm: Number(response.raftTerm),
        });
      });
    });
  }

  close(): void {
    this.#client.close();
  }
}
